//! The `loopwork` command line: parses it and runs the command (serve, admin, backup, restore,
//! triage). The binary (`main.rs`) only sets the allocator and the runtime and calls [`run`].

use std::sync::Arc;

use crate::config::{AdminCommand, BackupArgs, Cli, Command, RestoreArgs, ServeArgs, StorageArgs, TriageCommand};
use crate::store::NewUser;
use crate::{AppState, auth, backup, demo, writer};
use clap::Parser;
use loopwork_sync_core::{Clock, Role, SystemClock};

/// Runs the command the process was started with; its exit code.
pub async fn run() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "loopwork=info,tower_http=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // No subcommand is `serve` with its flags from the environment (LOOPWORK_LISTEN, …), as
    // `loopwork serve` would take them.
    let command = match cli.command {
        Some(command) => command,
        None => Cli::parse_from(["loopwork", "serve"]).command.unwrap_or(Command::Serve(ServeArgs::default())),
    };
    let result = match command {
        Command::Serve(args) => serve(args).await,
        Command::Admin(command) => admin(command).await,
        Command::Backup(args) => backup_now(args).await,
        Command::Restore(args) => restore(args).await,
        Command::Triage(command) => triage(command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loopwork: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let url = args.storage.url().map_err(|e| format!("cannot create the data directory: {e}"))?;
    let backups = match (&args.backup_dir, &args.storage.database_url) {
        (Some(_), Some(_)) => {
            return Err("--backup-dir backs up SQLite; back PostgreSQL up with pgBackRest (docs/operations.md)".into());
        }
        (Some(dir), None) => Some(backup::Schedule {
            database: args.storage.data_dir.join(backup::DATABASE_FILE),
            dir: dir.clone(),
            every: args.backup_every,
            keep: args.backup_keep as usize,
        }),
        (None, _) => None,
    };
    let sms = args.sms()?;
    let database = writer::open(&url).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if !args.no_demo && !args.production && !database.has_organizations().await.map_err(|e| e.to_string())? {
        let text = demo::seed(database.as_ref(), clock.now_ms()).await.map_err(|e| e.message_en)?;
        println!("{}", text.replace("HOST", &args.listen.to_string()));
    }
    // Phones stored as typed by earlier versions, as digits (sign-in by code finds them so).
    let normalized = database.normalize_account_phones().await.map_err(|e| e.to_string())?;
    if normalized > 0 {
        tracing::info!(accounts = normalized, "account phone numbers kept as digits");
    }
    database.warm().await;
    // The assistant's model and jieba's dictionaries load before the first report, not during
    // it (about 0.3 s together).
    let _ = tokio::task::spawn_blocking(|| {
        if let Ok(model) = loopwork_triage::default_model() {
            model.classify("预热");
        }
        let _ = loopwork_triage::knowledge::KnowledgeIndex::build(&[]).map(|k| k.search("预热", 1));
    })
    .await;
    let api = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let metrics = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_listen))?;
    println!(
        "loopwork {} serving http://{} (metrics http://{}/metrics) on {}",
        env!("CARGO_PKG_VERSION"),
        api.local_addr().map_err(|e| e.to_string())?,
        metrics.local_addr().map_err(|e| e.to_string())?,
        database.backend()
    );
    let mut state = AppState::new(database, clock);
    state.blobs = Some(match &args.blob_store {
        Some(url) => crate::blobs::Blobs::at_url(url)?,
        None => {
            let blob_dir = args.blob_dir.clone().unwrap_or_else(|| args.storage.data_dir.join("blobs"));
            crate::blobs::Blobs::in_directory(&blob_dir)?
        }
    });
    state.blob_grace = args.blob_grace;
    state.backups = backups;
    state.sms = Arc::new(sms);
    state.trusted_proxies = Arc::new(args.trusted_proxies.clone());
    state.triage_retrain_every = args.triage_retrain_every;
    let shutdown = async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    crate::serve(state, api, metrics, shutdown).await.map_err(|e| e.to_string())
}

async fn triage(command: TriageCommand) -> Result<(), String> {
    use loopwork_triage::{Model, TrainOptions, default_model, eval, read_examples};
    // The command runs once and exits: a model read from a file lives as long as the built-in one.
    let load = |path: &Option<std::path::PathBuf>| -> Result<&'static Model, String> {
        match path {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let model = Model::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(Box::leak(Box::new(model)))
            }
            None => default_model().map_err(|e| format!("the built-in model: {e}")),
        }
    };
    match command {
        TriageCommand::Classify { model } => {
            let model = load(&model)?;
            let failed = loopwork_triage::cli::classify(model, std::io::stdin().lock(), std::io::stdout().lock())
                .map_err(|e| e.to_string())?;
            if failed > 0 {
                return Err(format!("{failed} lines were not {{\"id\", \"text\"}} objects (answered with \"error\")"));
            }
        }
        TriageCommand::Bot { model, articles, data } => {
            use loopwork_triage::{bot, knowledge};
            let model = load(&model)?;
            let articles = match articles {
                Some(path) => serde_json::from_str(
                    &std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                )
                .map_err(|e| format!("{}: {e}", path.display()))?,
                None => knowledge::starter_articles(),
            };
            let index = knowledge::KnowledgeIndex::build(&articles).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&data).map_err(|e| format!("cannot read {}: {e}", data.display()))?;
            let examples = bot::read_bot_examples(&text).map_err(|e| format!("{}: {e}", data.display()))?;
            let report = bot::evaluate(model, &index, &examples);
            println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
        }
        TriageCommand::Duplicates { data } => {
            let text = std::fs::read_to_string(&data).map_err(|e| format!("cannot read {}: {e}", data.display()))?;
            let pairs =
                loopwork_triage::duplicates::read_pairs(&text).map_err(|e| format!("{}: {e}", data.display()))?;
            let reports = loopwork_triage::duplicates::evaluate(&pairs);
            println!("{}", serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?);
        }
        TriageCommand::Eval { model, data, json } => {
            let model = load(&model)?;
            let text = std::fs::read_to_string(&data).map_err(|e| format!("cannot read {}: {e}", data.display()))?;
            let examples = read_examples(&text).map_err(|e| format!("{}: {e}", data.display()))?;
            let report = eval::evaluate(model, &examples).map_err(|e| e.to_string())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
            } else {
                print!("{}", report.markdown());
            }
        }
        TriageCommand::Retrain { storage, org, force, generated } => {
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            let options =
                TrainOptions { generated, trained_at: jiff::Timestamp::now().to_string(), ..TrainOptions::default() };
            let models = crate::triage::Models::default();
            let done = crate::triage::retrain(database.as_ref(), &models, &org, options, force, SystemClock.now_ms())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&done).map_err(|e| e.to_string())?);
        }
        TriageCommand::Rollback { storage, org } => {
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            let models = crate::triage::Models::default();
            let now = crate::triage::rollback(database.as_ref(), &models, &org, SystemClock.now_ms())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::json!({ "active": now.unwrap_or_else(|| "built-in".into()) }));
        }
        TriageCommand::Models { storage, org } => {
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            let list = database.triage_models(&org).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?);
        }
        TriageCommand::Generate { seed, count } => {
            for example in loopwork_triage::generator::generate(seed, count).map_err(|e| e.to_string())? {
                println!("{}", serde_json::to_string(&example).map_err(|e| e.to_string())?);
            }
        }
        TriageCommand::Train { out, with, seed, generated } => {
            let mut extra = Vec::new();
            for path in &with {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                extra.extend(read_examples(&text).map_err(|e| format!("{}: {e}", path.display()))?);
            }
            let started = std::time::Instant::now();
            let trained_at = jiff::Timestamp::now().to_string();
            let options = TrainOptions { seed, generated, trained_at, ..TrainOptions::default() };
            let model = Model::train(options, &extra).map_err(|e| e.to_string())?;
            std::fs::write(&out, model.to_bytes()).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "model {} written to {} ({} bytes) in {:.1} s",
                model.version(),
                out.display(),
                model.to_bytes().len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn backup_now(args: BackupArgs) -> Result<(), String> {
    let database = args.data_dir.join(backup::DATABASE_FILE);
    let written = backup::backup(&database, &args.to, SystemClock.now_ms()).await.map_err(|e| e.to_string())?;
    if let Some(keep) = args.keep {
        backup::prune(&args.to, keep).map_err(|e| format!("the backup is written; deleting old ones failed: {e}"))?;
    }
    println!("{}", serde_json::to_string(&written).map_err(|e| e.to_string())?);
    Ok(())
}

async fn restore(args: RestoreArgs) -> Result<(), String> {
    if args.skip_numbers < 0 {
        return Err("--skip-numbers cannot be negative".into());
    }
    let counts = backup::restore(&args.from, &args.data_dir, SystemClock.now_ms(), args.force)
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string(&counts).map_err(|e| e.to_string())?);
    if args.skip_numbers > 0 {
        let url = StorageArgs { data_dir: args.data_dir, database_url: None }.url().map_err(|e| e.to_string())?;
        for line in skip_numbers(&url, args.skip_numbers).await? {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// Moves today's official-number counts forward (after a restore); a line per organization.
async fn skip_numbers(url: &str, by: i64) -> Result<Vec<String>, String> {
    let database = writer::open(url).await?;
    let counts = database.skip_numbers(by, SystemClock.now_ms()).await.map_err(|e| e.to_string())?;
    Ok(counts
        .into_iter()
        .map(|(org, next)| format!("organization {org}: today's official numbers continue after {next}"))
        .collect())
}

async fn admin(command: AdminCommand) -> Result<(), String> {
    let now = SystemClock.now_ms();
    match command {
        AdminCommand::CreateOrg { storage, name } => {
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            println!("{}", database.create_organization(&name, now).await.map_err(|e| e.to_string())?);
        }
        AdminCommand::CreateProject { storage, org, code, name } => {
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            database.create_project(&org, &code, &name).await.map_err(|e| e.to_string())?;
        }
        AdminCommand::CreateUser { storage, org, login, password, role, name, phone, units, projects } => {
            let role = Role::from_code(&role).map_err(|e| e.to_string())?;
            if role == Role::System {
                return Err("the system role is the server's own".into());
            }
            if !projects.is_empty() && role != Role::Dispatcher {
                return Err(
                    "--project binds dispatchers only; supervisors and above serve the whole organization".into()
                );
            }
            if !units.is_empty() && role != Role::Owner {
                return Err("--unit binds owners only".into());
            }
            auth::check_password_strength(&login, &password).map_err(|(en, _)| format!("weak password: {en}"))?;
            // Kept as digits, as the admin console and the register keep numbers (signing in by code
            // finds the account by them).
            let phone = phone
                .map(|p| loopwork_sync_core::staff::check_account_phone(&p).map_err(|e| format!("--phone: {e}")))
                .transpose()?
                .flatten();
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            // Checked before the user exists: a dispatcher whose binding failed would serve everything.
            for project in &projects {
                if !database.has_project(&org, project).await.map_err(|e| e.to_string())? {
                    return Err(format!("the organization has no project {project} (create-project first)"));
                }
            }
            let password_hash = auth::hash_password(&password).map_err(|e| e.message_en)?;
            let user = NewUser { org, login, password_hash, role, display_name: name, phone };
            let id = database.create_user(&user, now).await.map_err(|e| e.to_string())?;
            for unit in units {
                let parts: Vec<&str> = unit.split('/').collect();
                let [project, building, unit] = parts[..] else {
                    return Err(format!("--unit is project/building/unit, got {unit}"));
                };
                database.bind_unit(id, project, building, unit).await.map_err(|e| e.to_string())?;
            }
            for project in projects {
                database.bind_project(id, &project).await.map_err(|e| e.to_string())?;
            }
            println!("{id}");
        }
        AdminCommand::SkipNumbers { storage, by } => {
            if by < 1 {
                return Err("--by must be at least 1".into());
            }
            for line in skip_numbers(&storage.url().map_err(|e| e.to_string())?, by).await? {
                println!("{line}");
            }
        }
        AdminCommand::RevokeDevice { storage, org, device } => {
            let database = writer::open(&storage.url().map_err(|e| e.to_string())?).await?;
            let device = device.parse().map_err(|_| "not a device id".to_string())?;
            if !database.revoke_device(&org, device, now).await.map_err(|e| e.to_string())? {
                return Err("no such active device in that organization".into());
            }
        }
    }
    Ok(())
}
