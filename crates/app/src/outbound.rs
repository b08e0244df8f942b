//! What a change on this node tells the group's other nodes: the signed activities of local
//! authors (their posts, edits, deletions and helpful marks), routed to the group's host or, by a
//! host, to every node with a member; what a host forwards and sends a node that joins later;
//! and the host's snapshots of a post's state and of its library. Each is built here and queued
//! by the use-case in the transaction of its change (see `crate::intents` for what is rendered
//! when it is sent).

use caremesh_domain::{Role, Timestamp};
use caremesh_federation::entries_for;
use caremesh_federation::group_sync::{LIBRARY, POST_STATE, state_id};
use caremesh_federation::groups::NoteDraft;
use caremesh_federation::urls::{origin_of_str, same_node};
use caremesh_store::{
    DeletedBy, FeedSort, Group, NewOutboxEntry, Partner, Post, Pseudonym, ReplySort, StoreError,
    User,
};
use serde_json::{Value, json};

use crate::{App, AppResult};

const AS: &str = caremesh_federation::activity::AS;
const DATA_INTEGRITY: &str = caremesh_federation::activity::DATA_INTEGRITY;
/// How many of a group's latest threads a node gets when its first member joins, and how many
/// replies of each.
const BACKFILL_THREADS: u32 = 30;
const BACKFILL_REPLIES: u32 = 50;
/// Most library items a snapshot carries.
const LIBRARY_ITEMS: u32 = 1000;

fn sha_short(s: &str) -> [u8; 12] {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(s.as_bytes());
    let mut out = [0u8; 12];
    out.copy_from_slice(&d[..12]);
    out
}

/// A patient of this node leaves a group hosted elsewhere: what tells the host (`Undo` of the
/// `Follow`), to queue with leaving; it stops sending the group's content here once no member
/// is left.
pub(crate) async fn leave_entries(
    app: &App,
    group: &Group,
    user: &User,
) -> AppResult<Vec<NewOutboxEntry>> {
    let Some(group_url) = &group.remote_actor_id else {
        return Ok(Vec::new());
    };
    let actor = member_actor(app, user, group).await?;
    let now = app.clock.now();
    let undo = json!({
        "@context": AS,
        "id": app.federation.urls.activity(&format!(
            "leave-{}-{}",
            hex::encode(sha_short(&actor)),
            now.as_millis()
        )),
        "type": "Undo",
        "actor": actor,
        "object": { "type": "Follow", "actor": actor, "object": group_url },
    });
    Ok(entries_for(
        &undo,
        &[app.federation.partner_of(group_url).await?],
    ))
}

/// The actor a local account writes as in a group: doctors and staff as themselves, patients
/// as their pseudonym for that group.
pub(crate) async fn author_actor(app: &App, user: &User, group: &Group) -> AppResult<String> {
    if user.role != Role::Patient {
        return Ok(app.federation.urls.person(&user.username));
    }
    let public_id = crate::new_public_id()?;
    // A new pseudonym takes the name the patient chose for the group; one who chose none (whose
    // name there is still their account's, perhaps their real name) crosses under a neutral one.
    let display_name = match app.store.membership(group.id, user.id).await? {
        Some(m) if m.display_name != user.display_name => m.display_name,
        _ => neutral_name(group.settings.language, &public_id),
    };
    let p = app
        .store
        .ensure_pseudonym(Pseudonym {
            id: 0,
            public_id,
            user_id: user.id,
            group_id: group.id,
            display_name,
            created_at: app.clock.now(),
        })
        .await?;
    Ok(app.federation.urls.pseudonym(&p.public_id))
}

/// The name a patient who chose none shows on other nodes: "病友" or "Member" and four
/// characters of the pseudonym's random id, so that two such patients can be told apart and
/// nothing links the name to the person or to their other groups.
pub(crate) fn neutral_name(language: caremesh_domain::Language, public_id: &str) -> String {
    let tag: String = public_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect::<String>()
        .to_ascii_uppercase();
    match language {
        caremesh_domain::Language::En => format!("Member {tag}"),
        _ => format!("病友 {tag}"),
    }
}

/// The actor an account is a member as, in a group hosted elsewhere: its pseudonym there
/// (patients) or its own actor.
pub(crate) async fn member_actor(app: &App, user: &User, group: &Group) -> AppResult<String> {
    Ok(match app.store.pseudonym_of(user.id, group.id).await? {
        Some(p) => app.federation.urls.pseudonym(&p.public_id),
        None => app.federation.urls.person(&user.username),
    })
}

/// What goes to the other nodes of the group when a post is written on this node, to be
/// queued in the same transaction as the post: its `Create`, signed by the author, to the host
/// (mirrored group) or forwarded to every node with a member (hosted group). A scheduled
/// announcement goes at once with its future `published` time, and every node shows it from
/// then on, so it appears on time even where the host cannot be reached at that moment.
pub(crate) async fn post_created_entries(
    app: &App,
    group: &Group,
    draft: &NoteDraft<'_>,
    author: &User,
    thread: Option<&Post>,
) -> AppResult<Vec<NewOutboxEntry>> {
    let signed = signed_create(app, group, draft, author, thread).await?;
    route(app, group, &signed).await
}

/// The `Create` of a post written on this node, signed by its author.
pub(crate) async fn signed_create(
    app: &App,
    group: &Group,
    draft: &NoteDraft<'_>,
    author: &User,
    thread: Option<&Post>,
) -> AppResult<Value> {
    let actor = author_actor(app, author, group).await?;
    let note = app.federation.post_note(group, draft, &actor, thread);
    let create = json!({
        "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
        "id": app.federation.urls.activity(&format!("create-{}", draft.public_id)),
        "type": "Create",
        "actor": actor,
        "to": [app.federation.group_url(group)],
        "object": note,
    });
    Ok(app.federation.sign_as(&actor, &create).await?)
}

/// What goes to the other nodes when an author deletes their own post written on this node,
/// to be queued in the same transaction: the `Delete`, to the host (mirrored group) or to every
/// member's node (hosted group).
pub(crate) async fn post_deleted_entries(
    app: &App,
    group: &Group,
    post: &Post,
    author: &User,
) -> AppResult<Vec<NewOutboxEntry>> {
    if post.origin_id.is_some() {
        return Ok(Vec::new());
    }
    let actor = author_actor(app, author, group).await?;
    let delete = json!({
        "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
        "id": app.federation.urls.activity(&format!("delete-{}", post.public_id)),
        "type": "Delete",
        "actor": actor,
        "to": [app.federation.group_url(group)],
        "object": { "id": app.federation.object_url(&post.public_id), "type": "Tombstone" },
    });
    let signed = app.federation.sign_as(&actor, &delete).await?;
    route(app, group, &signed).await
}

/// `Announce`s of `activity` by a hosted group to every node with an active member, except
/// `skip` (the node the activity came from, which has it already).
pub(crate) async fn announce_entries(
    app: &App,
    group: &Group,
    activity: &Value,
    skip: Option<&str>,
) -> AppResult<Vec<NewOutboxEntry>> {
    let peers = member_nodes(app, group, skip).await?;
    if peers.is_empty() {
        return Ok(Vec::new());
    }
    Ok(entries_for(
        &app.federation.announce_of(group, activity),
        &peers,
    ))
}

/// The post of `group` that `post_ref` names, if this node has it.
pub(crate) async fn post_by_ref(
    app: &App,
    group: &Group,
    post_ref: &str,
) -> AppResult<Option<Post>> {
    if let Some(pid) = post_ref.strip_prefix(&app.federation.urls.object("")) {
        return match app.store.post_by_public_id(group.id, pid, None).await {
            Ok(p) => Ok(Some(p)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    Ok(app.store.post_by_origin(group.id, post_ref).await?)
}

/// The partner nodes with an active member of a group hosted here, except `skip`.
pub(crate) async fn member_nodes(
    app: &App,
    group: &Group,
    skip: Option<&str>,
) -> AppResult<Vec<Partner>> {
    let mut peers: Vec<Partner> = Vec::new();
    for actor in app.store.remote_member_actors(group.id).await? {
        let Ok(url) = url::Url::parse(&actor) else {
            continue;
        };
        // The partner the member's actor is on: same scheme, host and port.
        if let Some(p) = app.federation.partners.for_url(&url).await?
            && Some(p.authority.as_str()) != skip
            && !peers.iter().any(|q| q.authority == p.authority)
        {
            peers.push(p);
        }
    }
    Ok(peers)
}

/// Where a signed activity of a local author in `group` goes: to the host of a mirrored
/// group, or forwarded by a group hosted here to every node with a member.
pub(crate) async fn route(
    app: &App,
    group: &Group,
    signed: &Value,
) -> AppResult<Vec<NewOutboxEntry>> {
    match &group.remote_actor_id {
        Some(url) => Ok(entries_for(
            signed,
            &[app.federation.partner_of(url).await?],
        )),
        None => announce_entries(app, group, signed, None).await,
    }
}

/// What goes to the other nodes when its author edits a post written on this node, to be
/// queued in the same transaction as the edit: an `Update` of the whole `Note`, routed like the
/// post.
pub(crate) async fn post_edited_entries(
    app: &App,
    group: &Group,
    post: &Post,
    title: Option<&str>,
    body: &str,
    edited_at: Timestamp,
    author: &User,
) -> AppResult<Vec<NewOutboxEntry>> {
    if post.origin_id.is_some() {
        return Ok(Vec::new());
    }
    let thread = match &post.thread_public_id {
        Some(t) => Some(app.store.post_by_public_id(group.id, t, None).await?),
        None => None,
    };
    let actor = author_actor(app, author, group).await?;
    let draft = NoteDraft {
        title,
        body,
        edited_at: Some(edited_at),
        ..NoteDraft::of_post(post)
    };
    let note = app
        .federation
        .post_note(group, &draft, &actor, thread.as_ref());
    let update = json!({
        "@context": [AS, DATA_INTEGRITY],
        "id": app.federation.urls.activity(&format!(
            "update-{}-{}",
            post.public_id,
            edited_at.as_millis()
        )),
        "type": "Update",
        "actor": actor,
        "to": [app.federation.group_url(group)],
        "object": note,
    });
    let signed = app.federation.sign_as(&actor, &update).await?;
    route(app, group, &signed).await
}

/// The group's signed `Update` of what it decided about one of its posts (with the activity
/// id `id`, or a new one).
pub(crate) async fn post_state_update(
    app: &App,
    group: &Group,
    post: &Post,
    id: Option<&str>,
) -> AppResult<Value> {
    let group_url = app.federation.group_url(group);
    let post_ref = app.federation.post_ref(post);
    let accepted = match &post.accepted_reply_public_id {
        Some(pid) => match app.store.post_by_public_id(group.id, pid, None).await {
            Ok(r) => Some(app.federation.post_ref(&r)),
            Err(_) => None,
        },
        None => None,
    };
    let now = app.clock.now();
    let state = json!({
        "id": state_id(&group_url, &post_ref),
        "type": POST_STATE,
        "attributedTo": group_url,
        "context": group_url,
        "caremesh:post": post_ref,
        "caremesh:pinned": post.pinned,
        "caremesh:helpfulCount": post.helpful_count,
        "caremesh:acceptedAnswer": accepted,
        "caremesh:answeredByDoctor": post.answered_by_doctor,
        "caremesh:removed": post.deleted_by == Some(DeletedBy::Moderator),
        "published": post.created_at.to_rfc3339(),
        "updated": now.to_rfc3339(),
    });
    Ok(app.federation.group_update(group, state, id).await?)
}

/// A node's first member of a group hosted here was accepted: that node gets the group's
/// recent threads (the pinned ones and the latest, with scheduled announcements), their replies
/// and the group's decisions about them, as the other members' nodes got them: the authors'
/// activities, unchanged, forwarded by the group.
pub(crate) async fn backfill_node(app: &App, group: &Group, actor: &str) -> AppResult<()> {
    if origin_of_str(actor).is_none() {
        return Ok(());
    }
    let others = app
        .store
        .remote_member_actors(group.id)
        .await?
        .into_iter()
        .filter(|a| a != actor && same_node(a, actor))
        .count();
    if others > 0 || group.remote_actor_id.is_some() {
        return Ok(());
    }
    let peer = [app.federation.partner_of(actor).await?];
    let now = app.clock.now();
    let mut threads = app
        .store
        .feed(
            group.id,
            None,
            FeedSort::Newest,
            None,
            BACKFILL_THREADS,
            now,
        )
        .await?;
    threads.reverse();
    threads.extend(
        app.store
            .scheduled_posts(group.id, None, BACKFILL_THREADS, now)
            .await?,
    );
    for thread in threads.iter().filter(|t| t.deleted_at.is_none()) {
        let mut entries = backfill_entries(app, group, thread, None, &peer).await?;
        let replies = app
            .store
            .replies(thread.id, None, ReplySort::Oldest, None, BACKFILL_REPLIES)
            .await?;
        for r in replies.iter().filter(|r| r.deleted_at.is_none()) {
            entries.extend(backfill_entries(app, group, r, Some(thread), &peer).await?);
        }
        // The thread's state after its replies, which an accepted answer refers to.
        if thread.pinned
            || thread.helpful_count > 0
            || thread.accepted_reply_public_id.is_some()
            || thread.answered_by_doctor
        {
            let update = post_state_update(app, group, thread, None).await?;
            entries.extend(entries_for(&update, &peer));
        }
        app.store.enqueue(entries, now).await?;
    }
    if !app.store.list_folders(group.id).await?.is_empty() {
        let update = library_update(app, group, None).await?;
        app.store.enqueue(entries_for(&update, &peer), now).await?;
    }
    app.federation.wake();
    Ok(())
}

/// One post for a node that joins later: its author's activities (the `Create`, and the
/// latest `Update` if it was edited) in the group's `Announce`.
pub(crate) async fn backfill_entries(
    app: &App,
    group: &Group,
    post: &Post,
    thread: Option<&Post>,
    peer: &[Partner],
) -> AppResult<Vec<NewOutboxEntry>> {
    let activities: Vec<Value> = match &post.origin_id {
        None => {
            let Some(uid) = post.author.user_id else {
                return Ok(Vec::new());
            };
            let author = app.store.user_by_id(uid).await?;
            // Lists do not carry files; the post itself does.
            let full;
            let post = if post.attachment_count > 0 && post.attachments.is_empty() {
                full = app
                    .store
                    .post_by_public_id(group.id, &post.public_id, None)
                    .await?;
                &full
            } else {
                post
            };
            vec![signed_create(app, group, &NoteDraft::of_post(post), &author, thread).await?]
        }
        Some(origin) => {
            let stored = app.store.activities_about(origin).await?;
            let create = stored.iter().find(|a| a.activity_type == "Create");
            let update = stored.iter().rev().find(|a| a.activity_type == "Update");
            create
                .into_iter()
                .chain(update)
                .filter_map(|a| serde_json::from_str(&a.payload).ok())
                .collect()
        }
    };
    Ok(activities
        .iter()
        .flat_map(|a| entries_for(&app.federation.announce_of(group, a), peer))
        .collect())
}

/// The group's signed `Update` of its library. Files saved in it stay with the host for now:
/// only posts are listed.
pub(crate) async fn library_update(app: &App, group: &Group, id: Option<&str>) -> AppResult<Value> {
    let group_url = app.federation.group_url(group);
    let folders = app.store.list_folders(group.id).await?;
    let items = app
        .store
        .library_items(group.id, None, None, LIBRARY_ITEMS)
        .await?;
    let mut out = Vec::with_capacity(folders.len());
    for f in &folders {
        let mut listed = Vec::new();
        for i in items.iter().rev().filter(|i| i.folder_id == f.id) {
            if let Some(pid) = &i.post_public_id
                && let Ok(p) = app.store.post_by_public_id(group.id, pid, None).await
            {
                listed.push(json!({ "title": i.title, "post": app.federation.post_ref(&p) }));
            } else if let Some(a) = &i.attachment {
                listed.push(json!({
                    "title": i.title,
                    "file": {
                        "caremesh:sha256": a.sha256,
                        "name": a.file_name,
                        "mediaType": a.content_type,
                        "caremesh:size": a.size_bytes,
                    },
                }));
            }
        }
        out.push(json!({ "name": f.name, "items": listed }));
    }
    let now = app.clock.now();
    let library = json!({
        "id": format!("{group_url}/library"),
        "type": LIBRARY,
        "attributedTo": group_url,
        "context": group_url,
        "caremesh:folders": out,
        "published": group.created_at.to_rfc3339(),
        "updated": now.to_rfc3339(),
    });
    Ok(app.federation.group_update(group, library, id).await?)
}

/// What goes to the host when a local member marks a post of a group hosted elsewhere helpful
/// (or takes the mark back), to be queued with the mark: a `Like` (or its `Undo`). The host
/// counts it and sends the count to every node. In a group hosted here there is nothing to
/// send with the mark; the new state goes out after it (`post_state_changed`).
pub(crate) async fn helpful_entries(
    app: &App,
    group: &Group,
    post: &Post,
    user: &User,
    helpful: bool,
) -> AppResult<Vec<NewOutboxEntry>> {
    let Some(group_url) = &group.remote_actor_id else {
        return Ok(Vec::new());
    };
    let actor = author_actor(app, user, group).await?;
    let like = json!({
        "type": "Like",
        "actor": actor,
        "object": app.federation.post_ref(post),
        "context": group_url,
    });
    let activity = if helpful {
        let mut a = like;
        a["@context"] = json!(AS);
        a["id"] = json!(
            app.federation
                .urls
                .activity(&format!("like-{}", crate::new_public_id()?))
        );
        a
    } else {
        json!({
            "@context": AS,
            "id": app.federation.urls.activity(&format!("unlike-{}", crate::new_public_id()?)),
            "type": "Undo",
            "actor": actor,
            "object": like,
        })
    };
    Ok(entries_for(
        &activity,
        &[app.federation.partner_of(group_url).await?],
    ))
}

/// A patient who has a pseudonym in the group chose a new name: the other nodes are told with an
/// `Update` of the pseudonym, fetch it again and show the new name on the posts they store. In a
/// group hosted elsewhere the host is told (and forwards the `Update` to its other members'
/// nodes); in a group hosted here, every node with a member.
pub(crate) async fn rename_entries(
    app: &App,
    group: &Group,
    user: &User,
) -> AppResult<Vec<NewOutboxEntry>> {
    let Some(p) = app.store.pseudonym_of(user.id, group.id).await? else {
        return Ok(Vec::new());
    };
    let actor = app.federation.urls.pseudonym(&p.public_id);
    let update = json!({
        "@context": AS,
        "id": app.federation.urls.activity(&format!("rename-{}", crate::new_public_id()?)),
        "type": "Update",
        "actor": actor,
        "object": actor,
    });
    // To the host of a group hosted elsewhere (it forwards the rename); from the host, to every
    // node with a member, which renames the posts it stores.
    let to = match &group.remote_actor_id {
        Some(group_url) => vec![app.federation.partner_of(group_url).await?],
        None => member_nodes(app, group, None).await?,
    };
    Ok(entries_for(&update, &to))
}

/// Whether the node `origin` (`scheme://authority`) may fetch the files of `group` from this
/// node.
pub(crate) async fn may_fetch_media(app: &App, group: &Group, origin: &str) -> bool {
    match &group.remote_actor_id {
        Some(host) => origin_of_str(host).as_deref() == Some(origin),
        None => member_nodes(app, group, None).await.is_ok_and(|nodes| {
            nodes
                .iter()
                .any(|p| origin_of_str(&p.base_url).as_deref() == Some(origin))
        }),
    }
}
