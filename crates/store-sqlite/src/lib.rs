//! The SQLite backend of the Caremesh store, the embedded default: one file under the node's data
//! directory, WAL journal, `synchronous=NORMAL`, a busy timeout, foreign keys on, reads through a
//! memory map.
//!
//! The queries are shared with PostgreSQL (`caremesh-store-sql`). Writes run in `BEGIN IMMEDIATE`
//! transactions so that two writers queue on the busy timeout instead of failing on lock upgrade.
//!
//! Failed writes: when a `COMMIT` (or a statement) fails with `SQLITE_FULL` or an I/O error, SQLite
//! rolls the whole transaction back itself. sqlx 0.8 does not notice: its own count of open
//! transactions on the connection drops only when its `ROLLBACK` succeeds, and that `ROLLBACK` now
//! fails ("no transaction is active"). Such a connection, given back to the pool, refuses every
//! later `BEGIN IMMEDIATE` ("attempted to call begin_with at non-zero transaction depth"), so the
//! node would never write again. The pool therefore closes any connection that comes back with a
//! transaction still counted (`transaction_left_open`); a new one replaces it. The store's own
//! readers (below) never begin a transaction, and keep reading while the disk is full.
//!
//! Readiness: a write transaction that does not commit tells the store's [`WriteHealth`]
//! ([`WriteTx`]); after one, [`Store::ready`] tries a probe write.
//!
//! Performance notes, measured with `feed-bench`: every sqlx SQLite connection runs on a thread
//! of its own, so each query is a hand-off between threads, and sqlx's pool adds a ping (another
//! hand-off) whenever a connection goes back to it. The hot reads (sessions, groups, feeds)
//! therefore use the store's own reader connections (`database.max_connections` of them, beside
//! the pool). Statistics are kept without STAT4 samples (see [`SqliteStore::analyze`]).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use caremesh_store::WriteHealth;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteSynchronous, SqliteTransactionManager,
};
use sqlx::{ConnectOptions as _, Connection as _, SqlitePool, TransactionManager as _};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// Connections for the hot reads (feeds, sessions), outside the pool: sqlx's pool pings a
    /// connection's thread every time one is given back, a second hand-off per query. Empty for
    /// in-memory databases, whose every connection would be a database of its own.
    readers: Vec<tokio::sync::Mutex<SqliteConnection>>,
    next_reader: AtomicUsize,
    health: WriteHealth,
}

/// A write transaction (`BEGIN IMMEDIATE`) that reports to the store's [`WriteHealth`] when it
/// ends without its commit. Dereferences to the connection, as sqlx's transaction does.
pub struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    outcome: Outcome<'a>,
}

/// Reports a transaction that ends without its commit when it is dropped.
struct Outcome<'a> {
    health: &'a WriteHealth,
    committed: bool,
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.health.not_committed();
        }
    }
}

impl WriteTx<'_> {
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.outcome.committed = true;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// A connection to read with: one of the store's own readers, or one from the pool.
pub enum SqliteReader<'a> {
    Own(tokio::sync::MutexGuard<'a, SqliteConnection>),
    Pooled(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl Deref for SqliteReader<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Self::Own(c) => c,
            Self::Pooled(c) => c,
        }
    }
}

impl DerefMut for SqliteReader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Own(c) => c,
            Self::Pooled(c) => c,
        }
    }
}

/// Options for opening the database.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// `sqlite://path/to/file.db` or `sqlite::memory:`.
    pub url: String,
    pub max_connections: u32,
}

impl SqliteStore {
    /// Opens (creating if missing) the database. Does not migrate; call [`SqliteStore::migrate`].
    pub async fn connect(opts: &SqliteOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(&opts.url)
            .map_err(StoreError::other)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Reads go through the OS page cache by memory map instead of a read() per page, and
            // each connection keeps 8 MiB of hot pages (the feed's index and newest posts).
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-8192");
        let in_memory = opts.url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // Every connection to `:memory:` is its own database: keep exactly one.
            .max_connections(if in_memory {
                1
            } else {
                opts.max_connections.max(1)
            })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .acquire_timeout(Duration::from_secs(15))
            // sqlx pings every connection it hands out by default; an embedded database cannot
            // hang up, and the ping is a round trip to the connection's thread on every query.
            .test_before_acquire(false)
            .after_release(|conn, _| {
                Box::pin(async move { Ok(!transaction_left_open(conn).await?) })
            })
            .connect_with(connect.clone())
            .await
            .map_err(StoreError::other)?;
        let mut readers = Vec::new();
        if !in_memory {
            for _ in 0..opts.max_connections.max(1) {
                let conn = connect.connect().await.map_err(StoreError::other)?;
                readers.push(tokio::sync::Mutex::new(conn));
            }
        }
        Ok(Self {
            pool,
            readers,
            next_reader: AtomicUsize::new(0),
            health: WriteHealth::default(),
        })
    }

    /// A connection for a read: a free reader if there is one, else the next one in turn.
    async fn reader(&self) -> Result<SqliteReader<'_>> {
        if self.readers.is_empty() {
            return Ok(SqliteReader::Pooled(
                self.pool.acquire().await.map_err(db_err)?,
            ));
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].try_lock() {
                return Ok(SqliteReader::Own(guard));
            }
        }
        Ok(SqliteReader::Own(self.readers[start % n].lock().await))
    }

    /// What the database held before migrations: nothing, a Caremesh node's tables, or another
    /// program's.
    pub async fn state(&self) -> Result<caremesh_store::DatabaseState> {
        let (tables, ours): (i64, i64) = sqlx::query_as(
            "select count(*), coalesce(sum(name = '_sqlx_migrations'), 0)
             from sqlite_master where type = 'table'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(caremesh_store::DatabaseState::from_counts(tables, ours))
    }

    /// Applies the migrations embedded in this binary that the database has not seen yet.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::other)
    }

    /// A fresh, migrated in-memory store, for tests.
    pub async fn in_memory() -> Result<Self> {
        let store = Self::connect(&SqliteOptions {
            url: "sqlite::memory:".into(),
            max_connections: 1,
        })
        .await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Writes a consistent copy of the database to `path` (`VACUUM INTO`), for backups.
    pub async fn backup_to(&self, path: &str) -> Result<()> {
        sqlx::query("vacuum into ?1")
            .bind(path)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Refreshes the query planner's statistics (after bulk loads such as the feed benchmark).
    ///
    /// Only the per-index summaries (`sqlite_stat1`) are kept. The bundled SQLite is built with
    /// STAT4, whose samples make it re-prepare a statement whenever a parameter compared with an
    /// indexed column changes value, which is on every request: measured, that halves the feed's
    /// throughput, and the summaries are enough to choose this schema's indexes.
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("analyze")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        let has_stat4: Option<String> = sqlx::query_scalar(
            "select name from sqlite_master where type = 'table' and name = 'sqlite_stat4'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if has_stat4.is_some() {
            sqlx::query("delete from sqlite_stat4")
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            // Makes every connection load the statistics again, now without the samples.
            sqlx::query("analyze sqlite_master")
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `json_group_array(json_object('a', x.a, ...))`: the rows of subquery `x` as one JSON text.
    fn json_array_sql(columns: &[&str]) -> String {
        let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', x.{c}")).collect();
        format!("json_group_array(json_object({}))", pairs.join(", "))
    }

    async fn begin_write(&self) -> Result<WriteTx<'_>> {
        match self.pool.begin_with("begin immediate").await {
            Ok(tx) => Ok(WriteTx {
                tx,
                outcome: Outcome {
                    health: &self.health,
                    committed: false,
                },
            }),
            Err(e) => {
                self.health.not_committed();
                Err(db_err(e))
            }
        }
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

/// Whether sqlx still counts a transaction on `conn` once every queued rollback has run: then SQLite
/// ended it behind sqlx's back (see the crate's notes on failed writes), and the connection must be
/// closed rather than reused. Costs nothing for a connection whose transactions all ended.
async fn transaction_left_open(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if SqliteTransactionManager::get_transaction_depth(conn) == 0 {
        return Ok(false);
    }
    // A transaction dropped before its commit queues its rollback on the connection's thread; a
    // ping waits for it to have run.
    conn.ping().await?;
    let open = SqliteTransactionManager::get_transaction_depth(conn) != 0;
    if open {
        tracing::warn!("closing a SQLite connection whose transaction the database ended");
    }
    Ok(open)
}

caremesh_store_sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, "sqlite");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use caremesh_store::GroupStore as _;
    use caremesh_store::Store;

    use super::*;

    async fn fresh() -> Option<Arc<dyn Store>> {
        Some(Arc::new(SqliteStore::in_memory().await.unwrap()))
    }

    caremesh_store::conformance_suite!(fresh);
    caremesh_store::group_conformance_suite!(fresh);
    caremesh_store::remote_group_conformance_suite!(fresh);

    #[tokio::test]
    async fn file_database_is_created_in_wal_mode_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/node.db", dir.path().display());
        let opts = SqliteOptions {
            url,
            max_connections: 4,
        };
        let store = SqliteStore::connect(&opts).await.unwrap();
        assert!(store.ready().await.is_err(), "not ready before migrating");
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.ready().await.unwrap();
        let mode: String = sqlx::query_scalar("pragma journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let backup = dir.path().join("backup.db");
        store
            .backup_to(&backup.display().to_string())
            .await
            .unwrap();
        assert!(backup.exists());
    }

    fn user(name: &str) -> caremesh_store::NewUser {
        caremesh_store::NewUser {
            username: name.into(),
            display_name: format!("{name} display"),
            role: caremesh_domain::Role::Staff,
            password_hash: "hash".into(),
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_795_420_800_000);

    /// What a failed `COMMIT` on a full disk leaves: SQLite ended the transaction, sqlx still
    /// counts it. The connection must not serve the next write.
    #[tokio::test]
    async fn a_connection_whose_transaction_sqlite_ended_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(&SqliteOptions {
            url: format!("sqlite://{}/node.db", dir.path().display()),
            max_connections: 1,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        for round in 0..3 {
            let mut tx = store.begin_write().await.unwrap();
            sqlx::raw_sql("rollback").execute(&mut *tx).await.unwrap();
            drop(tx);
            store
                .create_user(user(&format!("after-{round}")), NOW)
                .await
                .unwrap();
        }
        assert_eq!(store.count_users(None).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn readiness_fails_while_writes_fail_and_returns_without_another_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(&SqliteOptions {
            url: format!("sqlite://{}/node.db", dir.path().display()),
            // One connection, so that the pragma below reaches the one that writes.
            max_connections: 1,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store.ready().await.unwrap();

        sqlx::query("pragma query_only = on")
            .execute(&store.pool)
            .await
            .unwrap();
        let refused = store.create_user(user("while-read-only"), NOW).await;
        assert!(matches!(refused, Err(StoreError::Other(_))), "{refused:?}");
        let ready = store.ready().await;
        assert!(matches!(ready, Err(StoreError::NotReady(_))), "{ready:?}");
        assert!(
            store.ready().await.is_err(),
            "still not ready: the probe failed too"
        );

        sqlx::query("pragma query_only = off")
            .execute(&store.pool)
            .await
            .unwrap();
        store.ready().await.unwrap();
        store.create_user(user("writer"), NOW).await.unwrap();

        // A change refused half-way is no failure of the database.
        let taken = store.create_user(user("writer"), NOW).await;
        assert!(
            matches!(taken, Err(StoreError::Conflict { .. })),
            "{taken:?}"
        );
        store.ready().await.unwrap();
        assert_eq!(store.count_users(None).await.unwrap(), 1);
        let probes: i64 = sqlx::query_scalar("select count(*) from node_health")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(probes, 1, "one row, rewritten by each probe");
    }

    /// A small tmpfs on a fresh directory: a disk the test can fill. Mounting needs root; without
    /// it the test is recorded as skipped.
    struct SmallDisk {
        dir: tempfile::TempDir,
    }

    impl SmallDisk {
        fn mount(size: &str) -> Option<Self> {
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
                    caremesh_store::skip::skip(&format!(
                        "cannot mount a tmpfs (needs root): {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                    None
                }
                Err(e) => {
                    caremesh_store::skip::skip(&format!("cannot run mount: {e}"));
                    None
                }
            }
        }

        /// Writes a file until the disk is full; returns its path.
        fn fill(&self) -> std::path::PathBuf {
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
            // Lazily: the store's files may still be open.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_resume_once_a_full_disk_has_room_again() {
        let Some(disk) = SmallDisk::mount("8m") else {
            return;
        };
        let store = SqliteStore::connect(&SqliteOptions {
            url: format!("sqlite://{}/node.db", disk.dir.path().display()),
            max_connections: 2,
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let owner = store.create_user(user("owner"), NOW).await.unwrap();
        let group = store
            .create_group(
                caremesh_store::NewGroup {
                    public_id: "breast-cancer-tangshan".into(),
                    settings: caremesh_store::GroupSettings {
                        name: "乳腺癌康复".into(),
                        condition: "Breast cancer".into(),
                        condition_code: Some("C50".into()),
                        city: "唐山".into(),
                        language: caremesh_domain::Language::ZhCn,
                        description: String::new(),
                        rules: String::new(),
                        member_list: caremesh_domain::MemberListVisibility::Moderators,
                    },
                    owner: owner.id,
                },
                NOW,
            )
            .await
            .unwrap();

        let filler = disk.fill();
        // More failed writes than the pool has connections: each connection fails at least once.
        for i in 0..6 {
            let refused = store.create_user(user(&format!("full-{i}")), NOW).await;
            assert!(
                matches!(refused, Err(StoreError::Other(_))),
                "a write on a full disk fails as a storage failure: {refused:?}"
            );
        }
        // A transaction with nothing to write commits even now (the outbox workers' polls are
        // such): it must not make the store look ready.
        store.begin_write().await.unwrap().commit().await.unwrap();
        let not_ready = store.ready().await;
        assert!(
            matches!(not_ready, Err(StoreError::NotReady(_))),
            "{not_ready:?}"
        );
        // Reads go on, through the pool and through the store's own readers.
        assert_eq!(store.count_users(None).await.unwrap(), 1);
        assert_eq!(store.group_by_id(group.id).await.unwrap(), group);

        std::fs::remove_file(filler).unwrap();
        // Ready again with no other write than the readiness check's own probe.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Err(e) = store.ready().await {
            assert!(
                std::time::Instant::now() < deadline,
                "not ready 5 s after the disk has room again: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.create_user(user("after"), NOW).await.unwrap();
        for i in 0..4 {
            store
                .create_user(user(&format!("later-{i}")), NOW)
                .await
                .unwrap();
        }
        assert_eq!(store.count_users(None).await.unwrap(), 6);
        assert_eq!(store.group_by_id(group.id).await.unwrap(), group);
        store.close().await;
    }
}
