//! The PostgreSQL backend of the Caremesh store, for production nodes. Several stateless node
//! replicas may share one database.
//!
//! The queries are shared with SQLite (`caremesh-store-sql`); both run the same conformance suite.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
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
        Ok(Self { pool })
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

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
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
