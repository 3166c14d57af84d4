//! The `loopwork` binary as a newcomer and an administrator use it: started with no
//! configuration it makes the demo organization under `./data` and says how to sign in; the
//! admin commands make an organization, a project and its users (a dispatcher bound to the
//! project) and revoke a lost phone; `--help` documents every subcommand and flag.

use std::path::{Path, PathBuf};

use loopwork_tests::tools::{serve_binary, server_binary};
use loopwork_tests::{Backend, TestDatabase, login_at};

/// The server binary (built once per test process). (Also installs the TLS provider the HTTP
/// clients here need, as the server does for its own.)
fn binary() -> PathBuf {
    let _ = loopwork_server::webhooks::client();
    server_binary()
}

/// Runs `loopwork args…` to completion in `dir`: (success, stdout, stderr).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = std::process::Command::new(binary())
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run loopwork");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// Starts `loopwork args…` in `dir` on free ports (given as environment variables) and returns
/// its address and what it printed before it served.
async fn serve(dir: &Path, args: &[&str]) -> (String, String, tokio::process::Child) {
    let mut command = tokio::process::Command::new(binary());
    command
        .current_dir(dir)
        .args(args)
        .env("LOOPWORK_LISTEN", "127.0.0.1:0")
        .env("LOOPWORK_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    serve_binary(command).await
}

#[test]
fn help_documents_every_subcommand_and_flag() {
    let dir = tempfile::tempdir().expect("dir");
    let (ok, top, _) = run(dir.path(), &["--help"], &[]);
    assert!(ok && top.contains("serve") && top.contains("admin"), "{top}");
    for command in ["backup", "restore"] {
        assert!(top.contains(command), "{command}:\n{top}");
        let (ok, help, _) = run(dir.path(), &[command, "--help"], &[]);
        assert!(ok && help.contains("--data-dir"), "{help}");
    }
    let (ok, serve, _) = run(dir.path(), &["serve", "--help"], &[]);
    assert!(ok);
    for (flag, variable, default) in [
        ("--listen", "LOOPWORK_LISTEN", "127.0.0.1:8080"),
        ("--metrics-listen", "LOOPWORK_METRICS_LISTEN", "127.0.0.1:9090"),
        ("--data-dir", "LOOPWORK_DATA_DIR", "./data"),
        ("--database-url", "LOOPWORK_DATABASE_URL", ""),
        ("--backup-dir", "LOOPWORK_BACKUP_DIR", ""),
        ("--backup-every", "LOOPWORK_BACKUP_EVERY", "6h"),
        ("--backup-keep", "LOOPWORK_BACKUP_KEEP", "28"),
    ] {
        assert!(serve.contains(flag) && serve.contains(variable) && serve.contains(default), "{flag}:\n{serve}");
    }
    for (group, command) in [
        ("admin", "create-org"),
        ("admin", "create-project"),
        ("admin", "create-user"),
        ("admin", "revoke-device"),
        ("triage", "classify"),
        ("triage", "eval"),
        ("triage", "train"),
        ("triage", "generate"),
        ("triage", "retrain"),
        ("triage", "rollback"),
        ("triage", "models"),
    ] {
        let (ok, listing, _) = run(dir.path(), &[group, "--help"], &[]);
        assert!(ok && listing.contains(command), "{command}:\n{listing}");
        let (ok, help, _) = run(dir.path(), &[group, command, "--help"], &[]);
        assert!(ok);
        // Every flag has its line of help: no flag is left bare.
        for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
            let described = line.split("  ").filter(|part| !part.trim().is_empty()).count() > 1;
            let next_described = help.lines().skip_while(|l| *l != line).nth(1).is_some_and(|n| {
                let n = n.trim();
                !n.is_empty() && !n.starts_with('-')
            });
            assert!(described || next_described, "`{command}` flag without help: {line}\n{help}");
        }
    }
}

/// `loopwork triage classify` answers each JSON line with the documented object, flags a
/// life-safety message whatever the model says, and answers a bad line with its error while
/// going on with the rest (exiting non-zero).
#[test]
fn triage_classify_answers_line_by_line() {
    let dir = tempfile::tempdir().expect("dir");
    let input = "{\"id\": \"a\", \"text\": \"3栋电梯又坏了有人困在里面\"}\nnot json\n{\"id\": 7, \"text\": \"请问物业费怎么交\"}\n";
    let mut child = std::process::Command::new(binary())
        .current_dir(dir.path())
        .args(["triage", "classify"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run loopwork triage classify");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("output");
    assert!(!output.status.success(), "a bad line makes the exit status non-zero");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let keys = |v: &serde_json::Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
    let mut want = vec!["abstain", "category", "confidence", "grade", "id", "kind", "urgent"];
    want.sort();
    assert_eq!(keys(&lines[0]), want);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!((lines[0]["urgent"].as_bool(), lines[0]["abstain"].as_bool()), (Some(true), Some(false)));
    assert!(matches!(lines[0]["grade"].as_str(), Some("severe" | "critical")), "{}", lines[0]);
    assert_eq!(lines[0]["category"], "elevator");
    assert!(lines[1]["error"].as_str().is_some_and(|e| e.starts_with("not JSON")), "{}", lines[1]);
    assert_eq!((lines[2]["id"].as_i64(), lines[2]["kind"].as_str()), (Some(7), Some("inquiry")));
    let confidence = lines[2]["confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&confidence));
}

#[tokio::test]
async fn with_no_configuration_it_serves_the_demo_from_data() {
    let dir = tempfile::tempdir().expect("dir");
    let (base, printed, mut child) = serve(dir.path(), &[]).await;
    assert!(printed.contains("kefu") && printed.contains(loopwork_server::demo::DEMO_PASSWORD), "{printed}");
    let health = reqwest::get(format!("{base}/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    let kefu = login_at(&base, "kefu", loopwork_server::demo::DEMO_PASSWORD).await;
    assert_eq!(kefu.role, loopwork_sync_core::Role::Dispatcher);
    assert!(dir.path().join("data/loopwork.db").exists(), "the embedded database lives under ./data");
    assert!(dir.path().join("data/loopwork.db-wal").exists(), "in write-ahead-log mode");
    child.kill().await.expect("stop");
}

async fn an_administrator_sets_up_a_project_and_its_people(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().join("store");
    let data_dir = data_dir.to_str().expect("utf-8 path");
    // Storage from the environment on PostgreSQL, from the flag on SQLite.
    let mut env: Vec<(&str, &str)> = vec![("LOOPWORK_PASSWORD", "chushi-mima-2026")];
    let mut storage: Vec<&str> = Vec::new();
    match backend {
        Backend::Postgres => env.push(("LOOPWORK_DATABASE_URL", database.url.as_str())),
        Backend::Sqlite => storage.extend(["--data-dir", data_dir]),
    }
    let admin = |args: &[&str]| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend_from_slice(&storage);
        run(dir.path(), &all, &env)
    };
    let (ok, org, err) = admin(&["create-org", "--name", "清水物业"]);
    assert!(ok, "{err}");
    let org = org.trim().to_owned();
    let (ok, _, err) = admin(&["create-project", "--org", &org, "--code", "qs-court", "--name", "清水苑"]);
    assert!(ok, "{err}");
    let (ok, _, err) = admin(&[
        "create-user",
        "--org",
        &org,
        "--login",
        "qs-kefu",
        "--role",
        "dispatcher",
        "--name",
        "清水苑客服",
        "--project",
        "qs-court",
    ]);
    assert!(ok, "{err}");
    // Refused, and nobody is made: a project that does not exist, a technician bound to one.
    let (ok, _, err) = admin(&[
        "create-user",
        "--org",
        &org,
        "--login",
        "ghost",
        "--role",
        "dispatcher",
        "--name",
        "x",
        "--project",
        "nowhere",
    ]);
    assert!(!ok && err.contains("no project nowhere"), "{err}");
    let (ok, _, err) = admin(&[
        "create-user",
        "--org",
        &org,
        "--login",
        "ghost",
        "--role",
        "technician",
        "--name",
        "x",
        "--project",
        "qs-court",
    ]);
    assert!(!ok && err.contains("dispatchers only"), "{err}");
    // A weak password is refused too (the demo's users keep theirs).
    let mut weak_env = env.clone();
    weak_env[0] = ("LOOPWORK_PASSWORD", "123456");
    let mut weak = vec!["admin", "create-user", "--org", &org, "--login", "ghost", "--role", "owner", "--name", "x"];
    weak.extend_from_slice(&storage);
    let (ok, _, err) = run(dir.path(), &weak, &weak_env);
    assert!(!ok && err.contains("weak password"), "{err}");

    let mut serve_args = vec!["serve", "--no-demo"];
    serve_args.extend_from_slice(&storage);
    let (base, _, mut child) = match backend {
        Backend::Postgres => {
            let mut args = serve_args.clone();
            args.extend(["--database-url", database.url.as_str()]);
            serve(dir.path(), &args).await
        }
        Backend::Sqlite => serve(dir.path(), &serve_args).await,
    };
    let session = login_at(&base, "qs-kefu", "chushi-mima-2026").await;
    let client = reqwest::Client::new();
    let me: serde_json::Value = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&session.token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["projects"], serde_json::json!([{ "code": "qs-court", "name": "清水苑" }]), "{me}");
    let nobody = client
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({ "login": "ghost", "password": "chushi-mima-2026" }))
        .send()
        .await
        .expect("login");
    assert_eq!(nobody.status(), 401, "no refused user was made");

    // After a restore: today's official numbers move on, for every organization; nothing but a
    // positive count is taken.
    for bad in ["0", "-5", "many"] {
        let (ok, _, err) = admin(&["skip-numbers", "--by", bad]);
        assert!(!ok && !err.is_empty(), "--by {bad}: {err}");
    }
    let (ok, out, err) = admin(&["skip-numbers", "--by", "50"]);
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.contains(&org)).unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with("continue after 50"), "{line}");
    let (ok, out, err) = admin(&["skip-numbers", "--by", "50"]);
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.contains(&org) && l.ends_with("continue after 100")), "{out}");

    // A lost phone: revoked from the command line, refused at its next request.
    let device = session.device.to_string();
    let (ok, _, err) = admin(&["revoke-device", "--org", &org, "--device", &device]);
    assert!(ok, "{err}");
    let after = client.get(format!("{base}/api/v1/me")).bearer_auth(&session.token).send().await.expect("me");
    assert_eq!(after.status(), 401);
    child.kill().await.expect("stop");
    drop(child);
    database.drop_database().await;
}

#[tokio::test]
async fn sqlite_an_administrator_sets_up_a_project_and_its_people() {
    an_administrator_sets_up_a_project_and_its_people(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_an_administrator_sets_up_a_project_and_its_people() {
    an_administrator_sets_up_a_project_and_its_people(Backend::Postgres).await;
}

/// Registers a complaint through the desk API as `token`; its id.
async fn register(base: &str, token: &str, unit: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "kind": "complaint", "category": "water_electric", "grade": "minor", "channel": "hotline",
            "project": "hy-garden", "building": "3", "unit": unit, "description": "楼上漏水,天花板滴水",
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

/// The ids of the orders `token` sees.
async fn order_ids(base: &str, token: &str) -> std::collections::BTreeSet<String> {
    order_numbers(base, token).await.into_keys().collect()
}

#[tokio::test]
async fn sqlite_a_backup_taken_while_serving_restores_to_that_moment() {
    let dir = tempfile::tempdir().expect("dir");
    let (base, _, mut child) = serve(dir.path(), &[]).await;
    let kefu = login_at(&base, "kefu", loopwork_server::demo::DEMO_PASSWORD).await;
    let mut before = Vec::new();
    for unit in ["3-0101", "3-0202", "3-0302"] {
        before.push(register(&base, &kefu.token, unit).await);
    }
    let (ok, out, err) = run(dir.path(), &["backup", "--to", "backups", "--data-dir", "data"], &[]);
    assert!(ok, "{err}");
    let written: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    let path = PathBuf::from(written["path"].as_str().expect("path"));
    let seen_then = order_ids(&base, &kefu.token).await;
    assert!(before.iter().all(|id| seen_then.contains(id)));
    assert_eq!(written["counts"]["orders"], seen_then.len(), "{written}");
    assert!(written["bytes"].as_u64().expect("bytes") > 0);
    // The last migration applied: the number of SQLite's migrations.
    let migrations =
        std::fs::read_dir(loopwork_tests::tools::workspace().join("migrations/sqlite")).expect("dir").count();
    assert_eq!(written["counts"]["schema_version"], migrations, "{written}");
    // The server keeps working after the backup; what it does then is not in it.
    let after = register(&base, &kefu.token, "3-0901").await;
    let numbers_before = order_numbers(&base, &kefu.token).await;
    child.kill().await.expect("stop");
    child.wait().await.expect("stopped");

    // A damaged file is refused, and the database is left as it was.
    std::fs::write(dir.path().join("damaged.db"), vec![7u8; 8192]).expect("write");
    let (ok, _, err) = run(dir.path(), &["restore", "--from", "damaged.db", "--data-dir", "data", "--force"], &[]);
    assert!(!ok && !err.is_empty(), "{err}");
    assert!(dir.path().join("data/loopwork.db").exists());
    // Without --force an existing database is not replaced.
    let from = path.to_str().expect("utf-8");
    let (ok, _, err) = run(dir.path(), &["restore", "--from", from, "--data-dir", "data"], &[]);
    assert!(!ok && err.contains("--force"), "{err}");
    let (ok, out, err) = run(dir.path(), &["restore", "--from", from, "--data-dir", "data", "--force"], &[]);
    assert!(ok, "{err}");
    let restored: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(restored, written["counts"]);
    let kept = std::fs::read_dir(dir.path().join("data"))
        .expect("data")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("loopwork.db.before-restore-"))
        .count();
    assert!(kept >= 1, "the replaced database is kept beside it");

    let (base, printed, mut child) = serve(dir.path(), &[]).await;
    assert!(!printed.contains("kefu"), "the restored database has its organization: no second demo");
    let kefu = login_at(&base, "kefu", loopwork_server::demo::DEMO_PASSWORD).await;
    let now = order_ids(&base, &kefu.token).await;
    assert_eq!(now, seen_then, "exactly what the backup held");
    assert!(!now.contains(&after));
    // The restore moved today's numbers on: the order lost with it keeps its number for good.
    let new = register(&base, &kefu.token, "3-0901").await;
    let numbers_now = order_numbers(&base, &kefu.token).await;
    let given = &numbers_now[&new];
    assert!(!numbers_before.values().any(|n| n == given), "{given} was given out before the restore");
    child.kill().await.expect("stop");
}

/// The official number of each order `token` sees, by id.
async fn order_numbers(base: &str, token: &str) -> std::collections::BTreeMap<String, String> {
    let rows: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!("{base}/api/v1/orders?limit=500"))
        .bearer_auth(token)
        .send()
        .await
        .expect("queue")
        .json()
        .await
        .expect("json");
    rows.iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["number"].as_str().expect("number").to_owned()))
        .collect()
}

#[tokio::test]
async fn sqlite_scheduled_backups_are_verified_and_the_newest_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let (ok, _, err) = run(dir.path(), &["serve", "--backup-dir", "b", "--backup-every", "0s"], &[]);
    assert!(!ok && err.contains("shorter than a second"), "{err}");
    let (ok, _, err) =
        run(dir.path(), &["serve", "--backup-dir", "b", "--database-url", "postgres://nobody@127.0.0.1:1/none"], &[]);
    assert!(!ok && err.contains("pgBackRest"), "{err}");

    let mut command = tokio::process::Command::new(binary());
    command
        .current_dir(dir.path())
        .args(["serve", "--backup-dir", "b", "--backup-every", "1s", "--backup-keep", "2"])
        .env("LOOPWORK_LISTEN", "127.0.0.1:0")
        .env("LOOPWORK_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    let (_, _, mut child) = serve_binary(command).await;
    let backups = dir.path().join("b");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Wait for two backups, then for a third, which makes the oldest go.
    let mut first_two: Option<Vec<PathBuf>> = None;
    loop {
        let names = loopwork_server::backup::list(&backups).unwrap_or_default();
        match &first_two {
            None if names.len() == 2 => first_two = Some(names.clone()),
            Some(two) if names.len() == 2 && !names.contains(&two[0]) => break,
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "no third backup: {names:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().await.expect("stop");
    child.wait().await.expect("stopped");
    let kept = loopwork_server::backup::list(&backups).expect("list");
    assert_eq!(kept.len(), 2, "{kept:?}");
    for path in kept {
        let counts = loopwork_server::backup::verify(&path).await.expect("verified");
        assert!(counts.orders > 0 && counts.users > 0, "{counts:?}");
    }
    assert!(
        std::fs::read_dir(&backups).expect("dir").all(|e| !e
            .expect("entry")
            .path()
            .to_string_lossy()
            .ends_with(".partial")),
        "no partial file left behind"
    );
}

#[tokio::test]
async fn sigterm_drains_and_exits_within_its_bound_even_with_live_listeners() {
    let dir = tempfile::tempdir().expect("dir");
    let (base, _, mut child) = serve(dir.path(), &[]).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("text"), "ready");
    // A dispatcher's desk listening to the live feed: an open stream the drain must not wait on.
    let kefu = login_at(&base, "kefu", loopwork_server::demo::DEMO_PASSWORD).await;
    let mut live =
        reqwest::Client::new().get(format!("{base}/api/v1/live")).bearer_auth(&kefu.token).send().await.expect("live");
    assert_eq!(live.status(), 200);
    let pid = child.id().expect("pid").to_string();
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let exited = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("exits well within the drain bound")
        .expect("status");
    assert!(exited.success(), "a drained shutdown exits 0: {exited:?}");
    assert!(started.elapsed() < loopwork_server::DRAIN_BOUND);
    // The live stream was ended by the server, not cut by the exit.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Ok(Some(_)) = live.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the live stream ends");
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "the listener is closed");
}

#[test]
fn triage_bot_and_duplicates_measure_given_sets_and_refuse_malformed_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        std::process::Command::new(binary()).current_dir(dir.path()).args(args).output().expect("run loopwork triage")
    };
    let bot = dir.path().join("bot.jsonl");
    std::fs::write(
        &bot,
        "{\"id\": \"1\", \"text\": \"请问物业费可以用微信交吗\", \"expect\": \"answer:property-fee\"}\n\
         {\"id\": \"2\", \"text\": \"转人工\", \"expect\": \"handover\"}\n",
    )
    .expect("write");
    let output = run(&["triage", "bot", "--data", bot.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!((report["messages"].as_u64(), report["accuracy"].as_f64()), (Some(2), Some(1.0)), "{report}");
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"id\": \"1\", \"a\": \"5栋没水了，一滴都没有\", \"b\": \"五栋这边也没水了，一滴都没有了\", \"same\": true}\n\
         {\"id\": \"2\", \"a\": \"5栋没水了，一滴都没有\", \"b\": \"楼道灯不亮了\", \"same\": false}\n",
    )
    .expect("write");
    let output = run(&["triage", "duplicates", "--data", pairs.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(reports[0]["measure"], "bigram_overlap");
    assert_eq!(reports[0]["auc"].as_f64(), Some(1.0), "{reports}");
    // Malformed or missing sets are refused with the line, never answered with figures.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"1\", \"text\": \"x\"}\n").expect("write");
    for args in [
        ["triage", "bot", "--data", bad.to_str().unwrap()],
        ["triage", "duplicates", "--data", bad.to_str().unwrap()],
        ["triage", "bot", "--data", "no-such-file.jsonl"],
    ] {
        let output = run(&args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(output.stdout.is_empty(), "{args:?} printed figures");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("line 1") || said.contains("cannot read"), "{args:?}: {said}");
    }
}
