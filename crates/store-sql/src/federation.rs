//! Keys, partners, remote actors, the inbox and the outbox.

/// Implements `caremesh_store::FederationStore` for `$store`; expanded by `impl_sql_store!`.
#[doc(hidden)]
#[macro_export]
macro_rules! impl_federation_store {
    ($store:ty, $db:ty) => {
        mod federation_sql {
            use caremesh_store::{
                DeliveryResult, FederatedObject, FederationStore, IncomingActivity, IngestOutcome,
                LocalKey, NewOutboxEntry, ObjectChange, OutboxEntry, Partner, PeerQueue,
                RemoteActor, RemoteKey, StoredActivity,
            };

            use super::*;

            type Row = <$db as sqlx::Database>::Row;
            type Conn = <$db as sqlx::Database>::Connection;

            fn ts(v: i64) -> Timestamp {
                Timestamp::from_millis(v)
            }

            fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
                v.map(Timestamp::from_millis)
            }

            fn local_key_from_row(row: &Row) -> Result<LocalKey> {
                Ok(LocalKey {
                    key_id: row.try_get("key_id").map_err(db_err)?,
                    actor_id: row.try_get("actor_id").map_err(db_err)?,
                    private_key_pem: row.try_get("private_key_pem").map_err(db_err)?,
                    public_key_pem: row.try_get("public_key_pem").map_err(db_err)?,
                    created_at: ts(row.try_get("created_at").map_err(db_err)?),
                    retired_at: opt_ts(row.try_get("retired_at").map_err(db_err)?),
                })
            }

            fn outbox_from_row(row: &Row) -> Result<OutboxEntry> {
                Ok(OutboxEntry {
                    id: row.try_get("id").map_err(db_err)?,
                    peer: row.try_get("peer").map_err(db_err)?,
                    inbox_url: row.try_get("inbox_url").map_err(db_err)?,
                    activity_id: row.try_get("activity_id").map_err(db_err)?,
                    payload: row.try_get("payload").map_err(db_err)?,
                    intent: row.try_get::<String, _>("kind").map_err(db_err)? == "intent",
                    created_at: ts(row.try_get("created_at").map_err(db_err)?),
                    attempts: count_from(row.try_get("attempts").map_err(db_err)?),
                    last_error: row.try_get("last_error").map_err(db_err)?,
                    last_attempt_at: opt_ts(row.try_get("last_attempt_at").map_err(db_err)?),
                    parked_at: opt_ts(row.try_get("parked_at").map_err(db_err)?),
                })
            }

            const OUTBOX_COLUMNS: &str = "o.id, o.peer, p.inbox_url, o.activity_id, o.payload, \
                o.kind, o.created_at, o.attempts, o.last_error, o.last_attempt_at, o.parked_at";

            pub(super) async fn enqueue_in(
                conn: &mut Conn,
                entries: &[NewOutboxEntry],
                now: Timestamp,
            ) -> Result<()> {
                for e in entries {
                    // `do nothing` takes no lock on an existing queue, which delivery workers
                    // update all the time; the inbox URL is rewritten only when it changed.
                    sqlx::query(
                        "insert into outbox_peers (peer, inbox_url, next_attempt_at, consecutive_failures)
                         values ($1, $2, $3, 0)
                         on conflict (peer) do nothing",
                    )
                    .bind(&e.peer)
                    .bind(&e.inbox_url)
                    .bind(now.as_millis())
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    sqlx::query(
                        "update outbox_peers set inbox_url = $1 where peer = $2 and inbox_url <> $1",
                    )
                    .bind(&e.inbox_url)
                    .bind(&e.peer)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    sqlx::query(
                        "insert into outbox (peer, activity_id, payload, kind, created_at, attempts)
                         values ($1, $2, $3, $4, $5, 0)",
                    )
                    .bind(&e.peer)
                    .bind(&e.activity_id)
                    .bind(&e.payload)
                    .bind(if e.intent { "intent" } else { "activity" })
                    .bind(now.as_millis())
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                }
                Ok(())
            }

            const ACTIVITY_COLUMNS: &str = "seq, activity_id, activity_type, actor_id, peer, \
                received_at, applied_at, apply_attempts, apply_error, payload";

            fn stored_activities(rows: &[Row]) -> Result<Vec<StoredActivity>> {
                rows.iter()
                    .map(|row| {
                        Ok(StoredActivity {
                            seq: row.try_get("seq").map_err(db_err)?,
                            activity_id: row.try_get("activity_id").map_err(db_err)?,
                            activity_type: row.try_get("activity_type").map_err(db_err)?,
                            actor_id: row.try_get("actor_id").map_err(db_err)?,
                            peer: row.try_get("peer").map_err(db_err)?,
                            received_at: ts(row.try_get("received_at").map_err(db_err)?),
                            applied_at: opt_ts(row.try_get("applied_at").map_err(db_err)?),
                            apply_attempts: count_from(
                                row.try_get("apply_attempts").map_err(db_err)?,
                            ),
                            apply_error: row.try_get("apply_error").map_err(db_err)?,
                            payload: row.try_get("payload").map_err(db_err)?,
                        })
                    })
                    .collect()
            }

            #[async_trait]
            impl FederationStore for $store {
                async fn local_keys(&self, actor_id: &str) -> Result<Vec<LocalKey>> {
                    let rows = sqlx::query(
                        "select * from local_keys where actor_id = $1
                         order by created_at desc, key_id desc",
                    )
                    .bind(actor_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(local_key_from_row).collect()
                }

                async fn add_local_key(
                    &self,
                    key: LocalKey,
                    announce: Vec<NewOutboxEntry>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "update local_keys set retired_at = $1
                         where actor_id = $2 and retired_at is null",
                    )
                    .bind(key.created_at.as_millis())
                    .bind(&key.actor_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query(
                        "insert into local_keys
                           (key_id, actor_id, private_key_pem, public_key_pem, created_at, retired_at)
                         values ($1, $2, $3, $4, $5, null)",
                    )
                    .bind(&key.key_id)
                    .bind(&key.actor_id)
                    .bind(&key.private_key_pem)
                    .bind(&key.public_key_pem)
                    .bind(key.created_at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        if unique_violation(&e) {
                            StoreError::conflict("key_exists", "a key with this id exists")
                        } else {
                            db_err(e)
                        }
                    })?;
                    enqueue_in(&mut tx, &announce, key.created_at).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn ensure_local_key(&self, key: LocalKey) -> Result<LocalKey> {
                    let mut tx = self.begin_write().await?;
                    let existing = sqlx::query(
                        "select * from local_keys where actor_id = $1 and retired_at is null
                         order by created_at desc limit 1",
                    )
                    .bind(&key.actor_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if let Some(row) = existing {
                        let k = local_key_from_row(&row)?;
                        tx.commit().await.map_err(db_err)?;
                        return Ok(k);
                    }
                    sqlx::query(
                        "insert into local_keys
                           (key_id, actor_id, private_key_pem, public_key_pem, created_at, retired_at)
                         values ($1, $2, $3, $4, $5, null)
                         on conflict (key_id) do nothing",
                    )
                    .bind(&key.key_id)
                    .bind(&key.actor_id)
                    .bind(&key.private_key_pem)
                    .bind(&key.public_key_pem)
                    .bind(key.created_at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let row = sqlx::query(
                        "select * from local_keys where actor_id = $1 and retired_at is null
                         order by created_at desc limit 1",
                    )
                    .bind(&key.actor_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let k = local_key_from_row(&row)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(k)
                }

                async fn list_partners(&self) -> Result<Vec<Partner>> {
                    let rows = sqlx::query("select * from partners order by authority")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(Partner {
                                authority: row.try_get("authority").map_err(db_err)?,
                                base_url: row.try_get("base_url").map_err(db_err)?,
                                added_at: ts(row.try_get("added_at").map_err(db_err)?),
                                source: row.try_get("source").map_err(db_err)?,
                            })
                        })
                        .collect()
                }

                async fn add_partner(&self, p: Partner) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    let existed: Option<String> =
                        sqlx::query_scalar("select authority from partners where authority = $1")
                            .bind(&p.authority)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    sqlx::query(
                        "insert into partners (authority, base_url, added_at, source)
                         values ($1, $2, $3, $4)
                         on conflict (authority) do update set base_url = excluded.base_url,
                           source = excluded.source",
                    )
                    .bind(&p.authority)
                    .bind(&p.base_url)
                    .bind(p.added_at.as_millis())
                    .bind(&p.source)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(existed.is_none())
                }

                async fn remove_partner(&self, authority: &str) -> Result<()> {
                    let done = sqlx::query("delete from partners where authority = $1")
                        .bind(authority)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound("partner"));
                    }
                    Ok(())
                }

                async fn remote_key(&self, key_id: &str) -> Result<Option<RemoteKey>> {
                    let row = sqlx::query("select * from remote_keys where key_id = $1")
                        .bind(key_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.map(|row| {
                        Ok(RemoteKey {
                            key_id: row.try_get("key_id").map_err(db_err)?,
                            actor_id: row.try_get("actor_id").map_err(db_err)?,
                            public_key_pem: row.try_get("public_key_pem").map_err(db_err)?,
                            fetched_at: ts(row.try_get("fetched_at").map_err(db_err)?),
                        })
                    })
                    .transpose()
                }

                async fn save_remote_actor(
                    &self,
                    a: RemoteActor,
                    keys: Vec<RemoteKey>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "insert into remote_actors
                           (actor_id, actor_type, inbox, shared_inbox, document, fetched_at)
                         values ($1, $2, $3, $4, $5, $6)
                         on conflict (actor_id) do update set actor_type = excluded.actor_type,
                           inbox = excluded.inbox, shared_inbox = excluded.shared_inbox,
                           document = excluded.document, fetched_at = excluded.fetched_at",
                    )
                    .bind(&a.actor_id)
                    .bind(&a.actor_type)
                    .bind(&a.inbox)
                    .bind(&a.shared_inbox)
                    .bind(&a.document)
                    .bind(a.fetched_at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query("delete from remote_keys where actor_id = $1")
                        .bind(&a.actor_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    for k in &keys {
                        sqlx::query(
                            "insert into remote_keys (key_id, actor_id, public_key_pem, fetched_at)
                             values ($1, $2, $3, $4)
                             on conflict (key_id) do update set actor_id = excluded.actor_id,
                               public_key_pem = excluded.public_key_pem,
                               fetched_at = excluded.fetched_at",
                        )
                        .bind(&k.key_id)
                        .bind(&k.actor_id)
                        .bind(&k.public_key_pem)
                        .bind(k.fetched_at.as_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    tx.commit().await.map_err(db_err)
                }

                async fn remote_actor(&self, actor_id: &str) -> Result<Option<RemoteActor>> {
                    let row = sqlx::query("select * from remote_actors where actor_id = $1")
                        .bind(actor_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.map(|row| {
                        Ok(RemoteActor {
                            actor_id: row.try_get("actor_id").map_err(db_err)?,
                            actor_type: row.try_get("actor_type").map_err(db_err)?,
                            inbox: row.try_get("inbox").map_err(db_err)?,
                            shared_inbox: row.try_get("shared_inbox").map_err(db_err)?,
                            document: row.try_get("document").map_err(db_err)?,
                            fetched_at: ts(row.try_get("fetched_at").map_err(db_err)?),
                        })
                    })
                    .transpose()
                }

                async fn ingest(&self, batch: Vec<IncomingActivity>) -> Result<Vec<IngestOutcome>> {
                    let mut tx = self.begin_write().await?;
                    let mut outcomes = Vec::with_capacity(batch.len());
                    for a in &batch {
                        let object_id = match &a.object {
                            Some(ObjectChange::Upsert { object_id, .. })
                            | Some(ObjectChange::Delete { object_id, .. }) => Some(object_id),
                            None => None,
                        };
                        let seq: Option<i64> = sqlx::query_scalar(
                            "insert into inbox_activities
                               (activity_id, activity_type, actor_id, object_id, peer, payload, received_at)
                             values ($1, $2, $3, $4, $5, $6, $7)
                             on conflict (activity_id) do nothing
                             returning seq",
                        )
                        .bind(&a.activity_id)
                        .bind(&a.activity_type)
                        .bind(&a.actor_id)
                        .bind(object_id)
                        .bind(&a.peer)
                        .bind(&a.payload)
                        .bind(a.received_at.as_millis())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        let Some(seq) = seq else {
                            let (seq, applied_at): (i64, Option<i64>) = sqlx::query_as(
                                "select seq, applied_at from inbox_activities
                                 where activity_id = $1",
                            )
                            .bind(&a.activity_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            outcomes.push(IngestOutcome::Duplicate {
                                seq,
                                applied: applied_at.is_some(),
                            });
                            continue;
                        };
                        match &a.object {
                            None => {}
                            Some(ObjectChange::Upsert {
                                object_id,
                                object_type,
                                attributed_to,
                                document,
                                published_at,
                                updated_at,
                            }) => {
                                // Never over a tombstone, never by someone else, never older.
                                sqlx::query(
                                    "insert into federated_objects
                                       (object_id, object_type, attributed_to, document,
                                        published_at, updated_at, deleted_at, last_activity_id)
                                     values ($1, $2, $3, $4, $5, $6, null, $7)
                                     on conflict (object_id) do update set
                                       object_type = excluded.object_type,
                                       document = excluded.document,
                                       updated_at = excluded.updated_at,
                                       last_activity_id = excluded.last_activity_id
                                     where federated_objects.deleted_at is null
                                       and federated_objects.attributed_to = excluded.attributed_to
                                       and coalesce(federated_objects.updated_at, federated_objects.published_at, 0)
                                           <= coalesce(excluded.updated_at, excluded.published_at, 0)",
                                )
                                .bind(object_id)
                                .bind(object_type)
                                .bind(attributed_to)
                                .bind(document)
                                .bind(published_at.map(Timestamp::as_millis))
                                .bind(updated_at.map(Timestamp::as_millis))
                                .bind(&a.activity_id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            }
                            Some(ObjectChange::Delete {
                                object_id,
                                attributed_to,
                            }) => {
                                sqlx::query(
                                    "insert into federated_objects
                                       (object_id, object_type, attributed_to, document,
                                        published_at, updated_at, deleted_at, last_activity_id)
                                     values ($1, 'Tombstone', $2, null, null, null, $3, $4)
                                     on conflict (object_id) do update set
                                       object_type = 'Tombstone',
                                       document = null,
                                       deleted_at = coalesce(federated_objects.deleted_at, excluded.deleted_at),
                                       last_activity_id = excluded.last_activity_id
                                     where federated_objects.attributed_to = excluded.attributed_to",
                                )
                                .bind(object_id)
                                .bind(attributed_to)
                                .bind(a.received_at.as_millis())
                                .bind(&a.activity_id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            }
                        }
                        outcomes.push(IngestOutcome::Stored { seq });
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(outcomes)
                }

                async fn activities_about(&self, object_id: &str) -> Result<Vec<StoredActivity>> {
                    let rows = sqlx::query(&format!(
                        "select {ACTIVITY_COLUMNS} from inbox_activities
                         where object_id = $1 order by seq"
                    ))
                    .bind(object_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    stored_activities(&rows)
                }

                async fn received_activities(
                    &self,
                    after_seq: i64,
                    limit: u32,
                ) -> Result<Vec<StoredActivity>> {
                    let rows = sqlx::query(&format!(
                        "select {ACTIVITY_COLUMNS} from inbox_activities
                         where seq > $1 order by seq limit $2"
                    ))
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    stored_activities(&rows)
                }

                async fn mark_applied(&self, seq: i64, now: Timestamp) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "update inbox_activities set applied_at = $1
                         where seq = $2 and applied_at is null",
                    )
                    .bind(now.as_millis())
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)
                }

                async fn record_apply_failure(
                    &self,
                    seq: i64,
                    error: &str,
                    _now: Timestamp,
                ) -> Result<u32> {
                    let mut tx = self.begin_write().await?;
                    let error: String = error.chars().take(1000).collect();
                    let attempts: Option<i32> = sqlx::query_scalar(
                        "update inbox_activities
                         set apply_attempts = apply_attempts + 1, apply_error = $1
                         where seq = $2 and applied_at is null
                         returning apply_attempts",
                    )
                    .bind(&error)
                    .bind(seq)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(attempts.map_or(0, count_from))
                }

                async fn unapplied_activities(
                    &self,
                    received_before: Timestamp,
                    max_attempts: u32,
                    limit: u32,
                ) -> Result<Vec<StoredActivity>> {
                    let rows = sqlx::query(&format!(
                        "select {ACTIVITY_COLUMNS} from inbox_activities
                         where applied_at is null and received_at < $1 and apply_attempts < $2
                         order by seq limit $3"
                    ))
                    .bind(received_before.as_millis())
                    .bind(i64::from(max_attempts))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    stored_activities(&rows)
                }

                async fn failed_activities(
                    &self,
                    max_attempts: u32,
                    limit: u32,
                ) -> Result<Vec<StoredActivity>> {
                    let rows = sqlx::query(&format!(
                        "select {ACTIVITY_COLUMNS} from inbox_activities
                         where applied_at is null and apply_attempts >= $1
                         order by seq desc limit $2"
                    ))
                    .bind(i64::from(max_attempts))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    stored_activities(&rows)
                }

                async fn federated_object(&self, object_id: &str) -> Result<Option<FederatedObject>> {
                    let row = sqlx::query("select * from federated_objects where object_id = $1")
                        .bind(object_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.map(|row| {
                        Ok(FederatedObject {
                            object_id: row.try_get("object_id").map_err(db_err)?,
                            object_type: row.try_get("object_type").map_err(db_err)?,
                            attributed_to: row.try_get("attributed_to").map_err(db_err)?,
                            document: row.try_get("document").map_err(db_err)?,
                            published_at: opt_ts(row.try_get("published_at").map_err(db_err)?),
                            updated_at: opt_ts(row.try_get("updated_at").map_err(db_err)?),
                            deleted_at: opt_ts(row.try_get("deleted_at").map_err(db_err)?),
                        })
                    })
                    .transpose()
                }

                async fn enqueue(&self, entries: Vec<NewOutboxEntry>, now: Timestamp) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    enqueue_in(&mut tx, &entries, now).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn lease_due_peers(
                    &self,
                    owner: &str,
                    now: Timestamp,
                    lease_until: Timestamp,
                    limit: u32,
                ) -> Result<Vec<String>> {
                    // One queue per statement: a statement never holds locks on two queues, so
                    // workers of several processes cannot deadlock on each other. The lease
                    // condition is repeated outside the subquery: under PostgreSQL's read
                    // committed, a row leased concurrently is re-checked and skipped.
                    let mut peers = Vec::new();
                    for _ in 0..limit {
                        let mut tx = self.begin_write().await?;
                        let peer: Option<String> = sqlx::query_scalar(
                            "update outbox_peers set lease_owner = $1, lease_expires_at = $3
                             where peer = (
                                 select p.peer from outbox_peers p
                                 where p.next_attempt_at <= $2
                                   and (p.lease_owner is null or p.lease_expires_at <= $2)
                                   and exists (select 1 from outbox o where o.peer = p.peer
                                               and o.delivered_at is null and o.parked_at is null)
                                 order by p.next_attempt_at, p.peer
                                 limit 1)
                               and (lease_owner is null or lease_expires_at <= $2)
                             returning peer",
                        )
                        .bind(owner)
                        .bind(now.as_millis())
                        .bind(lease_until.as_millis())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        tx.commit().await.map_err(db_err)?;
                        match peer {
                            Some(p) => peers.push(p),
                            None => break,
                        }
                    }
                    Ok(peers)
                }

                async fn renew_peer_lease(
                    &self,
                    peer: &str,
                    owner: &str,
                    until: Timestamp,
                ) -> Result<bool> {
                    let done = sqlx::query(
                        "update outbox_peers set lease_expires_at = $1
                         where peer = $2 and lease_owner = $3",
                    )
                    .bind(until.as_millis())
                    .bind(peer)
                    .bind(owner)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn release_peer(&self, peer: &str, owner: &str) -> Result<()> {
                    sqlx::query(
                        "update outbox_peers set lease_owner = null, lease_expires_at = null
                         where peer = $1 and lease_owner = $2",
                    )
                    .bind(peer)
                    .bind(owner)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(())
                }

                async fn pending_entries(&self, peer: &str, limit: u32) -> Result<Vec<OutboxEntry>> {
                    let sql = format!(
                        "select {OUTBOX_COLUMNS} from outbox o join outbox_peers p on p.peer = o.peer
                         where o.peer = $1 and o.delivered_at is null and o.parked_at is null
                         order by o.id limit $2"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(peer)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(outbox_from_row).collect()
                }

                async fn record_delivery(
                    &self,
                    entry_id: i64,
                    owner: &str,
                    result: DeliveryResult,
                    now: Timestamp,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "select p.peer, p.lease_owner from outbox o join outbox_peers p on p.peer = o.peer
                         where o.id = $1",
                    )
                    .bind(entry_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("outbox entry"))?;
                    let peer: String = row.try_get("peer").map_err(db_err)?;
                    let holder: Option<String> = row.try_get("lease_owner").map_err(db_err)?;
                    if holder.as_deref() != Some(owner) {
                        return Err(StoreError::conflict(
                            "lease_lost",
                            format!("the lease on {peer} is no longer held by this worker"),
                        ));
                    }
                    let n = now.as_millis();
                    match result {
                        DeliveryResult::Delivered => {
                            sqlx::query(
                                "update outbox set delivered_at = $1, last_attempt_at = $1,
                                   attempts = attempts + 1, last_error = null where id = $2",
                            )
                            .bind(n)
                            .bind(entry_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            sqlx::query(
                                "update outbox_peers set consecutive_failures = 0, last_error = null,
                                   last_success_at = $1, next_attempt_at = $1 where peer = $2",
                            )
                            .bind(n)
                            .bind(&peer)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        }
                        DeliveryResult::Retry { error, retry_at } => {
                            sqlx::query(
                                "update outbox set last_attempt_at = $1, attempts = attempts + 1,
                                   last_error = $2 where id = $3",
                            )
                            .bind(n)
                            .bind(&error)
                            .bind(entry_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            sqlx::query(
                                "update outbox_peers set consecutive_failures = consecutive_failures + 1,
                                   last_error = $1, next_attempt_at = $2 where peer = $3",
                            )
                            .bind(&error)
                            .bind(retry_at.as_millis())
                            .bind(&peer)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        }
                        DeliveryResult::Park { error } => {
                            sqlx::query(
                                "update outbox set last_attempt_at = $1, attempts = attempts + 1,
                                   last_error = $2, parked_at = $1 where id = $3",
                            )
                            .bind(n)
                            .bind(&error)
                            .bind(entry_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            sqlx::query("update outbox_peers set last_error = $1 where peer = $2")
                                .bind(&error)
                                .bind(&peer)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                    }
                    tx.commit().await.map_err(db_err)
                }

                async fn parked_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
                    let sql = format!(
                        "select {OUTBOX_COLUMNS} from outbox o join outbox_peers p on p.peer = o.peer
                         where o.parked_at is not null and o.delivered_at is null
                         order by o.id limit $1"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(outbox_from_row).collect()
                }

                async fn retry_parked(&self, ids: &[i64], now: Timestamp) -> Result<u64> {
                    let mut tx = self.begin_write().await?;
                    let mut n = 0;
                    let targets: Vec<i64> = if ids.is_empty() {
                        sqlx::query_scalar(
                            "select id from outbox where parked_at is not null and delivered_at is null",
                        )
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err)?
                    } else {
                        ids.to_vec()
                    };
                    for id in targets {
                        let peer: Option<String> = sqlx::query_scalar(
                            "update outbox set parked_at = null, attempts = 0
                             where id = $1 and parked_at is not null and delivered_at is null
                             returning peer",
                        )
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        if let Some(peer) = peer {
                            n += 1;
                            sqlx::query(
                                "update outbox_peers set next_attempt_at = $1, consecutive_failures = 0
                                 where peer = $2",
                            )
                            .bind(now.as_millis())
                            .bind(&peer)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        }
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(n)
                }

                async fn retry_peer_now(&self, peer: &str, now: Timestamp) -> Result<Option<u64>> {
                    let mut tx = self.begin_write().await?;
                    let found: Option<String> = sqlx::query_scalar(
                        "update outbox_peers set next_attempt_at = $1 where peer = $2 returning peer",
                    )
                    .bind(now.as_millis())
                    .bind(peer)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if found.is_none() {
                        return Ok(None);
                    }
                    let pending: i64 = sqlx::query_scalar(
                        "select count(*) from outbox where peer = $1
                           and delivered_at is null and parked_at is null",
                    )
                    .bind(peer)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Some(u64::try_from(pending).unwrap_or(0)))
                }

                async fn peer_queues(&self) -> Result<Vec<PeerQueue>> {
                    let rows = sqlx::query(
                        "select p.*,
                           (select count(*) from outbox o where o.peer = p.peer
                              and o.delivered_at is null and o.parked_at is null) as pending,
                           (select count(*) from outbox o where o.peer = p.peer
                              and o.delivered_at is null and o.parked_at is not null) as parked
                         from outbox_peers p order by p.peer",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(PeerQueue {
                                peer: row.try_get("peer").map_err(db_err)?,
                                inbox_url: row.try_get("inbox_url").map_err(db_err)?,
                                pending: u64::try_from(row.try_get::<i64, _>("pending").map_err(db_err)?)
                                    .unwrap_or(0),
                                parked: u64::try_from(row.try_get::<i64, _>("parked").map_err(db_err)?)
                                    .unwrap_or(0),
                                consecutive_failures: count_from(
                                    row.try_get("consecutive_failures").map_err(db_err)?,
                                ),
                                next_attempt_at: ts(row.try_get("next_attempt_at").map_err(db_err)?),
                                last_error: row.try_get("last_error").map_err(db_err)?,
                                last_success_at: opt_ts(row.try_get("last_success_at").map_err(db_err)?),
                                lease_owner: row.try_get("lease_owner").map_err(db_err)?,
                            })
                        })
                        .collect()
                }
            }
        }
    };
}
