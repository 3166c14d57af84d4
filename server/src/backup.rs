//! Backups of the embedded SQLite database (PostgreSQL's are pgBackRest's, docs/operations.md).
//!
//! - [`backup`]: online and consistent while the server writes: `VACUUM INTO` copies one read
//!   transaction's snapshot into a new file (`loopwork-<UTC time>.db`), written under a
//!   `.partial` name and renamed only once [`verify`] passed: it opens, `PRAGMA
//!   integrity_check` answers `ok`, and its rows are counted.
//! - [`prune`]: keeps the newest backups of a directory, deleting older ones.
//! - [`restore`]: verifies a backup and puts it in place of the data directory's database,
//!   keeping what was there under a `before-restore` name. The server must be stopped. A
//!   restored server keeps the database's secret and writes with a fresh actor; devices resend
//!   what it lost (docs/protocol.md, "Recovery").

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// The name of the database file in a data directory.
pub const DATABASE_FILE: &str = "loopwork.db";
/// Backups are `loopwork-<YYYYMMDDTHHMMSSmmmZ>.db`.
const PREFIX: &str = "loopwork-";
const SUFFIX: &str = ".db";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{path} fails the integrity check: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("{0}")]
    Refused(String),
}

/// Backups `serve` makes on its own (`--backup-dir`, `--backup-every`, `--backup-keep`).
#[derive(Clone, Debug)]
pub struct Schedule {
    /// The database file backed up.
    pub database: PathBuf,
    pub dir: PathBuf,
    pub every: std::time::Duration,
    /// How many backups are kept (the newest).
    pub keep: usize,
}

/// What a verified database holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub organizations: i64,
    pub users: i64,
    pub devices: i64,
    pub orders: i64,
    /// Rows of every organization's feed (one per accepted change).
    pub feed: i64,
    /// The last migration applied.
    pub schema_version: i64,
}

/// One backup written and verified.
#[derive(Clone, Debug, Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    /// From the start of the copy to the end of its verification.
    pub seconds: f64,
    pub counts: Counts,
}

/// A read-only connection to the database file at `path`.
async fn open(path: &Path) -> Result<SqliteConnection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Refused(format!("{} is not a file", path.display())));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30));
    Ok(options.connect().await?)
}

/// Checks a database file: it opens, passes `PRAGMA integrity_check`, and holds Loopwork's
/// schema; answers what it holds.
pub async fn verify(path: &Path) -> Result<Counts, BackupError> {
    let mut conn = open(path).await?;
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await?;
    if check != ["ok"] {
        return Err(BackupError::Damaged { path: path.to_owned(), detail: check.join("; ") });
    }
    let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table}");
    let mut counts = Counts::default();
    for (table, slot) in [
        ("organizations", &mut counts.organizations),
        ("users", &mut counts.users),
        ("devices", &mut counts.devices),
        ("orders", &mut counts.orders),
        ("feed", &mut counts.feed),
    ] {
        *slot = sqlx::query_scalar(sqlx::AssertSqlSafe(count(table))).fetch_one(&mut conn).await.map_err(|e| {
            BackupError::Damaged { path: path.to_owned(), detail: format!("not a Loopwork database ({table}: {e})") }
        })?;
    }
    counts.schema_version =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&mut conn)
            .await?;
    conn.close().await?;
    Ok(counts)
}

/// The backup file name for `at_ms` (sorts in time order).
fn file_name(at_ms: i64) -> Result<String, BackupError> {
    let at = jiff::Timestamp::from_millisecond(at_ms).map_err(|e| BackupError::Refused(e.to_string()))?;
    Ok(format!("{PREFIX}{}{SUFFIX}", at.strftime("%Y%m%dT%H%M%S%3fZ")))
}

/// Copies the database at `database` into `dir` as it is now (while the server may be writing),
/// verifies the copy and gives it its final name.
pub async fn backup(database: &Path, dir: &Path, now_ms: i64) -> Result<Written, BackupError> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let target = dir.join(file_name(now_ms)?);
    if target.exists() {
        return Err(BackupError::Refused(format!("{} exists", target.display())));
    }
    let partial = target.with_extension("db.partial");
    let _ = std::fs::remove_file(&partial);
    let mut conn = open(database).await?;
    let copied = sqlx::query("VACUUM INTO $1").bind(partial.to_string_lossy().as_ref()).execute(&mut conn).await;
    conn.close().await?;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(e.into());
    }
    let counts = match verify(&partial).await {
        Ok(counts) => counts,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &target)?;
    sync_dir(dir)?;
    let bytes = std::fs::metadata(&target)?.len();
    Ok(Written { path: target, bytes, seconds: started.elapsed().as_secs_f64(), counts })
}

/// The backups in `dir`, oldest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(PREFIX) && n.ends_with(SUFFIX) && n.len() == PREFIX.len() + 19 + SUFFIX.len()
            })
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Deletes all but the newest `keep` backups of `dir`; answers what it deleted.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let found = list(dir)?;
    let extra = found.len().saturating_sub(keep.max(1));
    let old: Vec<PathBuf> = found.into_iter().take(extra).collect();
    for path in &old {
        std::fs::remove_file(path)?;
    }
    Ok(old)
}

/// Puts the backup `from` in place of `data_dir`'s database (the server stopped). What was there
/// is kept beside it as `loopwork.db.before-restore-<time>` (with its `-wal` and `-shm`).
pub async fn restore(from: &Path, data_dir: &Path, now_ms: i64, force: bool) -> Result<Counts, BackupError> {
    let counts = verify(from).await?;
    std::fs::create_dir_all(data_dir)?;
    let database = data_dir.join(DATABASE_FILE);
    if database.exists() {
        if !force {
            return Err(BackupError::Refused(format!(
                "{} exists: stop the server, then restore with --force (the current database is kept beside it)",
                database.display()
            )));
        }
        let stamp = file_name(now_ms)?.trim_start_matches(PREFIX).trim_end_matches(SUFFIX).to_owned();
        for suffix in ["", "-wal", "-shm"] {
            let current = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
            if current.exists() {
                std::fs::rename(&current, data_dir.join(format!("{DATABASE_FILE}{suffix}.before-restore-{stamp}")))?;
            }
        }
    }
    let restoring = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    std::fs::copy(from, &restoring)?;
    std::fs::File::open(&restoring)?.sync_all()?;
    std::fs::rename(&restoring, &database)?;
    sync_dir(data_dir)?;
    Ok(counts)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_time_and_only_backups_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000;
        let names: Vec<String> = [3 * day, day, 2 * day + 1].iter().map(|at| file_name(*at).unwrap()).collect();
        assert_eq!(names[1], "loopwork-19700102T000000000Z.db");
        for name in &names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join("loopwork.db"), b"the database").unwrap();
        std::fs::write(dir.path().join("loopwork-notes.db"), b"not a backup").unwrap();
        let deleted = prune(dir.path(), 2).unwrap();
        assert_eq!(deleted, vec![dir.path().join(&names[1])], "the oldest goes");
        assert_eq!(list(dir.path()).unwrap().len(), 2);
        assert!(dir.path().join("loopwork.db").exists());
        assert!(dir.path().join("loopwork-notes.db").exists());
    }
}
