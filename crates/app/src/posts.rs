//! Posts in a group: asking, announcing (also to several groups at once, pinned or scheduled),
//! replying, editing, deleting and removing, "helpful" marks, accepted answers, pins, reports;
//! and what members read: the feed, threads, scheduled announcements, search, a post's history,
//! the doctors' queue of open questions, and how many members have seen an announcement.
//!
//! Every change is written with what the group's other nodes must receive, in one store call:
//! the author's signed activity (see [`write_post`]), or, for what can only be rendered once the
//! change has committed (a post's new state), an intent (`crate::intents`). In a group hosted
//! elsewhere, what only the host decides (pins, accepted answers, removals) is asked of the host
//! (`crate::actions`).

use std::collections::HashMap;

use caremesh_domain::{
    GroupRole, PostKind, Role, Timestamp, ValidationError, clean_line, clean_text, group::limits,
};
use caremesh_federation::activity::GroupActionKind;
use caremesh_federation::credentials::CredentialBadge;
use caremesh_federation::groups::NoteDraft;
use caremesh_store::{
    Acting, FeedPosition, FeedSort, Group, LibraryFolder, NewOutboxEntry, NewPost, Post, PostEdit,
    QueueItem, ReplySort, Report, Reporter, User,
};

use crate::access::teaching;
use crate::actions::{self, Outcome};
use crate::intents::{self, Intent};
use crate::{App, AppError, AppResult, GroupAccess, new_public_id};

/// Most attachments on one post.
pub const MAX_ATTACHMENTS: usize = 10;
/// How far ahead an announcement can be scheduled.
const MAX_SCHEDULE_SECS: i64 = 366 * 24 * 3600;
/// Most groups one announcement goes to at once.
pub const MAX_ANNOUNCE_GROUPS: usize = 50;

/// The credential badges of posts' authors, by author (see [`author_badges`] and [`badge_of`]).
pub type Badges = HashMap<String, CredentialBadge>;

// ---- the rules of a post's fields ----

/// When a post is published: now, or a time ahead (at most a year) for a scheduled announcement.
pub fn publish_time(wanted: Option<Timestamp>, now: Timestamp) -> AppResult<Timestamp> {
    match wanted {
        None => Ok(now),
        Some(t) if t <= now => Err(AppError::invalid(
            "publish_at: must be in the future (leave it out to publish now)",
        )),
        Some(t) if t > now.plus_secs(MAX_SCHEDULE_SECS) => Err(AppError::invalid(
            "publish_at: must be at most a year ahead",
        )),
        Some(t) => Ok(t),
    }
}

/// A post's title: optional (blank is none), one line.
pub fn clean_title(title: Option<String>) -> Result<Option<String>, ValidationError> {
    match title {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => Ok(Some(clean_line("title", &t, limits::POST_TITLE)?)),
    }
}

/// A post's text: required, cleaned of control characters.
pub fn clean_body(body: &str) -> Result<String, ValidationError> {
    clean_text("body", body, limits::POST_BODY, false)
}

/// At most [`MAX_ATTACHMENTS`] files on one post.
pub fn check_attachments(ids: &[String]) -> AppResult<()> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(AppError::invalid(format!(
            "attachments: at most {MAX_ATTACHMENTS} per post"
        )));
    }
    Ok(())
}

/// What members search for: 1 to `limits::SEARCH_QUERY` characters, trimmed.
pub fn search_text(q: Option<&str>) -> AppResult<&str> {
    let text = q.map(str::trim).unwrap_or_default();
    if text.is_empty() || text.chars().count() > limits::SEARCH_QUERY {
        return Err(AppError::bad_request(
            "invalid_query",
            format!("q must be 1 to {} characters", limits::SEARCH_QUERY),
        ));
    }
    Ok(text)
}

// ---- reading ----

/// The post `pid` of the group as the asker may see it: scheduled announcements stay hidden from
/// those who cannot teach or moderate.
pub async fn visible_post(app: &App, ctx: &GroupAccess, pid: &str) -> AppResult<Post> {
    let post = app
        .store
        .post_by_public_id(ctx.group.id, pid, Some(ctx.user.id))
        .await?;
    let staff = ctx.role().is_some_and(GroupRole::can_moderate);
    if post.publish_at > app.now() && !staff {
        return Err(AppError::NotFound("post"));
    }
    Ok(post)
}

/// A post of the group, for its members.
pub async fn post(app: &App, ctx: &GroupAccess, pid: &str) -> AppResult<Post> {
    ctx.read()?;
    visible_post(app, ctx, pid).await
}

/// A page of the group's feed: top-level posts published by now, pinned first.
pub async fn feed(
    app: &App,
    ctx: &GroupAccess,
    sort: FeedSort,
    after: Option<FeedPosition>,
    limit: u32,
) -> AppResult<Vec<Post>> {
    ctx.read()?;
    Ok(app
        .store
        .feed(
            ctx.group.id,
            Some(ctx.user.id),
            sort,
            after,
            limit,
            app.now(),
        )
        .await?)
}

/// The group's page: the newest posts, with their authors' badges and, for the group's doctors
/// and owner, how many members have seen each announcement.
pub struct FeedPage {
    /// At most the page's size.
    pub posts: Vec<Post>,
    /// Whether older posts follow.
    pub more: bool,
    pub badges: Badges,
    /// "Seen by" counts of the announcements on the page, for those who see reach (an aggregate,
    /// never who); empty for everyone else.
    pub seen: HashMap<i64, u64>,
}

/// Reads a page of the feed as a member sees it on the group's page, and notes that the member
/// has seen the announcements on it (authors do not count themselves).
pub async fn feed_page(
    app: &App,
    ctx: &GroupAccess,
    after: Option<FeedPosition>,
    limit: u32,
) -> AppResult<FeedPage> {
    let mut posts = feed(app, ctx, FeedSort::Newest, after, limit + 1).await?;
    let more = posts.len() > limit as usize;
    posts.truncate(limit as usize);
    let badges = author_badges(app, &posts).await;
    let uid = ctx.user.id;
    let seen_now: Vec<i64> = posts
        .iter()
        .filter(|p| p.kind == PostKind::Announcement && p.author.user_id != Some(uid))
        .map(|p| p.id)
        .collect();
    app.store
        .record_post_views(&seen_now, uid, app.now())
        .await?;
    let mut seen = HashMap::new();
    if sees_reach(ctx) {
        let announcements: Vec<i64> = posts
            .iter()
            .filter(|p| p.kind == PostKind::Announcement)
            .map(|p| p.id)
            .collect();
        seen = announcements.iter().map(|id| (*id, 0)).collect();
        seen.extend(app.store.post_view_counts(&announcements).await?);
    }
    Ok(FeedPage {
        posts,
        more,
        badges,
        seen,
    })
}

/// Whether the asker sees aggregate "seen by" counts: the group's doctors and owner.
pub fn sees_reach(ctx: &GroupAccess) -> bool {
    ctx.role().is_some_and(GroupRole::can_teach)
}

/// A thread as its page shows it.
pub struct ThreadView {
    pub post: Post,
    /// The first replies, oldest first.
    pub replies: Vec<Post>,
    pub badges: Badges,
    /// For an announcement, to its group's doctors and owner: how many members have seen it.
    pub seen_by: Option<u64>,
    /// The library's folders, for those who keep it (to save the post into one).
    pub folders: Vec<LibraryFolder>,
}

/// Most replies a thread's page shows.
pub const THREAD_REPLIES: u32 = 200;

/// Opens a thread (a top-level post the asker may see, from [`post`]) as its page shows it, and
/// notes that the member has seen it when it is someone else's announcement.
pub async fn open_thread(app: &App, ctx: &GroupAccess, post: Post) -> AppResult<ThreadView> {
    ctx.read()?;
    if post.kind == PostKind::Announcement && post.author.user_id != Some(ctx.user.id) {
        app.store
            .record_post_views(&[post.id], ctx.user.id, app.now())
            .await?;
    }
    let replies = app
        .store
        .replies(
            post.id,
            Some(ctx.user.id),
            ReplySort::Oldest,
            None,
            THREAD_REPLIES,
        )
        .await?;
    let mut badges = author_badges(app, &replies).await;
    badges.extend(author_badges(app, std::slice::from_ref(&post)).await);
    let seen_by = if post.kind == PostKind::Announcement && ctx.teach().is_ok() {
        Some(view_count(app, post.id).await?)
    } else {
        None
    };
    let folders = if ctx.keep_library().is_ok() {
        app.store.list_folders(ctx.group.id).await?
    } else {
        Vec::new()
    };
    Ok(ThreadView {
        post,
        replies,
        badges,
        seen_by,
        folders,
    })
}

/// How many accounts have seen a post (an aggregate, never who).
async fn view_count(app: &App, post_id: i64) -> AppResult<u64> {
    Ok(app
        .store
        .post_view_counts(&[post_id])
        .await?
        .first()
        .map_or(0, |(_, n)| *n))
}

/// Replies in the thread `pid`.
pub async fn replies(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    sort: ReplySort,
    after: Option<(i64, i64)>,
    limit: u32,
) -> AppResult<Vec<Post>> {
    let thread = post(app, ctx, pid).await?;
    Ok(app
        .store
        .replies(thread.id, Some(ctx.user.id), sort, after, limit)
        .await?)
}

/// Announcements scheduled for later, soonest first: for the group's staff.
pub async fn scheduled(
    app: &App,
    ctx: &GroupAccess,
    after: Option<(i64, i64)>,
    limit: u32,
) -> AppResult<Vec<Post>> {
    ctx.read()?;
    ctx.moderate()?;
    Ok(app
        .store
        .scheduled_posts(ctx.group.id, after, limit, app.now())
        .await?)
}

/// Posts of the group whose title or text contains `q`, newest first.
pub async fn search(
    app: &App,
    ctx: &GroupAccess,
    q: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<Post>> {
    ctx.read()?;
    let text = search_text(q)?;
    Ok(app
        .store
        .search_posts(
            ctx.group.id,
            Some(ctx.user.id),
            text,
            before,
            limit,
            app.now(),
        )
        .await?)
}

/// Earlier versions of a post, for moderators.
pub async fn history(app: &App, ctx: &GroupAccess, pid: &str) -> AppResult<Vec<PostEdit>> {
    ctx.moderate()?;
    let post = app.store.post_by_public_id(ctx.group.id, pid, None).await?;
    Ok(app.store.post_history(post.id).await?)
}

/// Who has a queue of open questions: doctors.
pub fn queue_access(user: &User) -> AppResult<()> {
    if user.role != Role::Doctor {
        return Err(AppError::forbidden("the question queue is for doctors"));
    }
    Ok(())
}

/// The doctor's hour: open questions in every group the doctor serves, oldest first.
pub async fn doctor_queue(
    app: &App,
    user: &User,
    after: Option<(i64, i64)>,
    limit: u32,
) -> AppResult<Vec<QueueItem>> {
    queue_access(user)?;
    crate::access::account_credential(app, user).await?;
    Ok(app
        .store
        .doctor_queue(user.id, after, limit, app.now())
        .await?)
}

// ---- authors' credentials ----

/// The badge of a post's author, from [`author_badges`].
pub fn badge_of<'a>(badges: &'a Badges, p: &Post) -> Option<&'a CredentialBadge> {
    badge_key(p).and_then(|k| badges.get(&k))
}

fn badge_key(p: &Post) -> Option<String> {
    match (&p.author.actor_id, p.author.user_id) {
        (Some(actor), _) => Some(actor.clone()),
        (None, Some(u)) => Some(format!("user:{}", u.0)),
        _ => None,
    }
}

/// The credential badges of the posts' authors, by author: "verified by <hospital>" for the
/// doctors among them, this node's own doctors from the credential it keeps, other nodes'
/// doctors from the credential their hospital signed, checked against that hospital's key.
pub async fn author_badges(app: &App, posts: &[Post]) -> Badges {
    let mut out = HashMap::new();
    for p in posts {
        let Some(key) = badge_key(p) else { continue };
        // Only doctors carry credentials: on this node they teach in the group; authors of other
        // nodes are looked up in the badge cache first.
        let teaches = p.author.role.is_some_and(GroupRole::can_teach);
        if out.contains_key(&key)
            || p.deleted_at.is_some()
            || (p.author.actor_id.is_none() && !teaches)
        {
            continue;
        }
        let badge = match (&p.author.actor_id, p.author.user_id) {
            (Some(actor), _) => app.federation.remote_badge(actor).await,
            (None, Some(u)) => app.federation.local_badge(u).await,
            _ => None,
        };
        if let Some(b) = badge {
            out.insert(key, b);
        }
    }
    out
}

// ---- writing ----

/// A new top-level post in one group: a question (any member) or an announcement (its doctors
/// and owner), as typed.
pub struct NewThread {
    /// `Question` or `Announcement`.
    pub kind: PostKind,
    pub title: Option<String>,
    pub body: String,
    /// Announcements only: shown first in the feed.
    pub pinned: bool,
    /// Announcements only: publish later (in the future, at most a year ahead).
    pub publish_at: Option<Timestamp>,
    /// Ids of attachments uploaded before.
    pub attachments: Vec<String>,
}

/// Asks a question or posts an announcement in the group.
pub async fn ask(app: &App, ctx: &GroupAccess, new: NewThread) -> AppResult<Post> {
    ctx.read()?;
    if new.kind == PostKind::Reply {
        return Err(AppError::invalid(
            "kind: must be announcement or question (replies go to the thread's replies)",
        ));
    }
    let scheduled = new.publish_at.is_some();
    if new.kind == PostKind::Announcement || new.pinned || scheduled {
        teaching(app, ctx).await?;
    }
    if new.kind != PostKind::Announcement && (new.pinned || scheduled) {
        return Err(AppError::invalid(
            "pinned and publish_at are for announcements only",
        ));
    }
    let now = app.now();
    let publish_at = publish_time(new.publish_at, now)?;
    check_attachments(&new.attachments)?;
    let post = NewPost {
        public_id: new_public_id()?,
        group_id: ctx.group.id,
        kind: new.kind,
        thread_id: None,
        author: ctx.user.id,
        title: clean_title(new.title)?,
        body: clean_body(&new.body)?,
        pinned: new.pinned,
        publish_at,
        created_at: now,
        attachments: new.attachments,
    };
    write_post(app, ctx, post, None).await
}

/// The thread `pid` that a member may reply to: a top-level post they may see.
pub async fn reply_target(app: &App, ctx: &GroupAccess, pid: &str) -> AppResult<Post> {
    let thread = post(app, ctx, pid).await?;
    if thread.thread_id.is_some() {
        return Err(AppError::conflict(
            "not_top_level",
            "reply to the thread's first post, not to a reply",
        ));
    }
    Ok(thread)
}

/// A member replies in the thread `pid`.
pub async fn reply(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    body: &str,
    attachments: Vec<String>,
) -> AppResult<Post> {
    let thread = reply_target(app, ctx, pid).await?;
    check_attachments(&attachments)?;
    let now = app.now();
    let new = NewPost {
        public_id: new_public_id()?,
        group_id: ctx.group.id,
        kind: PostKind::Reply,
        thread_id: Some(thread.id),
        author: ctx.user.id,
        title: None,
        body: clean_body(body)?,
        pinned: false,
        publish_at: now,
        created_at: now,
        attachments,
    };
    write_post(app, ctx, new, Some(&thread)).await
}

/// One announcement by a doctor to several groups at once, hosted here or on partner nodes, as
/// typed.
pub struct Announcement {
    pub title: Option<String>,
    pub body: String,
    pub pinned: bool,
    /// Publish later (in the future, at most a year ahead); now without it.
    pub publish_at: Option<Timestamp>,
}

/// Posts one announcement to each of the groups, after checking that the doctor teaches in every
/// one of them (so a refusal posts nothing), and sends each to the group's other nodes: a group
/// hosted elsewhere gets it from here and its host checks, pins and forwards it. Returns each
/// group with its post.
pub async fn announce_to_groups(
    app: &App,
    user: &User,
    group_ids: &[String],
    a: Announcement,
) -> AppResult<Vec<(GroupAccess, Post)>> {
    if group_ids.len() > MAX_ANNOUNCE_GROUPS {
        return Err(AppError::invalid(format!(
            "groups: at most {MAX_ANNOUNCE_GROUPS} groups at once"
        )));
    }
    let title = clean_title(a.title)?;
    let body = clean_body(&a.body)?;
    let now = app.now();
    let publish_at = publish_time(a.publish_at, now)?;
    if user.role != Role::Doctor {
        return Err(AppError::forbidden(
            "announcements to several groups are for doctors",
        ));
    }
    if group_ids.is_empty() {
        return Err(AppError::invalid("groups: choose at least one group"));
    }
    let mut ctxs: Vec<GroupAccess> = Vec::with_capacity(group_ids.len());
    for gid in group_ids {
        if ctxs.iter().any(|c| &c.group.public_id == gid) {
            continue;
        }
        let ctx = GroupAccess::load(app, user, gid).await?;
        teaching(app, &ctx).await?;
        ctxs.push(ctx);
    }
    let mut posted = Vec::with_capacity(ctxs.len());
    for ctx in ctxs {
        let new = NewPost {
            public_id: new_public_id()?,
            group_id: ctx.group.id,
            kind: PostKind::Announcement,
            thread_id: None,
            author: user.id,
            title: title.clone(),
            body: body.clone(),
            pinned: a.pinned,
            publish_at,
            created_at: now,
            attachments: Vec::new(),
        };
        let post = write_post(app, &ctx, new, None).await?;
        posted.push((ctx, post));
    }
    Ok(posted)
}

/// Writes a post on this node. What the group's other nodes must receive (the post, signed by
/// its author) is queued in the same transaction; a doctor's answer also tells members' nodes that
/// the question is answered.
pub(crate) async fn write_post(
    app: &App,
    ctx: &GroupAccess,
    new: NewPost,
    thread: Option<&Post>,
) -> AppResult<Post> {
    // The files go with the post: the other nodes fetch them and check them against its hashes.
    let mut files = Vec::with_capacity(new.attachments.len());
    for id in &new.attachments {
        if let Ok(a) = app.store.attachment_by_public_id(ctx.group.id, id).await {
            files.push(a);
        }
    }
    let draft = NoteDraft {
        attachments: &files,
        ..NoteDraft::of_new(&new)
    };
    let mut outbox =
        crate::outbound::post_created_entries(app, &ctx.group, &draft, &ctx.user, thread).await?;
    // A doctor's answer: every member's node shows the question as answered.
    if let Some(t) = thread
        && ctx.role().is_some_and(GroupRole::can_teach)
    {
        outbox.extend(state_intents(app, &ctx.group, t).await?);
    }
    let post = app.store.create_post_with(new, outbox).await?;
    app.federation.wake();
    Ok(post)
}

/// Its author edits the post `pid` (a reply keeps no title); the new version is queued for the
/// other nodes with the edit.
pub async fn edit_own_post(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    title: Option<String>,
    body: &str,
) -> AppResult<Post> {
    let post = post(app, ctx, pid).await?;
    if post.author.user_id != Some(ctx.user.id) {
        return Err(AppError::forbidden("only its author can edit a post"));
    }
    let title = if post.kind == PostKind::Reply {
        None
    } else {
        clean_title(title)?
    };
    let body = clean_body(body)?;
    let now = app.now();
    let outbox = crate::outbound::post_edited_entries(
        app,
        &ctx.group,
        &post,
        title.as_deref(),
        &body,
        now,
        &ctx.user,
    )
    .await?;
    let edited = app
        .store
        .edit_post_with(post.id, ctx.user.id, title, body, now, outbox)
        .await?;
    app.federation.wake();
    Ok(edited)
}

/// Its author deletes the post `pid` (the deletion is queued for the other nodes with it), or a
/// moderator removes someone else's with an optional reason (logged, and the group's other nodes
/// show the removal). Hospital administrators who are not members remove reported posts they
/// cannot otherwise read.
pub async fn delete_or_remove(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    reason: Option<String>,
) -> AppResult<Outcome<Post>> {
    let post = if ctx.member.is_some() {
        visible_post(app, ctx, pid).await?
    } else {
        app.store.post_by_public_id(ctx.group.id, pid, None).await?
    };
    let own = post.author.user_id == Some(ctx.user.id);
    if !own {
        ctx.moderate()?;
        let reason = clean_reason(reason)?;
        if ctx.hosted_elsewhere() {
            let action = GroupActionKind::RemovePost {
                post: app.federation.post_ref(&post),
                reason,
            };
            return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
        }
        let removed = apply_removal(
            app,
            &ctx.group,
            &post,
            ctx.user.id.into(),
            reason,
            Vec::new(),
        )
        .await?;
        return Ok(Outcome::Done(removed));
    }
    let outbox = crate::outbound::post_deleted_entries(app, &ctx.group, &post, &ctx.user).await?;
    let deleted = app
        .store
        .delete_post_with(post.id, ctx.user.id, None, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(Outcome::Done(deleted))
}

/// A moderator's reason for a removal, cleaned; empty is none.
pub(crate) fn clean_reason(reason: Option<String>) -> AppResult<Option<String>> {
    Ok(match reason {
        None => None,
        Some(r) => {
            Some(clean_text("reason", &r, limits::REPORT_REASON, true)?).filter(|r| !r.is_empty())
        }
    })
}

/// What a post's new state tells the members' nodes of a group hosted here, to queue with the
/// change (nothing for a group hosted elsewhere: its host tells them).
async fn state_intents(app: &App, group: &Group, post: &Post) -> AppResult<Vec<NewOutboxEntry>> {
    let intent = Intent::PostState {
        group: group.id,
        post: post.public_id.clone(),
    };
    intents::for_members(app, group, intent).await
}

/// A moderator of a group hosted here (of this node, or of another: `by`) removes someone's
/// post; every member's node shows the removal. `extra` is queued with it.
pub(crate) async fn apply_removal(
    app: &App,
    group: &Group,
    post: &Post,
    by: Acting,
    reason: Option<String>,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<Post> {
    let mut outbox = state_intents(app, group, post).await?;
    outbox.extend(extra);
    let removed = app
        .store
        .remove_post_with(post.id, by, reason, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(removed)
}

/// A doctor of a group hosted here pins or unpins a post; every member's node shows it.
pub(crate) async fn apply_pin(
    app: &App,
    group: &Group,
    post: &Post,
    pinned: bool,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<Post> {
    let mut outbox = state_intents(app, group, post).await?;
    outbox.extend(extra);
    let post = app
        .store
        .set_pinned_with(post.id, pinned, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(post)
}

/// A doctor of a group hosted here accepts an answer (or clears it); every member's node shows
/// it.
pub(crate) async fn apply_accept(
    app: &App,
    group: &Group,
    question: &Post,
    reply: Option<&Post>,
    extra: Vec<NewOutboxEntry>,
) -> AppResult<Post> {
    let mut outbox = state_intents(app, group, question).await?;
    outbox.extend(extra);
    let post = app
        .store
        .accept_answer_with(question.id, reply.map(|r| r.id), app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(post)
}

/// A member marks the post `pid` helpful or takes the mark back. In a group hosted elsewhere the
/// mark goes to the host with it; in a group hosted here the new count goes to the members' nodes.
pub async fn mark_helpful_as(app: &App, ctx: &GroupAccess, pid: &str, on: bool) -> AppResult<Post> {
    let post = post(app, ctx, pid).await?;
    // In a group hosted elsewhere the mark goes to the host (`Like`); in a group hosted here
    // the new count goes to every member's node. Either is queued with the mark.
    let mut outbox =
        crate::outbound::helpful_entries(app, &ctx.group, &post, &ctx.user, on).await?;
    outbox.extend(state_intents(app, &ctx.group, &post).await?);
    let post = app
        .store
        .set_helpful_with(post.id, ctx.user.id, on, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(post)
}

/// A doctor of the group accepts the reply `reply` as the answer to the question `pid` (or
/// clears it with `None`).
pub async fn accept_as(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    reply: Option<&str>,
) -> AppResult<Outcome<Post>> {
    teaching(app, ctx).await?;
    let question = visible_post(app, ctx, pid).await?;
    let reply = match reply {
        Some(r) => Some(visible_post(app, ctx, r).await?),
        None => None,
    };
    if ctx.hosted_elsewhere() {
        let fed = &app.federation;
        let action = GroupActionKind::AcceptAnswer {
            question: fed.post_ref(&question),
            reply: reply.as_ref().map(|r| fed.post_ref(r)),
        };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    let post = apply_accept(app, &ctx.group, &question, reply.as_ref(), Vec::new()).await?;
    Ok(Outcome::Done(post))
}

/// A doctor of the group pins the post `pid` or unpins it.
pub async fn pin_as(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    pinned: bool,
) -> AppResult<Outcome<Post>> {
    teaching(app, ctx).await?;
    let post = visible_post(app, ctx, pid).await?;
    if ctx.hosted_elsewhere() {
        let action = GroupActionKind::Pin {
            post: app.federation.post_ref(&post),
            pinned,
        };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    Ok(Outcome::Done(
        apply_pin(app, &ctx.group, &post, pinned, Vec::new()).await?,
    ))
}

/// A member reports the post `pid` to the group's moderators, saying why.
///
/// In a group hosted elsewhere the report also goes to the host's moderators (a `Flag`, by the
/// member's actor there), queued with it; the report here says when it was sent.
pub async fn report(app: &App, ctx: &GroupAccess, pid: &str, reason: &str) -> AppResult<Report> {
    let post = post(app, ctx, pid).await?;
    let reason = clean_text("reason", reason, limits::REPORT_REASON, false)?;
    let mut outbox = Vec::new();
    if let Some(group_url) = &ctx.group.remote_actor_id {
        let fed = &app.federation;
        let actor = crate::outbound::member_actor(app, &ctx.user, &ctx.group).await?;
        let id = fed
            .urls
            .activity(&format!("flag-{}", crate::new_public_id()?));
        let flag = caremesh_federation::activity::flag(
            &id,
            &actor,
            group_url,
            &fed.post_ref(&post),
            &reason,
        );
        outbox = caremesh_federation::entries_for(&flag, &[fed.partner_of(group_url).await?]);
    }
    let report = app
        .store
        .report_post_with(
            ctx.group.id,
            post.id,
            Reporter::Account(ctx.user.id),
            reason,
            app.now(),
            outbox,
        )
        .await?;
    app.federation.wake();
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::group_fixtures::{Node, node};

    async fn join(n: &Node, owner: &GroupAccess, user: &User) {
        let invite = crate::invites::create(&n.app, owner, Default::default())
            .await
            .unwrap();
        crate::invites::accept(&n.app, user, &invite.token)
            .await
            .unwrap();
    }

    fn announcement(title: Option<&str>) -> Announcement {
        Announcement {
            title: title.map(str::to_owned),
            body: "Bring your medication list on Friday.".into(),
            pinned: true,
            publish_at: None,
        }
    }

    #[tokio::test]
    async fn an_announcement_to_several_groups_posts_everywhere_or_nowhere() {
        let n = node().await;
        let wang = n.user("dr.wang", Role::Doctor).await;
        let li = n.user("dr.li", Role::Doctor).await;
        let mine = n.group(&wang, "Stroke, Guangzhou").await;
        let also_mine = n.group(&wang, "Stroke, Tangshan").await;
        let not_mine = n.group(&li, "Diabetes").await;
        join(&n, &n.access(&li, &not_mine).await, &wang).await;
        let ids = |gs: &[&caremesh_store::Group]| -> Vec<String> {
            gs.iter().map(|g| g.public_id.clone()).collect()
        };

        // Dr. Wang is only a member of Dr. Li's group: nothing is posted anywhere.
        let e = announce_to_groups(
            &n.app,
            &wang,
            &ids(&[&mine, &also_mine, &not_mine]),
            announcement(Some("Clinic")),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        let too_many: Vec<String> = std::iter::repeat_n(mine.public_id.clone(), 51).collect();
        let e = announce_to_groups(&n.app, &wang, &too_many, announcement(None))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("groups: at most 50"), "{e}");
        let e = announce_to_groups(&n.app, &wang, &[], announcement(None))
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Invalid { .. }), "{e:?}");
        for g in [&mine, &also_mine] {
            let ctx = n.access(&wang, g).await;
            assert!(
                feed(&n.app, &ctx, FeedSort::Newest, None, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }

        // The page's form and the API: the same rules, the title optional.
        let posted = announce_to_groups(
            &n.app,
            &wang,
            &ids(&[&mine, &also_mine, &mine]),
            announcement(Some("  ")),
        )
        .await
        .unwrap();
        assert_eq!(posted.len(), 2, "each group once");
        for g in [&mine, &also_mine] {
            let ctx = n.access(&wang, g).await;
            let posts = feed(&n.app, &ctx, FeedSort::Newest, None, 10)
                .await
                .unwrap();
            assert_eq!(posts.len(), 1);
            assert_eq!(
                (posts[0].kind, posts[0].pinned),
                (PostKind::Announcement, true)
            );
            assert_eq!(posts[0].title, None);
        }
    }

    #[tokio::test]
    async fn the_group_page_counts_who_has_seen_an_announcement_but_not_its_author() {
        let n = node().await;
        let wang = n.user("dr.wang", Role::Doctor).await;
        let group = n.group(&wang, "Stroke rehabilitation").await;
        let doctor = n.access(&wang, &group).await;
        let zhao = n.user("patient.zhao", Role::Patient).await;
        join(&n, &doctor, &zhao).await;
        let patient = n.access(&zhao, &group).await;
        let news = ask(
            &n.app,
            &doctor,
            NewThread {
                kind: PostKind::Announcement,
                title: Some("Clinic".into()),
                body: "On Friday.".into(),
                pinned: false,
                publish_at: None,
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap();
        let question = ask(
            &n.app,
            &patient,
            NewThread {
                kind: PostKind::Question,
                title: None,
                body: "Can I drive?".into(),
                pinned: false,
                publish_at: None,
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap();

        // The doctor opens the page: they do not count themselves, and see the count.
        let page = feed_page(&n.app, &doctor, None, 20).await.unwrap();
        assert_eq!(page.posts.len(), 2);
        assert!(!page.more);
        assert_eq!(page.seen.get(&news.id), Some(&0));
        assert_eq!(page.seen.get(&question.id), None, "only announcements");
        // The patient sees no counts, but is counted.
        let page = feed_page(&n.app, &patient, None, 20).await.unwrap();
        assert!(page.seen.is_empty());
        let page = feed_page(&n.app, &doctor, None, 1).await.unwrap();
        assert!(page.more);
        let thread = open_thread(&n.app, &doctor, news.clone()).await.unwrap();
        assert_eq!(thread.seen_by, Some(1));
        // Opening the thread again counts the same member once.
        open_thread(&n.app, &patient, news.clone()).await.unwrap();
        let thread = open_thread(&n.app, &doctor, news).await.unwrap();
        assert_eq!(thread.seen_by, Some(1));
        let thread = open_thread(&n.app, &patient, question).await.unwrap();
        assert_eq!(thread.seen_by, None);
    }

    #[test]
    fn scheduled_posts_are_for_the_future_within_a_year() {
        let now = Timestamp::from_millis(1_000_000);
        assert_eq!(publish_time(None, now).unwrap(), now);
        assert!(publish_time(Some(now), now).is_err());
        assert!(publish_time(Some(now.plus_secs(MAX_SCHEDULE_SECS)), now).is_ok());
        assert!(publish_time(Some(now.plus_secs(MAX_SCHEDULE_SECS + 1)), now).is_err());
        assert_eq!(clean_title(Some(" \t ".into())).unwrap(), None);
        assert_eq!(
            clean_title(Some(" 复诊 ".into())).unwrap().as_deref(),
            Some("复诊")
        );
        assert!(check_attachments(&vec![String::new(); MAX_ATTACHMENTS]).is_ok());
        assert!(check_attachments(&vec![String::new(); MAX_ATTACHMENTS + 1]).is_err());
    }
}
