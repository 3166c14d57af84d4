//! The server's storage, one trait per concern ([`Accounts`], [`Feed`], [`Documents`],
//! [`Scans`], [`Queue`], [`Triage`], [`Assistant`], [`Incidents`], [`Deviations`], [`Dashboards`], [`Privacy`], [`Problems`], [`Webhooks`], [`Settings`], [`Notes`], [`Estate`], [`Views`], [`People`], [`LoginCodes`], [`Uploads`]), gathered by
//! [`Database`], which the handlers hold as `Arc<dyn Database>`. Each concern's SQL is written
//! once, in its own file, as generic code over a [`Backend`] (with `$N` placeholders both
//! drivers accept) and runs on SQLite (the embedded default) and PostgreSQL (production, several
//! server replicas); `sqlite.rs` and `postgres.rs` hold only what differs: pools, pragmas,
//! locks, `LISTEN`/`NOTIFY` and the batch statements PostgreSQL writes with arrays. Both pass the
//! same suite: every scenario in `tests/tests/sync_e2e.rs` runs on both. Each has its own
//! append-only migrations under `migrations/`.
//!
//! Only this module knows the server's SQL. Domain decisions (may this device write this order,
//! what does a push change) are the pure functions of [`crate::replication`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use automerge::{Change, ChangeHash};
use loopwork_sync_core::authority::{Author, ClosingAuthority};
use loopwork_sync_core::protocol::{OrderBytes, OrderHeads, Receipt, Revocation, SyncResponse};
use loopwork_sync_core::{Action, DeviceId, Identity, OrderId, Role, Status, UserId, WorkOrder};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

use crate::replication::{self, Cursor, DocumentCache, Principal, Scope};

mod accounts;
mod assets;
mod assistant;
mod dashboards;
mod deviations;
mod documents;
mod error;
mod estate;
mod feed;
mod incidents;
mod login_codes;
mod notes;
mod people;
mod postgres;
mod privacy;
mod problems;
mod pushes;
mod queue;
mod scans;
mod settings;
mod sqlite;
mod triage;
mod uploads;
mod views;
mod webhooks;

pub use accounts::*;
pub use assets::*;
pub use assistant::*;
pub use dashboards::*;
pub use deviations::*;
pub use documents::*;
pub use error::StoreError;
pub use estate::*;
pub use feed::*;
pub use incidents::*;
pub use login_codes::*;
pub use notes::*;
pub use people::*;
pub use privacy::*;
pub use problems::*;
pub use pushes::*;
pub use queue::*;
pub use scans::*;
pub use settings::*;
pub use triage::*;
pub use uploads::*;
pub use views::*;
pub use webhooks::*;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// `%text%` for `LIKE … ESCAPE '\\'`: the text's own `%`, `_` and `\\` match themselves.
pub(crate) fn like_pattern(text: &str) -> String {
    format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// The server's storage on SQLite.
pub(crate) type Sqlite = Store<sqlx::Sqlite>;
/// The server's storage on PostgreSQL.
pub(crate) type Postgres = Store<sqlx::Postgres>;

/// The storage, generic over its [`Backend`]: the pool, what was read at open, the writer task's
/// queue and its document cache.
#[derive(Debug)]
pub(crate) struct Store<B: Backend> {
    pub(crate) pool: sqlx::Pool<B>,
    pub(crate) fixed: Fixed,
    pub(crate) writer: tokio::sync::mpsc::Sender<PushJob>,
    pub(crate) cache: SharedCache,
    /// Every advance of an organization's feed: this process's writer's, after each commit, and
    /// (PostgreSQL) those other server processes announce.
    pub(crate) advanced: tokio::sync::broadcast::Sender<Announced>,
}

/// A value both backends bind and read (the types the SQL uses).
pub(crate) trait Column<B: sqlx::Database>:
    for<'q> sqlx::Encode<'q, B> + for<'r> sqlx::Decode<'r, B> + sqlx::Type<B>
{
}
impl<B: sqlx::Database, T> Column<B> for T where
    T: for<'q> sqlx::Encode<'q, B> + for<'r> sqlx::Decode<'r, B> + sqlx::Type<B>
{
}

/// How many rows a statement changed (each driver's result has it, under no common trait).
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// What differs between the two databases, for the code written once over both. Generic code
/// states the driver capabilities it uses (executors, arguments, the column types of
/// [`Column`]) in a `where` clause on each `impl` block: Rust does not carry such bounds along
/// with `B: Backend`.
pub(crate) trait Backend:
    sqlx::Database<Arguments: sqlx::IntoArguments<Self>, QueryResult: RowsAffected>
{
    /// `sqlite` or `postgres`.
    const KIND: &'static str;
    /// Prepares, on every connection, what a first request would otherwise wait for.
    fn warm_connections(pool: &sqlx::Pool<Self>) -> impl Future<Output = ()> + Send;
    /// SQL for the integer at `key` of the JSON text in `column` (NULL when absent).
    fn json_integer(column: &str, key: &str) -> String;
    /// A transaction that writes.
    fn begin_write(pool: &sqlx::Pool<Self>) -> impl Future<Output = Result<sqlx::Transaction<'static, Self>>> + Send;
    /// [`Backend::begin_write`] on the writer's own connection.
    fn begin_writer(
        conn: &mut sqlx::pool::PoolConnection<Self>,
    ) -> impl Future<Output = Result<sqlx::Transaction<'_, Self>>> + Send;
    /// Takes the organization's write lock where several processes write, with its closing
    /// authority's stored value read in the same round trip (`None`: read it with the pushes).
    fn lock_org(
        tx: &mut sqlx::Transaction<'_, Self>,
        org: &str,
    ) -> impl Future<Output = Result<Option<Option<String>>>> + Send;
    /// The [`StoredRow`]s of `(order, pushing user)` pairs, by order id.
    fn read_rows(
        tx: &mut sqlx::Transaction<'_, Self>,
        wanted: &[(String, String)],
    ) -> impl Future<Output = Result<HashMap<String, StoredRow>>> + Send;
    /// The end of a batch: its deferred pushes written, each device's last sync, and the
    /// announcement of how far each organization's feed advanced (`orgs`: positions known
    /// before), where other processes listen.
    fn finish_batch(
        tx: &mut sqlx::Transaction<'_, Self>,
        deferred: &[(usize, Deferred)],
        now_ms: i64,
        devices: &[String],
        by: DeviceId,
        orgs: &[(String, i64)],
    ) -> impl Future<Output = Result<Vec<Written>>> + Send;
}

/// What never changes while a process runs: read once at open.
#[derive(Clone, Debug)]
pub(crate) struct Fixed {
    pub(crate) epoch: String,
    pub(crate) secret: String,
    pub(crate) server: Identity,
    /// Orders this process has quarantined.
    pub(crate) quarantined: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A server actor: eight random bytes and eight bytes of a keyed hash of them under the
/// database's secret. Each process gets a fresh one (so a restored database never makes the
/// server reuse an actor's sequence numbers), and any of them is recognised from the secret
/// alone, which a restore keeps. With `Some(actor)`, recomputes the actor from its random half.
pub(crate) fn server_actor(secret: &str, actor: Option<[u8; 16]>) -> DeviceId {
    use sha2::{Digest, Sha256};
    let nonce: [u8; 8] = match actor {
        Some(raw) => raw[..8].try_into().unwrap_or_default(),
        None => uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default(),
    };
    let mac = Sha256::new().chain_update(secret.as_bytes()).chain_update(nonce).finalize();
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&nonce);
    raw[8..].copy_from_slice(&mac[..8]);
    DeviceId::from_uuid(uuid::Uuid::from_bytes(raw))
}

#[async_trait]
pub trait Database:
    Accounts
    + Assets
    + Feed
    + Documents
    + Scans
    + Queue
    + Triage
    + Assistant
    + Incidents
    + Deviations
    + Dashboards
    + Privacy
    + Problems
    + Webhooks
    + Settings
    + Notes
    + Estate
    + Views
    + People
    + LoginCodes
    + Uploads
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Identifies this database: cursors from another (or a restored) database are unknown.
    async fn epoch(&self) -> Result<String>;
    /// One round trip to the database (readiness).
    async fn ping(&self) -> Result<()>;
    /// The server's own device: the actor of its changes (official numbers, compensations).
    /// Each server process has its own.
    async fn server_identity(&self) -> Result<Identity>;
    /// The database's secret, which keys the server's receipts (see `replication::receipt`).
    fn receipt_secret(&self) -> &str;
    /// Gets a server ready for its first requests (see `prewarm` and `warm_connections`):
    /// called once, before it listens; the admin commands do without.
    async fn warm(&self);
    /// Closes every connection (shutdown, tests that restart the server).
    async fn close(&self);
    /// Every advance of an organization's feed, as it happens: announced by this process's
    /// writer once per commit, and (PostgreSQL: `LISTEN`) by other server processes, so that
    /// this process can tell its live listeners.
    fn feed_advances(&self) -> tokio::sync::broadcast::Receiver<Announced>;
}

#[async_trait]
impl<B: Backend> Database for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    fn backend(&self) -> &'static str {
        B::KIND
    }

    async fn epoch(&self) -> Result<String> {
        Ok(self.fixed.epoch.clone())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn server_identity(&self) -> Result<Identity> {
        Ok(self.fixed.server)
    }

    fn receipt_secret(&self) -> &str {
        &self.fixed.secret
    }

    async fn warm(&self) {
        Self::prewarm(&self.pool, &self.cache).await;
        B::warm_connections(&self.pool).await;
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn feed_advances(&self) -> tokio::sync::broadcast::Receiver<Announced> {
        self.advanced.subscribe()
    }
}
