//! The SQL of the Caremesh store, written once for both backends.
//!
//! SQLite and PostgreSQL understand the same dialect for everything Caremesh asks of them (numbered
//! `$N` parameters, `returning`, `on conflict`, `cast`), so the store is one implementation,
//! expanded for each backend by [`impl_sql_store!`]. What differs (connecting, transaction mode,
//! test helpers) stays in `caremesh-store-sqlite` and `caremesh-store-postgres`. Both run the same
//! conformance suite.
//!
//! The calling crate must have in scope: `MIGRATOR` (its embedded migrations), a `begin_write`
//! method on the store returning a transaction (anything that dereferences to the connection and
//! has `commit`), a `reader` method returning a connection to read
//! with, a `writes_ready` method (the part of `Store::ready` that checks writes), a `pool` field,
//! and an associated function
//! `json_array_sql(columns: &[&str]) -> String` giving the backend's expression that aggregates
//! the rows of a subquery `x` into one JSON array text (the one place where SQLite and PostgreSQL
//! spell a function differently), plus dependencies on `sqlx`, `async-trait`, `chrono`,
//! `caremesh-domain` and `caremesh-store`.

/// Implements `caremesh_store::Store` for `$store` on the sqlx database `$db`.
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $backend:literal) => {
        use std::str::FromStr as _;

        use async_trait::async_trait;
        use caremesh_domain::{Credential, Role, Timestamp, UserId};
        use caremesh_store::{
            AccountStore, Invite, NewInvite, NewSession, NewUser, Result, Session, Store, StoreError,
            User,
        };
        use sqlx::Row as _;

        fn db_err(e: sqlx::Error) -> StoreError {
            match e {
                sqlx::Error::RowNotFound => StoreError::NotFound("row"),
                other => StoreError::other(other),
            }
        }

        fn unique_violation(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
        }

        fn count_from(n: i32) -> u32 {
            u32::try_from(n).unwrap_or(0)
        }

        fn parse_role(s: &str) -> Result<Role> {
            Role::from_str(s).map_err(StoreError::other)
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ready(&self) -> Result<()> {
                let applied: Vec<i64> =
                    sqlx::query_scalar("select version from _sqlx_migrations where success")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| StoreError::NotReady(format!("cannot read migrations: {e}")))?;
                let missing: Vec<i64> = MIGRATOR
                    .iter()
                    .map(|m| m.version)
                    .filter(|v| !applied.contains(v))
                    .collect();
                if !missing.is_empty() {
                    return Err(StoreError::NotReady(format!(
                        "migrations not applied: {missing:?}"
                    )));
                }
                self.writes_ready().await
            }
        }

        $crate::impl_account_store!($store, $db);
        $crate::impl_federation_store!($store, $db);
        $crate::impl_group_store!($store, $db);
        $crate::impl_remote_group_store!($store, $db);
    };
}

mod accounts;
mod federation;
mod groups;
#[doc(hidden)]
pub mod json;
mod remote_groups;
