//! Posts across nodes: a member's post, edit and deletion arriving at the group's host, the
//! host's `Announce` of them arriving at members' nodes, and members' helpful marks.

use caremesh_domain::group::limits;
use caremesh_domain::{MemberState, PostKind, Timestamp};
use caremesh_federation::activity::{Activity, Announce, Delete, Like, NoteActivity};
use caremesh_store::{Group, NewOutboxEntry, Post, RemotePost, StoreError};
use serde_json::Value;

use super::{actors, files, group_objects, hosted_group};
use crate::intents::{self, Intent};
use crate::{App, AppResult};

/// A member of another node posted in a group hosted here: it is stored once and forwarded to
/// every other node with a member (not back to the author's). A doctor's answer also tells every
/// node that the question is answered.
pub(super) async fn created_here(
    app: &App,
    raw: &Value,
    c: &NoteActivity,
    from: &str,
) -> AppResult<()> {
    let fed = &app.federation;
    let Some(group_url) = c.note.context.as_deref() else {
        return Ok(());
    };
    let Some(group) = hosted_group(app, group_url).await? else {
        return Ok(());
    };
    let mut announce = crate::outbound::announce_entries(app, &group, raw, Some(from)).await?;
    // A doctor's answer: every node shows the question as answered (its state is queued with
    // the reply).
    if let Some(thread_ref) = &c.note.in_reply_to
        && let Some(thread) = crate::outbound::post_by_ref(app, &group, thread_ref).await?
        && app
            .store
            .remote_member(group.id, &c.actor)
            .await?
            .is_some_and(|m| m.role.can_teach())
    {
        let intent = Intent::PostState {
            group: group.id,
            post: thread.public_id,
        };
        announce.extend(intents::for_members(app, &group, intent).await?);
    }
    store_post_from(app, &group, raw, raw, announce).await?;
    fed.wake();
    Ok(())
}

/// A member's edit of their post in a group hosted here: applied if it is newer than what is
/// shown, and forwarded to every other node with a member whether or not it is.
pub(super) async fn edited_here(
    app: &App,
    raw: &Value,
    u: &NoteActivity,
    from: &str,
) -> AppResult<()> {
    let fed = &app.federation;
    let Some(url) = u.note.context.as_deref() else {
        return Ok(());
    };
    let Some(group) = hosted_group(app, url).await? else {
        return Ok(());
    };
    let announce = crate::outbound::announce_entries(app, &group, raw, Some(from)).await?;
    app.store.enqueue(announce, app.now()).await?;
    apply_newest_edit(app, &group, &u.note.id, &u.actor, Vec::new()).await?;
    fed.wake();
    Ok(())
}

/// An author deleted their post: tombstoned here; a host forwards the deletion to every other
/// node with a member.
pub(super) async fn deleted(app: &App, raw: &Value, d: &Delete, from: &str) -> AppResult<()> {
    let now = app.now();
    if let Some(post) = app
        .store
        .delete_remote_post(&d.object, &d.actor, Vec::new(), now)
        .await?
        && let Ok(group) = app.store.group_by_id(post.group_id).await
        && group.remote_actor_id.is_none()
    {
        let fed = &app.federation;
        let entries = crate::outbound::announce_entries(app, &group, raw, Some(from)).await?;
        app.store.enqueue(entries, now).await?;
        fed.wake();
    }
    Ok(())
}

/// A group hosted elsewhere forwards an activity of one of its members to this node.
pub(super) async fn announced(app: &App, raw: &Value, a: &Announce, from: &str) -> AppResult<()> {
    let Some(group) = app.store.group_by_remote_actor(&a.group).await? else {
        return Ok(());
    };
    let inner = &a.inner_raw;
    let own =
        caremesh_federation::urls::same_node(&a.inner_head.id, app.federation.urls.base().as_str());
    match &a.inner {
        Activity::Create(c) if !own && c.note.context.as_deref() == Some(a.group.as_str()) => {
            store_post_from(app, &group, raw, inner, Vec::new()).await?;
        }
        Activity::UpdateNote(u) if !own && u.note.context.as_deref() == Some(a.group.as_str()) => {
            apply_newest_edit(app, &group, &u.note.id, &u.actor, Vec::new()).await?;
        }
        // A member renamed: take the actor from its own node.
        Activity::UpdateActor => {
            actors::updated(app, inner, &a.inner_head.actor, from, false).await?;
        }
        Activity::Delete(d) => {
            app.store
                .delete_remote_post(&d.object, &d.actor, Vec::new(), app.now())
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// A member on another node marked a post of a group hosted here helpful, or took it back.
pub(super) async fn like(app: &App, like: &Like, helpful: bool) -> AppResult<()> {
    let Some(url) = like.group.as_deref() else {
        return Ok(());
    };
    let Some(group) = hosted_group(app, url).await? else {
        return Ok(());
    };
    let member = app.store.remote_member(group.id, &like.actor).await?;
    if member.is_none_or(|m| m.state != MemberState::Active) {
        return Ok(());
    }
    let fed = &app.federation;
    let Some(post) = crate::outbound::post_by_ref(app, &group, &like.post).await? else {
        return Ok(());
    };
    let intent = Intent::PostState {
        group: group.id,
        post: post.public_id.clone(),
    };
    let state = intents::for_members(app, &group, intent).await?;
    match app
        .store
        .set_remote_helpful_with(post.id, &like.actor, helpful, app.now(), state)
        .await
    {
        Ok(_) => {}
        Err(e) if e.conflict_code().is_some() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    fed.wake();
    Ok(())
}

/// A member of another node reported a post of a group hosted here: the host's moderators see it
/// in their queue, as from the reporter's actor.
pub(super) async fn flagged(app: &App, f: &caremesh_federation::activity::Flag) -> AppResult<()> {
    let Some(group) = hosted_group(app, &f.group).await? else {
        return Ok(());
    };
    let member = app.store.remote_member(group.id, &f.actor).await?;
    if member.is_none_or(|m| m.state != MemberState::Active) {
        return Ok(());
    }
    let Some(post) = crate::outbound::post_by_ref(app, &group, &f.post).await? else {
        return Ok(());
    };
    let reason: String = caremesh_domain::clean_text(
        "reason",
        &f.reason
            .chars()
            .take(limits::REPORT_REASON)
            .collect::<String>(),
        limits::REPORT_REASON,
        true,
    )
    .unwrap_or_default();
    let reason = if reason.trim().is_empty() {
        "—".to_owned()
    } else {
        reason
    };
    match app
        .store
        .report_post_with(
            group.id,
            post.id,
            caremesh_store::Reporter::Remote(f.actor.clone()),
            reason,
            app.now(),
            Vec::new(),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Reported twice, or the post is gone: nothing more to do.
        Err(e) if e.conflict_code().is_some() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The title and text of a `Note`, cut to the limits of a post.
pub(crate) fn note_text(note: &Value) -> (Option<String>, String) {
    let body: String = note["content"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(limits::POST_BODY)
        .collect();
    let title = note["name"]
        .as_str()
        .map(|t| t.chars().take(limits::POST_TITLE).collect());
    (title, body)
}

/// How far ahead of this node's clock a time written by another node may be before it is taken
/// for that node's clock running ahead.
pub(crate) const FUTURE_TOLERANCE_SECS: i64 = 30;

/// When a post of another node is published, on this node's clock. Its `published` time is its
/// author's node's: when that node's clock runs ahead, the post would stay hidden here as if
/// scheduled. A time up to [`FUTURE_TOLERANCE_SECS`] ahead of `now` is taken as it is; beyond
/// that, it is moved back by how far ahead the author's proof was signed (`signed`, that node's
/// clock when the post was written), so that a scheduled announcement keeps its delay; what is
/// still ahead then is clamped to `now`, except for an announcement, which may be scheduled.
pub(crate) fn publish_time_here(
    published: Option<Timestamp>,
    signed: Option<Timestamp>,
    kind: PostKind,
    now: Timestamp,
) -> Timestamp {
    let Some(published) = published else {
        return now;
    };
    let limit = now.plus_secs(FUTURE_TOLERANCE_SECS);
    if published <= limit {
        return published;
    }
    let ahead = signed
        .filter(|s| *s > limit)
        .map_or(0, |s| s.as_millis() - now.as_millis());
    let shifted = Timestamp::from_millis(published.as_millis() - ahead);
    if kind == PostKind::Announcement && shifted > limit {
        shifted
    } else {
        shifted.min(now)
    }
}

/// When an edit of another node's post was made, on this node's clock: an `updated` time ahead of
/// `now` (beyond [`FUTURE_TOLERANCE_SECS`]) is the author's node's clock running ahead, and is
/// taken as `now`, when the edit is applied here.
pub(crate) fn edit_time_here(updated: Timestamp, now: Timestamp) -> Timestamp {
    if updated > now.plus_secs(FUTURE_TOLERANCE_SECS) {
        now
    } else {
        updated
    }
}

/// Stores a post that came from another node, once; `Some` when it is new here. `activity` is
/// what was delivered (the `Create`, or the host's `Announce` of it), `create` the author's
/// `Create`. `announce` is queued with the post.
pub(crate) async fn store_post_from(
    app: &App,
    group: &Group,
    activity: &Value,
    create: &Value,
    announce: Vec<NewOutboxEntry>,
) -> AppResult<Option<Post>> {
    let fed = &app.federation;
    let note = &create["object"];
    let author = create["actor"].as_str().unwrap_or_default().to_owned();
    let origin_id = note["id"].as_str().unwrap_or_default().to_owned();
    if let Some(obj) = app.store.federated_object(&origin_id).await?
        && obj.deleted_at.is_some()
    {
        return Ok(None);
    }
    let author_name = actors::remote_actor_name(app, &author).await;
    let kind = match note["caremesh:kind"].as_str() {
        Some("announcement") => PostKind::Announcement,
        Some("reply") => PostKind::Reply,
        _ if note.get("inReplyTo").is_some() => PostKind::Reply,
        _ => PostKind::Question,
    };
    let (thread_public_id, thread_origin_id) = match note["inReplyTo"].as_str() {
        None => (None, None),
        Some(url) => match url.strip_prefix(&fed.urls.object("")) {
            Some(local) => (Some(local.to_owned()), None),
            None => (None, Some(url.to_owned())),
        },
    };
    let (title, body) = note_text(note);
    let published = publish_time_here(
        note["published"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339),
        create["proof"]["created"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339),
        kind,
        app.now(),
    );
    let pinned = note["caremesh:pinned"]
        .as_bool()
        .unwrap_or(kind == PostKind::Announcement);
    // Its files first (unless the post is here already), so that they are stored with it and
    // are here before it is forwarded.
    let files = if app
        .store
        .post_by_origin(group.id, &origin_id)
        .await?
        .is_none()
    {
        files::fetch_note_files(app, group, note, &author).await
    } else {
        Vec::new()
    };
    let stored = app
        .store
        .store_remote_post(
            RemotePost {
                public_id: crate::new_public_id()?,
                group_id: group.id,
                origin_id: origin_id.clone(),
                thread_public_id,
                thread_origin_id,
                author_actor_id: author.clone(),
                author_name,
                kind,
                title,
                body,
                pinned: pinned && kind == PostKind::Announcement,
                published_at: published,
                files,
            },
            announce,
            files::group_quota(app),
        )
        .await;
    let (post, new) = match stored {
        Err(StoreError::NotFound("thread")) => {
            // A reply before its question: it waits for the question.
            let waiting_for = note["inReplyTo"].as_str().unwrap_or_default();
            app.store
                .keep_waiting(
                    group.id,
                    waiting_for,
                    create["id"].as_str().unwrap_or_default(),
                    &activity.to_string(),
                    app.now(),
                )
                .await?;
            return Ok(None);
        }
        other => other?,
    };
    if !new {
        return Ok(None);
    }
    // Whatever arrived before the post itself: a later edit by its author, and (on a member's
    // node) what the host decided about it.
    catch_up_post(app, group, &post, &author).await?;
    Ok(Some(post))
}

/// A post that just arrived: what arrived for it earlier is applied now (a newer edit by its
/// author; replies that waited for their question; on a member's node, the host's state of it
/// and, for a reply, of its thread, and a library that lists it).
async fn catch_up_post(app: &App, group: &Group, post: &Post, author: &str) -> AppResult<()> {
    let fed = &app.federation;
    let post_ref = fed.post_ref(post);
    apply_newest_edit(app, group, &post_ref, author, Vec::new()).await?;
    if post.thread_public_id.is_none() {
        for waiting in app.store.take_waiting(group.id, &post_ref).await? {
            let Ok(raw) = serde_json::from_str::<Value>(&waiting) else {
                continue;
            };
            match caremesh_federation::activity::parse(&raw) {
                Ok(parsed) => {
                    if let Err(e) = Box::pin(super::apply(app, &parsed, &raw, "")).await {
                        tracing::warn!(error = %e, "a reply that waited for its question failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a waiting activity does not parse"),
            }
        }
    }
    if group.remote_actor_id.is_some() {
        let mut refs = vec![post_ref];
        if let Some(t) = &post.thread_public_id
            && let Ok(thread) = app.store.post_by_public_id(group.id, t, None).await
        {
            refs.push(fed.post_ref(&thread));
        }
        group_objects::catch_up(app, group, &refs).await?;
    }
    Ok(())
}

/// Applies the newest version of an author's `Note` to the post of `group`, if it is an edit
/// newer than what is shown and still of that group; `announce` is queued with it.
pub(crate) async fn apply_newest_edit(
    app: &App,
    group: &Group,
    post_ref: &str,
    author: &str,
    announce: Vec<NewOutboxEntry>,
) -> AppResult<bool> {
    let Some(post) = app.store.post_by_origin(group.id, post_ref).await? else {
        return Ok(false);
    };
    let Some(note) = group_objects::newest(app, post_ref).await? else {
        return Ok(false);
    };
    let group_url = group
        .remote_actor_id
        .clone()
        .unwrap_or_else(|| app.federation.urls.group(&group.public_id));
    if note["context"].as_str().is_some_and(|c| c != group_url) {
        return Ok(false);
    }
    let Some(updated) = note["updated"].as_str().and_then(Timestamp::parse_rfc3339) else {
        return Ok(false);
    };
    let (title, body) = note_text(&note);
    // An edit time from a clock running ahead is taken as now: the same version, applied again
    // later, must then change nothing.
    let claimed = updated;
    let updated = edit_time_here(claimed, app.now());
    if updated != claimed && post.title == title && post.body == body {
        return Ok(false);
    }
    Ok(app
        .store
        .edit_remote_post(post_ref, author, title, body, updated, announce)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_420_800_000);

    #[test]
    fn times_from_a_clock_running_ahead_are_taken_as_received() {
        let ahead = |secs| Some(NOW.plus_secs(secs));
        // Within the tolerance, or in the past: as written.
        for kind in [PostKind::Question, PostKind::Reply, PostKind::Announcement] {
            assert_eq!(
                publish_time_here(ahead(20), ahead(20), kind, NOW),
                NOW.plus_secs(20)
            );
            assert_eq!(
                publish_time_here(ahead(-60), ahead(-60), kind, NOW),
                NOW.plus_secs(-60)
            );
            assert_eq!(publish_time_here(None, None, kind, NOW), NOW);
        }
        // Written four minutes "from now" by a node whose clock is four minutes ahead.
        for kind in [PostKind::Question, PostKind::Reply, PostKind::Announcement] {
            assert_eq!(publish_time_here(ahead(240), ahead(240), kind, NOW), NOW);
        }
        // Questions and replies are never scheduled.
        assert_eq!(
            publish_time_here(ahead(240), None, PostKind::Question, NOW),
            NOW
        );
        assert_eq!(
            publish_time_here(ahead(240), ahead(0), PostKind::Reply, NOW),
            NOW
        );
        // An announcement scheduled for tomorrow stays scheduled, by the delay its node meant.
        let day = 24 * 3600;
        assert_eq!(
            publish_time_here(ahead(day), ahead(0), PostKind::Announcement, NOW),
            NOW.plus_secs(day)
        );
        assert_eq!(
            publish_time_here(ahead(day + 240), ahead(240), PostKind::Announcement, NOW),
            NOW.plus_secs(day)
        );
        // Edits.
        assert_eq!(edit_time_here(NOW.plus_secs(240), NOW), NOW);
        assert_eq!(edit_time_here(NOW.plus_secs(10), NOW), NOW.plus_secs(10));
        assert_eq!(edit_time_here(NOW.plus_secs(-10), NOW), NOW.plus_secs(-10));
    }
}
