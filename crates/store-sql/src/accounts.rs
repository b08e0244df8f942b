//! Accounts, credentials, sessions and invites.

/// Implements `caremesh_store::AccountStore` for `$store`; expanded by `impl_sql_store!`.
#[doc(hidden)]
#[macro_export]
macro_rules! impl_account_store {
    ($store:ty, $db:ty) => {
        mod account_sql {
            use super::*;

            fn user_from_row(row: &<$db as sqlx::Database>::Row) -> Result<User> {
                Ok(User {
                    id: UserId(row.try_get("id").map_err(db_err)?),
                    username: row.try_get("username").map_err(db_err)?,
                    display_name: row.try_get("display_name").map_err(db_err)?,
                    role: parse_role(row.try_get("role").map_err(db_err)?)?,
                    password_hash: row.try_get("password_hash").map_err(db_err)?,
                    disabled: row.try_get("disabled").map_err(db_err)?,
                    created_at: Timestamp::from_millis(row.try_get("created_at").map_err(db_err)?),
                    updated_at: Timestamp::from_millis(row.try_get("updated_at").map_err(db_err)?),
                })
            }

            fn credential_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Credential> {
                let checked_on: String = row.try_get("checked_on").map_err(db_err)?;
                Ok(Credential {
                    title: row.try_get("title").map_err(db_err)?,
                    specialty: row.try_get("specialty").map_err(db_err)?,
                    licence_number: row.try_get("licence_number").map_err(db_err)?,
                    checked_on: chrono::NaiveDate::parse_from_str(&checked_on, "%Y-%m-%d")
                        .map_err(StoreError::other)?,
                    issued_at: Timestamp::from_millis(row.try_get("issued_at").map_err(db_err)?),
                    valid_until: row
                        .try_get::<Option<i64>, _>("valid_until")
                        .map_err(db_err)?
                        .map(Timestamp::from_millis),
                    revoked_at: row
                        .try_get::<Option<i64>, _>("revoked_at")
                        .map_err(db_err)?
                        .map(Timestamp::from_millis),
                })
            }

            fn invite_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Invite> {
                Ok(Invite {
                    id: row.try_get("id").map_err(db_err)?,
                    token_hash: row.try_get("token_hash").map_err(db_err)?,
                    role: parse_role(row.try_get("role").map_err(db_err)?)?,
                    label: row.try_get("label").map_err(db_err)?,
                    created_by: UserId(row.try_get("created_by").map_err(db_err)?),
                    created_at: Timestamp::from_millis(row.try_get("created_at").map_err(db_err)?),
                    expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(db_err)?),
                    max_uses: count_from(row.try_get::<i32, _>("max_uses").map_err(db_err)?),
                    uses: count_from(row.try_get::<i32, _>("uses").map_err(db_err)?),
                    revoked_at: row
                        .try_get::<Option<i64>, _>("revoked_at")
                        .map_err(db_err)?
                        .map(Timestamp::from_millis),
                })
            }

            const USER_COLUMNS: &str =
                "id, username, display_name, role, password_hash, disabled, created_at, updated_at";

            async fn insert_user(
                conn: &mut <$db as sqlx::Database>::Connection,
                new: &NewUser,
                role: Role,
                now: Timestamp,
            ) -> Result<User> {
                let row = sqlx::query(
                    "insert into users (username, display_name, role, password_hash, disabled, created_at, updated_at)
                     values ($1, $2, $3, $4, $6, $5, $5)
                     returning id, username, display_name, role, password_hash, disabled, created_at, updated_at",
                )
                .bind(&new.username)
                .bind(&new.display_name)
                .bind(role.as_str())
                .bind(&new.password_hash)
                .bind(now.as_millis())
                .bind(false)
                .fetch_one(conn)
                .await
                .map_err(|e| {
                    if unique_violation(&e) {
                        StoreError::conflict(
                            "username_taken",
                            format!("the username {:?} is already taken", new.username),
                        )
                    } else {
                        db_err(e)
                    }
                })?;
                user_from_row(&row)
            }

            #[async_trait]
            impl AccountStore for $store {
                async fn create_user(&self, new: NewUser, now: Timestamp) -> Result<User> {
                    let mut tx = self.begin_write().await?;
                    let user = insert_user(&mut tx, &new, new.role, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(user)
                }

                async fn user_by_id(&self, id: UserId) -> Result<User> {
                    let sql = format!("select {USER_COLUMNS} from users where id = $1");
                    let row = sqlx::query(&sql)
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("account"))?;
                    user_from_row(&row)
                }

                async fn user_by_username(&self, username: &str) -> Result<User> {
                    let sql = format!("select {USER_COLUMNS} from users where username = $1");
                    let row = sqlx::query(&sql)
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("account"))?;
                    user_from_row(&row)
                }

                async fn list_users(
                    &self,
                    role: Option<Role>,
                    after: Option<UserId>,
                    limit: u32,
                ) -> Result<Vec<User>> {
                    let sql = format!(
                        "select {USER_COLUMNS} from users
                         where (cast($1 as text) is null or role = $1) and id > $2
                         order by id limit $3"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(role.map(Role::as_str))
                        .bind(after.map_or(0, |u| u.0))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(user_from_row).collect()
                }

                async fn count_users(&self, role: Option<Role>) -> Result<u64> {
                    let n: i64 =
                        sqlx::query_scalar("select count(*) from users where (cast($1 as text) is null or role = $1)")
                            .bind(role.map(Role::as_str))
                            .fetch_one(&self.pool)
                            .await
                            .map_err(db_err)?;
                    Ok(u64::try_from(n).unwrap_or(0))
                }

                async fn set_password(&self, id: UserId, password_hash: &str, now: Timestamp) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let done =
                        sqlx::query("update users set password_hash = $1, updated_at = $2 where id = $3")
                            .bind(password_hash)
                            .bind(now.as_millis())
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound("account"));
                    }
                    sqlx::query("delete from sessions where user_id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)
                }

                async fn set_disabled(&self, id: UserId, disabled: bool, now: Timestamp) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query("update users set disabled = $1, updated_at = $2 where id = $3")
                        .bind(disabled)
                        .bind(now.as_millis())
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound("account"));
                    }
                    if disabled {
                        sqlx::query("delete from sessions where user_id = $1")
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    tx.commit().await.map_err(db_err)
                }

                async fn set_credential(
                    &self,
                    user: UserId,
                    c: &Credential,
                    announce: Vec<caremesh_store::NewOutboxEntry>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let role: Option<String> = sqlx::query_scalar("select role from users where id = $1")
                        .bind(user.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    match role.as_deref() {
                        None => return Err(StoreError::NotFound("account")),
                        Some("doctor") => {}
                        Some(_) => {
                            return Err(StoreError::conflict(
                                "not_a_doctor",
                                "credentials can only be recorded for doctors",
                            ));
                        }
                    }
                    sqlx::query(
                        "insert into doctor_credentials
                           (user_id, title, specialty, licence_number, checked_on, issued_at, valid_until, revoked_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8)
                         on conflict (user_id) do update set
                           title = excluded.title, specialty = excluded.specialty,
                           licence_number = excluded.licence_number, checked_on = excluded.checked_on,
                           issued_at = excluded.issued_at, valid_until = excluded.valid_until,
                           revoked_at = excluded.revoked_at",
                    )
                    .bind(user.0)
                    .bind(&c.title)
                    .bind(&c.specialty)
                    .bind(&c.licence_number)
                    .bind(c.checked_on.format("%Y-%m-%d").to_string())
                    .bind(c.issued_at.as_millis())
                    .bind(c.valid_until.map(Timestamp::as_millis))
                    .bind(c.revoked_at.map(Timestamp::as_millis))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    super::federation_sql::enqueue_in(&mut tx, &announce, c.issued_at).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn credential(&self, user: UserId) -> Result<Option<Credential>> {
                    let row = sqlx::query("select * from doctor_credentials where user_id = $1")
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(credential_from_row).transpose()
                }

                async fn revoke_credential(
                    &self,
                    user: UserId,
                    now: Timestamp,
                    announce: Vec<caremesh_store::NewOutboxEntry>,
                ) -> Result<Credential> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "update doctor_credentials set revoked_at = coalesce(revoked_at, $1)
                         where user_id = $2 returning *",
                    )
                    .bind(now.as_millis())
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("credential"))?;
                    let c = credential_from_row(&row)?;
                    super::federation_sql::enqueue_in(&mut tx, &announce, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(c)
                }

                async fn create_session(&self, s: NewSession) -> Result<()> {
                    sqlx::query(
                        "insert into sessions (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
                    )
                    .bind(&s.token_hash)
                    .bind(s.user_id.0)
                    .bind(s.created_at.as_millis())
                    .bind(s.expires_at.as_millis())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn session_user(&self, token_hash: &str, now: Timestamp) -> Result<(Session, User)> {
                    let row = sqlx::query(
                        "select s.token_hash, s.created_at as s_created_at, s.expires_at,
                                u.id, u.username, u.display_name, u.role, u.password_hash, u.disabled,
                                u.created_at, u.updated_at
                         from sessions s join users u on u.id = s.user_id
                         where s.token_hash = $1 and s.expires_at > $2 and not u.disabled",
                    )
                    .bind(token_hash)
                    .bind(now.as_millis())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("session"))?;
                    let user = user_from_row(&row)?;
                    let session = Session {
                        token_hash: row.try_get("token_hash").map_err(db_err)?,
                        user_id: user.id,
                        created_at: Timestamp::from_millis(row.try_get("s_created_at").map_err(db_err)?),
                        expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(db_err)?),
                    };
                    Ok((session, user))
                }

                async fn delete_session(&self, token_hash: &str) -> Result<bool> {
                    let done = sqlx::query("delete from sessions where token_hash = $1")
                        .bind(token_hash)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64> {
                    let done = sqlx::query("delete from sessions where expires_at <= $1")
                        .bind(now.as_millis())
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected())
                }

                async fn create_invite(&self, n: NewInvite) -> Result<Invite> {
                    let row = sqlx::query(
                        "insert into invites (token_hash, role, label, created_by, created_at, expires_at, max_uses, uses)
                         values ($1, $2, $3, $4, $5, $6, $7, 0) returning *",
                    )
                    .bind(&n.token_hash)
                    .bind(n.role.as_str())
                    .bind(&n.label)
                    .bind(n.created_by.0)
                    .bind(n.created_at.as_millis())
                    .bind(n.expires_at.as_millis())
                    .bind(i32::try_from(n.max_uses).unwrap_or(i32::MAX))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| {
                        if unique_violation(&e) {
                            StoreError::conflict("invite_exists", "an invite with this token exists")
                        } else {
                            db_err(e)
                        }
                    })?;
                    invite_from_row(&row)
                }

                async fn invite_by_token_hash(&self, token_hash: &str) -> Result<Invite> {
                    let row = sqlx::query("select * from invites where token_hash = $1")
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("invite"))?;
                    invite_from_row(&row)
                }

                async fn invite_by_id(&self, id: i64) -> Result<Invite> {
                    let row = sqlx::query("select * from invites where id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("invite"))?;
                    invite_from_row(&row)
                }

                async fn list_invites(&self, before: Option<i64>, limit: u32) -> Result<Vec<Invite>> {
                    let rows = sqlx::query("select * from invites where id < $1 order by id desc limit $2")
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(invite_from_row).collect()
                }

                async fn revoke_invite(&self, id: i64, now: Timestamp) -> Result<Invite> {
                    let row = sqlx::query(
                        "update invites set revoked_at = coalesce(revoked_at, $1) where id = $2 returning *",
                    )
                    .bind(now.as_millis())
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("invite"))?;
                    invite_from_row(&row)
                }

                async fn redeem_invite(&self, token_hash: &str, new: NewUser, now: Timestamp) -> Result<User> {
                    let mut tx = self.begin_write().await?;
                    let role: Option<String> = sqlx::query_scalar(
                        "update invites set uses = uses + 1
                         where token_hash = $1 and revoked_at is null and expires_at > $2 and uses < max_uses
                         returning role",
                    )
                    .bind(token_hash)
                    .bind(now.as_millis())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let Some(role) = role else {
                        let exists: Option<i64> =
                            sqlx::query_scalar("select id from invites where token_hash = $1")
                                .bind(token_hash)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        return Err(match exists {
                            None => StoreError::NotFound("invite"),
                            Some(_) => StoreError::conflict(
                                "invite_unusable",
                                "this invite has expired, been used up or been revoked",
                            ),
                        });
                    };
                    let user = insert_user(&mut tx, &new, parse_role(&role)?, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(user)
                }
            }
        }
    };
}
