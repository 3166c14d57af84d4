//! SQLite, the embedded default: one server process; one writer task, readers beside it (WAL).

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::*;

impl Sqlite {
    /// Opens (creating and migrating) the database; the writer takes the jobs it queues.
    pub(crate) async fn open(url: &str) -> Result<(Self, tokio::sync::mpsc::Receiver<PushJob>), sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let fixed = Self::init_meta(&pool).await.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let (writer, jobs) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
        let cache: SharedCache = std::sync::Arc::new(std::sync::Mutex::new(DocumentCache::new(CACHED_DOCUMENTS)));
        let (advanced, _) = tokio::sync::broadcast::channel(1_024);
        Ok((Sqlite { pool, fixed, writer, cache, advanced }, jobs))
    }

    /// Each device's last sync, one statement for the batch.
    pub(crate) async fn touch(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        now_ms: i64,
        devices: &[String],
    ) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let list = (0..devices.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!("UPDATE devices SET last_sync_at = $1 WHERE id IN ({list})");
        let mut update = sqlx::query(AssertSqlSafe(sql)).bind(now_ms);
        for device in devices {
            update = update.bind(device);
        }
        update.execute(&mut **tx).await?;
        Ok(())
    }

    /// Writes the batch's deferred pushes: their feed rows in one statement (per 400
    /// rows), then their orders' feed positions and tails in one statement (per 400
    /// orders); an order whose tail grows too long gets a new snapshot instead. Feed rows
    /// take their positions in the order given, so each order's changes stay in causal
    /// order. The answers are in the order of `deferred`.
    pub(crate) async fn write_deferred(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        deferred: &[(usize, Deferred)],
    ) -> Result<Vec<Written>> {
        let rows: Vec<(&Deferred, &ChangeHash, &Vec<u8>, DeviceId)> = deferred
            .iter()
            .flat_map(|(_, d)| d.changes.iter().map(move |(hash, bytes, device)| (d, hash, bytes, *device)))
            .collect();
        // Per order: changes logged, newest position.
        let mut logged: HashMap<String, (i32, i64)> = HashMap::new();
        for chunk in rows.chunks(400) {
            let values = (0..chunk.len())
                .map(|i| {
                    let b = 6 * i;
                    format!("(${}, ${}, 'change', ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6)
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at) VALUES {values}
                 ON CONFLICT DO NOTHING RETURNING order_id, seq"
            );
            let mut insert = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql));
            for (d, hash, bytes, device) in chunk {
                insert = insert
                    .bind(&d.org)
                    .bind(d.id.to_string())
                    .bind(hash.as_ref())
                    .bind(bytes.as_slice())
                    .bind(device.to_string())
                    .bind(d.received_at);
            }
            for (order, seq) in insert.fetch_all(&mut **tx).await? {
                let entry = logged.entry(order).or_default();
                entry.0 += 1;
                entry.1 = entry.1.max(seq);
            }
        }
        let mut written = Vec::with_capacity(deferred.len());
        let mut positions: Vec<(String, i32, i64)> = Vec::new();
        for (_, d) in deferred {
            let order_id = d.id.to_string();
            let (appended, mut last_seq) = logged.get(&order_id).copied().unwrap_or_default();
            if last_seq == 0 {
                last_seq = Self::newest_position(tx, &order_id).await?;
            }
            if fits_tail(d.tail_before, appended) {
                positions.push((order_id, appended, last_seq));
            } else {
                Self::write_snapshot(tx, &order_id, (d.order.save_uncompressed(), heads_blob(&d.order)), last_seq)
                    .await?;
            }
            written.push(Written { last_seq, merged: d.changes.len() });
        }
        Self::extend_tails(tx, &positions).await?;
        Ok(written)
    }
}

impl Backend for sqlx::Sqlite {
    const KIND: &'static str = "sqlite";

    /// SQLite prepares a statement in the process, at little cost: nothing to warm.
    async fn warm_connections(_pool: &SqlitePool) {}

    fn json_integer(column: &str, key: &str) -> String {
        format!("CAST(json_extract({column}, '$.{key}') AS INTEGER)")
    }

    /// One process writes: nothing to lock, and the closing authority is read with the pushes.
    async fn lock_org(_tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, _org: &str) -> Result<Option<Option<String>>> {
        Ok(None)
    }

    /// A write transaction takes SQLite's write lock at once (waiting up to the busy timeout):
    /// a deferred one that reads first could not upgrade if another connection (the scanner,
    /// a login) wrote in between, and would fail instead of waiting.
    async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// [`Sqlite::begin_write`] on the writer's own connection.
    async fn begin_writer(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    ) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        Ok(sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?)
    }

    /// The [`StoredRow`]s of `(order, pushing user)` pairs, by order id.
    async fn read_rows(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        wanted: &[(String, String)],
    ) -> Result<HashMap<String, StoredRow>> {
        let mut rows = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(200) {
            let values =
                (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "WITH v (id, usr) AS (VALUES {values})
                 SELECT {STORED_ROW} FROM v JOIN orders o ON o.id = v.id"
            );
            let mut query = sqlx::query_as::<_, StoredRow>(AssertSqlSafe(sql));
            for (id, user) in chunk {
                query = query.bind(id).bind(user);
            }
            for row in query.fetch_all(&mut **tx).await? {
                rows.insert(row.id.clone(), row);
            }
        }
        Ok(rows)
    }

    /// The end of a batch: its deferred pushes written (see `write_deferred`), then each
    /// device's last sync. One process has nobody to tell how far the feed advanced.
    async fn finish_batch(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        deferred: &[(usize, Deferred)],
        now_ms: i64,
        devices: &[String],
        _by: DeviceId,
        _orgs: &[(String, i64)],
    ) -> Result<Vec<Written>> {
        let written = Sqlite::write_deferred(tx, deferred).await?;
        Sqlite::touch(tx, now_ms, devices).await?;
        Ok(written)
    }
}
