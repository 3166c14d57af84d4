//! PostgreSQL, production: any number of server processes, serialized per organization on an
//! advisory lock, telling each other through `LISTEN`/`NOTIFY`.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::*;

impl Postgres {
    /// Opens (creating and migrating) the database; the writer takes the jobs it queues.
    pub(crate) async fn open(url: &str) -> Result<(Self, tokio::sync::mpsc::Receiver<PushJob>), sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        // Every connection is opened at start-up: opening one (a new backend process) under load
        // held up the first requests after a restart by tens of milliseconds.
        let pool = PgPoolOptions::new().max_connections(16).min_connections(16).connect_with(options).await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let fixed = Self::init_meta(&pool).await.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let (writer, jobs) = tokio::sync::mpsc::channel(4 * GROUP_COMMIT_MAX);
        let cache: SharedCache = std::sync::Arc::new(std::sync::Mutex::new(DocumentCache::new(CACHED_DOCUMENTS)));
        let (advanced, _) = tokio::sync::broadcast::channel(1_024);
        tokio::spawn(Self::listen_for_other_servers(pool.clone(), fixed.server.device, advanced.clone()));
        Ok((Postgres { pool, fixed, writer, cache, advanced }, jobs))
    }

    /// Relays `NOTIFY loopwork_feed` from the other server processes (this process tells its
    /// own listeners itself). Reconnects if the connection drops.
    pub(crate) async fn listen_for_other_servers(
        pool: PgPool,
        this_process: DeviceId,
        advanced: tokio::sync::broadcast::Sender<Announced>,
    ) {
        loop {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen("loopwork_feed").await?;
                loop {
                    let notification = listener.recv().await?;
                    let (announced, by) = Announced::parse(notification.payload());
                    if by != Some(this_process) {
                        let _ = advanced.send(announced);
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            if let Err(e) = listener.await {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "feed notifications interrupted; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl Backend for sqlx::Postgres {
    const KIND: &'static str = "postgres";

    fn json_integer(column: &str, key: &str) -> String {
        format!("CAST(CAST({column} AS jsonb) ->> '{key}' AS BIGINT)")
    }

    /// Before the server listens, every connection of the pool prepares the statements
    /// of a steady sync (the token, each scope's positions and page, an order's document), which
    /// also loads what its backend caches of the tables. Without this the first quarter second
    /// of traffic after a start waited behind sixteen backends doing so at once.
    async fn warm_connections(pool: &PgPool) {
        let started = std::time::Instant::now();
        // The idle connections, without waiting: the writer holds one of its own for good, and
        // waiting for it made every start take the pool's whole acquire timeout (30 s).
        let mut held = Vec::new();
        while let Some(conn) = pool.try_acquire() {
            held.push(conn);
        }
        let nobody = UserId::new();
        let scopes = [Scope::Organization, Scope::Assigned(nobody), Scope::OwnUnits(nobody), Scope::Projects(nobody)];
        let order_sql = committed_order_query();
        for conn in &mut held {
            let warmed = async {
                sqlx::query(PRINCIPAL_BY_TOKEN).bind("").fetch_optional(&mut **conn).await?;
                for scope in scopes {
                    sqlx::query(AssertSqlSafe(positions_and_page_query(scope)))
                        .bind("")
                        .bind(0_i64)
                        .bind("")
                        .bind(1_i64)
                        .fetch_all(&mut **conn)
                        .await?;
                }
                sqlx::query(AssertSqlSafe(order_sql.clone())).bind("").bind("").fetch_optional(&mut **conn).await?;
                Ok::<(), sqlx::Error>(())
            };
            if let Err(e) = warmed.await {
                tracing::warn!(error = %e, "a connection was not warmed");
            }
        }
        tracing::debug!(connections = held.len(), ms = started.elapsed().as_millis() as u64, "connections warmed");
    }

    /// The [`StoredRow`]s of `(order, pushing user)` pairs, by order id: one statement, whose
    /// text is the same however many pairs there are (the pairs go as two arrays).
    async fn read_rows(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        wanted: &[(String, String)],
    ) -> Result<HashMap<String, StoredRow>> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let (ids, users): (Vec<&str>, Vec<&str>) = wanted.iter().map(|(id, user)| (id.as_str(), user.as_str())).unzip();
        let rows: Vec<StoredRow> = sqlx::query_as(AssertSqlSafe(format!(
            "WITH v (id, usr) AS (SELECT * FROM unnest($1::text[], $2::text[]))
             SELECT {STORED_ROW} FROM v JOIN orders o ON o.id = v.id"
        )))
        .bind(&ids)
        .bind(&users)
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows.into_iter().map(|row| (row.id.clone(), row)).collect())
    }

    /// The end of a batch in one statement (one round trip, where it took three): the deferred
    /// pushes' feed rows, their orders' new positions and tails, each device's last sync, and
    /// the announcement of how far each organization's feed advanced (`orgs`: the positions
    /// known before this statement). A data-modifying `WITH` runs whether or not the rest reads
    /// it. An order whose tail grows too long gets a new snapshot after, and a push whose every
    /// change was logged already its order's newest position (both rare).
    async fn finish_batch(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        deferred: &[(usize, Deferred)],
        now_ms: i64,
        devices: &[String],
        by: DeviceId,
        orgs: &[(String, i64)],
    ) -> Result<Vec<Written>> {
        let mut row_orgs: Vec<&str> = Vec::new();
        let mut row_orders: Vec<String> = Vec::new();
        let mut hashes: Vec<&[u8]> = Vec::new();
        let mut bytes: Vec<&[u8]> = Vec::new();
        let mut row_devices: Vec<String> = Vec::new();
        let mut received: Vec<i64> = Vec::new();
        // Whether an order's tail may take its changes, or it gets a new snapshot instead.
        let fits = |d: &Deferred| fits_tail(d.tail_before, d.changes.len() as i32);
        let mut extend: Vec<String> = Vec::new();
        for (_, d) in deferred {
            let order = d.id.to_string();
            for (hash, change, device) in &d.changes {
                row_orgs.push(&d.org);
                row_orders.push(order.clone());
                hashes.push(hash.as_ref());
                bytes.push(change.as_slice());
                row_devices.push(device.to_string());
                received.push(d.received_at);
            }
            if fits(d) {
                extend.push(order);
            }
        }
        let (announce_orgs, announce_seqs): (Vec<&str>, Vec<i64>) = orgs.iter().map(|(o, s)| (o.as_str(), *s)).unzip();
        let rows: Vec<(Option<String>, i32, Option<i64>)> = sqlx::query_as(
            "WITH ins AS (
                INSERT INTO feed (org_id, order_id, kind, hash, bytes, device_id, received_at)
                SELECT r.org_id, r.order_id, 'change', r.hash, r.bytes, r.device_id, r.received_at
                FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::bigint[])
                    WITH ORDINALITY AS r (org_id, order_id, hash, bytes, device_id, received_at, n)
                ORDER BY r.n
                ON CONFLICT DO NOTHING
                RETURNING org_id, order_id, seq
             ), logged AS (
                SELECT order_id, COUNT(*)::int AS appended, MAX(seq) AS last FROM ins GROUP BY order_id
             ), tails AS (
                UPDATE orders SET doc_seq = CASE WHEN tail_changes = 0 THEN last_seq ELSE doc_seq END,
                    tail_changes = tail_changes + logged.appended, last_seq = logged.last
                FROM logged WHERE orders.id = logged.order_id AND logged.order_id = ANY($7::text[])
                RETURNING 1
             ), touched AS (
                UPDATE devices SET last_sync_at = $8 WHERE id = ANY($9::text[]) RETURNING 1
             ), told AS (
                SELECT pg_notify('loopwork_feed', a.seq || ' ' || $10 || ' ' || a.org)
                FROM (SELECT k.org, GREATEST(k.seq, (SELECT COALESCE(MAX(i.seq), 0) FROM ins i WHERE i.org_id = k.org)) AS seq
                      FROM unnest($11::text[], $12::bigint[]) AS k (org, seq)) a
                WHERE a.seq > 0
             )
             SELECT order_id, appended, last FROM logged
             UNION ALL SELECT NULL, COUNT(*)::int, NULL FROM told",
        )
        .bind(&row_orgs)
        .bind(&row_orders)
        .bind(&hashes)
        .bind(&bytes)
        .bind(&row_devices)
        .bind(&received)
        .bind(&extend)
        .bind(now_ms)
        .bind(devices)
        .bind(by.to_string())
        .bind(&announce_orgs)
        .bind(&announce_seqs)
        .fetch_all(&mut **tx)
        .await?;
        let logged: HashMap<String, (i32, i64)> =
            rows.into_iter().filter_map(|(order, appended, last)| Some((order?, (appended, last?)))).collect();
        let mut written = Vec::with_capacity(deferred.len());
        for (_, d) in deferred {
            let order_id = d.id.to_string();
            let (appended, mut last_seq) = logged.get(&order_id).copied().unwrap_or_default();
            if appended == 0 {
                last_seq = Postgres::newest_position(tx, &order_id).await?;
            } else if !fits(d) {
                Postgres::write_snapshot(tx, &order_id, (d.order.save_uncompressed(), heads_blob(&d.order)), last_seq)
                    .await?;
            }
            written.push(Written { last_seq, merged: d.changes.len() });
        }
        Ok(written)
    }

    async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(pool.begin().await?)
    }

    /// [`Postgres::begin_write`] on the writer's own connection.
    async fn begin_writer(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    ) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        Ok(sqlx::Connection::begin(&mut **conn).await?)
    }

    /// Takes the organization's write lock and reads its closing authority in the same round
    /// trip (the authority is not guarded by the lock: its readers and its writer race either way).
    async fn lock_org(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, org: &str) -> Result<Option<Option<String>>> {
        let stored: Option<String> = sqlx::query_scalar(
            "SELECT c.value FROM (SELECT pg_advisory_xact_lock(hashtext($1))) l
             LEFT JOIN org_settings c ON c.org_id = $1 AND c.name = $2",
        )
        .bind(org)
        .bind(super::CLOSING_AUTHORITY)
        .fetch_one(&mut **tx)
        .await?;
        Ok(Some(stored))
    }
}
