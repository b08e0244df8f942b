//! Inbound activities: what this node does with an activity a partner delivered.
//!
//! The inbox is a journal. A delivery is verified and checked by the federation crate
//! (signature, partner list, actor's node, proofs), parsed once into a typed
//! [`Activity`](caremesh_federation::activity::Activity), authorised against what is stored
//! (the group a post belongs to, the actor's membership), then **recorded** (once: its id is
//! unique) and **applied**; `applied_at` marks that its effects are in place. An activity that
//! was recorded but not applied — the node stopped in between, or the store failed while
//! applying — is applied again on redelivery, at start and by housekeeping ([`replay`]).
//! Applying is idempotent (posts are stored once by their object id, outbound activities have
//! ids derived from what they forward, states converge on the newest version), so an activity
//! takes effect exactly once.
//!
//! Errors keep their meaning across the wire: what the sender did wrong is a 4xx (it parks the
//! delivery), a failure of this node's store is a 503 (it retries).

mod actors;
mod files;
mod group_objects;
mod membership;
mod posts;

pub(crate) use actors::local_member_account;
pub(crate) use membership::short_hash;

use caremesh_domain::MemberState;
use caremesh_federation::InboundRequest;
use caremesh_federation::activity::{Activity, Parsed};
use caremesh_store::{Group, IngestOutcome};
use serde_json::Value;

use crate::{App, AppError, AppResult};

/// How often applying one recorded activity is tried before it is left for the admin.
pub const MAX_APPLY_ATTEMPTS: u32 = 50;
/// Replay leaves alone what arrived this recently: the request that recorded it applies it.
const REPLAY_AFTER_SECS: i64 = 30;

/// What the inbox answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// New, recorded and applied.
    Stored,
    /// Received before (and applied now if it had not been).
    Duplicate,
}

/// Everything the inbox does with one delivery: verify and check it, authorise it against the
/// stored objects, record it once, and apply it.
pub async fn receive(app: &App, req: &InboundRequest<'_>) -> AppResult<Received> {
    let fed = &app.federation;
    let (raw, parsed, incoming) = fed.inbox.verify_and_check(req).await?;
    authorize(app, &parsed).await?;
    let peer = incoming.peer.clone();
    let outcome = fed.inbox.ingest(incoming).await?;
    if outcome.needs_applying() {
        apply_recorded(app, outcome.seq(), &parsed, &raw, &peer).await?;
    }
    Ok(match outcome {
        IngestOutcome::Stored { .. } => Received::Stored,
        IngestOutcome::Duplicate { .. } => Received::Duplicate,
    })
}

/// Applies a recorded activity and marks it applied. A failure of this node (its store, a
/// partner it had to ask) leaves it unapplied for the next attempt and is returned; a refusal
/// (what the activity refers to is gone, the actor may no longer do it) is final: the activity
/// is done, with nothing to change.
async fn apply_recorded(
    app: &App,
    seq: i64,
    parsed: &Parsed,
    raw: &Value,
    from: &str,
) -> AppResult<()> {
    match apply(app, parsed, raw, from).await {
        Ok(()) => {}
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, activity = %parsed.head.id, "applying an activity failed; it will be tried again");
            if let Err(store) = app
                .store
                .record_apply_failure(seq, &e.to_string(), app.now())
                .await
            {
                tracing::warn!(error = %store, "cannot record the failure");
            }
            return Err(e);
        }
        Err(e) => {
            tracing::info!(error = %e, activity = %parsed.head.id, "an activity changes nothing here");
            app.store
                .record_apply_failure(seq, &e.to_string(), app.now())
                .await?;
        }
    }
    app.store.mark_applied(seq, app.now()).await?;
    Ok(())
}

/// What replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub applied: usize,
    pub failed: usize,
}

/// Applies what was recorded but not applied (the node stopped in between, or the store failed
/// while applying), oldest first. Run at start and by housekeeping.
pub async fn replay(app: &App, limit: u32) -> AppResult<Replayed> {
    let before = app.now().plus_secs(-REPLAY_AFTER_SECS);
    let waiting = app
        .store
        .unapplied_activities(before, MAX_APPLY_ATTEMPTS, limit)
        .await?;
    let mut out = Replayed::default();
    for stored in waiting {
        let raw: Value = match serde_json::from_str(&stored.payload) {
            Ok(v) => v,
            Err(e) => {
                app.store
                    .record_apply_failure(stored.seq, &format!("not JSON: {e}"), app.now())
                    .await?;
                out.failed += 1;
                continue;
            }
        };
        let parsed = match caremesh_federation::activity::parse(&raw) {
            Ok(p) => p,
            Err(e) => {
                // It passed these checks when it was recorded; an older node's record.
                app.store
                    .record_apply_failure(stored.seq, &e.to_string(), app.now())
                    .await?;
                app.store.mark_applied(stored.seq, app.now()).await?;
                continue;
            }
        };
        match apply_recorded(app, stored.seq, &parsed, &raw, &stored.peer).await {
            Ok(()) => out.applied += 1,
            Err(AppError::Unavailable(m)) => return Err(AppError::Unavailable(m)),
            Err(_) => out.failed += 1,
        }
    }
    Ok(out)
}

/// Checks a verified inbound activity against group rules before it is recorded, against what is
/// stored (the group named, the actor's membership there), never against what the activity
/// claims about itself: only active members post and edit in a group hosted here, and only its
/// doctors and owner post announcements.
async fn authorize(app: &App, parsed: &Parsed) -> AppResult<()> {
    let note = match &parsed.activity {
        Activity::Create(c) | Activity::UpdateNote(c) => &c.note,
        _ => return Ok(()),
    };
    let actor = &parsed.head.actor;
    if let Activity::UpdateNote(_) = parsed.activity {
        // An edit is checked against the group the stored post belongs to, whatever group the
        // edit names (or none): a post never moves to another group.
        if let Some(stored) = app.store.federated_object(&note.id).await?
            && let Some(doc) = stored
                .document
                .as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
            && doc["context"].as_str() != note.context.as_deref()
        {
            return Err(refused(format!(
                "{} belongs to another group than the edit names",
                note.id
            )));
        }
    }
    let Some(group_url) = note.context.as_deref() else {
        return Ok(());
    };
    let Some(group) = hosted_group(app, group_url).await? else {
        // A group hosted elsewhere: its posts come to this node from its host (the host's own
        // members' directly, the others' in an `Announce`), never from another member's node.
        if !caremesh_federation::urls::same_node(group_url, actor) {
            return Err(refused(format!(
                "{actor} is not of the node that hosts {group_url}; its host sends its posts"
            )));
        }
        return Ok(());
    };
    let member = app.store.remote_member(group.id, actor).await?;
    let Some(m) = member.filter(|m| m.state == MemberState::Active) else {
        return Err(refused(format!("{actor} is not a member of {group_url}")));
    };
    if note.kind.as_deref() == Some("announcement") {
        if !m.role.can_teach() {
            return Err(refused(format!(
                "{actor} does not teach in {group_url}: only its doctors post announcements"
            )));
        }
        // A doctor's rights end with their credential, whatever their node says.
        if let Err(e) = crate::access::remote_credential(app, actor).await {
            return Err(AppError::Federation {
                status: 403,
                code: crate::access::CREDENTIAL_INACTIVE,
                message: e.to_string(),
            });
        }
    }
    Ok(())
}

/// A refusal of the sender's activity by group rules (403, parked by the sender).
fn refused(message: String) -> AppError {
    AppError::Federation {
        status: 403,
        code: "actor_mismatch",
        message,
    }
}

/// The group hosted here that `url` names, if any.
pub(crate) async fn hosted_group(app: &App, url: &str) -> AppResult<Option<Group>> {
    let Some(pid) = app.federation.local_group_id(url) else {
        return Ok(None);
    };
    match app.store.group_by_public_id(&pid).await {
        Ok(g) if g.remote_actor_id.is_none() => Ok(Some(g)),
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Applies a recorded activity: memberships, posts, edits, helpful marks, reports, and what a
/// host decided about its posts and members. `from` is the node that delivered it.
pub(crate) async fn apply(app: &App, parsed: &Parsed, raw: &Value, from: &str) -> AppResult<()> {
    let actor = parsed.head.actor.as_str();
    match &parsed.activity {
        Activity::Follow(f) => membership::follow(app, raw, &parsed.head.id, f).await,
        Activity::UndoFollow(f) => membership::unfollow(app, f).await,
        Activity::Accept(a) => membership::answered(app, a, true).await,
        Activity::Reject(a) => membership::answered(app, a, false).await,
        Activity::Like(l) => posts::like(app, l, true).await,
        Activity::UndoLike(l) => posts::like(app, l, false).await,
        Activity::Create(c) => posts::created_here(app, raw, c, from).await,
        Activity::UpdateActor => actors::updated(app, raw, actor, from, true).await,
        Activity::UpdateGroupObject(o) => match app.store.group_by_remote_actor(actor).await? {
            Some(group) => group_objects::apply(app, &group, &o.id).await,
            None => Ok(()),
        },
        Activity::UpdateNote(u) => posts::edited_here(app, raw, u, from).await,
        Activity::Delete(d) => posts::deleted(app, raw, d, from).await,
        Activity::Announce(a) => posts::announced(app, raw, a, from).await,
        Activity::Flag(f) => posts::flagged(app, f).await,
        Activity::GroupAction(a) => crate::actions::apply(app, a).await,
        Activity::ActionAnswer(a) => crate::actions::answered(app, a).await,
        Activity::Other => Ok(()),
    }
}
