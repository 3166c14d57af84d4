//! The durable device store on SQLite (bundled, as mobile apps ship it).
//!
//! WAL with `synchronous = FULL`: a commit that returned has reached the disk. Every write is
//! one SQLite transaction. The schema is versioned with `PRAGMA user_version` and upgraded by
//! [`migrate`], one step per version; an upgraded store equals a fresh one (tested).

use std::path::Path;

use automerge::ChangeHash;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use super::{CommitItem, OrderQuery, PendingChange, Store, WriteBatch};
use crate::classification::{Category, Grade, Kind};
use crate::error::CoreError;
use crate::ids::OrderId;
use crate::lifecycle::Status;
use crate::location::Location;
use crate::protocol::Receipt;
use crate::summary::OrderSummary;
use crate::upload::{QueuedUpload, Upload, UploadKind, UploadState};
use crate::work_order::WorkOrder;

/// The newest store schema this build writes.
pub const STORE_SCHEMA_VERSION: i64 = 7;

#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating or upgrading) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CoreError> {
        Self::open_at_version(path, STORE_SCHEMA_VERSION)
    }

    /// A private store that lives as long as the value (tests, previews).
    pub fn open_in_memory() -> Result<Self, CoreError> {
        let conn = Connection::open_in_memory()?;
        Self::prepare(conn, STORE_SCHEMA_VERSION)
    }

    /// Opens the store upgraded only as far as `version`: how the upgrade tests build an old
    /// store. Apps call [`SqliteStore::open`].
    #[doc(hidden)]
    pub fn open_at_version(path: impl AsRef<Path>, version: i64) -> Result<Self, CoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::prepare(conn, version)
    }

    fn prepare(mut conn: Connection, version: i64) -> Result<Self, CoreError> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn, version)?;
        Ok(SqliteStore { conn })
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<i64, CoreError> {
        Ok(self.conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    pub fn integrity_check(&self) -> Result<String, CoreError> {
        Ok(self.conn.pragma_query_value(None, "integrity_check", |row| row.get(0))?)
    }

    /// The raw connection, for tests that write what an older build wrote.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Queues an attachment's upload, kept across restarts; the same bytes queued again (for
    /// another order) are one upload, sent again if it was done (the server may have let the
    /// blob go since: it answers at once if it holds it). Whether it was new or sent again.
    pub fn queue_upload(&self, queued: &QueuedUpload) -> Result<bool, CoreError> {
        let added = self.conn.execute(
            "INSERT INTO uploads (sha256, order_id, kind, mime, length, state, queued_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'new', ?6)
             ON CONFLICT (sha256) DO UPDATE SET state = 'new', location = NULL, sent = 0, verify = 0,
                 failures = 0, not_before_ms = 0
             WHERE uploads.state = 'done'",
            rusqlite::params![
                queued.upload.sha256,
                queued.order.to_string(),
                queued.upload.kind.code(),
                queued.mime,
                i64::try_from(queued.upload.length).unwrap_or(i64::MAX),
                queued.queued_at_ms,
            ],
        )?;
        Ok(added == 1)
    }

    /// Every queued upload, oldest first (done and failed ones included: what the app shows).
    pub fn uploads(&self) -> Result<Vec<QueuedUpload>, CoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT sha256, order_id, kind, mime, length, state, location, sent, verify, code, failures,
                    not_before_ms, queued_at_ms
             FROM uploads ORDER BY queued_at_ms, sha256",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                (
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ),
                (
                    row.get::<_, i64>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, i64>(7)?,
                ),
                (
                    row.get::<_, bool>(8)?,
                    row.get::<_, Option<String>>(9)?,
                    row.get::<_, i64>(10)?,
                    row.get::<_, i64>(11)?,
                ),
                row.get::<_, i64>(12)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                (sha256, order, kind, mime),
                (length, state, location, sent),
                (verify, code, failures, not_before_ms),
                at,
            ) = row?;
            let corrupt = |what: &str| CoreError::InvalidInput(format!("the upload queue holds a bad {what}"));
            let state = match (state.as_str(), location) {
                ("new", _) => UploadState::New,
                ("sending", Some(location)) => UploadState::Sending {
                    location,
                    offset: u64::try_from(sent).map_err(|_| corrupt("offset"))?,
                    verify,
                },
                ("done", _) => UploadState::Done,
                ("failed", _) => UploadState::Failed { code: code.unwrap_or_default() },
                _ => return Err(corrupt("state")),
            };
            out.push(QueuedUpload {
                order: order.parse().map_err(|_| corrupt("order id"))?,
                mime,
                queued_at_ms: at,
                upload: Upload {
                    sha256,
                    length: u64::try_from(length).map_err(|_| corrupt("length"))?,
                    kind: UploadKind::from_code(&kind).map_err(|_| corrupt("kind"))?,
                    state,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    not_before_ms,
                },
            });
        }
        Ok(out)
    }

    /// Takes an upload out of the queue (its attachment was refused before it was made).
    pub fn forget_upload(&self, sha256: &str) -> Result<(), CoreError> {
        self.conn.execute("DELETE FROM uploads WHERE sha256 = ?1", [sha256])?;
        Ok(())
    }

    /// Records where an upload stands now (after each answer: a restart resumes from there).
    pub fn save_upload(&self, upload: &Upload) -> Result<(), CoreError> {
        let (state, location, sent, verify, code) = match &upload.state {
            UploadState::New => ("new", None, 0, false, None),
            UploadState::Sending { location, offset, verify } => {
                ("sending", Some(location.as_str()), i64::try_from(*offset).unwrap_or(i64::MAX), *verify, None)
            }
            UploadState::Done => ("done", None, i64::try_from(upload.length).unwrap_or(i64::MAX), false, None),
            UploadState::Failed { code } => ("failed", None, 0, false, Some(code.as_str())),
        };
        self.conn.execute(
            "UPDATE uploads SET state = ?2, location = ?3, sent = ?4, verify = ?5, code = ?6, failures = ?7,
                    not_before_ms = ?8
             WHERE sha256 = ?1",
            rusqlite::params![
                upload.sha256,
                state,
                location,
                sent,
                verify,
                code,
                upload.failures,
                upload.not_before_ms
            ],
        )?;
        Ok(())
    }

    /// The schema as SQL, sorted: what the upgrade test compares.
    #[doc(hidden)]
    pub fn schema_sql(&self) -> Result<Vec<String>, CoreError> {
        let mut stmt =
            self.conn.prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")?;
        let rows = stmt.query_map([], |row| {
            Ok(format!("{} {}: {}", row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Upgrades the schema step by step up to `target`. A store newer than this build is refused
/// rather than misread.
fn migrate(conn: &mut Connection, target: i64) -> Result<(), CoreError> {
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > STORE_SCHEMA_VERSION {
        return Err(CoreError::StoreTooNew { found: version, known: STORE_SCHEMA_VERSION });
    }
    while version < target {
        let tx = conn.transaction()?;
        match version {
            0 => tx.execute_batch(V1_DOCUMENTS_AND_OUTBOX)?,
            1 => {
                tx.execute_batch(V2_QUERY_INDEX)?;
                backfill_index(&tx)?;
            }
            2 => tx.execute_batch(V3_REVOCATIONS)?,
            3 => tx.execute_batch(V4_LIST_ORDER_INDEXES)?,
            4 => tx.execute_batch(V5_RECEIPTS)?,
            5 => {
                tx.execute_batch(V6_INCIDENTS)?;
                // A version-5 build stored the server's incident changes without indexing them.
                backfill_incidents(&tx)?;
            }
            6 => tx.execute_batch(V7_UPLOADS)?,
            _ => unreachable!("no step from version {version}"),
        }
        version += 1;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// Version 1: documents (snapshot + appended changes), the outbox flag, and key-value meta.
const V1_DOCUMENTS_AND_OUTBOX: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE doc_snapshot (
    order_id TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
);
CREATE TABLE doc_change (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    hash BLOB NOT NULL,
    bytes BLOB NOT NULL,
    pending INTEGER NOT NULL,
    UNIQUE (order_id, hash)
);
CREATE INDEX doc_change_outbox ON doc_change (seq) WHERE pending = 1;
CREATE INDEX doc_change_hash ON doc_change (hash);
";

/// Version 2: the query index, so lists never load documents.
const V2_QUERY_INDEX: &str = "
CREATE TABLE order_index (
    order_id TEXT PRIMARY KEY,
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    assignee TEXT,
    reporter TEXT NOT NULL,
    project TEXT NOT NULL,
    building TEXT,
    unit TEXT,
    area TEXT,
    created_at INTEGER NOT NULL,
    next_deadline INTEGER,
    superseded INTEGER NOT NULL
);
CREATE INDEX order_index_urgency ON order_index (is_open, next_deadline IS NULL, next_deadline, created_at);
CREATE INDEX order_index_assignee ON order_index (assignee, is_open, next_deadline IS NULL, next_deadline, created_at);
";

/// Version 3: orders that left the device's scope (read-only copies, with the reason).
const V3_REVOCATIONS: &str = "
CREATE TABLE revocation (
    order_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL
);
";

/// Version 4: the list indexes end with the list's last sort key (`order_id`), so that a list
/// of many orders due at the same instant is read in index order instead of sorted.
const V4_LIST_ORDER_INDEXES: &str = "
DROP INDEX order_index_urgency;
DROP INDEX order_index_assignee;
CREATE INDEX order_index_urgency ON order_index (is_open, next_deadline IS NULL, next_deadline, created_at, order_id);
CREATE INDEX order_index_assignee
    ON order_index (assignee, is_open, next_deadline IS NULL, next_deadline, created_at, order_id);
";

/// Version 5: the server's receipts for changes received, shown when relaying them (recovery).
const V5_RECEIPTS: &str = "
CREATE TABLE receipt (
    order_id TEXT NOT NULL,
    hash BLOB NOT NULL,
    mac BLOB NOT NULL,
    PRIMARY KEY (order_id, hash)
);
";

/// Version 6: the incident an order belongs to, in the index (the phone's incident view). Orders
/// stored before have none: the server writes an order's incident in a change it sends.
const V6_INCIDENTS: &str = "
ALTER TABLE order_index ADD COLUMN incident INTEGER;
CREATE INDEX order_index_incident ON order_index (incident) WHERE incident IS NOT NULL;
";

/// Version 7: the attachments waiting to go up (one row per content hash; see `crate::upload`).
const V7_UPLOADS: &str = "
CREATE TABLE uploads (
    sha256 TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    mime TEXT NOT NULL,
    length INTEGER NOT NULL,
    state TEXT NOT NULL,
    location TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    verify INTEGER NOT NULL DEFAULT 0,
    code TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    queued_at_ms INTEGER NOT NULL
);
";

/// Builds index rows for documents stored before the index existed.
fn backfill_index(tx: &Transaction<'_>) -> Result<(), CoreError> {
    let ids: Vec<String> = {
        let mut stmt =
            tx.prepare("SELECT order_id FROM doc_snapshot UNION SELECT order_id FROM doc_change ORDER BY 1")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for id in ids {
        let order: OrderId = id.parse()?;
        let chunks = load_chunks(tx, order)?.unwrap_or_default();
        let doc = WorkOrder::load_chunks(chunks.iter().map(Vec::as_slice))?;
        // The index as version 2 made it (no incident: a version-1 build never stored one).
        let mut summary = OrderSummary::of(&doc)?;
        summary.incident = None;
        write_summary_v2(tx, &summary)?;
    }
    Ok(())
}

fn load_chunks(conn: &Connection, order: OrderId) -> Result<Option<Vec<Vec<u8>>>, CoreError> {
    let id = order.to_string();
    let snapshot: Option<Vec<u8>> =
        conn.query_row("SELECT bytes FROM doc_snapshot WHERE order_id = ?1", [&id], |row| row.get(0)).optional()?;
    let mut stmt = conn.prepare_cached("SELECT bytes FROM doc_change WHERE order_id = ?1 ORDER BY seq")?;
    let changes: Vec<Vec<u8>> = stmt.query_map([&id], |row| row.get(0))?.collect::<Result<_, _>>()?;
    if snapshot.is_none() && changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(snapshot.into_iter().chain(changes).collect()))
}

/// The incident column of every indexed order, from its document.
fn backfill_incidents(tx: &Transaction<'_>) -> Result<(), CoreError> {
    let ids: Vec<String> = {
        let mut stmt = tx.prepare("SELECT order_id FROM order_index ORDER BY 1")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for id in ids {
        let Some(chunks) = load_chunks(tx, id.parse()?)? else { continue };
        // A document that does not load keeps no incident rather than stopping the upgrade.
        let Ok(doc) = WorkOrder::load_chunks(chunks.iter().map(Vec::as_slice)) else { continue };
        if let Some(incident) = doc.incident() {
            tx.execute("UPDATE order_index SET incident = ?1 WHERE order_id = ?2", params![incident.number, id])?;
        }
    }
    Ok(())
}

/// An index row in version 2's columns (the backfill of that step).
fn write_summary_v2(conn: &Connection, s: &OrderSummary) -> Result<(), CoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO order_index (order_id, number, kind, category, grade, status, is_open, assignee,
            reporter, project, building, unit, area, created_at, next_deadline, superseded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            s.id.to_string(),
            s.number,
            s.kind.code(),
            s.category.code(),
            s.grade.code(),
            s.status.code(),
            s.status.is_open(),
            s.assignee.map(|a| a.to_string()),
            s.reporter.to_string(),
            s.location.project,
            s.location.building,
            s.location.unit,
            s.location.area,
            s.created_at_ms,
            s.next_deadline_ms,
            s.superseded,
        ],
    )?;
    Ok(())
}

fn write_summary(conn: &Connection, s: &OrderSummary) -> Result<(), CoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO order_index (order_id, number, kind, category, grade, status, is_open, assignee,
            reporter, project, building, unit, area, created_at, next_deadline, superseded, incident)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    stmt.execute(params![
        s.id.to_string(),
        s.number,
        s.kind.code(),
        s.category.code(),
        s.grade.code(),
        s.status.code(),
        s.status.is_open(),
        s.assignee.map(|a| a.to_string()),
        s.reporter.to_string(),
        s.location.project,
        s.location.building,
        s.location.unit,
        s.location.area,
        s.created_at_ms,
        s.next_deadline_ms,
        s.superseded,
        s.incident,
    ])?;
    Ok(())
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<OrderSummary, CoreError>> {
    let text = |i: usize| row.get::<_, String>(i);
    let opt = |i: usize| row.get::<_, Option<String>>(i);
    let (id, number, kind, category, grade, status) = (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?, text(5)?);
    let (assignee, reporter) = (opt(6)?, text(7)?);
    let location = Location { project: text(8)?, building: opt(9)?, unit: opt(10)?, area: opt(11)? };
    let (created_at_ms, next_deadline_ms, superseded, incident) =
        (row.get(12)?, row.get(13)?, row.get(14)?, row.get(15)?);
    Ok((|| {
        Ok(OrderSummary {
            id: id.parse()?,
            number,
            kind: Kind::from_code(&kind)?,
            category: Category::from_code(&category)?,
            grade: Grade::from_code(&grade)?,
            status: Status::from_code(&status)?,
            assignee: assignee.map(|a| a.parse()).transpose()?,
            reporter: reporter.parse()?,
            location,
            created_at_ms,
            next_deadline_ms,
            superseded,
            incident,
        })
    })())
}

fn hash_from_blob(blob: &[u8]) -> Result<ChangeHash, CoreError> {
    ChangeHash::try_from(blob).map_err(|e| CoreError::Storage(format!("bad change hash in store: {e}")))
}

impl Store for SqliteStore {
    fn load_chunks(&self, order: OrderId) -> Result<Option<Vec<Vec<u8>>>, CoreError> {
        load_chunks(&self.conn, order)
    }

    fn write(&mut self, batch: &WriteBatch) -> Result<(), CoreError> {
        if batch.items.iter().any(|item| item.summary.id != item.order) {
            return Err(CoreError::InvalidInput("summary of another order".into()));
        }
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO doc_change (order_id, hash, bytes, pending) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (order_id, hash) DO UPDATE SET pending = max(pending, excluded.pending)",
            )?;
            for CommitItem { order, snapshot, changes, summary } in &batch.items {
                let id = order.to_string();
                if let Some(snapshot) = snapshot {
                    tx.execute(
                        "INSERT OR REPLACE INTO doc_snapshot (order_id, bytes) VALUES (?1, ?2)",
                        params![id, snapshot],
                    )?;
                }
                for change in changes {
                    insert.execute(params![id, change.hash.as_ref(), change.bytes, change.pending])?;
                }
                write_summary(&tx, summary)?;
            }
            let mut ack = tx.prepare_cached("UPDATE doc_change SET pending = 0 WHERE hash = ?1 AND pending = 1")?;
            for hash in &batch.acknowledged {
                ack.execute([hash.as_ref()])?;
            }
            for order in &batch.granted {
                tx.execute("DELETE FROM revocation WHERE order_id = ?1", [order.to_string()])?;
            }
            for (order, reason) in &batch.revoked {
                tx.execute(
                    "INSERT OR REPLACE INTO revocation (order_id, reason) VALUES (?1, ?2)",
                    params![order.to_string(), reason],
                )?;
            }
            if let Some(cursor) = &batch.cursor {
                tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?1)", [cursor])?;
            }
            let mut keep =
                tx.prepare_cached("INSERT OR REPLACE INTO receipt (order_id, hash, mac) VALUES (?1, ?2, ?3)")?;
            for receipt in &batch.receipts {
                keep.execute(params![receipt.order.to_string(), receipt.hash.as_ref(), receipt.mac.as_slice()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn revocation(&self, order: OrderId) -> Result<Option<String>, CoreError> {
        Ok(self
            .conn
            .query_row("SELECT reason FROM revocation WHERE order_id = ?1", [order.to_string()], |row| row.get(0))
            .optional()?)
    }

    fn order_ids(&self) -> Result<Vec<OrderId>, CoreError> {
        let mut stmt = self.conn.prepare("SELECT order_id FROM order_index ORDER BY order_id")?;
        let ids: Vec<String> = stmt.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
        ids.iter().map(|id| Ok(id.parse()?)).collect()
    }

    fn compact(&mut self, order: OrderId, snapshot: &[u8]) -> Result<(), CoreError> {
        let tx = self.conn.transaction()?;
        let id = order.to_string();
        tx.execute("INSERT OR REPLACE INTO doc_snapshot (order_id, bytes) VALUES (?1, ?2)", params![id, snapshot])?;
        tx.execute("DELETE FROM doc_change WHERE order_id = ?1 AND pending = 0", [&id])?;
        tx.commit()?;
        Ok(())
    }

    fn list(&self, query: &OrderQuery) -> Result<Vec<OrderSummary>, CoreError> {
        let mut sql = String::from(
            "SELECT order_id, number, kind, category, grade, status, assignee, reporter, project, building, unit,
                    area, created_at, next_deadline, superseded, incident
             FROM order_index WHERE 1 = 1",
        );
        let mut args: Vec<Value> = Vec::new();
        if let Some(assignee) = query.assignee {
            sql.push_str(" AND assignee = ?");
            args.push(Value::Text(assignee.to_string()));
        }
        if let Some(reporter) = query.reporter {
            sql.push_str(" AND reporter = ?");
            args.push(Value::Text(reporter.to_string()));
        }
        if query.open_only {
            sql.push_str(" AND is_open = 1");
        }
        if !query.statuses.is_empty() {
            let marks = vec!["?"; query.statuses.len()].join(", ");
            sql.push_str(&format!(" AND status IN ({marks})"));
            args.extend(query.statuses.iter().map(|s| Value::Text(s.code().to_owned())));
        }
        if let Some(project) = &query.project {
            sql.push_str(" AND project = ?");
            args.push(Value::Text(project.clone()));
        }
        if let Some(building) = &query.building {
            sql.push_str(" AND building = ?");
            args.push(Value::Text(building.clone()));
        }
        if let Some(incident) = query.incident {
            sql.push_str(" AND incident = ?");
            args.push(Value::Integer(incident));
        }
        sql.push_str(" ORDER BY next_deadline IS NULL, next_deadline, created_at, order_id LIMIT ?");
        args.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), summary_from_row)?;
        let mut found = Vec::new();
        for row in rows {
            found.push(row??);
        }
        Ok(found)
    }

    fn order_count(&self) -> Result<usize, CoreError> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM order_index", [], |row| row.get(0))?;
        Ok(n as usize)
    }

    fn pending(&self, limit: usize) -> Result<Vec<PendingChange>, CoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT order_id, hash, bytes FROM doc_change WHERE pending = 1 ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, Vec<u8>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (order, hash, bytes) = row?;
            out.push(PendingChange { order: order.parse()?, hash: hash_from_blob(&hash)?, bytes });
        }
        Ok(out)
    }

    fn pending_count(&self) -> Result<usize, CoreError> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM doc_change WHERE pending = 1", [], |row| row.get(0))?;
        Ok(n as usize)
    }

    fn acknowledge(&mut self, hashes: &[ChangeHash]) -> Result<usize, CoreError> {
        let tx = self.conn.transaction()?;
        let mut acknowledged = 0;
        {
            let mut stmt = tx.prepare_cached("UPDATE doc_change SET pending = 0 WHERE hash = ?1 AND pending = 1")?;
            for hash in hashes {
                acknowledged += stmt.execute([hash.as_ref()])?;
            }
        }
        tx.commit()?;
        Ok(acknowledged)
    }

    fn cursor(&self) -> Result<Option<String>, CoreError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |row| row.get(0)).optional()?)
    }

    fn receipts(&self, order: OrderId) -> Result<Vec<Receipt>, CoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT hash, mac FROM receipt WHERE order_id = ?1 ORDER BY hash")?;
        let rows =
            stmt.query_map([order.to_string()], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, mac) = row?;
            let mac = mac.try_into().map_err(|_| CoreError::Storage("bad receipt in store".into()))?;
            out.push(Receipt { order, hash: hash_from_blob(&hash)?, mac });
        }
        Ok(out)
    }
}
