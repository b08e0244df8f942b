//! The PostgreSQL backend of the Caremesh store, for production nodes. Several stateless node
//! replicas may share one database.
//!
//! The queries are shared with SQLite (`caremesh-store-sql`); both run the same conformance suite.
//!
//! Readiness: a write transaction that does not commit tells the store's [`WriteHealth`]
//! ([`WriteTx`]); after one, [`Store::ready`] tries a probe write.
//!
//! Sessions do not outlive an outage of writes: a session opened while the database refused
//! writes (`default_transaction_read_only`, a standby) goes on refusing them after the database
//! takes them again. So while writes fail, and for a while after they work again, a write
//! transaction first asks its session whether it is read only ([`Sessions`]). Such a session is
//! closed and another one taken: each time once writes work again, at most once a second while
//! they still fail (to find out when they work). Otherwise a write costs nothing more, and a
//! change refused half-way (which counts as a failed write here) costs only that question.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caremesh_store::WriteHealth;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgTransactionManager};
use sqlx::{PgPool, Postgres, TransactionManager as _};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// How long after writes work again every write transaction still checks its session.
const SETTLE: Duration = Duration::from_secs(10);

pub struct PostgresStore {
    pool: PgPool,
    max_connections: u32,
    health: WriteHealth,
    sessions: Sessions,
}

/// When write transactions check their session (see the crate's notes). Times are milliseconds
/// since `started`.
#[derive(Debug)]
struct Sessions {
    started: Instant,
    /// The last write transaction did not commit (unlike `WriteHealth`, any commit clears it).
    last_write_failed: AtomicBool,
    /// Until when sessions are checked after writes failed and then worked again.
    settle_until_ms: AtomicU64,
    /// When a read-only session was last replaced while writes failed; 0: never.
    replaced_ms: AtomicU64,
}

impl Sessions {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_write_failed: AtomicBool::new(false),
            settle_until_ms: AtomicU64::new(0),
            replaced_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn write_failed(&self) {
        self.last_write_failed.store(true, Ordering::Relaxed);
    }

    fn committed(&self) {
        // A load first: on the usual path nothing is written.
        if self.last_write_failed.load(Ordering::Relaxed) {
            self.last_write_failed.store(false, Ordering::Relaxed);
            let settle = u64::try_from(SETTLE.as_millis()).unwrap_or(u64::MAX);
            self.settle_until_ms
                .store(self.now_ms().saturating_add(settle), Ordering::Relaxed);
        }
    }

    /// Whether a write transaction should check its session now.
    fn check(&self) -> bool {
        self.last_write_failed.load(Ordering::Relaxed) || self.settling()
    }

    fn settling(&self) -> bool {
        let until = self.settle_until_ms.load(Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    /// Whether a read-only session may be replaced now: always once writes worked again, at most
    /// once a second while they fail (claiming that second).
    fn may_replace(&self) -> bool {
        if !self.last_write_failed.load(Ordering::Relaxed) {
            return true;
        }
        let now = self.now_ms();
        let then = self.replaced_ms.load(Ordering::Relaxed);
        (then == 0 || now.saturating_sub(then) >= 1000)
            && self
                .replaced_ms
                .compare_exchange(then, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// A write transaction on a connection of the pool that reports to the store's [`WriteHealth`]
/// when it ends without its commit. Dereferences to the connection, as sqlx's transaction does,
/// and like it rolls back when dropped before its commit.
pub struct WriteTx<'a> {
    conn: PoolConnection<Postgres>,
    open: bool,
    store: &'a PostgresStore,
}

impl WriteTx<'_> {
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        PgTransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        self.store.sessions.committed();
        Ok(())
    }

    /// Ends the transaction and closes its session instead of giving it back to the pool.
    fn discard(mut self) {
        self.open = false;
        self.conn.close_on_drop();
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Queued, as sqlx's own transactions do; it runs before the connection is reused.
            PgTransactionManager::start_rollback(&mut self.conn);
            self.store.health.not_committed();
            self.store.sessions.write_failed();
        }
    }
}

impl Deref for WriteTx<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// Options for connecting to the database.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    pub max_connections: u32,
}

impl PostgresStore {
    /// Connects to the database. Does not migrate; call [`PostgresStore::migrate`].
    pub async fn connect(opts: &PostgresOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(&opts.url)
            .map_err(StoreError::other)?
            .application_name("caremesh");
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .idle_timeout(Some(Duration::from_secs(600)))
            .acquire_timeout(Duration::from_secs(15))
            // sqlx pings every connection it hands out by default: a second round trip for every
            // query. Ping only connections that sat idle long enough for a firewall or a
            // database restart to have cut them.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > Duration::from_secs(30) {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await
            .map_err(StoreError::other)?;
        Ok(Self {
            pool,
            max_connections: opts.max_connections.max(1),
            health: WriteHealth::default(),
            sessions: Sessions::new(),
        })
    }

    /// What the database's schema held before migrations: nothing, a Caremesh node's tables, or
    /// another program's.
    pub async fn state(&self) -> Result<caremesh_store::DatabaseState> {
        let (tables, ours): (i64, i64) = sqlx::query_as(
            "select count(*), count(*) filter (where table_name = '_sqlx_migrations')
             from information_schema.tables where table_schema = current_schema()",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(caremesh_store::DatabaseState::from_counts(tables, ours))
    }

    /// Applies the migrations embedded in this binary that the database has not seen yet. Several
    /// replicas starting at once are serialised by sqlx's advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::other)
    }

    /// Refreshes the query planner's statistics (after bulk loads such as the feed benchmark;
    /// autovacuum does it too, later).
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("analyze")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `json_agg(json_build_object('a', x.a, ...))::text`: the rows of subquery `x` as one JSON
    /// text (`[]` when there are none).
    fn json_array_sql(columns: &[&str]) -> String {
        let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', x.{c}")).collect();
        format!(
            "coalesce(json_agg(json_build_object({})), '[]'::json)::text",
            pairs.join(", ")
        )
    }

    /// A connection for a read.
    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.pool.acquire().await.map_err(db_err)
    }

    async fn begin_write(&self) -> Result<WriteTx<'_>> {
        let check = self.sessions.check();
        // The session taken instead of a read-only one may be read only too; after more of them
        // than the pool holds, the write goes ahead (and fails if writes still fail).
        let mut replaced = 0;
        loop {
            let mut tx = self.begin_on_any_session().await.inspect_err(|_| {
                self.health.not_committed();
                self.sessions.write_failed();
            })?;
            if !check {
                return Ok(tx);
            }
            let read_only: String =
                sqlx::query_scalar("select current_setting('transaction_read_only')")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if read_only != "on" || replaced > self.max_connections || !self.sessions.may_replace()
            {
                return Ok(tx);
            }
            tracing::info!("closing a read-only database session after writes failed");
            tx.discard();
            replaced += 1;
        }
    }

    async fn begin_on_any_session(&self) -> Result<WriteTx<'_>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        PgTransactionManager::begin(&mut conn, None::<Cow<'static, str>>)
            .await
            .map_err(db_err)?;
        Ok(WriteTx {
            conn,
            open: true,
            store: self,
        })
    }

    /// The write half of [`Store::ready`]: after a write transaction that did not commit, a probe
    /// write must.
    async fn writes_ready(&self) -> Result<()> {
        let Some(mark) = self.health.probe_needed() else {
            return Ok(());
        };
        self.probe_write()
            .await
            .map_err(|e| StoreError::NotReady(format!("the database does not take writes: {e}")))?;
        self.health.probe_committed(mark);
        Ok(())
    }

    /// Rewrites the `node_health` row in a transaction of its own.
    async fn probe_write(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into node_health (id, checked_at) values (1, $1)
             on conflict (id) do update set checked_at = excluded.checked_at",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

/// Creates an empty database with a random name on the server that `admin_url` points to and
/// returns its URL. For tests and benchmarks, which each want a database of their own.
pub async fn create_scratch_database(admin_url: &str) -> Result<String> {
    let mut url = url_without_database(admin_url);
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(StoreError::other)?;
    let name = format!(
        "caremesh_test_{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .map_err(StoreError::other)?;
    sqlx::query(&format!("create database {name}"))
        .execute(&pool)
        .await
        .map_err(db_err)?;
    pool.close().await;
    url.push_str(&name);
    Ok(url)
}

/// Drops a database made by [`create_scratch_database`] (its connections must be closed).
pub async fn drop_scratch_database(admin_url: &str, url: &str) -> Result<()> {
    let name = url.rsplit('/').next().unwrap_or_default();
    if !name.starts_with("caremesh_test_")
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StoreError::conflict(
            "not_a_scratch_database",
            "only scratch databases are dropped",
        ));
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .map_err(StoreError::other)?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&pool)
        .await
        .map_err(db_err)?;
    pool.close().await;
    Ok(())
}

/// `postgres://u:p@host:5432/db?x=y` -> `postgres://u:p@host:5432/` (query parameters dropped).
fn url_without_database(url: &str) -> String {
    let without_query = url.split('?').next().unwrap_or(url);
    match without_query.find("://") {
        Some(i) => match without_query[i + 3..].find('/') {
            Some(j) => without_query[..i + 3 + j + 1].to_owned(),
            None => format!("{without_query}/"),
        },
        None => format!("{without_query}/"),
    }
}

caremesh_store_sql::impl_sql_store!(PostgresStore, sqlx::Postgres, "postgres");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::Arc;

    use caremesh_store::Store;

    use super::*;

    /// A fresh, migrated database on the server named by `TEST_POSTGRES_URL`. Without it the
    /// test is recorded as skipped, unless `TEST_REQUIRE_POSTGRES=1` makes that a failure.
    pub async fn fresh() -> Option<Arc<dyn Store>> {
        let admin_url = caremesh_store::skip::postgres_url_or_skip()?;
        let url = create_scratch_database(&admin_url).await.unwrap();
        let store = PostgresStore::connect(&PostgresOptions {
            url,
            max_connections: 4,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        Some(Arc::new(store))
    }

    caremesh_store::conformance_suite!(fresh);
    caremesh_store::group_conformance_suite!(fresh);
    caremesh_store::remote_group_conformance_suite!(fresh);

    fn user(name: &str) -> caremesh_store::NewUser {
        caremesh_store::NewUser {
            username: name.into(),
            display_name: format!("{name} display"),
            role: caremesh_domain::Role::Staff,
            password_hash: "hash".into(),
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_795_420_800_000);

    /// A database that stops taking writes (as a standby does, or one an administrator made read
    /// only) and takes them again, without the sessions opened meanwhile being cut.
    #[tokio::test]
    async fn readiness_follows_a_database_that_refuses_writes_and_takes_them_again() {
        let Some(admin_url) = caremesh_store::skip::postgres_url_or_skip() else {
            return;
        };
        let url = create_scratch_database(&admin_url).await.unwrap();
        let name = url.rsplit('/').next().unwrap().to_owned();
        let store = PostgresStore::connect(&PostgresOptions {
            url: url.clone(),
            max_connections: 3,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store.create_user(user("before"), NOW).await.unwrap();
        store.ready().await.unwrap();

        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap();
        sqlx::query(&format!(
            "alter database {name} set default_transaction_read_only = on"
        ))
        .execute(&admin)
        .await
        .unwrap();
        sqlx::query(
            "select pg_terminate_backend(pid) from pg_stat_activity
             where datname = $1 and pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();
        // The first writes may meet the cut connections; then the new, read-only sessions.
        for i in 0..4 {
            let refused = store.create_user(user(&format!("refused-{i}")), NOW).await;
            assert!(matches!(refused, Err(StoreError::Other(_))), "{refused:?}");
        }
        let not_ready = store.ready().await;
        assert!(
            matches!(not_ready, Err(StoreError::NotReady(_))),
            "{not_ready:?}"
        );

        // Writable again, while the pool still holds the read-only sessions.
        sqlx::query(&format!(
            "alter database {name} reset default_transaction_read_only"
        ))
        .execute(&admin)
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Err(e) = store.ready().await {
            assert!(
                std::time::Instant::now() < deadline,
                "not ready 5 s after the database takes writes again: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for i in 0..6 {
            store
                .create_user(user(&format!("after-{i}")), NOW)
                .await
                .unwrap();
        }
        assert_eq!(store.count_users(None).await.unwrap(), 7);
        store.close().await;
        admin.close().await;
        drop_scratch_database(&admin_url, &url).await.unwrap();
    }

    #[test]
    fn database_name_is_stripped_from_urls() {
        assert_eq!(
            url_without_database("postgres://u:p@h:5432/db?sslmode=disable"),
            "postgres://u:p@h:5432/"
        );
        assert_eq!(
            url_without_database("postgres://h:5432"),
            "postgres://h:5432/"
        );
    }
}
