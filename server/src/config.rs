//! The command line: `loopwork serve` and `loopwork admin …`. Every flag can also come from a
//! `LOOPWORK_…` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loopwork",
    bin_name = "loopwork",
    version,
    about = "Loopwork 物业报修与客服工单服务 / property maintenance work-order server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Create organizations, projects and users; revoke devices.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Back up the SQLite database into a directory while the server runs (consistent, verified);
    /// prints what was written as JSON. PostgreSQL: docs/operations.md.
    Backup(BackupArgs),
    /// Put a backup in place of the SQLite database (stop the server first); prints what it
    /// holds as JSON.
    Restore(RestoreArgs),
    /// The customer-service assistant: classify messages, evaluate and train its model
    /// (docs/triage.md).
    #[command(subcommand)]
    Triage(TriageCommand),
}

#[derive(Debug, Subcommand)]
pub enum TriageCommand {
    /// Read JSON lines `{"id", "text"}` on stdin; write one line per input:
    /// `{"id", "kind", "category", "grade", "urgent", "confidence", "abstain"}`.
    Classify {
        /// A model file (`loopwork triage train --out`); the built-in model if not given.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Score the owner bot (the built-in or given model with the starter articles, or the
    /// articles of --articles) on `{"id", "text", "expect"}` lines; prints its figures as JSON.
    Bot {
        /// A model file; the built-in model if not given.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Articles as a JSON array of `{"id", "title", "keywords", "body"}`; the starter
        /// articles if not given.
        #[arg(long)]
        articles: Option<PathBuf>,
        /// `expect` is `answer:<article id>`, `report` or `handover`.
        #[arg(long, default_value = "triage/data/bot_eval.jsonl")]
        data: PathBuf,
    },
    /// Measure how alike reports of one incident read, against reports of two, with each
    /// similarity measure (`{"id", "a", "b", "same"}` lines); prints JSON.
    Duplicates {
        #[arg(long, default_value = "triage/data/duplicate_pairs.jsonl")]
        data: PathBuf,
    },
    /// Score a model on labelled JSON lines (the frozen set by default); prints Markdown, or
    /// JSON with --json.
    Eval {
        /// A model file; the built-in model if not given.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Labelled JSON lines `{"id", "text", "kind", "category", "grade", "urgent"}`.
        #[arg(long, default_value = "triage/data/eval.jsonl")]
        data: PathBuf,
        /// Print the report as JSON (the figures and every confusion matrix).
        #[arg(long)]
        json: bool,
    },
    /// Retrain an organization's model on its labelled orders (those a person classified);
    /// it becomes the organization's model only if it scores no worse on the frozen set than
    /// the model in use (or with --force). Prints what happened as JSON. A running server uses
    /// it within a minute.
    Retrain {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's id.
        #[arg(long)]
        org: String,
        /// Use the new model even if it scores worse.
        #[arg(long)]
        force: bool,
        /// Generated messages to train on.
        #[arg(long, default_value_t = loopwork_triage::TrainOptions::default().generated)]
        generated: usize,
    },
    /// Go back to the organization's model before the current one (or the built-in one).
    Rollback {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's id.
        #[arg(long)]
        org: String,
    },
    /// List an organization's models with their frozen-set scores, as JSON.
    Models {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's id.
        #[arg(long)]
        org: String,
    },
    /// Write generated training messages as labelled JSON lines (to read what the model learns).
    Generate {
        /// The generator's seed (the same seed, the same messages).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many messages.
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
    /// Train a model on the generated messages (and labelled JSON lines with --with) and
    /// write it to --out.
    Train {
        /// Where the model file is written.
        #[arg(long)]
        out: PathBuf,
        /// Labelled JSON lines to learn from besides the generated ones (repeatable).
        #[arg(long = "with")]
        with: Vec<PathBuf>,
        /// The generator's seed.
        #[arg(long, default_value_t = loopwork_triage::TrainOptions::default().seed)]
        seed: u64,
        /// Generated messages to train on.
        #[arg(long, default_value_t = loopwork_triage::TrainOptions::default().generated)]
        generated: usize,
    },
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where the SQLite database lives.
    #[arg(long, env = "LOOPWORK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The directory the backup is written into (`loopwork-<UTC time>.db`).
    #[arg(long)]
    pub to: PathBuf,
    /// Then keep only the newest this many backups there.
    #[arg(long)]
    pub keep: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Where the SQLite database lives.
    #[arg(long, env = "LOOPWORK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The backup file (`loopwork-<UTC time>.db`).
    #[arg(long)]
    pub from: PathBuf,
    /// Replace an existing database (kept beside it as `loopwork.db.before-restore-<time>`).
    #[arg(long)]
    pub force: bool,
    /// Move today's official-number count of every organization forward by this many, so that
    /// numbers given out after the backup (lost with it) are not given again (0: do not).
    #[arg(long, default_value_t = 1_000)]
    pub skip_numbers: i64,
}

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Where the embedded SQLite database lives (ignored with --database-url).
    #[arg(long, env = "LOOPWORK_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `postgres://user@host/db` selects PostgreSQL; default: SQLite under --data-dir.
    #[arg(long, env = "LOOPWORK_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn url(&self) -> std::io::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir)?;
                Ok(format!("sqlite://{}", self.data_dir.join("loopwork.db").display()))
            }
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The API's address.
    #[arg(long, env = "LOOPWORK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The Prometheus metrics address.
    #[arg(long, env = "LOOPWORK_METRICS_LISTEN", default_value = "127.0.0.1:9090")]
    pub metrics_listen: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Where attachments' bytes are kept (default: `blobs` under --data-dir; docs/attachments.md).
    #[arg(long, env = "LOOPWORK_BLOB_DIR", conflicts_with = "blob_store")]
    pub blob_dir: Option<PathBuf>,
    /// Keep attachments' bytes in an S3-compatible store instead: `s3://bucket[/prefix]`, with
    /// the endpoint and credentials in the AWS environment variables (docs/attachments.md).
    #[arg(long, env = "LOOPWORK_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// How long a blob no order references, or an upload that receives nothing, is kept before
    /// it is deleted, e.g. `30d` (longer than any phone stays offline).
    #[arg(long, env = "LOOPWORK_BLOB_GRACE", default_value = "30d", value_parser = parse_every)]
    pub blob_grace: std::time::Duration,
    /// Do not create the demo organization in an empty database.
    #[arg(long, env = "LOOPWORK_NO_DEMO")]
    pub no_demo: bool,
    /// Back the SQLite database up into this directory on a schedule (each verified).
    #[arg(long, env = "LOOPWORK_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How often, e.g. `30m`, `6h`, `1d` (at least `1s`).
    #[arg(long, env = "LOOPWORK_BACKUP_EVERY", default_value = "6h", value_parser = parse_every)]
    pub backup_every: std::time::Duration,
    /// How many backups to keep (the newest).
    #[arg(long, env = "LOOPWORK_BACKUP_KEEP", default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub backup_keep: u32,
    /// Retrain each organization's assistant model this often, e.g. `7d`, once it has 20 new
    /// labelled orders (off if not given; `loopwork triage retrain` does it by command).
    #[arg(long, env = "LOOPWORK_TRIAGE_RETRAIN_EVERY", value_parser = parse_every)]
    pub triage_retrain_every: Option<std::time::Duration>,
    /// How sign-in codes reach owners' phones: `off` (no codes), `webhook` (POSTed, signed, to
    /// your text-message gateway), `log` (development only: written to the server's log).
    #[arg(long, env = "LOOPWORK_SMS", value_enum, default_value = "off")]
    pub sms: SmsProvider,
    /// The gateway's URL for `--sms webhook`.
    #[arg(long, env = "LOOPWORK_SMS_WEBHOOK_URL")]
    pub sms_webhook_url: Option<String>,
    /// The secret that signs each request to the gateway (at least 16 characters).
    #[arg(long, env = "LOOPWORK_SMS_WEBHOOK_SECRET", hide_env_values = true)]
    pub sms_webhook_secret: Option<String>,
    /// A proxy in front of the server (an address, repeatable, or comma-separated in the
    /// environment) whose `X-Forwarded-For` names the client: the sign-in limits per address
    /// then count each client, not the proxy.
    #[arg(long = "trusted-proxy", env = "LOOPWORK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Production: refuses what is for development only (`--sms log`) and never creates the
    /// demo organization.
    #[arg(long, env = "LOOPWORK_PRODUCTION")]
    pub production: bool,
}

/// `serve --sms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmsProvider {
    Off,
    Log,
    Webhook,
}

impl ServeArgs {
    /// The text-message provider the arguments name, or why they do not make one.
    pub fn sms(&self) -> Result<crate::sms::Sms, String> {
        if self.production && self.sms == SmsProvider::Log {
            return Err(
                "--production refuses --sms log (codes written to the log): use --sms webhook or --sms off".into()
            );
        }
        match self.sms {
            SmsProvider::Off => Ok(crate::sms::Sms::Off),
            SmsProvider::Log => Ok(crate::sms::Sms::Log),
            SmsProvider::Webhook => {
                let url = self.sms_webhook_url.as_deref().ok_or("--sms webhook needs --sms-webhook-url")?;
                let secret = self.sms_webhook_secret.as_deref().ok_or("--sms webhook needs --sms-webhook-secret")?;
                crate::sms::Sms::webhook(url, secret)
            }
        }
    }
}

/// `30m`, `6h`, `1d`, `90s` (jiff's friendly durations), at least a second.
fn parse_every(text: &str) -> Result<std::time::Duration, String> {
    let span: jiff::Span =
        text.parse().map_err(|e| format!("`{text}` is not a duration such as 30m, 6h or 1d: {e}"))?;
    let duration = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|e| format!("`{text}`: {e}"))?;
    let duration = std::time::Duration::try_from(duration).map_err(|_| format!("`{text}` is negative"))?;
    if duration < std::time::Duration::from_secs(1) {
        return Err(format!("`{text}` is shorter than a second"));
    }
    Ok(duration)
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            metrics_listen: "127.0.0.1:9090".parse().expect("valid address"),
            storage: StorageArgs { data_dir: "./data".into(), database_url: None },
            blob_dir: None,
            blob_store: None,
            blob_grace: crate::tasks::collector::DEFAULT_GRACE,
            no_demo: false,
            backup_dir: None,
            backup_every: std::time::Duration::from_secs(6 * 3_600),
            backup_keep: 28,
            triage_retrain_every: None,
            sms: SmsProvider::Off,
            sms_webhook_url: None,
            sms_webhook_secret: None,
            trusted_proxies: Vec::new(),
            production: false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization (物业公司); prints its id.
    CreateOrg {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's name, e.g. `和园物业`.
        #[arg(long)]
        name: String,
    },
    /// Create a project (小区) of an organization.
    CreateProject {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's id (printed by `create-org`).
        #[arg(long)]
        org: String,
        /// A short code, e.g. `hy-garden`.
        #[arg(long)]
        code: String,
        /// The project's name, e.g. `和园小区`.
        #[arg(long)]
        name: String,
    },
    /// Create a user; prints their id. An owner may be bound to units with --unit, a dispatcher
    /// to the projects they serve with --project.
    CreateUser {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's id.
        #[arg(long)]
        org: String,
        /// The name the user signs in with (unique).
        #[arg(long)]
        login: String,
        /// Read from LOOPWORK_PASSWORD if not given. At least 10 characters, of at least two
        /// kinds (letters, digits, others), not containing the login.
        #[arg(long, env = "LOOPWORK_PASSWORD", hide_env_values = true)]
        password: String,
        /// owner, technician, dispatcher, supervisor, manager or admin.
        #[arg(long)]
        role: String,
        /// The name others see, e.g. `王师傅`.
        #[arg(long)]
        name: String,
        /// A phone number (personal data: shown masked, revealed only as docs/permissions.md says).
        #[arg(long)]
        phone: Option<String>,
        /// An owner's unit, as project/building/unit (repeat for several).
        #[arg(long = "unit")]
        units: Vec<String>,
        /// A project code a dispatcher serves (repeat for several). A dispatcher with none serves
        /// every project of the organization (the company's call centre).
        #[arg(long = "project")]
        projects: Vec<String>,
    },
    /// After restoring a database (pgBackRest, a copy): move today's official-number count of
    /// every organization forward, so that numbers given out after the backup and lost with it
    /// are not given again. Run it before the first server starts on the restored database.
    SkipNumbers {
        #[command(flatten)]
        storage: StorageArgs,
        /// How many numbers to skip: more than the orders registered in a day.
        #[arg(long, default_value_t = 1_000)]
        by: i64,
    },
    /// Revoke a device (a lost phone): its next request is refused.
    RevokeDevice {
        #[command(flatten)]
        storage: StorageArgs,
        /// The organization's id.
        #[arg(long)]
        org: String,
        /// The device's id (shown in the audit trail and at login).
        #[arg(long)]
        device: String,
    },
}
