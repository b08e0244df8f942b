//! Remote members, mirrored groups, pseudonyms and posts from other nodes.

/// Implements `caremesh_store::RemoteGroupStore` for `$store`; expanded by `impl_sql_store!`.
#[doc(hidden)]
#[macro_export]
macro_rules! impl_remote_group_store {
    ($store:ty, $db:ty) => {
        mod remote_group_sql {
            use caremesh_domain::{GroupRole, MemberState, PostKind};
            use caremesh_store::DeletedBy;
            use caremesh_store::{
                Attachment, Group, GroupSettings, HostedPostState, Member, MirrorFolder,
                MirrorItem, NewOutboxEntry, Post, Pseudonym, RemoteAttachment, RemoteFollow,
                RemoteGroupStore, RemotePost,
            };

            use super::federation_sql::enqueue_in;
            use super::group_sql::{
                ATTACHMENT_COLUMNS, MEMBER_SELECT, Marker, attachment_from_row, conflict_on_unique,
                count_place, mark_helpful, storage_full, take_storage, deleted_conflict, free_place,
                group_from_row, log_action, tombstone,
                load_member, load_post, member_from_row, member_of_user, post_facts, set_state,
                take_place, to_i32,
            };
            use super::*;

            type Conn = <$db as sqlx::Database>::Connection;
            type DbRow = <$db as sqlx::Database>::Row;

            fn pseudonym_from_row(row: &DbRow) -> Result<Pseudonym> {
                Ok(Pseudonym {
                    id: row.try_get("id").map_err(db_err)?,
                    public_id: row.try_get("public_id").map_err(db_err)?,
                    user_id: UserId(row.try_get("user_id").map_err(db_err)?),
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    display_name: row.try_get("display_name").map_err(db_err)?,
                    created_at: Timestamp::from_millis(row.try_get("created_at").map_err(db_err)?),
                })
            }

            async fn remote_member_in(
                conn: &mut Conn,
                group_id: i64,
                actor_id: &str,
            ) -> Result<Option<Member>> {
                let sql = format!("{MEMBER_SELECT} where gm.group_id = $1 and gm.actor_id = $2");
                let row = sqlx::query(&sql)
                    .bind(group_id)
                    .bind(actor_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(member_from_row).transpose()
            }

            /// Records a file fetched from another node (kept under its SHA-256 already), of a post
            /// or of the group's library.
            async fn insert_remote_file(
                conn: &mut Conn,
                group_id: i64,
                post_id: Option<i64>,
                f: &RemoteAttachment,
                at: Timestamp,
            ) -> Result<Attachment> {
                let sql = format!(
                    "insert into attachments (public_id, group_id, post_id, uploaded_by,
                       content_type, file_name, size_bytes, sha256, width, height, created_at)
                     values ($1, $2, $3, null, $4, $5, $6, $7, null, null, $8)
                     returning {ATTACHMENT_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(&f.public_id)
                    .bind(group_id)
                    .bind(post_id)
                    .bind(&f.content_type)
                    .bind(&f.file_name)
                    .bind(f.size_bytes)
                    .bind(&f.sha256)
                    .bind(at.as_millis())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db_err)?;
                attachment_from_row(&row, "")
            }

            #[async_trait]
            impl RemoteGroupStore for $store {
                async fn remote_follow(
                    &self,
                    f: RemoteFollow<'_>,
                    on_accept: Vec<NewOutboxEntry>,
                    now: Timestamp,
                ) -> Result<Member> {
                    let RemoteFollow { group_id, actor_id, name, invite_token, max_members } = f;
                    let mut tx = self.begin_write().await?;
                    let existing = remote_member_in(&mut tx, group_id, actor_id).await?;
                    match existing.as_ref().map(|m| m.state) {
                        Some(MemberState::Banned) => {
                            return Err(StoreError::conflict(
                                "banned",
                                "this member has been banned from the group",
                            ));
                        }
                        Some(MemberState::Active) => {
                            // Asked again (the member's node may have lost the answer).
                            enqueue_in(&mut tx, &on_accept, now).await?;
                            let m = existing.ok_or(StoreError::NotFound("member"))?;
                            tx.commit().await.map_err(db_err)?;
                            return Ok(m);
                        }
                        _ => {}
                    }
                    let invite_id: Option<i64> = match invite_token {
                        None => None,
                        Some(token) => {
                            let row = sqlx::query(
                                "select id from group_invites
                                 where token = $1 and group_id = $2 and revoked_at is null
                                   and (expires_at is null or expires_at > $3)
                                   and (max_uses is null or uses < max_uses)",
                            )
                            .bind(token)
                            .bind(group_id)
                            .bind(now.as_millis())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            let Some(row) = row else {
                                return Err(StoreError::conflict(
                                    "invite_unusable",
                                    "the invite is unknown, expired, used up or revoked",
                                ));
                            };
                            Some(row.try_get("id").map_err(db_err)?)
                        }
                    };
                    let state = if invite_id.is_some() {
                        MemberState::Active
                    } else {
                        MemberState::Pending
                    };
                    if let Some(id) = invite_id {
                        take_place(&mut tx, group_id, max_members).await?;
                        sqlx::query("update group_invites set uses = uses + 1 where id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    let member_id = match existing {
                        Some(m) => {
                            set_state(&mut tx, m.id, state, Some(GroupRole::Member), now).await?;
                            sqlx::query("update group_members set actor_name = $1 where id = $2")
                                .bind(name)
                                .bind(m.id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            m.id
                        }
                        None => sqlx::query_scalar(
                            "insert into group_members
                               (group_id, actor_id, actor_name, role, state, created_at, updated_at)
                             values ($1, $2, $3, 'member', $4, $5, $5) returning id",
                        )
                        .bind(group_id)
                        .bind(actor_id)
                        .bind(name)
                        .bind(state.as_str())
                        .bind(now.as_millis())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| conflict_on_unique(e, "already_member", "a member already"))?,
                    };
                    if state == MemberState::Active {
                        enqueue_in(&mut tx, &on_accept, now).await?;
                    }
                    // Every admission is in the moderation log: here, who joined with which link.
                    if let Some(id) = invite_id {
                        let detail = format!("invite {id}");
                        log_action(
                            &mut tx,
                            group_id,
                            caremesh_store::Acting::Member(member_id),
                            "join_by_invite",
                            Some(member_id),
                            None,
                            Some(&detail),
                            now,
                        )
                        .await?;
                    }
                    let m = load_member(&mut tx, group_id, member_id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(m)
                }

                async fn remote_unfollow_with(
                    &self,
                    group_id: i64,
                    actor_id: &str,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Option<Member>> {
                    let mut tx = self.begin_write().await?;
                    let Some(m) = remote_member_in(&mut tx, group_id, actor_id).await? else {
                        return Ok(None);
                    };
                    if !matches!(m.state, MemberState::Active | MemberState::Pending) {
                        return Ok(Some(m));
                    }
                    if m.state == MemberState::Active {
                        free_place(&mut tx, group_id).await?;
                    }
                    set_state(&mut tx, m.id, MemberState::Left, None, now).await?;
                    let m = load_member(&mut tx, group_id, m.id).await?;
                    enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Some(m))
                }

                async fn remote_member(
                    &self,
                    group_id: i64,
                    actor_id: &str,
                ) -> Result<Option<Member>> {
                    let mut conn = self.pool.acquire().await.map_err(db_err)?;
                    remote_member_in(&mut conn, group_id, actor_id).await
                }

                async fn rename_remote_actor(&self, actor_id: &str, name: &str) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("update group_members set actor_name = $1 where actor_id = $2")
                        .bind(name)
                        .bind(actor_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    sqlx::query("update posts set author_name = $1 where author_actor_id = $2")
                        .bind(name)
                        .bind(actor_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(())
                }

                async fn groups_with_remote_member(&self, actor_id: &str) -> Result<Vec<Group>> {
                    let rows = sqlx::query(
                        "select g.* from groups g join group_members gm on gm.group_id = g.id
                         where gm.actor_id = $1 and gm.state = 'active' and g.remote_actor_id is null
                         order by g.id",
                    )
                    .bind(actor_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(group_from_row).collect()
                }

                async fn remote_member_actors(&self, group_id: i64) -> Result<Vec<String>> {
                    sqlx::query_scalar(
                        "select actor_id from group_members
                         where group_id = $1 and state = 'active' and actor_id is not null
                         order by id",
                    )
                    .bind(group_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)
                }

                async fn store_remote_post(
                    &self,
                    p: RemotePost,
                    announce: Vec<NewOutboxEntry>,
                    quota_bytes: i64,
                ) -> Result<(Post, bool)> {
                    let mut tx = self.begin_write().await?;
                    let existing: Option<i64> =
                        sqlx::query_scalar("select id from posts where origin_id = $1")
                            .bind(&p.origin_id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    if let Some(id) = existing {
                        let post = load_post(&mut tx, id, None).await?;
                        tx.commit().await.map_err(db_err)?;
                        return Ok((post, false));
                    }
                    let thread_id: Option<i64> =
                        if p.thread_public_id.is_some() || p.thread_origin_id.is_some() {
                            let id: Option<i64> = sqlx::query_scalar(
                                "select id from posts where group_id = $1 and thread_id is null
                                   and (public_id = $2 or origin_id = $3)",
                            )
                            .bind(p.group_id)
                            .bind(&p.thread_public_id)
                            .bind(&p.thread_origin_id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            Some(id.ok_or(StoreError::NotFound("thread"))?)
                        } else {
                            None
                        };
                    let id: i64 = sqlx::query_scalar(
                        "insert into posts (public_id, group_id, kind, thread_id, author_actor_id,
                           author_name, origin_id, title, body, pinned, publish_at, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) returning id",
                    )
                    .bind(&p.public_id)
                    .bind(p.group_id)
                    .bind(p.kind.as_str())
                    .bind(thread_id)
                    .bind(&p.author_actor_id)
                    .bind(&p.author_name)
                    .bind(&p.origin_id)
                    .bind(&p.title)
                    .bind(&p.body)
                    .bind(p.pinned)
                    .bind(p.published_at.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "post_exists", "a post with this id exists"))?;
                    if let Some(thread) = thread_id {
                        let by_doctor: bool = p.kind == PostKind::Reply
                            && sqlx::query_scalar::<_, i64>(
                                "select count(*) from group_members
                                 where group_id = $1 and actor_id = $2 and role in ('doctor', 'owner')",
                            )
                            .bind(p.group_id)
                            .bind(&p.author_actor_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_err)?
                                > 0;
                        sqlx::query(
                            "update posts set reply_count = reply_count + 1,
                               answered_by_doctor = (answered_by_doctor or $1)
                             where id = $2",
                        )
                        .bind(by_doctor)
                        .bind(thread)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    for f in &p.files {
                        if !take_storage(&mut tx, p.group_id, f.size_bytes, quota_bytes).await? {
                            continue;
                        }
                        insert_remote_file(&mut tx, p.group_id, Some(id), f, p.published_at).await?;
                        sqlx::query("update posts set attachment_count = attachment_count + 1 where id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    enqueue_in(&mut tx, &announce, p.published_at).await?;
                    let post = load_post(&mut tx, id, None).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok((post, true))
                }

                async fn post_by_origin(&self, group_id: i64, origin_id: &str) -> Result<Option<Post>> {
                    let mut conn = self.pool.acquire().await.map_err(db_err)?;
                    let id: Option<i64> = sqlx::query_scalar(
                        "select id from posts where group_id = $1 and origin_id = $2",
                    )
                    .bind(group_id)
                    .bind(origin_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    match id {
                        Some(id) => Ok(Some(load_post(&mut conn, id, None).await?)),
                        None => Ok(None),
                    }
                }

                async fn edit_remote_post(
                    &self,
                    origin_id: &str,
                    author_actor_id: &str,
                    title: Option<String>,
                    body: String,
                    edited_at: Timestamp,
                    announce: Vec<NewOutboxEntry>,
                ) -> Result<Option<Post>> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "select id, title, body from posts
                         where origin_id = $1 and author_actor_id = $2 and deleted_at is null
                           and coalesce(edited_at, publish_at) < $3",
                    )
                    .bind(origin_id)
                    .bind(author_actor_id)
                    .bind(edited_at.as_millis())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let id: i64 = row.try_get("id").map_err(db_err)?;
                    let old_title: Option<String> = row.try_get("title").map_err(db_err)?;
                    let old_body: String = row.try_get("body").map_err(db_err)?;
                    sqlx::query(
                        "insert into post_edits (post_id, title, body, replaced_at, reason)
                         values ($1, $2, $3, $4, 'edit')",
                    )
                    .bind(id)
                    .bind(&old_title)
                    .bind(&old_body)
                    .bind(edited_at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query("update posts set title = $1, body = $2, edited_at = $3 where id = $4")
                        .bind(&title)
                        .bind(&body)
                        .bind(edited_at.as_millis())
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    enqueue_in(&mut tx, &announce, edited_at).await?;
                    let post = load_post(&mut tx, id, None).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Some(post))
                }

                async fn set_remote_helpful_with(
                    &self,
                    post_id: i64,
                    actor_id: &str,
                    helpful: bool,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    let author: Option<String> =
                        sqlx::query_scalar("select author_actor_id from posts where id = $1")
                            .bind(post_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    if author.as_deref() == Some(actor_id) {
                        return Err(StoreError::conflict("own_post", "you cannot mark your own post helpful"));
                    }
                    if mark_helpful(&mut tx, post_id, Marker::Actor(actor_id), helpful, now).await? {
                        enqueue_in(&mut tx, &outbox, now).await?;
                    }
                    let post = load_post(&mut tx, post_id, None).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn apply_post_state(
                    &self,
                    post_id: i64,
                    state: HostedPostState,
                    now: Timestamp,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if let Some(r) = state.accepted_reply {
                        let reply = post_facts(&mut tx, r).await?;
                        if reply.thread_id != Some(post_id) {
                            return Err(StoreError::conflict(
                                "not_in_thread",
                                "the answer must be a reply to this question",
                            ));
                        }
                    }
                    if state.removed && !f.deleted {
                        // The text stays only with the host's moderators.
                        sqlx::query("delete from post_edits where post_id = $1")
                            .bind(post_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        tombstone(&mut tx, post_id, DeletedBy::Moderator, now).await?;
                    }
                    if !state.removed && !f.deleted {
                        sqlx::query(
                            "update posts set pinned = $1, helpful_count = $2, accepted_reply_id = $3,
                               answered_by_doctor = $4
                             where id = $5",
                        )
                        .bind(state.pinned && f.thread_id.is_none())
                        .bind(to_i32(state.helpful_count))
                        .bind(state.accepted_reply)
                        .bind(state.answered_by_doctor)
                        .bind(post_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    let post = load_post(&mut tx, post_id, None).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn replace_mirror_library(
                    &self,
                    group_id: i64,
                    folders: Vec<MirrorFolder>,
                    now: Timestamp,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let mirrored: Option<String> =
                        sqlx::query_scalar("select remote_actor_id from groups where id = $1")
                            .bind(group_id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?
                            .flatten();
                    if mirrored.is_none() {
                        return Err(StoreError::conflict(
                            "hosted_here",
                            "only the library of a group hosted elsewhere is replaced",
                        ));
                    }
                    sqlx::query("delete from library_folders where group_id = $1")
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    for f in folders {
                        let folder_id: i64 = sqlx::query_scalar(
                            "insert into library_folders (group_id, name, created_by, created_at)
                             values ($1, $2, null, $3)
                             on conflict (group_id, name) do update set name = excluded.name
                             returning id",
                        )
                        .bind(group_id)
                        .bind(&f.name)
                        .bind(now.as_millis())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        for item in f.items {
                            let sql = match &item {
                                MirrorItem::Post { .. } => {
                                    "insert into library_items
                                       (folder_id, group_id, post_id, attachment_id, title, added_by, added_at)
                                     select $1, $2, p.id, null, $3, null, $4 from posts p
                                      where p.id = $5 and p.group_id = $2
                                     on conflict (folder_id, post_id) do nothing"
                                }
                                MirrorItem::File { .. } => {
                                    "insert into library_items
                                       (folder_id, group_id, post_id, attachment_id, title, added_by, added_at)
                                     select $1, $2, null, a.id, $3, null, $4 from attachments a
                                      where a.id = $5 and a.group_id = $2
                                     on conflict (folder_id, attachment_id) do nothing"
                                }
                            };
                            let (title, id) = match item {
                                MirrorItem::Post { title, post_id } => (title, post_id),
                                MirrorItem::File { title, attachment_id } => (title, attachment_id),
                            };
                            sqlx::query(sql)
                                .bind(folder_id)
                                .bind(group_id)
                                .bind(&title)
                                .bind(now.as_millis())
                                .bind(id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                        }
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(())
                }

                async fn add_mirror_file(
                    &self,
                    group_id: i64,
                    f: RemoteAttachment,
                    quota_bytes: i64,
                    now: Timestamp,
                ) -> Result<Attachment> {
                    let mut tx = self.begin_write().await?;
                    let sql = format!(
                        "select {ATTACHMENT_COLUMNS} from attachments
                         where group_id = $1 and sha256 = $2 order by id limit 1"
                    );
                    if let Some(row) = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(&f.sha256)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?
                    {
                        let a = attachment_from_row(&row, "")?;
                        tx.commit().await.map_err(db_err)?;
                        return Ok(a);
                    }
                    if !take_storage(&mut tx, group_id, f.size_bytes, quota_bytes).await? {
                        return Err(storage_full(quota_bytes));
                    }
                    let a = insert_remote_file(&mut tx, group_id, None, &f, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(a)
                }

                async fn attachment_by_sha(
                    &self,
                    group_id: i64,
                    sha256: &str,
                ) -> Result<Option<Attachment>> {
                    let sql = format!(
                        "select {ATTACHMENT_COLUMNS} from attachments
                         where group_id = $1 and sha256 = $2 order by id limit 1"
                    );
                    let row = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(sha256)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(|r| attachment_from_row(r, "")).transpose()
                }

                async fn keep_waiting(
                    &self,
                    group_id: i64,
                    waiting_for: &str,
                    activity_id: &str,
                    activity: &str,
                    now: Timestamp,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "insert into waiting_activities
                           (group_id, waiting_for, activity_id, activity, received_at)
                         values ($1, $2, $3, $4, $5)
                         on conflict (group_id, activity_id) do nothing",
                    )
                    .bind(group_id)
                    .bind(waiting_for)
                    .bind(activity_id)
                    .bind(activity)
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(())
                }

                async fn purge_waiting(&self, before: Timestamp) -> Result<u64> {
                    let mut tx = self.begin_write().await?;
                    let n = sqlx::query("delete from waiting_activities where received_at < $1")
                        .bind(before.as_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                    tx.commit().await.map_err(db_err)?;
                    Ok(n)
                }

                async fn take_waiting(&self, group_id: i64, object_id: &str) -> Result<Vec<String>> {
                    let mut tx = self.begin_write().await?;
                    let rows: Vec<String> = sqlx::query_scalar(
                        "select activity from waiting_activities
                         where group_id = $1 and waiting_for = $2 order by id",
                    )
                    .bind(group_id)
                    .bind(object_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query("delete from waiting_activities where group_id = $1 and waiting_for = $2")
                        .bind(group_id)
                        .bind(object_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(rows)
                }

                async fn delete_remote_post(
                    &self,
                    origin_id: &str,
                    author_actor_id: &str,
                    announce: Vec<NewOutboxEntry>,
                    now: Timestamp,
                ) -> Result<Option<Post>> {
                    let mut tx = self.begin_write().await?;
                    let id: Option<i64> = sqlx::query_scalar(
                        "update posts set deleted_at = $1, deleted_by = 'author'
                         where origin_id = $2 and author_actor_id = $3 and deleted_at is null
                         returning id",
                    )
                    .bind(now.as_millis())
                    .bind(origin_id)
                    .bind(author_actor_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let Some(id) = id else {
                        return Ok(None);
                    };
                    enqueue_in(&mut tx, &announce, now).await?;
                    let post = load_post(&mut tx, id, None).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Some(post))
                }

                async fn upsert_mirror_group(
                    &self,
                    remote_actor_id: &str,
                    public_id: &str,
                    s: GroupSettings,
                    now: Timestamp,
                ) -> Result<Group> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "insert into groups (public_id, remote_actor_id, name, condition, condition_code,
                           city, language, description, rules, member_list, created_by, created_at,
                           updated_at, member_count, storage_bytes)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, null, $11, $11, 0, 0)
                         on conflict (remote_actor_id) do update set name = excluded.name,
                           condition = excluded.condition, condition_code = excluded.condition_code,
                           city = excluded.city, language = excluded.language,
                           description = excluded.description, rules = excluded.rules,
                           updated_at = excluded.updated_at
                         returning *",
                    )
                    .bind(public_id)
                    .bind(remote_actor_id)
                    .bind(&s.name)
                    .bind(&s.condition)
                    .bind(&s.condition_code)
                    .bind(&s.city)
                    .bind(s.language.as_str())
                    .bind(&s.description)
                    .bind(&s.rules)
                    .bind(s.member_list.as_str())
                    .bind(now.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let g = group_from_row(&row)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(g)
                }

                async fn group_by_remote_actor(&self, remote_actor_id: &str) -> Result<Option<Group>> {
                    let row = sqlx::query("select * from groups where remote_actor_id = $1")
                        .bind(remote_actor_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(group_from_row).transpose()
                }

                async fn refresh_mirror_group(
                    &self,
                    group_id: i64,
                    s: GroupSettings,
                    member_count: Option<u32>,
                    now: Timestamp,
                ) -> Result<Group> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "update groups set name = $1, condition = $2, condition_code = $3, city = $4,
                           language = $5, description = $6, updated_at = $7,
                           host_member_count = coalesce($8, host_member_count)
                         where id = $9 and remote_actor_id is not null
                         returning *",
                    )
                    .bind(&s.name)
                    .bind(&s.condition)
                    .bind(&s.condition_code)
                    .bind(&s.city)
                    .bind(s.language.as_str())
                    .bind(&s.description)
                    .bind(now.as_millis())
                    .bind(member_count.map(to_i32))
                    .bind(group_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("group"))?;
                    let g = group_from_row(&row)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(g)
                }

                async fn join_remote_group(
                    &self,
                    user: UserId,
                    group_id: i64,
                    pseudonym: Option<Pseudonym>,
                    follow: Vec<NewOutboxEntry>,
                    now: Timestamp,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let existing = member_of_user(&mut tx, group_id, user).await?;
                    match existing.as_ref().map(|m| m.state) {
                        Some(MemberState::Active) => {
                            return Err(StoreError::conflict(
                                "already_member",
                                "you are a member of this group already",
                            ));
                        }
                        Some(MemberState::Banned) => {
                            return Err(StoreError::conflict(
                                "banned",
                                "you have been banned from this group",
                            ));
                        }
                        _ => {}
                    }
                    if let Some(p) = &pseudonym {
                        sqlx::query(
                            "insert into pseudonyms (public_id, user_id, group_id, display_name, created_at)
                             values ($1, $2, $3, $4, $5)
                             on conflict (user_id, group_id) do update set display_name = excluded.display_name",
                        )
                        .bind(&p.public_id)
                        .bind(user.0)
                        .bind(group_id)
                        .bind(&p.display_name)
                        .bind(now.as_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    let member_id = match existing {
                        Some(m) => {
                            set_state(&mut tx, m.id, MemberState::Pending, Some(GroupRole::Member), now)
                                .await?;
                            m.id
                        }
                        None => super::group_sql::insert_member(
                            &mut tx,
                            group_id,
                            user,
                            GroupRole::Member,
                            MemberState::Pending,
                            None,
                            now,
                        )
                        .await?,
                    };
                    if let Some(p) = &pseudonym {
                        // The name chosen for the group is also the member's name in it here.
                        sqlx::query("update group_members set member_name = $1 where id = $2")
                            .bind(&p.display_name)
                            .bind(member_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    enqueue_in(&mut tx, &follow, now).await?;
                    let m = load_member(&mut tx, group_id, member_id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(m)
                }

                async fn answer_remote_join(
                    &self,
                    group_id: i64,
                    user: UserId,
                    accepted: bool,
                    now: Timestamp,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = member_of_user(&mut tx, group_id, user)
                        .await?
                        .ok_or(StoreError::NotFound("member"))?;
                    if m.state == MemberState::Pending {
                        if accepted {
                            count_place(&mut tx, group_id).await?;
                            set_state(&mut tx, m.id, MemberState::Active, None, now).await?;
                        } else {
                            set_state(&mut tx, m.id, MemberState::Rejected, None, now).await?;
                        }
                    }
                    let m = load_member(&mut tx, group_id, m.id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(m)
                }

                async fn set_mirror_membership(
                    &self,
                    group_id: i64,
                    user: UserId,
                    state: MemberState,
                    role: GroupRole,
                    now: Timestamp,
                ) -> Result<Option<Member>> {
                    let mut tx = self.begin_write().await?;
                    let Some(m) = member_of_user(&mut tx, group_id, user).await? else {
                        return Ok(None);
                    };
                    // Leaving, and asking again after leaving or a refusal, are the member's own
                    // decisions: a host does not bring such a membership back.
                    if state == MemberState::Active
                        && !matches!(m.state, MemberState::Pending | MemberState::Active)
                    {
                        return Ok(Some(m));
                    }
                    let was_active = m.state == MemberState::Active;
                    let is_active = state == MemberState::Active;
                    if was_active && !is_active {
                        free_place(&mut tx, group_id).await?;
                    } else if !was_active && is_active {
                        count_place(&mut tx, group_id).await?;
                    }
                    set_state(&mut tx, m.id, state, Some(role), now).await?;
                    let m = load_member(&mut tx, group_id, m.id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Some(m))
                }

                async fn pseudonym(&self, public_id: &str) -> Result<Option<Pseudonym>> {
                    let row = sqlx::query("select * from pseudonyms where public_id = $1")
                        .bind(public_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(pseudonym_from_row).transpose()
                }

                async fn ensure_pseudonym(&self, p: Pseudonym) -> Result<Pseudonym> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "insert into pseudonyms (public_id, user_id, group_id, display_name, created_at)
                         values ($1, $2, $3, $4, $5)
                         on conflict (user_id, group_id) do nothing",
                    )
                    .bind(&p.public_id)
                    .bind(p.user_id.0)
                    .bind(p.group_id)
                    .bind(&p.display_name)
                    .bind(p.created_at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let row = sqlx::query("select * from pseudonyms where user_id = $1 and group_id = $2")
                        .bind(p.user_id.0)
                        .bind(p.group_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let out = pseudonym_from_row(&row)?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(out)
                }

                async fn pseudonym_of(&self, user: UserId, group_id: i64) -> Result<Option<Pseudonym>> {
                    let row = sqlx::query("select * from pseudonyms where user_id = $1 and group_id = $2")
                        .bind(user.0)
                        .bind(group_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(pseudonym_from_row).transpose()
                }
            }
        }
    };
}
