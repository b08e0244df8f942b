//! Test support for Caremesh: start a real node on `127.0.0.1:0` with its own database (SQLite in
//! a temporary directory, or a scratch PostgreSQL database when `TEST_POSTGRES_URL` is set), a
//! clock the test moves by hand, and small HTTP helpers; a node on a small disk that fills up
//! ([`SmallDisk`], needs root). A test that cannot run here records itself as skipped ([`skip`]).
//!
//! Logs stay silent unless `TEST_LOG=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use caremesh_domain::{Clock, Role, Timestamp};
use caremesh_federation::Federation;
use caremesh_server::Config;
use caremesh_store::{NewUser, Store, User};
use caremesh_store_postgres::{PostgresOptions, PostgresStore, create_scratch_database};
use caremesh_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// 2026-11-23T08:00:00Z, where every test clock starts.
pub const START: Timestamp = Timestamp::from_millis(1_795_420_800_000);

/// A clock that starts at a fixed moment, runs at real speed (so that retries and leases come
/// due), and jumps forward when the test says so.
#[derive(Debug)]
pub struct ManualClock {
    start: Timestamp,
    started: std::time::Instant,
    offset_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            start,
            started: std::time::Instant::now(),
            offset_ms: AtomicI64::new(0),
        }
    }

    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_millis(
            self.start.as_millis() + elapsed + self.offset_ms.load(Ordering::SeqCst),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server URL for scratch PostgreSQL databases, or `None` when there is none. With
/// `TEST_REQUIRE_POSTGRES=1` (as in CI) a missing URL fails instead.
pub fn postgres_admin_url() -> Option<String> {
    caremesh_store::skip::postgres_url()
}

/// Records the running test as skipped for `reason` (see [`caremesh_store::skip`]); the test then
/// returns. `scripts/test.sh` counts it as skipped, and CI fails on it.
pub fn skip(reason: &str) {
    caremesh_store::skip::skip(reason);
}

/// The database URL a fresh node of this backend should use, or `None` after recording the
/// running test as skipped.
pub async fn database_url(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}/caremesh.db", dir.display())),
        Backend::Postgres => {
            let admin = caremesh_store::skip::postgres_url_or_skip()?;
            Some(create_scratch_database(&admin).await.unwrap())
        }
    }
}

pub fn init_test_logging() {
    if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=info,hyper=info")
            .with_test_writer()
            .try_init();
    }
}

/// A node running in this process on a loopback port, with its own database.
pub struct TestNode {
    pub base_url: Url,
    pub config: Config,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    pub federation: Arc<Federation>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    dir: DataDir,
}

/// Where a test node keeps its data directory.
enum DataDir {
    Temp(tempfile::TempDir),
    Small(SmallDisk),
}

impl DataDir {
    fn path(&self) -> &std::path::Path {
        match self {
            Self::Temp(d) => d.path(),
            Self::Small(d) => d.path(),
        }
    }
}

/// A small tmpfs mounted on a fresh directory: a disk that a test can fill up. Unmounted (lazily,
/// files may still be open) when dropped. Mounting needs root.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it: `16m`). Without root, or without
    /// `mount`, the running test is recorded as skipped and `None` returned.
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "caremesh-test",
            ])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { dir }),
            Ok(out) => {
                skip(&format!(
                    "cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(&format!("cannot run mount: {e}"));
                None
            }
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full and returns its path: remove it to make room again.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Settings that make federation tests fast: short polls, leases and retry delays.
pub fn fast_federation(config: &mut Config) {
    let d = &mut config.federation.delivery;
    d.poll_interval_ms = 50;
    d.lease_secs = 3;
    d.backoff_base_ms = 100;
    d.backoff_max_secs = 1;
}

impl TestNode {
    /// Starts a node with the default configuration. `None` when the backend is not available.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts a node after letting the test adjust its configuration.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let dir = DataDir::Temp(tempfile::tempdir().unwrap());
        Self::spawn_in(backend, dir, adjust).await
    }

    /// Starts a SQLite node whose data directory is a [`SmallDisk`] of `size`, for tests of a full
    /// disk ([`TestNode::small_disk`]). `None` (the test recorded as skipped) without root.
    pub async fn spawn_on_small_disk(size: &str) -> Option<Self> {
        let disk = SmallDisk::mount(size)?;
        Self::spawn_in(Backend::Sqlite, DataDir::Small(disk), |_| {}).await
    }

    /// The disk of a node started with [`TestNode::spawn_on_small_disk`].
    pub fn small_disk(&self) -> Option<&SmallDisk> {
        match &self.dir {
            DataDir::Small(d) => Some(d),
            DataDir::Temp(_) => None,
        }
    }

    async fn spawn_in(
        backend: Backend,
        dir: DataDir,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        init_test_logging();
        let db_url = database_url(backend, dir.path()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config {
            base_url: Url::parse(&format!("http://{addr}/")).unwrap(),
            listen: addr,
            data_dir: dir.path().to_path_buf(),
            hospital_name: "Test Hospital".into(),
            ..Config::default()
        };
        config.database.url = db_url;
        config.database.max_connections = 4;
        fast_federation(&mut config);
        adjust(&mut config);
        config.validate().unwrap();
        let store =
            caremesh_server::open_store(&config, caremesh_server::EmptyDatabase::Initialise)
                .await
                .unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let federation = caremesh_server::build_federation(&config, store.clone(), clock.clone())
            .await
            .unwrap();
        let mut node = Self {
            base_url: config.base_url.clone(),
            config,
            clock,
            store,
            federation,
            http: reqwest::Client::builder().build().unwrap(),
            shutdown: None,
            handle: None,
            dir,
        };
        node.start_server(listener);
        Some(node)
    }

    /// A second process of the same node (same public URL, same database, its own port and
    /// delivery worker), as when a hospital runs several replicas behind a load balancer.
    pub async fn spawn_replica(&self) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = self.config.clone();
        config.listen = listener.local_addr().unwrap();
        let store =
            caremesh_server::open_store(&config, caremesh_server::EmptyDatabase::Initialise)
                .await
                .unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let federation = caremesh_server::build_federation(&config, store.clone(), clock.clone())
            .await
            .unwrap();
        let mut node = Self {
            base_url: config.base_url.clone(),
            config,
            clock,
            store,
            federation,
            http: reqwest::Client::builder().build().unwrap(),
            shutdown: None,
            handle: None,
            dir: DataDir::Temp(tempfile::tempdir().unwrap()),
        };
        node.start_server(listener);
        node
    }

    fn start_server(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = oneshot::channel::<()>();
        self.handle = Some(tokio::spawn(caremesh_server::serve_with(
            self.config.clone(),
            self.store.clone(),
            self.clock.clone(),
            self.federation.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        )));
        self.shutdown = Some(tx);
    }

    /// Stops serving (the port closes; the database stays) until [`TestNode::resume`].
    pub async fn pause(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Serves again on the same address, with the same database.
    pub async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.config.listen)
            .await
            .unwrap();
        self.start_server(listener);
    }

    /// What an outbox entry of this node sends: its activity, or, for an intent, the activity
    /// its delivery worker renders from the object as it is now.
    pub async fn rendered(&self, e: &caremesh_store::OutboxEntry) -> Vec<u8> {
        if !e.intent {
            return e.payload.clone().into_bytes();
        }
        let app = caremesh_server::build_app(&self.config, self.store.clone(), self.clock.clone())
            .await
            .unwrap();
        let renderer = caremesh_app::intents::Renderer::new(app);
        let activity = caremesh_federation::IntentRenderer::render(&*renderer, e)
            .await
            .unwrap()
            .unwrap_or_default();
        activity.to_string().into_bytes()
    }

    /// Makes `other` a partner of this node (as `caremesh partner add` does).
    pub async fn add_partner(&self, other: &TestNode) {
        let (authority, base_url) =
            caremesh_federation::parse_partner(other.base_url.as_str()).unwrap();
        self.store
            .add_partner(caremesh_store::Partner {
                authority,
                base_url,
                added_at: self.clock.now(),
                source: "cli".into(),
            })
            .await
            .unwrap();
        self.federation.partners.invalidate().await;
    }

    /// Delivers `body` to `to`'s shared inbox signed with this node's key, as its delivery worker
    /// would, but without the outbox: for tests that send what a misbehaving node might.
    pub async fn deliver_raw(&self, to: &TestNode, body: &[u8]) -> (u16, Value) {
        let (key_id, key) = self.federation.keys.instance_key().await.unwrap();
        let resp = self
            .signed_request(reqwest::Method::POST, to, "/inbox", body, &key_id, &key)
            .header("content-type", "application/activity+json")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A request from this node to `path` of `to`, with `body`, signed (at `to`'s time) under
    /// `key_id` with `key`: any key a test chooses, a partner's own or a stranger's.
    pub fn signed_request(
        &self,
        method: reqwest::Method,
        to: &TestNode,
        path: &str,
        body: &[u8],
        key_id: &str,
        key: &caremesh_protocol::KeyPair,
    ) -> reqwest::RequestBuilder {
        let headers = caremesh_protocol::httpsig::signed_request_headers(
            method.as_str(),
            path,
            &to.authority(),
            body,
            caremesh_federation::client::system_time(to.clock.now()),
            key_id,
            key,
        )
        .unwrap();
        let mut req = self.http.request(method, to.url(path));
        for (k, v) in headers {
            if k != "Host" {
                req = req.header(k, v);
            }
        }
        req.body(body.to_vec())
    }

    /// How many `method` requests this node answered on `route` (its path pattern), by its
    /// `/metrics`.
    pub async fn requests_served(&self, method: &str, route: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("caremesh_http_requests_total{{method=\"{method}\",route=\"{route}\"");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// The authority (`host:port`) under which other nodes know this one.
    pub fn authority(&self) -> String {
        self.federation.urls.authority()
    }

    pub fn url(&self, path: &str) -> String {
        self.base_url
            .join(path.trim_start_matches('/'))
            .unwrap()
            .to_string()
    }

    /// Creates an account directly in the store (as the admin CLI does).
    pub async fn create_account(&self, role: Role, username: &str, password: &str) -> User {
        let hash = caremesh_web::auth::hash_password_blocking(password).unwrap();
        self.store
            .create_user(
                NewUser {
                    username: username.into(),
                    display_name: format!("{username} (display)"),
                    role,
                    password_hash: hash,
                },
                self.clock.now(),
            )
            .await
            .unwrap()
    }

    /// Logs in through the API and returns the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let resp = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login of {username} failed");
        let body: Value = resp.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates an account and logs it in; returns the bearer token.
    pub async fn account_with_token(&self, role: Role, username: &str) -> String {
        let password = format!("{username}-password-123");
        self.create_account(role, username, &password).await;
        self.login(username, &password).await
    }

    /// Stops the node gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `check` every 50 ms until it holds; fails the test after 30 seconds, naming `what`.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Expands each named `async fn(Backend)` into a module with one test per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// A store of the given backend without a server, for benchmarks and store-level tests.
pub async fn bare_store(backend: Backend, dir: &std::path::Path) -> Option<Arc<dyn Store>> {
    let url = database_url(backend, dir).await?;
    Some(match backend {
        Backend::Sqlite => {
            let s = SqliteStore::connect(&SqliteOptions {
                url,
                max_connections: 4,
            })
            .await
            .unwrap();
            s.migrate().await.unwrap();
            Arc::new(s)
        }
        Backend::Postgres => {
            let s = PostgresStore::connect(&PostgresOptions {
                url,
                max_connections: 4,
            })
            .await
            .unwrap();
            s.migrate().await.unwrap();
            Arc::new(s)
        }
    })
}
