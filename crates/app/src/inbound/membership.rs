//! Joining and leaving groups across nodes: `Follow`, its `Undo`, and the group's `Accept` or
//! `Reject`.

use caremesh_domain::MemberState;
use caremesh_federation::activity::{Follow, FollowAnswer};
use caremesh_federation::entries_for;
use caremesh_store::RemoteFollow;
use serde_json::{Value, json};

use super::{actors, hosted_group};
use crate::intents::{self, Intent};
use crate::{App, AppResult};

const AS: &str = caremesh_federation::activity::AS;

/// A remote actor asks to join a group hosted here: accepted at once with a usable invite of the
/// group, otherwise waiting for a moderator; refused when banned, when the group is full or the
/// invite unusable.
pub(super) async fn follow(app: &App, raw: &Value, id: &str, f: &Follow) -> AppResult<()> {
    let fed = &app.federation;
    let Some(group) = hosted_group(app, &f.group).await? else {
        return Ok(());
    };
    let name = actors::remote_actor_name(app, &f.actor).await;
    let group_url = fed.urls.group(&group.public_id);
    let accept = json!({
        "@context": AS,
        "id": fed.urls.activity(&format!("accept-{}", short_hash(id))),
        "type": "Accept",
        "actor": group_url,
        "object": raw,
    });
    let peer = fed.partner_of(&f.actor).await?;
    // Admitted at once: the new member count goes to every member's node with the answer.
    let mut on_accept = entries_for(&accept, std::slice::from_ref(&peer));
    on_accept.extend(intents::for_members(app, &group, Intent::Group { group: group.id }).await?);
    let result = app
        .store
        .remote_follow(
            RemoteFollow {
                group_id: group.id,
                actor_id: &f.actor,
                name: &name,
                invite_token: f.invite_token.as_deref(),
                max_members: app.settings.max_members,
            },
            on_accept,
            app.now(),
        )
        .await;
    match result {
        Ok(m) if m.state == MemberState::Active => {
            fed.wake();
            crate::outbound::backfill_node(app, &group, &f.actor).await?;
        }
        Ok(_) => {}
        Err(e) if e.conflict_code().is_some() => {
            let reject = json!({
                "@context": AS,
                "id": fed.urls.activity(&format!("reject-{}", short_hash(id))),
                "type": "Reject",
                "actor": group_url,
                "object": raw,
                "summary": e.to_string(),
                "caremesh:code": e.conflict_code(),
            });
            fed.publish(&reject, &[peer]).await?;
        }
        Err(e) => return Err(e.into()),
    }
    fed.wake();
    Ok(())
}

/// A remote member leaves a group hosted here.
pub(super) async fn unfollow(app: &App, f: &Follow) -> AppResult<()> {
    if let Some(group) = hosted_group(app, &f.group).await? {
        let count =
            intents::for_members_but(app, &group, Intent::Group { group: group.id }, &f.actor)
                .await?;
        app.store
            .remote_unfollow_with(group.id, &f.actor, app.now(), count)
            .await?;
        app.federation.wake();
    }
    Ok(())
}

/// The host of a group mirrored here answered a local account's request to join.
pub(super) async fn answered(app: &App, a: &FollowAnswer, accepted: bool) -> AppResult<()> {
    let Some(group) = app.store.group_by_remote_actor(&a.group).await? else {
        return Ok(());
    };
    if let Some(user) = actors::local_member_account(app, &a.follower, &group).await? {
        app.store
            .answer_remote_join(group.id, user, accepted, app.now())
            .await?;
    }
    Ok(())
}

/// A short stable hash of an id, for ids derived from it.
pub(crate) fn short_hash(s: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(s.as_bytes());
    hex::encode(&d[..12])
}
