//! The mobile bindings from the real foreign languages, against a real server: the generated
//! Python bindings under pytest, and the generated Kotlin bindings compiled with a Kotlin
//! compiler and run on the JVM. The scenarios live in `ffi/tests/python` and `ffi/tests/kotlin`;
//! this file builds the library, generates the bindings, starts the server and runs them.
//!
//! The tools come from `scripts/install-test-tools` (pytest, the Kotlin compiler from npm,
//! Debian's JNA); a missing tool fails the test with that hint.

use std::path::PathBuf;

use loopwork_tests::tools::{target_dir, tool, workspace};
use loopwork_tests::{Backend, TestServer};

/// The cdylib, as `cargo test` built it as this package's dependency, beside this test's binary
/// (a cdylib keeps its name without a hash under `deps`).
fn library() -> PathBuf {
    let lib = loopwork_tests::tools::artifacts().join(format!(
        "{}loopwork_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

/// Generates the bindings for `language` into a fresh directory, with the library beside them.
fn generate(language: &str) -> tempfile::TempDir {
    let lib = library();
    let out = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen-under-test"))
        .current_dir(workspace().join("ffi"))
        .args(["generate", "--no-format", "--language", language, "--out-dir"])
        .arg(out.path())
        .arg("--library")
        .arg(&lib)
        .output()
        .expect("run uniffi-bindgen");
    assert!(output.status.success(), "uniffi-bindgen failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::copy(&lib, out.path().join(lib.file_name().expect("file name"))).expect("copy the library");
    out
}

async fn run(what: &str, command: &mut tokio::process::Command) {
    let output = command.output().await.unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", output.status);
    println!("{what}:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_bindings_under_pytest() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bindings = generate("python");
    let python = tool("LOOPWORK_PYTHON", &[], "python3");
    run(
        "pytest",
        tokio::process::Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(workspace().join("ffi/tests/python"))
            .env("PYTHONPATH", bindings.path())
            .env("LOOPWORK_SERVER_URL", &server.base),
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kotlin_bindings_on_the_jvm() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bindings = generate("kotlin");
    let kotlinc = tool(
        "LOOPWORK_KOTLINC",
        &[target_dir().join("test-tools/node_modules/kotlin-compiler/bin/kotlinc")],
        "kotlinc",
    );
    let jna = tool("LOOPWORK_JNA_JAR", &[PathBuf::from("/usr/share/java/jna.jar")], "jna.jar");
    let generated = bindings.path().join("com/loopwork/core/loopwork_ffi.kt");
    let jar = bindings.path().join("bindings-test.jar");
    run(
        "kotlinc",
        tokio::process::Command::new(kotlinc)
            .arg(&generated)
            .arg(workspace().join("ffi/tests/kotlin/BindingsTest.kt"))
            .arg("-cp")
            .arg(&jna)
            .args(["-include-runtime", "-nowarn", "-d"])
            .arg(&jar),
    )
    .await;
    let classpath = std::env::join_paths([&jar, &jna]).expect("class path");
    run(
        "the Kotlin scenario",
        tokio::process::Command::new("java")
            .arg(format!("-Djna.library.path={}", bindings.path().display()))
            .arg("-cp")
            .arg(classpath)
            .arg("com.loopwork.test.BindingsTestKt")
            .env("LOOPWORK_SERVER_URL", &server.base),
    )
    .await;
    server.stop().await;
}

/// There is no Swift toolchain here: the Swift bindings are generated as they would be for the
/// iOS build, and checked for the API docs/mobile.md shows.
#[test]
fn swift_bindings_are_generated_with_the_documented_api() {
    let bindings = generate("swift");
    let swift = std::fs::read_to_string(bindings.path().join("LoopworkCore.swift")).expect("LoopworkCore.swift");
    let header = std::fs::read_to_string(bindings.path().join("LoopworkCoreFFI.h")).expect("LoopworkCoreFFI.h");
    assert!(bindings.path().join("LoopworkCoreFFI.modulemap").exists());
    for api in [
        "open class Loopwork",
        "public static func `open`(dir: String, transport: Transport)throws  -> Loopwork",
        "public protocol Transport",
        "public protocol ChangeObserver",
        "func signIn(serverUrl: String, login: String, password: String, deviceName: String) throws  -> SessionInfo",
        "func listOrders(filter: ListFilter) throws  -> [OrderSummary]",
        "func confirm(orderId: String, rating: UInt8, comment: String?) throws",
        "func sync() throws  -> SyncReport",
        "enum LoopworkError: Swift.Error",
        "case UpgradeRequired(messageEn: String, messageZh: String",
        "case Failed(detail: String",
        "func send(request: HttpRequest) throws  -> HttpResponse",
        "func attachPhoto(orderId: String, bytes: Data, mime: String, caption: String?) throws  -> String",
        "func completeSigned(orderId: String, signature: Data, text: String?) throws  -> String",
        "func uploadAttachments() throws  -> UploadReport",
        "func attachmentFile(orderId: String, sha256: String, thumbnail: Bool) throws  -> String",
        "public protocol UploadObserver",
    ] {
        assert!(swift.contains(api), "the Swift bindings lack `{api}`");
    }
    assert!(header.contains("uniffi_loopwork_ffi_fn_method_loopwork_sync"));
}

/// A phone's process killed with SIGKILL at random moments, mid-sync or mid-edit, many times
/// (`ffi/tests/python/crash_device.py` through the generated Python bindings, on one store
/// directory): the store always opens again, every note `add_note` returned for is still there,
/// and the next sync completes with nothing pending; the server holds each note once.
/// `LOOPWORK_DEVICE_KILLS=N` for a longer campaign (docs/reliability.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_killed_mid_sync_loses_nothing_it_committed() {
    use tokio::io::AsyncBufReadExt;
    let kills: usize = std::env::var("LOOPWORK_DEVICE_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(6);
    let server = TestServer::start(Backend::Sqlite).await;
    let bindings = generate("python");
    let python = tool("LOOPWORK_PYTHON", &[], "python3");
    let script = workspace().join("ffi/tests/python/crash_device.py");
    let store = tempfile::tempdir().expect("store dir");
    let dir = store.path().join("phone");
    let mut desk = server.device("kefu").await;
    desk.synced().await;
    // Eight open orders, written in turn (an order holds at most 1,000 notes).
    let orders: Vec<String> = desk
        .replica
        .list(&loopwork_sync_core::store::OrderQuery { open_only: true, limit: 8, ..Default::default() })
        .expect("list")
        .into_iter()
        .map(|o| o.id.to_string())
        .collect();
    let order = orders.join(",");
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    let mut random = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut committed = std::collections::BTreeSet::new();
    let mut mid_sync = 0;
    for round in 0..kills {
        let mut child = tokio::process::Command::new(&python)
            .arg(&script)
            .args(["work", dir.to_str().expect("utf-8"), &server.base, &order, &format!("k{round}")])
            .env("PYTHONPATH", bindings.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(store.path().join("stderr")).expect("stderr file"))
            .kill_on_drop(true)
            .spawn()
            .expect("python");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Killed a random moment after its first committed note (the store opened, signed in).
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let first = line.starts_with("committed ");
            seen.push(line);
            if first {
                break;
            }
        }
        let stderr = || std::fs::read_to_string(store.path().join("stderr")).unwrap_or_default();
        assert!(!seen.is_empty(), "round {round}: the device did not start (the store did not open?):\n{}", stderr());
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(random(1_500));
        while let Ok(Ok(Some(line))) = tokio::time::timeout_at(until, lines.next_line()).await {
            seen.push(line);
        }
        child.start_kill().expect("SIGKILL");
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line);
        }
        child.wait().await.expect("killed");
        if seen.last().is_some_and(|l| l == "sync start") {
            mid_sync += 1;
        }
        committed.extend(seen.iter().filter_map(|l| l.strip_prefix("committed ")).map(str::to_owned));
    }
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["check", dir.to_str().expect("utf-8"), &server.base, &order])
        .env("PYTHONPATH", bindings.path())
        .output()
        .await
        .expect("python");
    assert!(output.status.success(), "the store did not open or sync: {}", String::from_utf8_lossy(&output.stderr));
    let checked: serde_json::Value =
        serde_json::from_slice(output.stdout.trim_ascii()).expect("one JSON line from the check");
    let on_device: Vec<&str> = checked["notes"].as_array().expect("notes").iter().filter_map(|n| n.as_str()).collect();
    let staff = server.login("kefu").await;
    let mut on_server_owned = Vec::new();
    for id in &orders {
        let (status, detail) = server.call(&staff.token, "GET", &format!("/api/v1/orders/{id}"), None).await;
        assert_eq!(status, 200);
        on_server_owned.extend(
            detail["notes"].as_array().expect("notes").iter().filter_map(|n| n["text"].as_str().map(str::to_owned)),
        );
    }
    let on_server: Vec<&str> = on_server_owned.iter().map(String::as_str).collect();
    let lost_on_device = committed.iter().filter(|t| !on_device.contains(&t.as_str())).count();
    let lost_on_server = committed.iter().filter(|t| !on_server.contains(&t.as_str())).count();
    let twice = on_server.iter().filter(|t| on_server.iter().filter(|u| u == t).count() > 1).count();
    let report = serde_json::json!({
        "kills": kills, "killed_mid_sync": mid_sync, "notes_committed": committed.len(),
        "lost_on_device": lost_on_device, "lost_on_server": lost_on_server, "duplicated": twice,
        "pending_after_sync": checked["pending"],
    });
    eprintln!("{report}");
    assert!(committed.len() >= kills, "{report}");
    assert_eq!((lost_on_device, lost_on_server, twice), (0, 0, 0), "{report}");
    assert_eq!(checked["pending"], 0, "{report}");
    server.stop().await;
}
