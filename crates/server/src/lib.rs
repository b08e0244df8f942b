//! The `caremesh` binary's library: configuration, telemetry, the choice of storage backend, the
//! admin CLI, and [`launch`], which `main` and every test call to run a node.
//!
//! This is the only crate (with `testkit` and the end-to-end tests) that knows two storage
//! backends exist; everything below it sees `Arc<dyn Store>`.

pub mod cli;
pub mod config;
pub mod http;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use caremesh_app::App;
use caremesh_domain::{Clock, SystemClock};
use caremesh_federation::{
    DeliverySettings, Federation, FederationSettings, InboxSettings, Partners, Urls,
};
use caremesh_store::{DatabaseState, Store};
use caremesh_store_postgres::{PostgresOptions, PostgresStore};
use caremesh_store_sqlite::{SqliteOptions, SqliteStore};
use caremesh_web::{AppState, WebSettings};
use tokio::net::TcpListener;

pub use config::{Config, ConfigError, DatabaseChoice};

/// What opening the database may do with an empty one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyDatabase {
    /// Refuse it: an empty `caremesh.db` (a restore that went wrong, a file truncated by hand) or
    /// an empty PostgreSQL database would otherwise start as a brand-new node, with a new key and
    /// no accounts. A SQLite file that does not exist yet is still created: that is a new node.
    Refuse,
    /// Make it a new node (`--init`).
    Initialise,
}

/// Opens the configured database, creating the data directory and the SQLite file if needed, and
/// applies pending migrations. A database that holds another program's tables is always refused;
/// an empty one only becomes a node when there was no SQLite file before or `empty` says so.
pub async fn open_store(config: &Config, empty: EmptyDatabase) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match config.database_choice()? {
        DatabaseChoice::Sqlite(url) => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
            let new_file = sqlite_path(&url).is_none_or(|p| !p.exists());
            let store = SqliteStore::connect(&SqliteOptions {
                url: url.clone(),
                max_connections: config.database.max_connections,
            })
            .await
            .context("cannot open the SQLite database")?;
            let state = store
                .state()
                .await
                .context("cannot read the SQLite database: is it a SQLite file?")?;
            check_state(state, empty, new_file, &url)?;
            store
                .migrate()
                .await
                .context("cannot apply SQLite migrations")?;
            Arc::new(store)
        }
        DatabaseChoice::Postgres(url) => {
            let store = PostgresStore::connect(&PostgresOptions {
                url: url.clone(),
                max_connections: config.database.max_connections,
            })
            .await
            .context("cannot connect to PostgreSQL (database.url)")?;
            let state = store
                .state()
                .await
                .context("cannot read the PostgreSQL database")?;
            check_state(state, empty, false, &redact(&url))?;
            store
                .migrate()
                .await
                .context("cannot apply PostgreSQL migrations")?;
            Arc::new(store)
        }
    };
    Ok(store)
}

/// Whether a database in `state` may be opened; `created` when this start created its file.
fn check_state(
    state: DatabaseState,
    empty: EmptyDatabase,
    created: bool,
    name: &str,
) -> anyhow::Result<()> {
    match state {
        DatabaseState::Caremesh => Ok(()),
        DatabaseState::Foreign => anyhow::bail!(
            "{name} holds tables that are not Caremesh's: it is another program's database; \
             point database.url (or data_dir) at this node's own database"
        ),
        DatabaseState::Empty if created || empty == EmptyDatabase::Initialise => {
            tracing::warn!(database = %name, "starting a new node: the database is empty");
            Ok(())
        }
        DatabaseState::Empty => anyhow::bail!(
            "{name} is empty: starting on it would make a new node, with a new key and no \
             accounts. If this node had data, restore its backup; to start a new node on this \
             database, run the command again with --init"
        ),
    }
}

/// The file a `sqlite:` URL names (`None` for an in-memory database).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if url.contains(":memory:") {
        return None;
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some(std::path::PathBuf::from(path))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Writes a consistent copy of the SQLite database to `to` (`VACUUM INTO`), safe while the node
/// runs, then the groups' files to `{to}.media/`. Files are written once under their content
/// hash before the database refers to them, so every file the copied database names is there.
/// PostgreSQL nodes are backed up with `pg_dump`.
pub async fn backup(config: &Config, to: &std::path::Path) -> anyhow::Result<()> {
    let DatabaseChoice::Sqlite(url) = config.database_choice()? else {
        anyhow::bail!("this node uses PostgreSQL: back it up with pg_dump");
    };
    let media_to = media_backup_dir(to);
    if to.exists() || media_to.exists() {
        anyhow::bail!(
            "{} or {} exists already; choose a new file",
            to.display(),
            media_to.display()
        );
    }
    let store = SqliteStore::connect(&SqliteOptions {
        url,
        max_connections: 1,
    })
    .await
    .context("cannot open the SQLite database")?;
    store
        .ready()
        .await
        .context("the database is not a migrated Caremesh database")?;
    let path = to.to_str().context("the backup path must be valid UTF-8")?;
    store.backup_to(path).await.context("backup failed")?;
    store.close().await;
    let files = copy_media(&config.media_dir(), &media_to)
        .with_context(|| format!("cannot copy the groups' files to {}", media_to.display()))?;
    println!(
        "backup written to {} and {} ({files} files)",
        to.display(),
        media_to.display()
    );
    Ok(())
}

/// Where `caremesh backup --to FILE` puts the groups' files.
pub fn media_backup_dir(to: &std::path::Path) -> std::path::PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".media");
    std::path::PathBuf::from(name)
}

/// Copies the media folder (`ab/abcdef…` files) to `to`, leaving out unfinished temporary files.
fn copy_media(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut n = 0;
    if !from.is_dir() {
        return Ok(0);
    }
    for shard in std::fs::read_dir(from)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        let target = to.join(shard.file_name());
        std::fs::create_dir_all(&target)?;
        for file in std::fs::read_dir(shard.path())? {
            let file = file?;
            let name = file.file_name();
            if !file.file_type()?.is_file() || name.to_string_lossy().ends_with(".tmp") {
                continue;
            }
            std::fs::copy(file.path(), target.join(&name))?;
            n += 1;
        }
    }
    Ok(n)
}

pub fn web_settings(config: &Config) -> WebSettings {
    WebSettings {
        base_url: config.base_url.clone(),
        hospital_name: config.hospital_name.trim().to_owned(),
        max_body_bytes: config.http.max_body_bytes,
        session_ttl_secs: i64::from(config.auth.session_ttl_minutes) * 60,
        login_max_failures: config.auth.login_max_failures,
        login_window_secs: i64::from(config.auth.login_window_secs),
        invite_ttl_hours: i64::from(config.auth.invite_ttl_hours),
        trusted_proxies: config.http.trusted_proxies.clone(),
        max_members: config.groups.max_members,
        media_dir: config.media_dir(),
        max_file_bytes: config.media.max_file_bytes,
        group_quota_bytes: i64::try_from(config.media.group_quota_bytes).unwrap_or(i64::MAX),
        max_image_pixels: config.media.max_image_pixels,
        max_concurrent_password_hashes: config.auth.max_concurrent_password_hashes as usize,
        max_concurrent_decodes: config.media.max_concurrent_decodes as usize,
    }
}

pub fn federation_settings(config: &Config) -> FederationSettings {
    let f = &config.federation;
    let d = &f.delivery;
    FederationSettings {
        hospital_name: config.hospital_name.trim().to_owned(),
        inbox: InboxSettings {
            max_skew_secs: u64::from(f.signature_max_skew_secs),
            requests_per_minute: f.inbox_requests_per_minute,
            unverified_requests_per_minute: f.inbox_unverified_requests_per_minute,
        },
        delivery: DeliverySettings {
            concurrency: d.concurrency as usize,
            lease_secs: i64::from(d.lease_secs),
            backoff_base_ms: i64::from(d.backoff_base_ms),
            backoff_max_secs: i64::from(d.backoff_max_secs),
            max_probe_interval_secs: i64::from(d.max_probe_interval_secs),
            breaker_threshold: d.breaker_threshold,
            give_up_after_secs: i64::from(d.give_up_after_hours) * 3600,
            poll_interval_ms: u64::from(d.poll_interval_ms),
        },
        key_grace_secs: i64::from(f.key_grace_hours) * 3600,
        request_timeout_secs: u64::from(f.request_timeout_secs),
        max_activity_bytes: f.max_activity_bytes,
        max_members: config.groups.max_members,
    }
}

/// The node's federation services; applies the configured partner list and makes sure the node
/// has its key.
pub async fn build_federation(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<Federation>> {
    Partners::sync_config(&*store, &config.federation.partners, &*clock)
        .await
        .context("cannot apply federation.partners")?;
    let federation = Federation::new(
        store,
        clock,
        Urls::new(config.base_url.clone()),
        federation_settings(config),
    )?;
    federation
        .keys
        .instance_key()
        .await
        .context("cannot create or load the node's key")?;
    Ok(federation)
}

/// The application layer over `store`, built as the node builds it (the federation services of
/// [`build_federation`], the settings of the configuration): what the admin CLI acts through.
pub async fn build_app(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<App>> {
    let federation = build_federation(config, store.clone(), clock.clone()).await?;
    Ok(App::new(
        store,
        clock,
        federation,
        web_settings(config).app_settings(),
    ))
}

/// Runs a node on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn launch(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    empty: EmptyDatabase,
) -> anyhow::Result<()> {
    let store = open_store(&config, empty).await?;
    serve(config, store, Arc::new(SystemClock), listener, shutdown).await
}

/// Like [`launch`], with the store and the clock given (tests pin the clock).
pub async fn serve(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let federation = build_federation(&config, store.clone(), clock.clone()).await?;
    serve_with(config, store, clock, federation, listener, shutdown).await
}

/// Like [`serve`], with the federation services given (tests keep a handle on them).
pub async fn serve_with(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    federation: Arc<Federation>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = web_settings(&config);
    let app = App::new(
        store.clone(),
        clock.clone(),
        federation.clone(),
        settings.app_settings(),
    );
    let state = AppState::new(app, settings);
    let delivery = federation.start_delivery(Some(caremesh_app::intents::Renderer::new(
        state.app.clone(),
    )))?;
    // Inbound activities recorded but not applied (the node stopped in between, or its store
    // failed) are applied now and then every few seconds.
    let replay = tokio::spawn(replay_inbox(state.app.clone()));
    let app = caremesh_web::router(state);
    let addr = listener.local_addr().ok();
    tracing::info!(
        ?addr,
        base_url = %config.base_url,
        database = store.backend(),
        hospital = %config.hospital_name,
        "caremesh node listening"
    );
    let housekeeping = tokio::spawn(housekeeping(store, clock));
    http::serve(listener, app, http_limits(&config), shutdown).await;
    housekeeping.abort();
    replay.abort();
    delivery.abort();
    tracing::info!("caremesh node stopped");
    Ok(())
}

/// The connection limits of the HTTP server, from the configuration.
pub fn http_limits(config: &Config) -> http::Limits {
    http::Limits {
        max_connections: usize::try_from(config.http.max_connections).unwrap_or(usize::MAX),
        header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs.into()),
        body_idle_timeout: Duration::from_secs(config.http.body_idle_timeout_secs.into()),
    }
}

/// Periodic clean-up: expired sessions.
async fn housekeeping(store: Arc<dyn Store>, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(Duration::from_secs(15 * 60));
    loop {
        tick.tick().await;
        match store.purge_expired_sessions(clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
        }
        // A reply whose question was deleted before it arrived waits for nothing.
        match store
            .purge_waiting(clock.now().plus_secs(-WAITING_KEPT_SECS))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(activities = n, "activities that waited too long removed"),
            Err(e) => tracing::warn!(error = %e, "could not remove waiting activities"),
        }
    }
}

/// Applies what the inbox recorded but did not apply, at start and every 15 seconds.
async fn replay_inbox(app: Arc<caremesh_app::App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        loop {
            match caremesh_app::inbound::replay(&app, 100).await {
                Ok(r) if r.applied + r.failed == 0 => break,
                Ok(r) => {
                    tracing::info!(
                        applied = r.applied,
                        failed = r.failed,
                        "inbound activities recorded earlier were applied"
                    );
                    if r.applied == 0 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot apply recorded inbound activities");
                    break;
                }
            }
        }
    }
}

/// How long an activity waits for the post it refers to (deliveries are retried for 72 hours).
const WAITING_KEPT_SECS: i64 = 7 * 24 * 3600;

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn names(dir: &str) -> Vec<String> {
        let path = format!("{}/../../migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut v: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn migrations_are_paired() {
        let sqlite = names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite,
            names("postgres"),
            "both folders must hold the same file names"
        );
        for n in &sqlite {
            let (num, rest) = n.split_once('_').unwrap();
            assert!(
                num.len() == 4 && num.chars().all(|c| c.is_ascii_digit()),
                "{n}"
            );
            assert!(rest.ends_with(".sql"), "{n}");
        }
    }
}
