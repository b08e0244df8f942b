//! Groups, members, group invites, posts, attachments, library, reports and the moderation log.
//!
//! Search is `lower(text) like '%query%'` with the wildcards in the query escaped, scoped to one
//! group: it finds Chinese text (which has no spaces between words, so word-based full-text
//! indexes without a CJK tokenizer would miss it) and English text, case-insensitively for Latin
//! letters, identically on both backends. It scans the group's posts; a group of 500 members
//! writes some thousands of posts a year, which this reads in milliseconds.

/// Implements `caremesh_store::GroupStore` for `$store`; expanded by `impl_sql_store!`.
#[doc(hidden)]
#[macro_export]
macro_rules! impl_group_store {
    ($store:ty, $db:ty) => {
        mod group_sql {
            use super::*;

            use caremesh_domain::{
                GroupRole, Language, MemberListVisibility, MemberState, PostKind,
            };
            use caremesh_store::{
                Acting, GroupRequest, NewGroupRequest, Reporter,
                Attachment, DeletedBy, FeedPosition, FeedSort, Group, GroupInvite, GroupSettings,
                GroupStore, ImportedPost, LibraryFolder, LibraryItem, Member, ModerationEntry,
                NewAttachment, NewGroup, NewGroupInvite, NewLibraryItem, NewOutboxEntry, NewPost, Post,
                PostAuthor,
                PostEdit, QueueItem, ReplySort, Report,
            };

            type Conn = <$db as sqlx::Database>::Connection;
            type DbRow = <$db as sqlx::Database>::Row;

            fn parse<T: std::str::FromStr>(s: &str) -> Result<T>
            where
                T::Err: std::error::Error + Send + Sync + 'static,
            {
                T::from_str(s).map_err(StoreError::other)
            }

            fn ts(row: &DbRow, col: &str) -> Result<Timestamp> {
                Ok(Timestamp::from_millis(row.try_get(col).map_err(db_err)?))
            }

            fn opt_ts(row: &DbRow, col: &str) -> Result<Option<Timestamp>> {
                Ok(row
                    .try_get::<Option<i64>, _>(col)
                    .map_err(db_err)?
                    .map(Timestamp::from_millis))
            }

            fn opt_user(row: &DbRow, col: &str) -> Result<Option<UserId>> {
                Ok(row.try_get::<Option<i64>, _>(col).map_err(db_err)?.map(UserId))
            }

            fn small(row: &DbRow, col: &str) -> Result<u32> {
                Ok(count_from(row.try_get::<i32, _>(col).map_err(db_err)?))
            }

            fn opt_small(row: &DbRow, col: &str) -> Result<Option<u32>> {
                Ok(row.try_get::<Option<i32>, _>(col).map_err(db_err)?.map(count_from))
            }

            pub(super) fn to_i32(n: u32) -> i32 {
                i32::try_from(n).unwrap_or(i32::MAX)
            }

            pub(super) fn conflict_on_unique(e: sqlx::Error, code: &'static str, message: &str) -> StoreError {
                if unique_violation(&e) {
                    StoreError::conflict(code, message)
                } else {
                    db_err(e)
                }
            }

            /// `%query%` with `\`, `%` and `_` escaped, lower-cased like SQL's `lower` does it
            /// on both backends (ASCII only).
            fn like_pattern(query: &str) -> String {
                let mut p = String::with_capacity(query.len() + 2);
                p.push('%');
                for c in query.to_ascii_lowercase().chars() {
                    if matches!(c, '\\' | '%' | '_') {
                        p.push('\\');
                    }
                    p.push(c);
                }
                p.push('%');
                p
            }

            // ---- groups ----

            pub(super) fn group_from_row(row: &DbRow) -> Result<Group> {
                Ok(Group {
                    id: row.try_get("id").map_err(db_err)?,
                    public_id: row.try_get("public_id").map_err(db_err)?,
                    remote_actor_id: row.try_get("remote_actor_id").map_err(db_err)?,
                    settings: GroupSettings {
                        name: row.try_get("name").map_err(db_err)?,
                        condition: row.try_get("condition").map_err(db_err)?,
                        condition_code: row.try_get("condition_code").map_err(db_err)?,
                        city: row.try_get("city").map_err(db_err)?,
                        language: parse::<Language>(row.try_get("language").map_err(db_err)?)?,
                        description: row.try_get("description").map_err(db_err)?,
                        rules: row.try_get("rules").map_err(db_err)?,
                        member_list: parse::<MemberListVisibility>(
                            row.try_get("member_list").map_err(db_err)?,
                        )?,
                    },
                    created_by: opt_user(row, "created_by")?,
                    created_at: ts(row, "created_at")?,
                    updated_at: ts(row, "updated_at")?,
                    // A mirrored group shows its host's count (members on every node) once known.
                    member_count: match row.try_get::<Option<i32>, _>("host_member_count") {
                        Ok(Some(n)) => count_from(n),
                        _ => small(row, "member_count")?,
                    },
                    storage_bytes: row.try_get("storage_bytes").map_err(db_err)?,
                })
            }

            pub(super) async fn load_group(conn: &mut Conn, id: i64) -> Result<Group> {
                let row = sqlx::query("select * from groups where id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("group"))?;
                group_from_row(&row)
            }

            /// Takes one place in the group, atomically: concurrent joins cannot overfill it.
            pub(super) async fn take_place(conn: &mut Conn, group_id: i64, max_members: u32) -> Result<()> {
                let done = sqlx::query(
                    "update groups set member_count = member_count + 1
                     where id = $1 and member_count < $2",
                )
                .bind(group_id)
                .bind(to_i32(max_members))
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::conflict(
                        "group_full",
                        format!("the group has reached its limit of {max_members} members"),
                    ));
                }
                Ok(())
            }

            pub(super) async fn free_place(conn: &mut Conn, group_id: i64) -> Result<()> {
                sqlx::query(
                    "update groups set member_count = member_count - 1
                     where id = $1 and member_count > 0",
                )
                .bind(group_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            #[allow(clippy::too_many_arguments)]
            pub(super) async fn log_action(
                conn: &mut Conn,
                group_id: i64,
                by: impl Into<Acting>,
                action: &str,
                target_member: Option<i64>,
                target_post: Option<i64>,
                detail: Option<&str>,
                now: Timestamp,
            ) -> Result<()> {
                let (user, member) = match by.into() {
                    Acting::Account(u) => (Some(u.0), None),
                    Acting::Member(m) => (None, Some(m)),
                };
                sqlx::query(
                    "insert into moderation_log
                       (group_id, moderator_user_id, moderator_member_id, action, target_member_id,
                        target_post_id, detail, created_at)
                     values ($1, $2, $8, $3, $4, $5, $6, $7)",
                )
                .bind(group_id)
                .bind(user)
                .bind(action)
                .bind(target_member)
                .bind(target_post)
                .bind(detail)
                .bind(now.as_millis())
                .bind(member)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            fn acting_user(by: Acting) -> Option<i64> {
                match by {
                    Acting::Account(u) => Some(u.0),
                    Acting::Member(_) => None,
                }
            }

            /// A moderator's removal of a post: its text kept in the history for moderators, its open
            /// reports resolved, the removal logged. The caller tombstones it.
            async fn moderator_removal(
                tx: &mut Conn,
                f: &PostFacts,
                post_id: i64,
                by: Acting,
                reason: Option<&str>,
                now: Timestamp,
            ) -> Result<()> {
                sqlx::query(
                    "insert into post_edits (post_id, title, body, replaced_at, reason)
                     values ($1, $2, $3, $4, 'removed')",
                )
                .bind(post_id)
                .bind(&f.title)
                .bind(&f.body)
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                sqlx::query(
                    "update post_reports set resolved_at = $1, resolved_by = $2, resolution = 'removed'
                     where post_id = $3 and resolved_at is null",
                )
                .bind(now.as_millis())
                .bind(acting_user(by))
                .bind(post_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                let author_member: Option<i64> = match (f.author, &f.author_actor) {
                    (Some(a), _) => sqlx::query_scalar(
                        "select id from group_members where group_id = $1 and user_id = $2",
                    )
                    .bind(f.group_id)
                    .bind(a)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?,
                    (None, Some(actor)) => sqlx::query_scalar(
                        "select id from group_members where group_id = $1 and actor_id = $2",
                    )
                    .bind(f.group_id)
                    .bind(actor)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?,
                    (None, None) => None,
                };
                log_action(tx, f.group_id, by, "remove_post", author_member, Some(post_id), reason, now)
                    .await
            }

            fn request_from_row(row: &DbRow) -> Result<GroupRequest> {
                Ok(GroupRequest {
                    id: row.try_get("id").map_err(db_err)?,
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    user: opt_user(row, "user_id")?,
                    activity_id: row.try_get("activity_id").map_err(db_err)?,
                    action: row.try_get("action").map_err(db_err)?,
                    object: row.try_get("object").map_err(db_err)?,
                    state: row.try_get("state").map_err(db_err)?,
                    code: row.try_get("code").map_err(db_err)?,
                    reason: row.try_get("reason").map_err(db_err)?,
                    created_at: ts(row, "created_at")?,
                    answered_at: opt_ts(row, "answered_at")?,
                })
            }

            // ---- members ----

            pub(super) const MEMBER_SELECT: &str = "select gm.id, gm.group_id, gm.user_id, gm.actor_id,
                   coalesce(gm.member_name, u.display_name, gm.actor_name, '') as display_name, u.role as account_role,
                   gm.role, gm.state, gm.request_message, gm.created_at, gm.updated_at
                 from group_members gm left join users u on u.id = gm.user_id";

            pub(super) fn member_from_row(row: &DbRow) -> Result<Member> {
                member_from_prefixed(row, "")
            }

            fn member_from_prefixed(row: &DbRow, prefix: &str) -> Result<Member> {
                let col = |c: &str| format!("{prefix}{c}");
                let account_role: Option<String> =
                    row.try_get(col("account_role").as_str()).map_err(db_err)?;
                Ok(Member {
                    id: row.try_get(col("id").as_str()).map_err(db_err)?,
                    group_id: row.try_get(col("group_id").as_str()).map_err(db_err)?,
                    user_id: opt_user(row, &col("user_id"))?,
                    actor_id: row.try_get(col("actor_id").as_str()).map_err(db_err)?,
                    display_name: row.try_get(col("display_name").as_str()).map_err(db_err)?,
                    account_role: account_role.as_deref().map(parse_role).transpose()?,
                    role: parse::<GroupRole>(row.try_get(col("role").as_str()).map_err(db_err)?)?,
                    state: parse::<MemberState>(row.try_get(col("state").as_str()).map_err(db_err)?)?,
                    request_message: row.try_get(col("request_message").as_str()).map_err(db_err)?,
                    created_at: ts(row, &col("created_at"))?,
                    updated_at: ts(row, &col("updated_at"))?,
                })
            }

            pub(super) async fn load_member(conn: &mut Conn, group_id: i64, member_id: i64) -> Result<Member> {
                let sql = format!("{MEMBER_SELECT} where gm.group_id = $1 and gm.id = $2");
                let row = sqlx::query(&sql)
                    .bind(group_id)
                    .bind(member_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("member"))?;
                member_from_row(&row)
            }

            pub(super) async fn member_of_user(
                conn: &mut Conn,
                group_id: i64,
                user: UserId,
            ) -> Result<Option<Member>> {
                let sql = format!("{MEMBER_SELECT} where gm.group_id = $1 and gm.user_id = $2");
                let row = sqlx::query(&sql)
                    .bind(group_id)
                    .bind(user.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                row.as_ref().map(member_from_row).transpose()
            }

            pub(super) async fn set_state(
                conn: &mut Conn,
                member_id: i64,
                state: MemberState,
                role: Option<GroupRole>,
                now: Timestamp,
            ) -> Result<()> {
                sqlx::query(
                    "update group_members set state = $1, role = coalesce($2, role), updated_at = $3
                     where id = $4",
                )
                .bind(state.as_str())
                .bind(role.map(GroupRole::as_str))
                .bind(now.as_millis())
                .bind(member_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            pub(super) async fn insert_member(
                conn: &mut Conn,
                group_id: i64,
                user: UserId,
                role: GroupRole,
                state: MemberState,
                message: Option<&str>,
                now: Timestamp,
            ) -> Result<i64> {
                sqlx::query_scalar(
                    "insert into group_members (group_id, user_id, role, state, request_message, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $6) returning id",
                )
                .bind(group_id)
                .bind(user.0)
                .bind(role.as_str())
                .bind(state.as_str())
                .bind(message)
                .bind(now.as_millis())
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| conflict_on_unique(e, "already_member", "this account is a member already"))
            }

            // ---- invites ----

            fn group_invite_from_row(row: &DbRow) -> Result<GroupInvite> {
                Ok(GroupInvite {
                    id: row.try_get("id").map_err(db_err)?,
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    token: row.try_get("token").map_err(db_err)?,
                    label: row.try_get("label").map_err(db_err)?,
                    created_by: UserId(row.try_get("created_by").map_err(db_err)?),
                    created_at: ts(row, "created_at")?,
                    expires_at: opt_ts(row, "expires_at")?,
                    max_uses: opt_small(row, "max_uses")?,
                    uses: small(row, "uses")?,
                    revoked_at: opt_ts(row, "revoked_at")?,
                })
            }

            // ---- posts ----

            /// `$1` is the viewing account (or null), for `marked_helpful`.
            ///
            /// Related rows are read by scalar subqueries, not joins: PostgreSQL then plans the
            /// query in microseconds instead of searching join orders for milliseconds, and both
            /// backends still walk the feed's index in order and stop after the page.
            const POST_SELECT: &str = "select p.id, p.public_id, p.group_id, p.kind, p.thread_id,
                   case when p.thread_id is not null then
                     (select t.public_id from posts t where t.id = p.thread_id) end as thread_public_id,
                   p.author_user_id, p.author_actor_id,
                   coalesce(case when p.author_user_id is not null then
                              coalesce((select m.member_name from group_members m
                                         where m.group_id = p.group_id and m.user_id = p.author_user_id),
                                       (select u.display_name from users u where u.id = p.author_user_id)) end,
                            case when p.author_actor_id is not null then
                              (select r.actor_name from group_members r
                                where r.group_id = p.group_id and r.actor_id = p.author_actor_id) end,
                            p.author_name, '') as author_name,
                   case when p.author_user_id is not null then
                     (select m.id from group_members m
                       where m.group_id = p.group_id and m.user_id = p.author_user_id)
                   else
                     (select r.id from group_members r
                       where r.group_id = p.group_id and r.actor_id = p.author_actor_id) end as author_member_id,
                   case when p.author_user_id is not null then
                     (select m.role from group_members m
                       where m.group_id = p.group_id and m.user_id = p.author_user_id)
                   else
                     (select r.role from group_members r
                       where r.group_id = p.group_id and r.actor_id = p.author_actor_id) end as author_role,
                   p.origin_id, p.title, p.body, p.pinned, p.publish_at, p.created_at, p.edited_at,
                   p.deleted_at, p.deleted_by, p.helpful_count, p.reply_count, p.attachment_count,
                   case when p.accepted_reply_id is not null then
                     (select a.public_id from posts a where a.id = p.accepted_reply_id) end as accepted_reply_public_id,
                   p.answered_by_doctor,
                   case when p.helpful_count > 0 then
                     exists(select 1 from post_helpful h where h.post_id = p.id and h.user_id = $1)
                   else false end as marked_helpful
                 from posts p";

            fn post_from_row(row: &DbRow) -> Result<Post> {
                let role: Option<String> = row.try_get("author_role").map_err(db_err)?;
                let deleted_by: Option<String> = row.try_get("deleted_by").map_err(db_err)?;
                Ok(Post {
                    id: row.try_get("id").map_err(db_err)?,
                    public_id: row.try_get("public_id").map_err(db_err)?,
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    kind: parse::<PostKind>(row.try_get("kind").map_err(db_err)?)?,
                    thread_id: row.try_get("thread_id").map_err(db_err)?,
                    thread_public_id: row.try_get("thread_public_id").map_err(db_err)?,
                    author: PostAuthor {
                        user_id: opt_user(row, "author_user_id")?,
                        actor_id: row.try_get("author_actor_id").map_err(db_err)?,
                        name: row.try_get("author_name").map_err(db_err)?,
                        member_id: row.try_get("author_member_id").map_err(db_err)?,
                        role: role.as_deref().map(parse::<GroupRole>).transpose()?,
                    },
                    origin_id: row.try_get("origin_id").map_err(db_err)?,
                    title: row.try_get("title").map_err(db_err)?,
                    body: row.try_get("body").map_err(db_err)?,
                    pinned: row.try_get("pinned").map_err(db_err)?,
                    publish_at: ts(row, "publish_at")?,
                    created_at: ts(row, "created_at")?,
                    edited_at: opt_ts(row, "edited_at")?,
                    deleted_at: opt_ts(row, "deleted_at")?,
                    deleted_by: match deleted_by.as_deref() {
                        None => None,
                        Some("author") => Some(DeletedBy::Author),
                        Some(_) => Some(DeletedBy::Moderator),
                    },
                    helpful_count: small(row, "helpful_count")?,
                    reply_count: small(row, "reply_count")?,
                    accepted_reply_public_id: row
                        .try_get("accepted_reply_public_id")
                        .map_err(db_err)?,
                    answered_by_doctor: row.try_get("answered_by_doctor").map_err(db_err)?,
                    marked_helpful: row.try_get("marked_helpful").map_err(db_err)?,
                    attachment_count: small(row, "attachment_count")?,
                    attachments: Vec::new(),
                })
            }

            /// The columns of [`POST_SELECT`], for reading a page of posts as one JSON text.
            const POST_JSON_COLUMNS: [&str; 26] = [
                "id", "public_id", "group_id", "kind", "thread_id", "thread_public_id",
                "author_user_id", "author_actor_id", "author_name", "author_member_id",
                "author_role", "origin_id", "title", "body", "pinned", "publish_at", "created_at",
                "edited_at", "deleted_at", "deleted_by", "helpful_count", "reply_count",
                "attachment_count", "accepted_reply_public_id", "answered_by_doctor",
                "marked_helpful",
            ];

            fn post_from_json(v: $crate::json::PostJson) -> Result<Post> {
                Ok(Post {
                    id: v.id,
                    public_id: v.public_id,
                    group_id: v.group_id,
                    kind: parse::<PostKind>(&v.kind)?,
                    thread_id: v.thread_id,
                    thread_public_id: v.thread_public_id,
                    author: PostAuthor {
                        user_id: v.author_user_id.map(UserId),
                        actor_id: v.author_actor_id,
                        name: v.author_name,
                        member_id: v.author_member_id,
                        role: v.author_role.as_deref().map(parse::<GroupRole>).transpose()?,
                    },
                    origin_id: v.origin_id,
                    title: v.title,
                    body: v.body,
                    pinned: v.pinned.get(),
                    publish_at: Timestamp::from_millis(v.publish_at),
                    created_at: Timestamp::from_millis(v.created_at),
                    edited_at: v.edited_at.map(Timestamp::from_millis),
                    deleted_at: v.deleted_at.map(Timestamp::from_millis),
                    deleted_by: match v.deleted_by.as_deref() {
                        None => None,
                        Some("author") => Some(DeletedBy::Author),
                        Some(_) => Some(DeletedBy::Moderator),
                    },
                    helpful_count: u32::try_from(v.helpful_count).unwrap_or(0),
                    reply_count: u32::try_from(v.reply_count).unwrap_or(0),
                    accepted_reply_public_id: v.accepted_reply_public_id,
                    answered_by_doctor: v.answered_by_doctor.get(),
                    marked_helpful: v.marked_helpful.get(),
                    attachment_count: u32::try_from(v.attachment_count).unwrap_or(0),
                    attachments: Vec::new(),
                })
            }

            /// Runs `POST_SELECT tail` and reads its rows as one JSON text: a page of posts costs
            /// one row to transfer instead of one per post (the feed is the node's hottest read).
            async fn posts_as_json(
                conn: &mut Conn,
                viewer: Option<UserId>,
                tail: &str,
                binds: &[i64],
                pinned: Option<bool>,
            ) -> Result<Vec<Post>> {
                let sql = format!(
                    "select {} as page from ({POST_SELECT} {tail}) x",
                    <$store>::json_array_sql(&POST_JSON_COLUMNS)
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(viewer.map(|u| u.0));
                for (i, b) in binds.iter().enumerate() {
                    // The feed's cursor carries the pinned flag as its first number.
                    q = match (i, pinned) {
                        (2, Some(p)) => q.bind(p),
                        _ => q.bind(*b),
                    };
                }
                let text = q.fetch_one(&mut *conn).await.map_err(db_err)?;
                let rows = $crate::json::parse_posts(&text).map_err(StoreError::other)?;
                let mut posts = rows.into_iter().map(post_from_json).collect::<Result<Vec<_>>>()?;
                fill_attachments(conn, &mut posts).await?;
                Ok(posts)
            }

            pub(super) const ATTACHMENT_COLUMNS: &str = "id, public_id, group_id, post_id, uploaded_by, content_type, file_name, size_bytes, sha256, width, height, created_at";

            pub(super) fn attachment_from_row(row: &DbRow, prefix: &str) -> Result<Attachment> {
                let col = |c: &str| format!("{prefix}{c}");
                Ok(Attachment {
                    id: row.try_get(col("id").as_str()).map_err(db_err)?,
                    public_id: row.try_get(col("public_id").as_str()).map_err(db_err)?,
                    group_id: row.try_get(col("group_id").as_str()).map_err(db_err)?,
                    post_id: row.try_get(col("post_id").as_str()).map_err(db_err)?,
                    uploaded_by: opt_user(row, &col("uploaded_by"))?,
                    content_type: row.try_get(col("content_type").as_str()).map_err(db_err)?,
                    file_name: row.try_get(col("file_name").as_str()).map_err(db_err)?,
                    size_bytes: row.try_get(col("size_bytes").as_str()).map_err(db_err)?,
                    sha256: row.try_get(col("sha256").as_str()).map_err(db_err)?,
                    width: opt_small(row, &col("width"))?,
                    height: opt_small(row, &col("height"))?,
                    created_at: ts(row, &col("created_at"))?,
                })
            }

            /// Fetches the attachments of the given posts in one query and hangs them on them.
            async fn fill_attachments(conn: &mut Conn, posts: &mut [Post]) -> Result<()> {
                let live: Vec<i64> = posts
                    .iter()
                    .filter(|p| p.deleted_at.is_none() && p.attachment_count > 0)
                    .map(|p| p.id)
                    .collect();
                if live.is_empty() {
                    return Ok(());
                }
                let placeholders: Vec<String> =
                    (1..=live.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "select {ATTACHMENT_COLUMNS} from attachments where post_id in ({}) order by id",
                    placeholders.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for id in &live {
                    q = q.bind(*id);
                }
                let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
                for row in &rows {
                    let a = attachment_from_row(row, "")?;
                    if let Some(p) = posts.iter_mut().find(|p| Some(p.id) == a.post_id) {
                        p.attachments.push(a);
                    }
                }
                Ok(())
            }

            async fn posts_where(
                conn: &mut Conn,
                viewer: Option<UserId>,
                tail: &str,
                binds: &[i64],
            ) -> Result<Vec<Post>> {
                let sql = format!("{POST_SELECT} {tail}");
                let mut q = sqlx::query(&sql).bind(viewer.map(|u| u.0));
                for b in binds {
                    q = q.bind(*b);
                }
                let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
                let mut posts = rows.iter().map(post_from_row).collect::<Result<Vec<_>>>()?;
                fill_attachments(conn, &mut posts).await?;
                Ok(posts)
            }

            pub(super) async fn load_post(conn: &mut Conn, id: i64, viewer: Option<UserId>) -> Result<Post> {
                posts_where(conn, viewer, "where p.id = $2", &[id])
                    .await?
                    .pop()
                    .ok_or(StoreError::NotFound("post"))
            }

            /// The columns of a post that writes need to check.
            pub(super) struct PostFacts {
                pub(super) group_id: i64,
                pub(super) kind: String,
                pub(super) thread_id: Option<i64>,
                pub(super) author: Option<i64>,
                /// The author's actor when the post was written on another node.
                pub(super) author_actor: Option<String>,
                pub(super) title: Option<String>,
                pub(super) body: String,
                pub(super) deleted: bool,
            }

            pub(super) async fn post_facts(conn: &mut Conn, id: i64) -> Result<PostFacts> {
                let row = sqlx::query(
                    "select group_id, kind, thread_id, author_user_id, author_actor_id, title, body,
                       deleted_at
                     from posts where id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                .ok_or(StoreError::NotFound("post"))?;
                Ok(PostFacts {
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    kind: row.try_get("kind").map_err(db_err)?,
                    thread_id: row.try_get("thread_id").map_err(db_err)?,
                    author: row.try_get("author_user_id").map_err(db_err)?,
                    author_actor: row.try_get("author_actor_id").map_err(db_err)?,
                    title: row.try_get("title").map_err(db_err)?,
                    body: row.try_get("body").map_err(db_err)?,
                    deleted: row
                        .try_get::<Option<i64>, _>("deleted_at")
                        .map_err(db_err)?
                        .is_some(),
                })
            }

            /// Who marks a post helpful: an account of this node, or an actor of another.
            pub(super) enum Marker<'a> {
                User(i64),
                Actor(&'a str),
            }

            /// Records (or takes back) one helpful mark and keeps the post's count; marking twice
            /// counts once. Whether anything changed.
            pub(super) async fn mark_helpful(
                conn: &mut Conn,
                post_id: i64,
                by: Marker<'_>,
                helpful: bool,
                now: Timestamp,
            ) -> Result<bool> {
                let column = match by {
                    Marker::User(_) => "user_id",
                    Marker::Actor(_) => "actor_id",
                };
                let sql = if helpful {
                    format!(
                        "insert into post_helpful (post_id, {column}, created_at) values ($1, $2, $3)
                         on conflict (post_id, {column}) do nothing"
                    )
                } else {
                    format!("delete from post_helpful where post_id = $1 and {column} = $2")
                };
                let q = sqlx::query(&sql).bind(post_id);
                let q = match by {
                    Marker::User(id) => q.bind(id),
                    Marker::Actor(actor) => q.bind(actor),
                };
                let q = if helpful { q.bind(now.as_millis()) } else { q };
                let changed = q.execute(&mut *conn).await.map_err(db_err)?.rows_affected() > 0;
                if changed {
                    let delta: i32 = if helpful { 1 } else { -1 };
                    sqlx::query("update posts set helpful_count = helpful_count + $1 where id = $2")
                        .bind(delta)
                        .bind(post_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err)?;
                }
                Ok(changed)
            }

            /// Takes `bytes` of the group's file quota, if they fit. Whether they did.
            pub(super) async fn take_storage(
                conn: &mut Conn,
                group_id: i64,
                bytes: i64,
                quota_bytes: i64,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "update groups set storage_bytes = storage_bytes + $1
                     where id = $2 and storage_bytes + $1 <= $3",
                )
                .bind(bytes)
                .bind(group_id)
                .bind(quota_bytes)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() > 0)
            }

            pub(super) fn storage_full(quota_bytes: i64) -> StoreError {
                StoreError::conflict(
                    "group_storage_full",
                    format!("the group's files would exceed its limit of {quota_bytes} bytes"),
                )
            }

            /// Leaves a post's tombstone: no title, no text, not pinned, out of the library.
            pub(super) async fn tombstone(
                conn: &mut Conn,
                post_id: i64,
                deleted_by: DeletedBy,
                now: Timestamp,
            ) -> Result<()> {
                sqlx::query(
                    "update posts set title = null, body = '', pinned = $1, deleted_at = $2, deleted_by = $3
                     where id = $4",
                )
                .bind(false)
                .bind(now.as_millis())
                .bind(deleted_by.as_str())
                .bind(post_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                sqlx::query("delete from library_items where post_id = $1")
                    .bind(post_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Counts one more active member of the group (without the size check of
            /// `take_place`: the group's host decided).
            pub(super) async fn count_place(conn: &mut Conn, group_id: i64) -> Result<()> {
                sqlx::query("update groups set member_count = member_count + 1 where id = $1")
                    .bind(group_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            pub(super) fn deleted_conflict() -> StoreError {
                StoreError::conflict("post_deleted", "the post has been deleted")
            }

            // ---- library and moderation ----

            fn folder_from_row(row: &DbRow) -> Result<LibraryFolder> {
                Ok(LibraryFolder {
                    id: row.try_get("id").map_err(db_err)?,
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    name: row.try_get("name").map_err(db_err)?,
                    created_by: opt_user(row, "created_by")?,
                    created_at: ts(row, "created_at")?,
                    item_count: u32::try_from(row.try_get::<i64, _>("item_count").map_err(db_err)?)
                        .unwrap_or(u32::MAX),
                })
            }

            const FOLDER_SELECT: &str = "select f.id, f.group_id, f.name, f.created_by, f.created_at,
                   (select count(*) from library_items i where i.folder_id = f.id) as item_count
                 from library_folders f";

            const ITEM_SELECT: &str = "select li.id, li.folder_id, f.name as folder_name, li.title,
                   p.public_id as post_public_id, li.added_by, li.added_at,
                   a.id as a_id, a.public_id as a_public_id, a.group_id as a_group_id,
                   a.post_id as a_post_id, a.uploaded_by as a_uploaded_by,
                   a.content_type as a_content_type, a.file_name as a_file_name,
                   a.size_bytes as a_size_bytes, a.sha256 as a_sha256, a.width as a_width,
                   a.height as a_height, a.created_at as a_created_at
                 from library_items li
                 join library_folders f on f.id = li.folder_id
                 left join posts p on p.id = li.post_id
                 left join attachments a on a.id = li.attachment_id";

            fn item_from_row(row: &DbRow) -> Result<LibraryItem> {
                let has_file = row.try_get::<Option<i64>, _>("a_id").map_err(db_err)?.is_some();
                Ok(LibraryItem {
                    id: row.try_get("id").map_err(db_err)?,
                    folder_id: row.try_get("folder_id").map_err(db_err)?,
                    folder_name: row.try_get("folder_name").map_err(db_err)?,
                    title: row.try_get("title").map_err(db_err)?,
                    post_public_id: row.try_get("post_public_id").map_err(db_err)?,
                    attachment: if has_file {
                        Some(attachment_from_row(row, "a_")?)
                    } else {
                        None
                    },
                    added_by: opt_user(row, "added_by")?,
                    added_at: ts(row, "added_at")?,
                })
            }

            const REPORT_SELECT: &str = "select r.id, r.group_id, r.post_id, p.public_id as post_public_id,
                   p.body as post_body, r.reporter_user_id, r.reporter_actor_id, r.forwarded_at, r.reason,
                   r.created_at, r.resolved_at, r.resolution
                 from post_reports r join posts p on p.id = r.post_id";

            fn report_from_row(row: &DbRow) -> Result<Report> {
                Ok(Report {
                    id: row.try_get("id").map_err(db_err)?,
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    post_id: row.try_get("post_id").map_err(db_err)?,
                    post_public_id: row.try_get("post_public_id").map_err(db_err)?,
                    post_body: row.try_get("post_body").map_err(db_err)?,
                    reporter: opt_user(row, "reporter_user_id")?,
                    reporter_actor: row.try_get("reporter_actor_id").map_err(db_err)?,
                    forwarded_at: opt_ts(row, "forwarded_at")?,
                    reason: row.try_get("reason").map_err(db_err)?,
                    created_at: ts(row, "created_at")?,
                    resolved_at: opt_ts(row, "resolved_at")?,
                    resolution: row.try_get("resolution").map_err(db_err)?,
                })
            }

            async fn load_report(conn: &mut Conn, group_id: i64, id: i64) -> Result<Report> {
                let sql = format!("{REPORT_SELECT} where r.group_id = $1 and r.id = $2");
                let row = sqlx::query(&sql)
                    .bind(group_id)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("report"))?;
                report_from_row(&row)
            }

            fn mod_entry_from_row(row: &DbRow) -> Result<ModerationEntry> {
                Ok(ModerationEntry {
                    id: row.try_get("id").map_err(db_err)?,
                    group_id: row.try_get("group_id").map_err(db_err)?,
                    moderator: opt_user(row, "moderator_user_id")?,
                    moderator_name: row.try_get("moderator_name").map_err(db_err)?,
                    action: row.try_get("action").map_err(db_err)?,
                    target_member_id: row.try_get("target_member_id").map_err(db_err)?,
                    target_name: row.try_get("target_name").map_err(db_err)?,
                    target_post_public_id: row.try_get("target_post_public_id").map_err(db_err)?,
                    detail: row.try_get("detail").map_err(db_err)?,
                    created_at: ts(row, "created_at")?,
                })
            }

            #[async_trait]
            impl GroupStore for $store {
                async fn create_group(&self, new: NewGroup, now: Timestamp) -> Result<Group> {
                    let s = &new.settings;
                    let mut tx = self.begin_write().await?;
                    let id: i64 = sqlx::query_scalar(
                        "insert into groups (public_id, name, condition, condition_code, city, language,
                           description, rules, member_list, created_by, created_at, updated_at, member_count)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1) returning id",
                    )
                    .bind(&new.public_id)
                    .bind(&s.name)
                    .bind(&s.condition)
                    .bind(&s.condition_code)
                    .bind(&s.city)
                    .bind(s.language.as_str())
                    .bind(&s.description)
                    .bind(&s.rules)
                    .bind(s.member_list.as_str())
                    .bind(new.owner.0)
                    .bind(now.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "group_exists", "a group with this id exists"))?;
                    insert_member(&mut tx, id, new.owner, GroupRole::Owner, MemberState::Active, None, now)
                        .await?;
                    let group = load_group(&mut tx, id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(group)
                }

                async fn group_by_public_id(&self, public_id: &str) -> Result<Group> {
                    let row = sqlx::query("select * from groups where public_id = $1")
                        .bind(public_id)
                        .fetch_optional(&mut *self.reader().await?)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("group"))?;
                    group_from_row(&row)
                }

                async fn group_by_id(&self, id: i64) -> Result<Group> {
                    let mut conn = self.reader().await?;
                    load_group(&mut conn, id).await
                }

                async fn update_group_with(
                    &self,
                    group_id: i64,
                    s: GroupSettings,
                    by: Acting,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Group> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(
                        "update groups set name = $1, condition = $2, condition_code = $3, city = $4,
                           language = $5, description = $6, rules = $7, member_list = $8, updated_at = $9
                         where id = $10",
                    )
                    .bind(&s.name)
                    .bind(&s.condition)
                    .bind(&s.condition_code)
                    .bind(&s.city)
                    .bind(s.language.as_str())
                    .bind(&s.description)
                    .bind(&s.rules)
                    .bind(s.member_list.as_str())
                    .bind(now.as_millis())
                    .bind(group_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound("group"));
                    }
                    log_action(&mut tx, group_id, by, "update_settings", None, None, None, now).await?;
                    let group = load_group(&mut tx, group_id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(group)
                }

                async fn groups_of_user(
                    &self,
                    user: UserId,
                    after: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<(Group, Member)>> {
                    let mut conn = self.reader().await?;
                    let rows = sqlx::query(
                        "select g.* from groups g join group_members gm on gm.group_id = g.id
                         where gm.user_id = $1 and gm.state = 'active' and g.id > $2
                         order by g.id limit $3",
                    )
                    .bind(user.0)
                    .bind(after.unwrap_or(0))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let g = group_from_row(row)?;
                        let m = member_of_user(&mut conn, g.id, user)
                            .await?
                            .ok_or(StoreError::NotFound("member"))?;
                        out.push((g, m));
                    }
                    Ok(out)
                }

                async fn list_groups(&self, after: Option<i64>, limit: u32) -> Result<Vec<Group>> {
                    let rows = sqlx::query("select * from groups where id > $1 order by id limit $2")
                        .bind(after.unwrap_or(0))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(group_from_row).collect()
                }

                async fn membership(&self, group_id: i64, user: UserId) -> Result<Option<Member>> {
                    let mut conn = self.reader().await?;
                    member_of_user(&mut conn, group_id, user).await
                }

                async fn member_by_id(&self, group_id: i64, member_id: i64) -> Result<Member> {
                    let mut conn = self.reader().await?;
                    load_member(&mut conn, group_id, member_id).await
                }

                async fn list_members(
                    &self,
                    group_id: i64,
                    state: MemberState,
                    after: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<Member>> {
                    let sql = format!(
                        "{MEMBER_SELECT} where gm.group_id = $1 and gm.state = $2 and gm.id > $3
                         order by gm.id limit $4"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(state.as_str())
                        .bind(after.unwrap_or(0))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(member_from_row).collect()
                }

                async fn join_by_invite(
                    &self,
                    token: &str,
                    user: UserId,
                    max_members: u32,
                    now: Timestamp,
                ) -> Result<(Group, Member)> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query("select * from group_invites where token = $1")
                        .bind(token)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("invite"))?;
                    let invite = group_invite_from_row(&row)?;
                    // Only a group's host admits its members; a link made here for the copy of a
                    // group hosted elsewhere admits nobody.
                    if load_group(&mut tx, invite.group_id).await?.remote_actor_id.is_some() {
                        return Err(StoreError::conflict(
                            "hosted_elsewhere",
                            "this group is hosted by another hospital: only its host admits members",
                        ));
                    }
                    if invite.state(now) != caremesh_store::InviteState::Usable {
                        return Err(StoreError::conflict(
                            "invite_unusable",
                            "this invite has expired, been used up or been revoked",
                        ));
                    }
                    let existing = member_of_user(&mut tx, invite.group_id, user).await?;
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
                    take_place(&mut tx, invite.group_id, max_members).await?;
                    sqlx::query("update group_invites set uses = uses + 1 where id = $1")
                        .bind(invite.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let member_id = match existing {
                        Some(m) => {
                            set_state(&mut tx, m.id, MemberState::Active, Some(GroupRole::Member), now)
                                .await?;
                            m.id
                        }
                        None => {
                            insert_member(
                                &mut tx,
                                invite.group_id,
                                user,
                                GroupRole::Member,
                                MemberState::Active,
                                None,
                                now,
                            )
                            .await?
                        }
                    };
                    // Every admission is in the moderation log: here, who joined with which link.
                    let detail = format!("invite {}", invite.id);
                    log_action(
                        &mut tx,
                        invite.group_id,
                        user,
                        "join_by_invite",
                        Some(member_id),
                        None,
                        Some(&detail),
                        now,
                    )
                    .await?;
                    let member = load_member(&mut tx, invite.group_id, member_id).await?;
                    let group = load_group(&mut tx, invite.group_id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok((group, member))
                }

                async fn request_join(
                    &self,
                    group_id: i64,
                    user: UserId,
                    message: Option<String>,
                    now: Timestamp,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    load_group(&mut tx, group_id).await?;
                    let existing = member_of_user(&mut tx, group_id, user).await?;
                    let member_id = match existing {
                        Some(m) => {
                            match m.state {
                                MemberState::Active => {
                                    return Err(StoreError::conflict(
                                        "already_member",
                                        "you are a member of this group already",
                                    ));
                                }
                                MemberState::Pending => {
                                    return Err(StoreError::conflict(
                                        "already_requested",
                                        "your request to join is waiting for a moderator",
                                    ));
                                }
                                MemberState::Banned => {
                                    return Err(StoreError::conflict(
                                        "banned",
                                        "you have been banned from this group",
                                    ));
                                }
                                _ => {}
                            }
                            sqlx::query(
                                "update group_members set state = 'pending', role = 'member',
                                   request_message = $1, updated_at = $2 where id = $3",
                            )
                            .bind(&message)
                            .bind(now.as_millis())
                            .bind(m.id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                            m.id
                        }
                        None => {
                            insert_member(
                                &mut tx,
                                group_id,
                                user,
                                GroupRole::Member,
                                MemberState::Pending,
                                message.as_deref(),
                                now,
                            )
                            .await?
                        }
                    };
                    let member = load_member(&mut tx, group_id, member_id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn decide_join_with(
                    &self,
                    group_id: i64,
                    member_id: i64,
                    approve: bool,
                    by: Acting,
                    max_members: u32,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = load_member(&mut tx, group_id, member_id)
                        .await
                        .map_err(|_| StoreError::NotFound("join request"))?;
                    if m.state != MemberState::Pending {
                        return Err(StoreError::conflict(
                            "no_pending_request",
                            "there is no pending join request to decide",
                        ));
                    }
                    if approve {
                        take_place(&mut tx, group_id, max_members).await?;
                        set_state(&mut tx, m.id, MemberState::Active, None, now).await?;
                    } else {
                        set_state(&mut tx, m.id, MemberState::Rejected, None, now).await?;
                    }
                    let action = if approve { "approve_join" } else { "reject_join" };
                    log_action(&mut tx, group_id, by, action, Some(m.id), None, None, now).await?;
                    let member = load_member(&mut tx, group_id, member_id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn leave_group_with(
                    &self,
                    group_id: i64,
                    user: UserId,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = member_of_user(&mut tx, group_id, user)
                        .await?
                        .filter(Member::is_active)
                        .ok_or_else(|| {
                            StoreError::conflict("not_a_member", "you are not a member of this group")
                        })?;
                    if m.role == GroupRole::Owner {
                        return Err(StoreError::conflict(
                            "owner_cannot_leave",
                            "the owner cannot leave the group",
                        ));
                    }
                    set_state(&mut tx, m.id, MemberState::Left, Some(GroupRole::Member), now).await?;
                    free_place(&mut tx, group_id).await?;
                    let member = load_member(&mut tx, group_id, m.id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn remove_member_with(
                    &self,
                    group_id: i64,
                    member_id: i64,
                    ban: bool,
                    reason: Option<String>,
                    by: Acting,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = load_member(&mut tx, group_id, member_id).await?;
                    if m.role == GroupRole::Owner {
                        return Err(StoreError::conflict(
                            "cannot_remove_owner",
                            "the owner of a group cannot be removed or banned",
                        ));
                    }
                    if ban && m.state == MemberState::Banned {
                        return Err(StoreError::conflict("already_banned", "this member is banned already"));
                    }
                    if !ban && m.state != MemberState::Active {
                        return Err(StoreError::conflict("not_a_member", "this account is not an active member"));
                    }
                    let state = if ban { MemberState::Banned } else { MemberState::Removed };
                    set_state(&mut tx, m.id, state, Some(GroupRole::Member), now).await?;
                    if m.state == MemberState::Active {
                        free_place(&mut tx, group_id).await?;
                    }
                    let action = if ban { "ban" } else { "remove_member" };
                    log_action(&mut tx, group_id, by, action, Some(m.id), None, reason.as_deref(), now)
                        .await?;
                    let member = load_member(&mut tx, group_id, member_id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn unban_member_with(
                    &self,
                    group_id: i64,
                    member_id: i64,
                    by: Acting,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = load_member(&mut tx, group_id, member_id).await?;
                    if m.state != MemberState::Banned {
                        return Err(StoreError::conflict("not_banned", "this member is not banned"));
                    }
                    set_state(&mut tx, m.id, MemberState::Removed, None, now).await?;
                    log_action(&mut tx, group_id, by, "unban", Some(m.id), None, None, now).await?;
                    let member = load_member(&mut tx, group_id, member_id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn set_member_role_with(
                    &self,
                    group_id: i64,
                    member_id: i64,
                    role: GroupRole,
                    by: Acting,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = load_member(&mut tx, group_id, member_id).await?;
                    if !m.is_active() {
                        return Err(StoreError::conflict("not_a_member", "this account is not an active member"));
                    }
                    if m.role == GroupRole::Owner || role == GroupRole::Owner {
                        return Err(StoreError::conflict(
                            "cannot_change_owner",
                            "the owner's role cannot be given or taken here",
                        ));
                    }
                    // A member of another node is a doctor by the credential their hospital signed,
                    // which the caller checks; a local account by its role.
                    if role == GroupRole::Doctor
                        && m.user_id.is_some()
                        && m.account_role != Some(Role::Doctor)
                    {
                        return Err(StoreError::conflict(
                            "not_a_doctor",
                            "only doctors' accounts can be doctors of a group",
                        ));
                    }
                    if m.role == role {
                        return Ok(m);
                    }
                    let action = match (m.role, role) {
                        (_, GroupRole::Doctor) => "appoint_doctor",
                        (_, GroupRole::Moderator) => "appoint_moderator",
                        (GroupRole::Doctor, _) => "dismiss_doctor",
                        _ => "dismiss_moderator",
                    };
                    sqlx::query("update group_members set role = $1, updated_at = $2 where id = $3")
                        .bind(role.as_str())
                        .bind(now.as_millis())
                        .bind(m.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let detail = format!("{} -> {}", m.role, role);
                    log_action(&mut tx, group_id, by, action, Some(m.id), None, Some(&detail), now).await?;
                    let member = load_member(&mut tx, group_id, member_id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn set_member_name_with(
                    &self,
                    group_id: i64,
                    user: UserId,
                    name: String,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Member> {
                    let mut tx = self.begin_write().await?;
                    let m = member_of_user(&mut tx, group_id, user).await?;
                    let Some(m) = m.filter(|m| matches!(m.state, MemberState::Active | MemberState::Pending)) else {
                        return Err(StoreError::conflict("not_a_member", "this account is not a member of the group"));
                    };
                    // `updated_at` stays: it says since when the membership is in its state.
                    sqlx::query("update group_members set member_name = $1 where id = $2")
                        .bind(&name)
                        .bind(m.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    sqlx::query("update pseudonyms set display_name = $1 where user_id = $2 and group_id = $3")
                        .bind(&name)
                        .bind(user.0)
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let member = load_member(&mut tx, group_id, m.id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(member)
                }

                async fn create_group_invite(&self, n: NewGroupInvite) -> Result<GroupInvite> {
                    let row = sqlx::query(
                        "insert into group_invites (group_id, token, label, created_by, created_at, expires_at, max_uses, uses)
                         values ($1, $2, $3, $4, $5, $6, $7, 0) returning *",
                    )
                    .bind(n.group_id)
                    .bind(&n.token)
                    .bind(&n.label)
                    .bind(n.created_by.0)
                    .bind(n.created_at.as_millis())
                    .bind(n.expires_at.map(Timestamp::as_millis))
                    .bind(n.max_uses.map(to_i32))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| conflict_on_unique(e, "invite_exists", "an invite with this token exists"))?;
                    group_invite_from_row(&row)
                }

                async fn group_invite_by_token(&self, token: &str) -> Result<GroupInvite> {
                    let row = sqlx::query("select * from group_invites where token = $1")
                        .bind(token)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("invite"))?;
                    group_invite_from_row(&row)
                }

                async fn group_invite_by_id(&self, group_id: i64, id: i64) -> Result<GroupInvite> {
                    let row = sqlx::query("select * from group_invites where group_id = $1 and id = $2")
                        .bind(group_id)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("invite"))?;
                    group_invite_from_row(&row)
                }

                async fn list_group_invites(
                    &self,
                    group_id: i64,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<GroupInvite>> {
                    let rows = sqlx::query(
                        "select * from group_invites where group_id = $1 and id < $2 order by id desc limit $3",
                    )
                    .bind(group_id)
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(group_invite_from_row).collect()
                }

                async fn revoke_group_invite(
                    &self,
                    group_id: i64,
                    id: i64,
                    now: Timestamp,
                ) -> Result<GroupInvite> {
                    let row = sqlx::query(
                        "update group_invites set revoked_at = coalesce(revoked_at, $1)
                         where group_id = $2 and id = $3 returning *",
                    )
                    .bind(now.as_millis())
                    .bind(group_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("invite"))?;
                    group_invite_from_row(&row)
                }

                async fn create_post_with(&self, n: NewPost, outbox: Vec<NewOutboxEntry>) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let author = member_of_user(&mut tx, n.group_id, n.author)
                        .await?
                        .filter(Member::is_active)
                        .ok_or_else(|| {
                            StoreError::conflict("not_a_member", "only members of the group can post in it")
                        })?;
                    if let Some(thread) = n.thread_id {
                        let t = post_facts(&mut tx, thread).await?;
                        if t.group_id != n.group_id || t.thread_id.is_some() {
                            return Err(StoreError::NotFound("post"));
                        }
                        if t.deleted {
                            return Err(StoreError::conflict(
                                "thread_deleted",
                                "the post has been deleted; its thread takes no new replies",
                            ));
                        }
                    }
                    let id: i64 = sqlx::query_scalar(
                        "insert into posts (public_id, group_id, kind, thread_id, author_user_id, title, body,
                           pinned, publish_at, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning id",
                    )
                    .bind(&n.public_id)
                    .bind(n.group_id)
                    .bind(n.kind.as_str())
                    .bind(n.thread_id)
                    .bind(n.author.0)
                    .bind(&n.title)
                    .bind(&n.body)
                    .bind(n.pinned)
                    .bind(n.publish_at.as_millis())
                    .bind(n.created_at.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "post_exists", "a post with this id exists"))?;
                    if let Some(thread) = n.thread_id {
                        let by_doctor = author.role.can_teach() && author.account_role == Some(Role::Doctor);
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
                    for public_id in &n.attachments {
                        let done = sqlx::query(
                            "update attachments set post_id = $1
                             where public_id = $2 and group_id = $3 and uploaded_by = $4 and post_id is null",
                        )
                        .bind(id)
                        .bind(public_id)
                        .bind(n.group_id)
                        .bind(n.author.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::conflict(
                                "attachment_unusable",
                                format!(
                                    "attachment {public_id:?} is not one you uploaded to this group, or it is in another post"
                                ),
                            ));
                        }
                    }
                    if !n.attachments.is_empty() {
                        sqlx::query("update posts set attachment_count = $1 where id = $2")
                            .bind(i32::try_from(n.attachments.len()).unwrap_or(i32::MAX))
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                    let post = load_post(&mut tx, id, Some(n.author)).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, n.created_at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn group_access(
                    &self,
                    public_id: &str,
                    user: UserId,
                ) -> Result<(Group, Option<Member>)> {
                    // One round trip: every group request starts here.
                    let row = sqlx::query(
                        "select g.*, gm.id as m_id, gm.group_id as m_group_id, gm.user_id as m_user_id,
                           gm.actor_id as m_actor_id, coalesce(gm.member_name, u.display_name, gm.actor_name, '') as m_display_name,
                           u.role as m_account_role, gm.role as m_role, gm.state as m_state,
                           gm.request_message as m_request_message, gm.created_at as m_created_at,
                           gm.updated_at as m_updated_at
                         from groups g
                         left join group_members gm on gm.group_id = g.id and gm.user_id = $2
                         left join users u on u.id = gm.user_id
                         where g.public_id = $1",
                    )
                    .bind(public_id)
                    .bind(user.0)
                    .fetch_optional(&mut *self.reader().await?)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("group"))?;
                    let group = group_from_row(&row)?;
                    let member = match row.try_get::<Option<i64>, _>("m_id").map_err(db_err)? {
                        Some(_) => Some(member_from_prefixed(&row, "m_")?),
                        None => None,
                    };
                    Ok((group, member))
                }

                async fn session_group_access(
                    &self,
                    token_hash: &str,
                    group_public_id: &str,
                    now: Timestamp,
                ) -> Result<(caremesh_store::Session, caremesh_store::User, Option<(Group, Option<Member>)>)> {
                    let row = sqlx::query(
                        "select s.token_hash as s_token_hash, s.created_at as s_created_at,
                           s.expires_at as s_expires_at, u.id as u_id, u.username as u_username,
                           u.display_name as u_display_name, u.role as u_role,
                           u.password_hash as u_password_hash, u.disabled as u_disabled,
                           u.created_at as u_created_at, u.updated_at as u_updated_at,
                           g.*,
                           gm.id as m_id, gm.group_id as m_group_id, gm.user_id as m_user_id,
                           gm.actor_id as m_actor_id, coalesce(gm.member_name, u.display_name) as m_display_name,
                           u.role as m_account_role, gm.role as m_role, gm.state as m_state,
                           gm.request_message as m_request_message, gm.created_at as m_created_at,
                           gm.updated_at as m_updated_at
                         from sessions s join users u on u.id = s.user_id
                         left join groups g on g.public_id = $2
                         left join group_members gm on gm.group_id = g.id and gm.user_id = u.id
                         where s.token_hash = $1 and s.expires_at > $3 and not u.disabled",
                    )
                    .bind(token_hash)
                    .bind(group_public_id)
                    .bind(now.as_millis())
                    .fetch_optional(&mut *self.reader().await?)
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound("session"))?;
                    let user = caremesh_store::User {
                        id: UserId(row.try_get("u_id").map_err(db_err)?),
                        username: row.try_get("u_username").map_err(db_err)?,
                        display_name: row.try_get("u_display_name").map_err(db_err)?,
                        role: parse_role(row.try_get("u_role").map_err(db_err)?)?,
                        password_hash: row.try_get("u_password_hash").map_err(db_err)?,
                        disabled: row.try_get("u_disabled").map_err(db_err)?,
                        created_at: ts(&row, "u_created_at")?,
                        updated_at: ts(&row, "u_updated_at")?,
                    };
                    let session = caremesh_store::Session {
                        token_hash: row.try_get("s_token_hash").map_err(db_err)?,
                        user_id: user.id,
                        created_at: ts(&row, "s_created_at")?,
                        expires_at: ts(&row, "s_expires_at")?,
                    };
                    let group = match row.try_get::<Option<i64>, _>("id").map_err(db_err)? {
                        None => None,
                        Some(_) => {
                            let g = group_from_row(&row)?;
                            let m = match row.try_get::<Option<i64>, _>("m_id").map_err(db_err)? {
                                Some(_) => Some(member_from_prefixed(&row, "m_")?),
                                None => None,
                            };
                            Some((g, m))
                        }
                    };
                    Ok((session, user, group))
                }

                async fn post_by_public_id(
                    &self,
                    group_id: i64,
                    public_id: &str,
                    viewer: Option<UserId>,
                ) -> Result<Post> {
                    let mut conn = self.reader().await?;
                    let id: i64 = sqlx::query_scalar("select id from posts where public_id = $1 and group_id = $2")
                        .bind(public_id)
                        .bind(group_id)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("post"))?;
                    load_post(&mut conn, id, viewer).await
                }

                async fn feed(
                    &self,
                    group_id: i64,
                    viewer: Option<UserId>,
                    sort: FeedSort,
                    after: Option<FeedPosition>,
                    limit: u32,
                    now: Timestamp,
                ) -> Result<Vec<Post>> {
                    let key = match sort {
                        FeedSort::Newest => "publish_at",
                        FeedSort::Helpful => "helpful_count",
                    };
                    let mut conn = self.reader().await?;
                    let base = "where p.group_id = $2 and p.thread_id is null and p.publish_at <= $3
                                  and (p.deleted_at is null or p.reply_count > 0)";
                    let mut posts = match after {
                        None => {
                            let tail = format!(
                                "{base} order by p.pinned desc, p.{key} desc, p.id desc limit $4"
                            );
                            posts_as_json(
                                &mut conn,
                                viewer,
                                &tail,
                                &[group_id, now.as_millis(), i64::from(limit)],
                                None,
                            )
                            .await?
                        }
                        Some(pos) => {
                            // Pinned and unpinned posts are two runs of the index; the cursor's
                            // pinned flag says which run, the row comparison where in it.
                            let tail = format!(
                                "{base} and (p.pinned, p.{key}, p.id) < ($4, $5, $6)
                                 order by p.pinned desc, p.{key} desc, p.id desc limit $7"
                            );
                            posts_as_json(
                                &mut conn,
                                viewer,
                                &tail,
                                &[group_id, now.as_millis(), 0, pos.key, pos.id, i64::from(limit)],
                                Some(pos.pinned),
                            )
                            .await?
                        }
                    };
                    // The aggregate does not promise to keep the subquery's order.
                    let sort_key = |p: &Post| {
                        let k = match sort {
                            FeedSort::Newest => p.publish_at.as_millis(),
                            FeedSort::Helpful => i64::from(p.helpful_count),
                        };
                        std::cmp::Reverse((p.pinned, k, p.id))
                    };
                    posts.sort_by_key(sort_key);
                    Ok(posts)
                }

                async fn scheduled_posts(
                    &self,
                    group_id: i64,
                    after: Option<(i64, i64)>,
                    limit: u32,
                    now: Timestamp,
                ) -> Result<Vec<Post>> {
                    let mut conn = self.reader().await?;
                    let (at, id) = after.unwrap_or((now.as_millis(), i64::MAX));
                    posts_where(
                        &mut conn,
                        None,
                        "where p.group_id = $2 and p.thread_id is null and p.deleted_at is null
                           and p.publish_at > $3 and (p.publish_at > $4 or (p.publish_at = $4 and p.id > $5))
                         order by p.publish_at, p.id limit $6",
                        &[group_id, now.as_millis(), at, if after.is_some() { id } else { 0 }, i64::from(limit)],
                    )
                    .await
                }

                async fn replies(
                    &self,
                    thread_id: i64,
                    viewer: Option<UserId>,
                    sort: ReplySort,
                    after: Option<(i64, i64)>,
                    limit: u32,
                ) -> Result<Vec<Post>> {
                    let mut conn = self.reader().await?;
                    match sort {
                        ReplySort::Oldest => {
                            let after_id = after.map_or(0, |(_, id)| id);
                            posts_where(
                                &mut conn,
                                viewer,
                                "where p.thread_id = $2 and p.id > $3 order by p.id limit $4",
                                &[thread_id, after_id, i64::from(limit)],
                            )
                            .await
                        }
                        ReplySort::Helpful => {
                            let (count, id) = after.unwrap_or((i64::MAX, 0));
                            posts_where(
                                &mut conn,
                                viewer,
                                "where p.thread_id = $2
                                   and (p.helpful_count < $3 or (p.helpful_count = $3 and p.id > $4))
                                 order by p.helpful_count desc, p.id limit $5",
                                &[thread_id, count, id, i64::from(limit)],
                            )
                            .await
                        }
                    }
                }

                async fn edit_post_with(
                    &self,
                    post_id: i64,
                    editor: UserId,
                    title: Option<String>,
                    body: String,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.author != Some(editor.0) {
                        return Err(StoreError::conflict("not_author", "only its author can edit a post"));
                    }
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    sqlx::query(
                        "insert into post_edits (post_id, title, body, replaced_at, reason)
                         values ($1, $2, $3, $4, 'edit')",
                    )
                    .bind(post_id)
                    .bind(&f.title)
                    .bind(&f.body)
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    sqlx::query("update posts set title = $1, body = $2, edited_at = $3 where id = $4")
                        .bind(&title)
                        .bind(&body)
                        .bind(now.as_millis())
                        .bind(post_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let post = load_post(&mut tx, post_id, Some(editor)).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn delete_post_with(
                    &self,
                    post_id: i64,
                    by: UserId,
                    moderator_reason: Option<Option<String>>,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    let deleted_by = match &moderator_reason {
                        None => {
                            if f.author != Some(by.0) {
                                return Err(StoreError::conflict(
                                    "not_author",
                                    "only its author can delete a post this way",
                                ));
                            }
                            sqlx::query("delete from post_edits where post_id = $1")
                                .bind(post_id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_err)?;
                            DeletedBy::Author
                        }
                        Some(reason) => {
                            moderator_removal(&mut tx, &f, post_id, by.into(), reason.as_deref(), now)
                                .await?;
                            DeletedBy::Moderator
                        }
                    };
                    tombstone(&mut tx, post_id, deleted_by, now).await?;
                    let post = load_post(&mut tx, post_id, Some(by)).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn remove_post_with(
                    &self,
                    post_id: i64,
                    by: Acting,
                    reason: Option<String>,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    moderator_removal(&mut tx, &f, post_id, by, reason.as_deref(), now).await?;
                    tombstone(&mut tx, post_id, DeletedBy::Moderator, now).await?;
                    let viewer = match by {
                        Acting::Account(u) => Some(u),
                        Acting::Member(_) => None,
                    };
                    let post = load_post(&mut tx, post_id, viewer).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn post_history(&self, post_id: i64) -> Result<Vec<PostEdit>> {
                    let rows = sqlx::query("select * from post_edits where post_id = $1 order by id")
                        .bind(post_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter()
                        .map(|row| {
                            Ok(PostEdit {
                                id: row.try_get("id").map_err(db_err)?,
                                title: row.try_get("title").map_err(db_err)?,
                                body: row.try_get("body").map_err(db_err)?,
                                replaced_at: ts(row, "replaced_at")?,
                                reason: row.try_get("reason").map_err(db_err)?,
                            })
                        })
                        .collect()
                }

                async fn set_helpful_with(
                    &self,
                    post_id: i64,
                    user: UserId,
                    helpful: bool,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    if f.author == Some(user.0) {
                        return Err(StoreError::conflict("own_post", "you cannot mark your own post helpful"));
                    }
                    if mark_helpful(&mut tx, post_id, Marker::User(user.0), helpful, now).await? {
                        super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    }
                    let post = load_post(&mut tx, post_id, Some(user)).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn accept_answer_with(
                    &self,
                    question_id: i64,
                    reply_id: Option<i64>,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let q = post_facts(&mut tx, question_id).await?;
                    if q.kind != "question" {
                        return Err(StoreError::conflict(
                            "not_a_question",
                            "only a question can have an accepted answer",
                        ));
                    }
                    if q.deleted {
                        return Err(deleted_conflict());
                    }
                    if let Some(r) = reply_id {
                        let reply = post_facts(&mut tx, r).await?;
                        if reply.thread_id != Some(question_id) {
                            return Err(StoreError::conflict(
                                "not_in_thread",
                                "the answer must be a reply to this question",
                            ));
                        }
                        if reply.deleted {
                            return Err(deleted_conflict());
                        }
                    }
                    sqlx::query("update posts set accepted_reply_id = $1 where id = $2")
                        .bind(reply_id)
                        .bind(question_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let post = load_post(&mut tx, question_id, None).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn set_pinned_with(
                    &self,
                    post_id: i64,
                    pinned: bool,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Post> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.thread_id.is_some() {
                        return Err(StoreError::conflict("not_top_level", "replies cannot be pinned"));
                    }
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    sqlx::query("update posts set pinned = $1 where id = $2")
                        .bind(pinned)
                        .bind(post_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let post = load_post(&mut tx, post_id, None).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(post)
                }

                async fn record_post_views(
                    &self,
                    post_ids: &[i64],
                    user: UserId,
                    now: Timestamp,
                ) -> Result<()> {
                    if post_ids.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.begin_write().await?;
                    for id in post_ids {
                        sqlx::query(
                            "insert into post_views (post_id, user_id, first_seen_at)
                             values ($1, $2, $3) on conflict (post_id, user_id) do nothing",
                        )
                        .bind(*id)
                        .bind(user.0)
                        .bind(now.as_millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(())
                }

                async fn post_view_counts(&self, post_ids: &[i64]) -> Result<Vec<(i64, u64)>> {
                    if post_ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let placeholders: Vec<String> =
                        (1..=post_ids.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "select post_id, count(*) as n from post_views where post_id in ({})
                         group by post_id order by post_id",
                        placeholders.join(", ")
                    );
                    let mut q = sqlx::query(&sql);
                    for id in post_ids {
                        q = q.bind(*id);
                    }
                    let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter()
                        .map(|r| {
                            let id: i64 = r.try_get("post_id").map_err(db_err)?;
                            let n: i64 = r.try_get("n").map_err(db_err)?;
                            Ok((id, u64::try_from(n).unwrap_or(0)))
                        })
                        .collect()
                }

                async fn doctor_queue(
                    &self,
                    doctor: UserId,
                    after: Option<(i64, i64)>,
                    limit: u32,
                    now: Timestamp,
                ) -> Result<Vec<QueueItem>> {
                    let mut conn = self.reader().await?;
                    let (at, id) = after.unwrap_or((i64::MIN, 0));
                    let posts = posts_where(
                        &mut conn,
                        Some(doctor),
                        "where p.group_id in (select d.group_id from group_members d
                                               where d.user_id = $2 and d.state = 'active'
                                                 and d.role in ('owner', 'doctor'))
                           and p.kind = 'question' and p.accepted_reply_id is null
                           and not p.answered_by_doctor and p.deleted_at is null
                           and p.publish_at <= $3
                           and (p.publish_at > $4 or (p.publish_at = $4 and p.id > $5))
                         order by p.publish_at, p.id limit $6",
                        &[doctor.0, now.as_millis(), at, id, i64::from(limit)],
                    )
                    .await?;
                    let mut out = Vec::with_capacity(posts.len());
                    for post in posts {
                        let g = load_group(&mut conn, post.group_id).await?;
                        out.push(QueueItem {
                            post,
                            group_public_id: g.public_id,
                            group_name: g.settings.name,
                        });
                    }
                    Ok(out)
                }

                async fn search_posts(
                    &self,
                    group_id: i64,
                    viewer: Option<UserId>,
                    query: &str,
                    before: Option<i64>,
                    limit: u32,
                    now: Timestamp,
                ) -> Result<Vec<Post>> {
                    let mut conn = self.reader().await?;
                    let sql = format!(
                        "{POST_SELECT} where p.group_id = $2 and p.deleted_at is null and p.publish_at <= $3
                           and p.id < $4
                           and (lower(p.body) like $5 escape '\\' or lower(coalesce(p.title, '')) like $5 escape '\\')
                         order by p.id desc limit $6"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(viewer.map(|u| u.0))
                        .bind(group_id)
                        .bind(now.as_millis())
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(like_pattern(query))
                        .bind(i64::from(limit))
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    let mut posts = rows.iter().map(post_from_row).collect::<Result<Vec<_>>>()?;
                    fill_attachments(&mut conn, &mut posts).await?;
                    Ok(posts)
                }

                async fn import_posts(
                    &self,
                    group_id: i64,
                    author: UserId,
                    posts: Vec<ImportedPost>,
                ) -> Result<u64> {
                    const ROWS_PER_STATEMENT: usize = 1000;
                    let mut tx = self.begin_write().await?;
                    let mut written = 0u64;
                    for chunk in posts.chunks(ROWS_PER_STATEMENT) {
                        // The group and author are numbers, written into the statement; every
                        // text goes in as a parameter.
                        let values: Vec<String> = (0..chunk.len())
                            .map(|i| {
                                let b = i * 6;
                                format!(
                                    "(${}, {group_id}, ${}, {}, ${}, ${}, false, ${}, ${}, ${})",
                                    b + 1,
                                    b + 2,
                                    author.0,
                                    b + 3,
                                    b + 4,
                                    b + 5,
                                    b + 5,
                                    b + 6
                                )
                            })
                            .collect();
                        let sql = format!(
                            "insert into posts (public_id, group_id, kind, author_user_id, title, body, pinned,
                               publish_at, created_at, helpful_count) values {}",
                            values.join(", ")
                        );
                        let mut q = sqlx::query(&sql);
                        for p in chunk {
                            q = q
                                .bind(&p.public_id)
                                .bind(p.kind.as_str())
                                .bind(&p.title)
                                .bind(&p.body)
                                .bind(p.publish_at.as_millis())
                                .bind(to_i32(p.helpful_count));
                        }
                        written += q.execute(&mut *tx).await.map_err(db_err)?.rows_affected();
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(written)
                }

                async fn add_attachment(&self, n: NewAttachment, quota_bytes: i64) -> Result<Attachment> {
                    let mut tx = self.begin_write().await?;
                    if !take_storage(&mut tx, n.group_id, n.size_bytes, quota_bytes).await? {
                        load_group(&mut tx, n.group_id).await?;
                        return Err(storage_full(quota_bytes));
                    }
                    let sql = format!(
                        "insert into attachments (public_id, group_id, uploaded_by, content_type, file_name,
                           size_bytes, sha256, width, height, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning {ATTACHMENT_COLUMNS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(&n.public_id)
                        .bind(n.group_id)
                        .bind(n.uploaded_by.0)
                        .bind(&n.content_type)
                        .bind(&n.file_name)
                        .bind(n.size_bytes)
                        .bind(&n.sha256)
                        .bind(n.width.map(to_i32))
                        .bind(n.height.map(to_i32))
                        .bind(n.created_at.as_millis())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| conflict_on_unique(e, "attachment_exists", "an attachment with this id exists"))?;
                    let a = attachment_from_row(&row, "")?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(a)
                }

                async fn attachment_by_public_id(&self, group_id: i64, public_id: &str) -> Result<Attachment> {
                    let sql = format!(
                        "select {ATTACHMENT_COLUMNS} from attachments where group_id = $1 and public_id = $2"
                    );
                    let row = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(public_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("attachment"))?;
                    attachment_from_row(&row, "")
                }

                async fn create_folder_with(
                    &self,
                    group_id: i64,
                    name: String,
                    by: Acting,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<LibraryFolder> {
                    let mut tx = self.begin_write().await?;
                    let id: i64 = sqlx::query_scalar(
                        "insert into library_folders (group_id, name, created_by, created_at)
                         values ($1, $2, $3, $4) returning id",
                    )
                    .bind(group_id)
                    .bind(&name)
                    .bind(acting_user(by))
                    .bind(now.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "folder_exists", "the library has a folder of this name"))?;
                    let sql = format!("{FOLDER_SELECT} where f.id = $1");
                    let row = sqlx::query(&sql).bind(id).fetch_one(&mut *tx).await.map_err(db_err)?;
                    let folder = folder_from_row(&row)?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(folder)
                }

                async fn list_folders(&self, group_id: i64) -> Result<Vec<LibraryFolder>> {
                    let sql = format!("{FOLDER_SELECT} where f.group_id = $1 order by f.name, f.id");
                    let rows = sqlx::query(&sql)
                        .bind(group_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(folder_from_row).collect()
                }

                async fn folder_by_id(&self, group_id: i64, folder_id: i64) -> Result<LibraryFolder> {
                    let sql = format!("{FOLDER_SELECT} where f.group_id = $1 and f.id = $2");
                    let row = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(folder_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or(StoreError::NotFound("folder"))?;
                    folder_from_row(&row)
                }

                async fn delete_folder_with(
                    &self,
                    group_id: i64,
                    folder_id: i64,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("delete from library_items where folder_id = $1 and group_id = $2")
                        .bind(folder_id)
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let done = sqlx::query("delete from library_folders where id = $1 and group_id = $2")
                        .bind(folder_id)
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound("folder"));
                    }
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn add_library_item_with(
                    &self,
                    n: NewLibraryItem,
                    by: Acting,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<LibraryItem> {
                    let mut tx = self.begin_write().await?;
                    let folder: Option<i64> =
                        sqlx::query_scalar("select id from library_folders where id = $1 and group_id = $2")
                            .bind(n.folder_id)
                            .bind(n.group_id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    folder.ok_or(StoreError::NotFound("folder"))?;
                    if let Some(p) = n.post_id {
                        let f = post_facts(&mut tx, p).await?;
                        if f.group_id != n.group_id {
                            return Err(StoreError::NotFound("post"));
                        }
                        if f.deleted {
                            return Err(deleted_conflict());
                        }
                    }
                    if let Some(a) = n.attachment_id {
                        let g: Option<i64> = sqlx::query_scalar("select group_id from attachments where id = $1")
                            .bind(a)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        if g != Some(n.group_id) {
                            return Err(StoreError::NotFound("attachment"));
                        }
                    }
                    let id: i64 = sqlx::query_scalar(
                        "insert into library_items (folder_id, group_id, post_id, attachment_id, title, added_by, added_at)
                         values ($1, $2, $3, $4, $5, $6, $7) returning id",
                    )
                    .bind(n.folder_id)
                    .bind(n.group_id)
                    .bind(n.post_id)
                    .bind(n.attachment_id)
                    .bind(&n.title)
                    .bind(acting_user(by))
                    .bind(n.added_at.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| conflict_on_unique(e, "already_in_folder", "this folder holds it already"))?;
                    let sql = format!("{ITEM_SELECT} where li.id = $1");
                    let row = sqlx::query(&sql).bind(id).fetch_one(&mut *tx).await.map_err(db_err)?;
                    let item = item_from_row(&row)?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, n.added_at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(item)
                }

                async fn library_items(
                    &self,
                    group_id: i64,
                    folder_id: Option<i64>,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<LibraryItem>> {
                    let sql = format!(
                        "{ITEM_SELECT} where li.group_id = $1 and (li.folder_id = $2 or $3) and li.id < $4
                         order by li.id desc limit $5"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(folder_id.unwrap_or(0))
                        .bind(folder_id.is_none())
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(item_from_row).collect()
                }

                async fn remove_library_item_with(
                    &self,
                    group_id: i64,
                    item_id: i64,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query("delete from library_items where id = $1 and group_id = $2")
                        .bind(item_id)
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound("library item"));
                    }
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn search_library(
                    &self,
                    group_id: i64,
                    query: &str,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<LibraryItem>> {
                    let sql = format!(
                        "{ITEM_SELECT} where li.group_id = $1 and li.id < $2
                           and (lower(li.title) like $3 escape '\\' or lower(f.name) like $3 escape '\\'
                                or lower(coalesce(a.file_name, '')) like $3 escape '\\')
                         order by li.id desc limit $4"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(like_pattern(query))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(item_from_row).collect()
                }

                async fn report_post_with(
                    &self,
                    group_id: i64,
                    post_id: i64,
                    reporter: Reporter,
                    reason: String,
                    now: Timestamp,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<Report> {
                    let mut tx = self.begin_write().await?;
                    let f = post_facts(&mut tx, post_id).await?;
                    if f.group_id != group_id {
                        return Err(StoreError::NotFound("post"));
                    }
                    if f.deleted {
                        return Err(deleted_conflict());
                    }
                    let (user, actor) = match &reporter {
                        Reporter::Account(u) => (Some(u.0), None),
                        Reporter::Remote(a) => (None, Some(a.as_str())),
                    };
                    let id: i64 = sqlx::query_scalar(
                        "insert into post_reports
                           (group_id, post_id, reporter_user_id, reporter_actor_id, reason, created_at, forwarded_at)
                         values ($1, $2, $3, $6, $4, $5, $7) returning id",
                    )
                    .bind(group_id)
                    .bind(post_id)
                    .bind(user)
                    .bind(&reason)
                    .bind(now.as_millis())
                    .bind(actor)
                    .bind((!outbox.is_empty()).then(|| now.as_millis()))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| {
                        conflict_on_unique(e, "already_reported", "you have reported this post already")
                    })?;
                    let report = load_report(&mut tx, group_id, id).await?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, now).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(report)
                }

                async fn list_reports(
                    &self,
                    group_id: i64,
                    open_only: bool,
                    after: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<Report>> {
                    let sql = format!(
                        "{REPORT_SELECT} where r.group_id = $1 and (not $2 or r.resolved_at is null) and r.id > $3
                         order by r.id limit $4"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(group_id)
                        .bind(open_only)
                        .bind(after.unwrap_or(0))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(report_from_row).collect()
                }

                async fn dismiss_report(
                    &self,
                    group_id: i64,
                    report_id: i64,
                    by: UserId,
                    now: Timestamp,
                ) -> Result<Report> {
                    let mut tx = self.begin_write().await?;
                    let r = load_report(&mut tx, group_id, report_id).await?;
                    if r.resolved_at.is_some() {
                        return Err(StoreError::conflict("report_resolved", "this report has been handled already"));
                    }
                    sqlx::query(
                        "update post_reports set resolved_at = $1, resolved_by = $2, resolution = 'dismissed'
                         where id = $3",
                    )
                    .bind(now.as_millis())
                    .bind(by.0)
                    .bind(report_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    log_action(&mut tx, group_id, by, "dismiss_report", None, Some(r.post_id), Some(&r.reason), now)
                        .await?;
                    let report = load_report(&mut tx, group_id, report_id).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(report)
                }

                async fn add_group_request(
                    &self,
                    n: NewGroupRequest,
                    outbox: Vec<NewOutboxEntry>,
                ) -> Result<GroupRequest> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "insert into group_requests
                           (group_id, user_id, activity_id, action, object, state, created_at)
                         values ($1, $2, $3, $4, $5, 'pending', $6) returning *",
                    )
                    .bind(n.group_id)
                    .bind(n.user.0)
                    .bind(&n.activity_id)
                    .bind(&n.action)
                    .bind(&n.object)
                    .bind(n.created_at.as_millis())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let request = request_from_row(&row)?;
                    super::federation_sql::enqueue_in(&mut tx, &outbox, n.created_at).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(request)
                }

                async fn answer_group_request(
                    &self,
                    group_id: i64,
                    activity_id: &str,
                    accepted: bool,
                    code: Option<String>,
                    reason: Option<String>,
                    now: Timestamp,
                ) -> Result<Option<GroupRequest>> {
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "update group_requests set state = $1, code = $2, reason = $3, answered_at = $4
                         where activity_id = $5 and group_id = $6 and state = 'pending' returning *",
                    )
                    .bind(if accepted { "accepted" } else { "refused" })
                    .bind(&code)
                    .bind(&reason)
                    .bind(now.as_millis())
                    .bind(activity_id)
                    .bind(group_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let request = row.as_ref().map(request_from_row).transpose()?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(request)
                }

                async fn group_requests(
                    &self,
                    group_id: i64,
                    user: UserId,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<GroupRequest>> {
                    let rows = sqlx::query(
                        "select * from group_requests where group_id = $1 and user_id = $2 and id < $3
                         order by id desc limit $4",
                    )
                    .bind(group_id)
                    .bind(user.0)
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(request_from_row).collect()
                }

                async fn moderation_log(
                    &self,
                    group_id: i64,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<ModerationEntry>> {
                    let rows = sqlx::query(
                        "select l.id, l.group_id, l.moderator_user_id,
                           coalesce(u.display_name, mm.member_name, mu.display_name, mm.actor_name)
                             as moderator_name, l.action,
                           l.target_member_id, coalesce(tm.member_name, tu.display_name, tm.actor_name) as target_name,
                           p.public_id as target_post_public_id, l.detail, l.created_at
                         from moderation_log l
                         left join users u on u.id = l.moderator_user_id
                         left join group_members mm on mm.id = l.moderator_member_id
                         left join users mu on mu.id = mm.user_id
                         left join group_members tm on tm.id = l.target_member_id
                         left join users tu on tu.id = tm.user_id
                         left join posts p on p.id = l.target_post_id
                         where l.group_id = $1 and l.id < $2 order by l.id desc limit $3",
                    )
                    .bind(group_id)
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(mod_entry_from_row).collect()
                }
            }
        }
    };
}
