//! End-to-end harness: a real server on loopback (SQLite or PostgreSQL), and devices that sync
//! with it over HTTP exactly as an app does, through sync-core's client state machine.
//!
//! Used by the tests in `tests/` and by the `loopwork-sim` simulator.

use std::sync::Arc;

use loopwork_server::store::Database;
use loopwork_server::{AppState, demo, writer};
use loopwork_sync_core::protocol::{CONTENT_TYPE, ErrorFrame, Limits, SyncResponse};
use loopwork_sync_core::store::SqliteStore;
use loopwork_sync_core::sync::{Next, SyncOutcome, SyncSession};
use loopwork_sync_core::{Clock, CoreError, DeviceId, Identity, Replica, Role, SystemClock, UserId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each named scenario `async fn name(backend: Backend)` of the calling test file as two
/// tests, `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await })+
        }
    };
}

/// Where the server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("LOOPWORK_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database of the backend; the directory (SQLite) lives as long as the value.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    pub dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
    admin: Option<String>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("loopwork.db").display());
                TestDatabase { url, backend, dir: Some(dir), pg_name: None, admin: None }
            }
            Backend::Postgres => Self::postgres_on(&postgres_admin_url()).await,
        }
    }

    /// A fresh database on the PostgreSQL server that `admin` (a URL of an existing database
    /// there, such as `postgres`) reaches.
    pub async fn postgres_on(admin: &str) -> TestDatabase {
        let name = format!("loopwork_test_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(admin).await.expect("PostgreSQL reachable for the tests");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create db");
        pool.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
        TestDatabase {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            dir: None,
            pg_name: Some(name),
            admin: Some(admin.to_owned()),
        }
    }

    /// A copy of the database as it is now (the server must be stopped).
    pub async fn backup(&self) -> Backup {
        match self.backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("backup dir");
                let source = self.dir.as_ref().expect("sqlite dir").path();
                for entry in std::fs::read_dir(source).expect("read dir") {
                    let path = entry.expect("entry").path();
                    std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
                }
                Backup::Files(dir)
            }
            Backend::Postgres => {
                let name = format!("{}_backup", self.pg_name.as_deref().expect("pg name"));
                let pool = sqlx::PgPool::connect(self.admin.as_deref().unwrap_or_default()).await.expect("admin");
                let sql = format!("CREATE DATABASE {name} TEMPLATE {}", self.pg_name.as_deref().expect("pg name"));
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("backup");
                Backup::Database(name)
            }
        }
    }

    /// Replaces the database with a backup (the server must be stopped).
    pub async fn restore(self, backup: Backup) -> TestDatabase {
        match backup {
            Backup::Files(dir) => {
                let target = self.dir.as_ref().expect("sqlite dir").path();
                for entry in std::fs::read_dir(target).expect("read dir") {
                    std::fs::remove_file(entry.expect("entry").path()).expect("remove");
                }
                for entry in std::fs::read_dir(dir.path()).expect("read dir") {
                    let path = entry.expect("entry").path();
                    std::fs::copy(&path, target.join(path.file_name().expect("name"))).expect("copy");
                }
                self
            }
            Backup::Database(name) => {
                let pool = sqlx::PgPool::connect(self.admin.as_deref().unwrap_or_default()).await.expect("admin");
                let current = self.pg_name.clone().expect("pg name");
                for sql in [
                    format!("DROP DATABASE {current} WITH (FORCE)"),
                    format!("CREATE DATABASE {current} TEMPLATE {name}"),
                    format!("DROP DATABASE {name}"),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("restore");
                }
                self
            }
        }
    }

    /// Drops a PostgreSQL test database (SQLite's goes with its directory).
    pub async fn drop_database(&self) {
        if let Some(name) = &self.pg_name
            && let Ok(pool) = sqlx::PgPool::connect(self.admin.as_deref().unwrap_or_default()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&pool)
                .await;
        }
    }
}

/// A copy of a test database.
#[derive(Debug)]
pub enum Backup {
    Files(tempfile::TempDir),
    Database(String),
}

/// The `code` of an error envelope (`{"error": {"code": …}}`), or `<none>`.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

/// The system's clock moved on by what the test says: a server whose deadlines pass on demand
/// while everything else (logins, the pages' own clocks) keeps real time.
#[derive(Debug, Default)]
pub struct OffsetClock(std::sync::atomic::AtomicI64);

impl OffsetClock {
    /// A clock that reads `at_ms` now and runs on from there.
    pub fn at(at_ms: i64) -> OffsetClock {
        OffsetClock(std::sync::atomic::AtomicI64::new(at_ms - SystemClock.now_ms()))
    }

    /// Moves the clock to `at_ms` (forwards or back).
    pub fn set(&self, at_ms: i64) {
        self.0.store(at_ms - SystemClock.now_ms(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.0.fetch_add(minutes * 60_000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A server running in this process on loopback ports.
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub metrics_base: String,
    pub database: TestDatabase,
    pub state: AppState,
    /// The blob store's directory (attachments' bytes).
    pub blob_dir: Arc<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with the demo organization (users `kefu`, `wang`, `li`, `yezhu1502`, …).
    pub async fn start(backend: Backend) -> TestServer {
        let database = TestDatabase::new(backend).await;
        let server = Self::start_on(database).await;
        demo::seed(server.state.db.as_ref(), SystemClock.now_ms()).await.expect("demo data");
        server
    }

    /// A server with the demo organization whose clock is the test's: its scanner and its
    /// handlers see the time the test sets.
    pub async fn start_with_clock(backend: Backend, clock: Arc<dyn Clock>) -> TestServer {
        let database = TestDatabase::new(backend).await;
        let now_ms = clock.now_ms();
        let server = Self::start_with(database, clock).await;
        demo::seed(server.state.db.as_ref(), now_ms).await.expect("demo data");
        server
    }

    /// A server over an existing database (a restart).
    pub async fn start_on(database: TestDatabase) -> TestServer {
        Self::start_with(database, Arc::new(SystemClock)).await
    }

    /// A server over an existing database (a restart, a restore) whose clock is the test's.
    pub async fn start_on_with_clock(database: TestDatabase, clock: Arc<dyn Clock>) -> TestServer {
        Self::start_with(database, clock).await
    }

    /// A server with the demo organization, its clock the test's, its state configured first
    /// (e.g. `state.sms`, the text-message provider).
    pub async fn start_configured(
        backend: Backend,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let database = TestDatabase::new(backend).await;
        let server = Self::start_inner(database, clock, configure).await;
        demo::seed(server.state.db.as_ref(), SystemClock.now_ms()).await.expect("demo data");
        server
    }

    async fn start_with(database: TestDatabase, clock: Arc<dyn Clock>) -> TestServer {
        Self::start_inner(database, clock, |_| {}).await
    }

    async fn start_inner(
        database: TestDatabase,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let db: Arc<dyn Database> = writer::open(&database.url).await.expect("open database");
        let mut state = AppState::new(db, clock);
        // Attachments' bytes in a directory of the test's own, as `serve` keeps them.
        let blob_dir = Arc::new(tempfile::tempdir().expect("blob dir"));
        state.blobs = Some(loopwork_server::blobs::Blobs::in_directory(blob_dir.path()).expect("blob store"));
        configure(&mut state);
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", api.local_addr().expect("addr"));
        let metrics_base = format!("http://{}", metrics.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(loopwork_server::serve(state.clone(), api, metrics, async {
            let _ = rx.await;
        }));
        TestServer { base, metrics_base, database, state, blob_dir, shutdown: Some(tx), task: Some(task) }
    }

    /// A second server process on the same database (PostgreSQL: several replicas behind a
    /// load balancer). It shares nothing with this one but the database.
    pub async fn replica(&self) -> TestServer {
        Self::start_on(self.shared_database()).await
    }

    /// A second server process on the same database, configured (e.g. sharing this one's
    /// blob store).
    pub async fn replica_configured(&self, configure: impl FnOnce(&mut AppState)) -> TestServer {
        Self::start_inner(self.shared_database(), self.state.clock.clone(), configure).await
    }

    /// This server's database for another server: the same URL, nothing of it to drop.
    fn shared_database(&self) -> TestDatabase {
        TestDatabase {
            url: self.database.url.clone(),
            backend: self.database.backend,
            dir: None,
            pg_name: None,
            admin: None,
        }
    }

    /// Runs a statement on the server's database directly (to set up what an older version
    /// left, say), on either backend.
    pub async fn execute(&self, sql: &str) {
        match self.database.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.database.url).await.expect("sqlite");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&pool).await.expect(sql);
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database.url).await.expect("postgres");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&pool).await.expect(sql);
                pool.close().await;
            }
        }
    }

    /// Stops the server and hands back its database.
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.state.db.close().await;
        self.database
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(self) -> TestServer {
        let database = self.stop().await;
        Self::start_on(database).await
    }

    /// Signs in a demo user (password `demo::DEMO_PASSWORD`).
    pub async fn login(&self, login: &str) -> Session {
        login_at(&self.base, login, demo::DEMO_PASSWORD).await
    }

    /// A JSON API call (`GET`, `POST`, `PUT`, `PATCH` or `DELETE`, with an optional JSON body) as
    /// `token`: its status and its body (JSON, or the text as a JSON string).
    pub async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let request = client.request(method, url);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.bearer_auth(token).send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// A device signed in as `login`, with an empty on-device store.
    pub async fn device(&self, login: &str) -> Device {
        Device::new(&self.base, self.login(login).await)
    }

    /// A device with a given password (users made outside the demo).
    pub async fn device_with_password(&self, login: &str, password: &str) -> Device {
        Device::new(&self.base, login_at(&self.base, login, password).await)
    }
}

/// Signs in at any Loopwork server (in-process or its own process).
pub async fn login_at(base: &str, login: &str, password: &str) -> Session {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({ "login": login, "password": password, "device_name": "test" }))
        .send()
        .await
        .expect("login request");
    assert!(response.status().is_success(), "login {login}: {}", response.status());
    let body: serde_json::Value = response.json().await.expect("login json");
    let field = |k: &str| body[k].as_str().unwrap_or_else(|| panic!("login {login}: {body}")).to_owned();
    Session {
        token: field("token"),
        user: field("user_id").parse().expect("user id"),
        role: Role::from_code(&field("role")).expect("role"),
        device: field("device_id").parse().expect("device id"),
        org: field("org_id"),
    }
}

/// What login gives a device.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub user: UserId,
    pub role: Role,
    pub device: DeviceId,
    pub org: String,
}

impl Session {
    pub fn identity(&self) -> Identity {
        Identity::new(self.user, self.role, self.device)
    }

    /// The server's view of this session, for driving the server's database directly (of a
    /// user bound to no projects, as every demo user is).
    pub fn principal(&self) -> loopwork_server::replication::Principal {
        loopwork_server::replication::Principal {
            user: self.user,
            role: self.role,
            org: self.org.clone(),
            device: self.device,
            project_bound: false,
        }
    }
}

/// Why a sync did not complete.
#[derive(Debug)]
pub enum SyncError {
    /// The device has no signal (the test switched it off).
    Offline,
    Transport(String),
    /// The server refused: HTTP status and the error frame's code.
    Refused {
        status: u16,
        code: String,
    },
    Core(CoreError),
}

impl From<CoreError> for SyncError {
    fn from(e: CoreError) -> Self {
        SyncError::Core(e)
    }
}

/// A phone or a browser: a replica in its own store, and a transport to one server.
pub struct Device {
    pub replica: Replica<SqliteStore>,
    pub session: Session,
    pub base: String,
    pub online: bool,
    /// Sync traffic so far: request and response bodies, and round trips.
    pub traffic: Traffic,
    http: reqwest::Client,
    reconcile_next: bool,
}

/// Bytes and round trips a device's syncs cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub round_trips: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Documents and changes received, before the frame's compression.
    pub items_received: u64,
}

impl Traffic {
    pub fn since(&self, before: Traffic) -> Traffic {
        Traffic {
            round_trips: self.round_trips - before.round_trips,
            bytes_sent: self.bytes_sent - before.bytes_sent,
            bytes_received: self.bytes_received - before.bytes_received,
            items_received: self.items_received - before.items_received,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("session", &self.session).finish_non_exhaustive()
    }
}

impl Device {
    /// Syncs until settled; a failure fails the test, naming the device's role.
    pub async fn synced(&mut self) {
        let role = self.session.role;
        self.sync().await.unwrap_or_else(|e| panic!("{role} failed to sync: {e:?}"));
    }

    /// The order's effective status on this device.
    pub fn status_of(&self, id: loopwork_sync_core::OrderId) -> loopwork_sync_core::Status {
        self.replica.order(id).expect("order on device").state().expect("state").status
    }

    pub fn new(base: &str, session: Session) -> Device {
        let store = SqliteStore::open_in_memory().expect("device store");
        Device {
            replica: Replica::new(store, session.identity(), SystemClock),
            session,
            base: base.to_owned(),
            online: true,
            traffic: Traffic::default(),
            http: reqwest::Client::new(),
            reconcile_next: false,
        }
    }

    pub fn identity(&self) -> Identity {
        self.session.identity()
    }

    /// Opens a new connection for every request (no connection kept for the next one), so that
    /// a fault-injecting proxy (`faults.rs`) sees each sync on a connection of its own.
    pub fn without_keep_alive(&mut self) {
        self.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("http client");
    }

    /// Sends raw bytes to the sync endpoint: the transport an app supplies.
    pub async fn post(&mut self, body: Vec<u8>) -> Result<Vec<u8>, SyncError> {
        if !self.online {
            return Err(SyncError::Offline);
        }
        self.traffic.round_trips += 1;
        self.traffic.bytes_sent += body.len() as u64;
        let response = self
            .http
            .post(format!("{}/sync/v1", self.base))
            .bearer_auth(&self.session.token)
            .header("content-type", CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| SyncError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| SyncError::Transport(e.to_string()))?.to_vec();
        self.traffic.bytes_received += bytes.len() as u64;
        if status != 200 {
            let code = ErrorFrame::decode(&bytes).map(|e| e.code).unwrap_or_else(|_| format!("http_{status}"));
            return Err(SyncError::Refused { status, code });
        }
        Ok(bytes)
    }

    /// Syncs until nothing is left to send or receive. Returns the outcomes of each round trip.
    pub async fn sync(&mut self) -> Result<Vec<SyncOutcome>, SyncError> {
        let mut outcomes = Vec::new();
        let mut session = SyncSession::new(self.reconcile_next);
        loop {
            let request = match session.next_request(&self.replica)? {
                Next::Send(request) => request,
                Next::Done => return Ok(outcomes),
                Next::Unsettled => return Err(SyncError::Transport("sync did not settle in 1000 round trips".into())),
            };
            let bytes = self.post(request.encode()).await?;
            let response = SyncResponse::decode(&bytes, &Limits::default())
                .map_err(|e| SyncError::Transport(format!("undecodable response: {e}")))?;
            self.traffic.items_received +=
                response.documents.iter().chain(&response.changes).map(|i| i.bytes.len() as u64).sum::<u64>();
            outcomes.push(session.apply(&mut self.replica, &response)?);
            self.reconcile_next = session.reconcile_next();
        }
    }
}

/// Where the foreign-language and browser tests find their tools (`scripts/install-test-tools`).
pub mod failures_sim;
pub mod faults;
pub mod maintenance_sim;

/// How the notes phones made stand on a server after a fault campaign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoteTally {
    /// Notes made (each checked).
    pub made: usize,
    /// Made, and not on the server.
    pub lost: usize,
    /// Made, and on the server more than once.
    pub duplicated: usize,
}

/// Reads each order of `made` (its notes' texts, as the phones made them) from the server at
/// `base` as `token` (every one must read, 200) and counts the notes lost and duplicated; every
/// phone must hold exactly the server's notes of each order (convergence).
pub async fn tally_notes(
    base: &str,
    token: &str,
    made: &std::collections::BTreeMap<loopwork_sync_core::OrderId, std::collections::BTreeSet<String>>,
    phones: &[Device],
) -> NoteTally {
    let http = reqwest::Client::new();
    let mut tally = NoteTally::default();
    for (order, texts_made) in made {
        let response = http.get(format!("{base}/api/v1/orders/{order}")).bearer_auth(token).send().await.expect("get");
        let status = response.status().as_u16();
        let detail: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, 200, "order {order} reads: {detail}");
        let texts: Vec<&str> =
            detail["notes"].as_array().expect("notes").iter().map(|n| n["text"].as_str().unwrap_or("")).collect();
        for text in texts_made {
            tally.made += 1;
            match texts.iter().filter(|t| **t == text).count() {
                0 => tally.lost += 1,
                1 => {}
                _ => tally.duplicated += 1,
            }
        }
        for phone in phones {
            let on_phone = phone.replica.order(*order).expect("the order on every phone").notes().len();
            assert_eq!(on_phone, texts.len(), "phone and server converge on {order}");
        }
    }
    tally
}

/// Attachments' bytes sent the way a client does (tus 1.0; docs/attachments.md), for the
/// tests and the simulator.
pub mod uploads {
    use base64::Engine;
    use sha2::Digest;

    /// A request with the bearer token and the protocol's version.
    pub fn tus(request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        request.bearer_auth(token).header("tus-resumable", "1.0.0")
    }

    /// Creates a photo's upload of `bytes`: their hash and the upload's location.
    pub async fn create(http: &reqwest::Client, base: &str, token: &str, bytes: &[u8]) -> (String, String) {
        let sha = hex::encode(sha2::Sha256::digest(bytes));
        let b64 = base64::engine::general_purpose::STANDARD;
        let r = tus(http.post(format!("{base}/api/v1/uploads")), token)
            .header("upload-length", bytes.len().to_string())
            .header("upload-metadata", format!("sha256 {},kind {}", b64.encode(&sha), b64.encode("photo")))
            .send()
            .await
            .expect("create");
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
        (sha, r.headers()["location"].to_str().expect("location").to_owned())
    }

    /// Uploads a photo's bytes whole in one request: their hash.
    pub async fn upload(http: &reqwest::Client, base: &str, token: &str, bytes: &[u8]) -> String {
        let (sha, location) = create(http, base, token, bytes).await;
        let r = tus(http.patch(format!("{base}{location}")), token)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status().as_u16(), 204, "{}", r.text().await.unwrap_or_default());
        sha
    }
}

pub mod tools {
    use std::path::{Path, PathBuf};

    /// Starts the `loopwork` binary with `command` (its working directory, arguments and
    /// environment set by the caller) and waits until it serves: its address, what it printed
    /// before (the demo's sign-in text, if any), and the process, killed when dropped.
    pub async fn serve_binary(mut command: tokio::process::Command) -> (String, String, tokio::process::Child) {
        use tokio::io::AsyncBufReadExt;
        let mut child =
            command.stdout(std::process::Stdio::piped()).kill_on_drop(true).spawn().expect("start the server binary");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut printed = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("serving ").nth(1) {
                let base = rest.split_whitespace().next().expect("address").to_owned();
                // What it prints afterwards (its log) is dropped, or shown with LOOPWORK_TEST_SERVER_LOG.
                let show = std::env::var_os("LOOPWORK_TEST_SERVER_LOG").is_some();
                let tag = base.clone();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        if show {
                            eprintln!("[{tag}] {line}");
                        }
                    }
                });
                return (base, printed, child);
            }
            printed.push_str(&line);
            printed.push('\n');
        }
        panic!("the server binary exited without serving; it printed:\n{printed}");
    }

    /// Where cargo put the test binary running now (`…/<profile>/deps`), whatever the profile,
    /// target or target directory: the artifacts the same build made are beside it.
    pub fn artifacts() -> PathBuf {
        let exe = std::env::current_exe().expect("the test binary's path");
        exe.parent().expect("deps").to_path_buf()
    }

    /// The server binary (`server/src/main.rs`), as `cargo test` built it with this package's
    /// integration tests (`loopwork-under-test`, tests/Cargo.toml).
    pub fn server_binary() -> PathBuf {
        let path = artifacts()
            .parent()
            .expect("the profile's directory")
            .join(format!("loopwork-under-test{}", std::env::consts::EXE_SUFFIX));
        assert!(path.exists(), "{} was not built: run the tests with `cargo test`", path.display());
        path
    }

    pub fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
    }

    pub fn target_dir() -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
    }

    /// A tool from the environment variable, the first existing candidate, or the PATH.
    pub fn tool(variable: &str, candidates: &[PathBuf], name: &str) -> PathBuf {
        if let Some(path) = std::env::var_os(variable) {
            return PathBuf::from(path);
        }
        if let Some(found) = candidates.iter().find(|p| p.exists()) {
            return found.clone();
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join(name))
            .find(|p| p.exists());
        on_path.unwrap_or_else(|| {
            panic!("{name} was not found: run scripts/install-test-tools, or set {variable} to its path")
        })
    }
}

/// A real S3-protocol server on loopback (moto's server mode, from PyPI), with one bucket: the
/// blob store of `serve --blob-store s3://…` in tests. Stopped when dropped.
#[derive(Debug)]
pub struct S3Server {
    /// Its address, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub bucket: String,
    _process: tokio::process::Child,
}

impl S3Server {
    /// Starts one and creates the bucket `bucket`.
    pub async fn start(bucket: &str) -> S3Server {
        loopwork_server::tls_provider();
        let program = tools::tool("MOTO_SERVER", &[], "moto_server");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port();
        let process = tokio::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for attempt in 0.. {
            // moto takes any credentials; creating a bucket is a PUT on its name.
            match http.put(format!("{endpoint}/{bucket}")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if attempt < 300 => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                other => panic!("moto_server did not start: {other:?}"),
            }
        }
        S3Server { endpoint, bucket: bucket.to_owned(), _process: process }
    }

    /// The settings `Blobs::s3` takes to reach it.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".into()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "loopwork".into()),
            ("aws_secret_access_key", "loopwork-secret".into()),
        ]
    }

    /// A blob store in its bucket under `prefix`.
    pub fn blobs(&self, prefix: &str) -> loopwork_server::blobs::Blobs {
        let settings = self.settings();
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        loopwork_server::blobs::Blobs::s3(&format!("s3://{}/{prefix}", self.bucket), &pairs).expect("S3 blob store")
    }
}

/// A text-message gateway on loopback for `serve --sms webhook`: it keeps every message whose
/// signature checks (`(phone, code)`), answers 200, or 500 while `failing` is set.
#[derive(Clone, Debug)]
pub struct SmsGateway {
    pub url: String,
    pub secret: String,
    pub messages: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    pub failing: Arc<std::sync::atomic::AtomicBool>,
}

impl SmsGateway {
    pub async fn start() -> SmsGateway {
        let secret = "gateway-secret-0123456789".to_owned();
        let messages: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
        let failing: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (kept, key, fail) = (messages.clone(), secret.clone(), failing.clone());
        let app = axum::Router::new().route(
            "/sms",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (kept, key, fail) = (kept.clone(), key.clone(), fail.clone());
                async move {
                    let header =
                        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    let timestamp: i64 = header("x-loopwork-timestamp").parse().unwrap_or_default();
                    if header("x-loopwork-signature") != loopwork_server::webhooks::signature(&key, timestamp, &body) {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    if fail.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let message: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let field = |k: &str| message[k].as_str().unwrap_or_default().to_owned();
                    kept.lock().expect("messages").push((field("phone"), field("code")));
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/sms", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        SmsGateway { url, secret, messages, failing }
    }

    /// The provider the server uses to reach this gateway.
    pub fn provider(&self) -> loopwork_server::sms::Sms {
        loopwork_server::sms::Sms::webhook(&self.url, &self.secret).expect("gateway provider")
    }

    /// The last code sent to `phone` (digits).
    pub fn last_code(&self, phone: &str) -> Option<String> {
        self.messages.lock().expect("messages").iter().rev().find(|(p, _)| p == phone).map(|(_, c)| c.clone())
    }

    /// The last code sent to `phone`, waited for (texts are sent beside the server's answer):
    /// `None` after 5 s.
    pub async fn wait_code(&self, phone: &str, after: usize) -> Option<String> {
        for _ in 0..100 {
            if self.count() > after {
                return self.last_code(phone);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }

    pub fn count(&self) -> usize {
        self.messages.lock().expect("messages").len()
    }
}
