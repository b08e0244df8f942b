//! What the host of a group mirrored here decided: a post's state (`caremesh:PostState`), a
//! local account's membership (`caremesh:Membership`) and the group's library
//! (`caremesh:Library`). Each has a fixed id; the inbox keeps only the newest version, and what
//! is applied is always that version, so updates that arrive late, twice or out of order
//! converge. A state that arrives before its post waits in the inbox's store and is applied when
//! the post arrives.

use caremesh_domain::group::limits;
use caremesh_domain::{GroupRole, MemberState, Role};
use caremesh_federation::group_sync::{LIBRARY, MEMBERSHIP, POST_STATE, membership_id, state_id};
use caremesh_store::{Group, HostedPostState, MirrorFolder, MirrorItem, Post};
use serde_json::Value;

use super::{actors, files};
use crate::{App, AppResult};

/// The newest version this node holds of an object, as JSON.
pub(crate) async fn newest(app: &App, object_id: &str) -> AppResult<Option<Value>> {
    Ok(app
        .store
        .federated_object(object_id)
        .await?
        .filter(|o| o.deleted_at.is_none())
        .and_then(|o| o.document)
        .and_then(|d| serde_json::from_str(&d).ok()))
}

/// An `Update` from a group hosted elsewhere of one of its objects: the newest version the
/// inbox kept is applied.
pub(super) async fn apply(app: &App, group: &Group, id: &str) -> AppResult<()> {
    let Some(group_url) = &group.remote_actor_id else {
        return Ok(());
    };
    if !id.starts_with(&format!("{group_url}/")) {
        return Ok(());
    }
    let Some(doc) = newest(app, id).await? else {
        return Ok(());
    };
    match doc["type"].as_str() {
        Some(POST_STATE) => {
            let post_ref = doc["caremesh:post"].as_str().unwrap_or_default();
            if id != state_id(group_url, post_ref) {
                return Ok(());
            }
            if let Some(post) = crate::outbound::post_by_ref(app, group, post_ref).await? {
                apply_state_doc(app, group, &post, &doc).await?;
            }
        }
        Some(LIBRARY) if id == format!("{group_url}/library") => {
            apply_library_doc(app, group, &doc).await?;
        }
        Some(MEMBERSHIP) => {
            let actor = doc["caremesh:member"].as_str().unwrap_or_default();
            if id != membership_id(group_url, actor) {
                return Ok(());
            }
            let state = doc["caremesh:state"]
                .as_str()
                .and_then(|s| s.parse::<MemberState>().ok());
            let role = doc["caremesh:role"]
                .as_str()
                .and_then(|s| s.parse::<GroupRole>().ok());
            if let (Some(state), Some(role), Some(user)) = (
                state,
                role,
                actors::local_member_account(app, actor, group).await?,
            ) {
                // Patients stay members here whatever role a host gives their pseudonym.
                let role = match app.store.user_by_id(user).await?.role {
                    Role::Patient => GroupRole::Member,
                    _ => role,
                };
                app.store
                    .set_mirror_membership(group.id, user, state, role, app.now())
                    .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A post (and its thread) that just arrived on a member's node: the host's state of each, and
/// a library that lists the post, that arrived before it.
pub(super) async fn catch_up(app: &App, group: &Group, refs: &[String]) -> AppResult<()> {
    let Some(group_url) = &group.remote_actor_id else {
        return Ok(());
    };
    for r in refs {
        if let Some(doc) = newest(app, &state_id(group_url, r)).await?
            && let Some(p) = crate::outbound::post_by_ref(app, group, r).await?
        {
            apply_state_doc(app, group, &p, &doc).await?;
        }
    }
    if let Some(first) = refs.first()
        && let Some(doc) = newest(app, &format!("{group_url}/library")).await?
        && doc.to_string().contains(first.as_str())
    {
        apply_library_doc(app, group, &doc).await?;
    }
    Ok(())
}

async fn apply_state_doc(app: &App, group: &Group, post: &Post, doc: &Value) -> AppResult<()> {
    let accepted_reply = match doc["caremesh:acceptedAnswer"].as_str() {
        Some(r) => crate::outbound::post_by_ref(app, group, r)
            .await?
            .filter(|reply| reply.thread_public_id.as_deref() == Some(&post.public_id))
            .map(|reply| reply.id),
        None => None,
    };
    let state = HostedPostState {
        pinned: doc["caremesh:pinned"].as_bool().unwrap_or(false),
        helpful_count: doc["caremesh:helpfulCount"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        accepted_reply,
        answered_by_doctor: doc["caremesh:answeredByDoctor"].as_bool().unwrap_or(false),
        removed: doc["caremesh:removed"].as_bool().unwrap_or(false),
    };
    app.store
        .apply_post_state(post.id, state, app.now())
        .await?;
    Ok(())
}

/// Shows a mirrored group's library as its host keeps it, with the posts this node has.
async fn apply_library_doc(app: &App, group: &Group, doc: &Value) -> AppResult<()> {
    let mut folders = Vec::new();
    for f in doc["caremesh:folders"].as_array().into_iter().flatten() {
        let Some(name) = f["name"].as_str() else {
            continue;
        };
        let mut items = Vec::new();
        for i in f["items"].as_array().into_iter().flatten() {
            let title: String = i["title"]
                .as_str()
                .unwrap_or("—")
                .chars()
                .take(limits::ITEM_TITLE)
                .collect();
            if let Some(r) = i["post"].as_str() {
                if let Some(p) = crate::outbound::post_by_ref(app, group, r).await? {
                    items.push(MirrorItem::Post {
                        title,
                        post_id: p.id,
                    });
                }
            } else if let Some(sha) = i["file"]["caremesh:sha256"].as_str()
                && let Some(a) =
                    files::library_file(app, group, sha, i["file"]["name"].as_str()).await
            {
                items.push(MirrorItem::File {
                    title,
                    attachment_id: a.id,
                });
            }
        }
        folders.push(MirrorFolder {
            name: name.chars().take(limits::FOLDER_NAME).collect(),
            items,
        });
    }
    app.store
        .replace_mirror_library(group.id, folders, app.now())
        .await?;
    Ok(())
}
