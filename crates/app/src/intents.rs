//! Intents: what a change tells other nodes when the activity can only be rendered once the
//! change has committed (a post's state as its host decided it, a group's library, a member's
//! standing, a group's document). The intent is queued in the same transaction as the change,
//! one outbox entry per peer; the delivery worker renders and signs the object as it is when it
//! is sent ([`Renderer`]). A crash can therefore never leave a change that other nodes are not
//! told about, and an intent rendered late sends the newest state, which receivers keep
//! (`caremesh:PostState` and the others are whole snapshots with an `updated` time).

use std::sync::Arc;

use async_trait::async_trait;
use caremesh_federation::{FederationError, IntentRenderer};
use caremesh_store::{NewOutboxEntry, OutboxEntry, Partner};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{App, AppError, AppResult};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// A post of a group hosted here: its state (pinned, helpful count, accepted answer, a
    /// doctor's answer, removal), by the post's public id.
    PostState { group: i64, post: String },
    /// The library of a group hosted here.
    Library { group: i64 },
    /// A member of a group hosted here who belongs to the peer's node.
    Membership { group: i64, member: i64 },
    /// A group hosted here: its settings and member count.
    Group { group: i64 },
}

impl Intent {
    /// One outbox entry per peer, each with an activity id of its own.
    pub fn entries(&self, app: &App, peers: &[Partner]) -> AppResult<Vec<NewOutboxEntry>> {
        let payload = serde_json::to_string(self).map_err(AppError::internal)?;
        peers
            .iter()
            .map(|p| {
                Ok(NewOutboxEntry {
                    peer: p.authority.clone(),
                    inbox_url: format!("{}inbox", p.base_url),
                    activity_id: app
                        .federation
                        .urls
                        .activity(&format!("group-update-{}", crate::new_public_id()?)),
                    payload: payload.clone(),
                    intent: true,
                })
            })
            .collect()
    }
}

/// The intents a change to a group hosted here queues for every node with a member (none for
/// a group hosted elsewhere, whose host tells the nodes).
pub(crate) async fn for_members(
    app: &App,
    group: &caremesh_store::Group,
    intent: Intent,
) -> AppResult<Vec<NewOutboxEntry>> {
    if group.remote_actor_id.is_some() {
        return Ok(Vec::new());
    }
    let peers = crate::outbound::member_nodes(app, group, None).await?;
    intent.entries(app, &peers)
}

/// Like [`for_members`], for a change that makes `departing` leave the group (leaving, a removal,
/// a ban): its node is left out when it has no other member left, since it receives nothing of
/// the group any more.
pub(crate) async fn for_members_but(
    app: &App,
    group: &caremesh_store::Group,
    intent: Intent,
    departing: &str,
) -> AppResult<Vec<NewOutboxEntry>> {
    if group.remote_actor_id.is_some() {
        return Ok(Vec::new());
    }
    use caremesh_federation::urls::same_node;
    let others = app
        .store
        .remote_member_actors(group.id)
        .await?
        .into_iter()
        .any(|a| a != departing && same_node(&a, departing));
    let peers: Vec<Partner> = crate::outbound::member_nodes(app, group, None)
        .await?
        .into_iter()
        .filter(|p| others || !same_node(&p.base_url, departing))
        .collect();
    intent.entries(app, &peers)
}

/// Renders queued intents for the delivery worker.
pub struct Renderer {
    app: Arc<App>,
}

impl Renderer {
    pub fn new(app: Arc<App>) -> Arc<Self> {
        Arc::new(Self { app })
    }

    async fn render_intent(&self, intent: Intent, id: &str) -> AppResult<Option<Value>> {
        let app = &self.app;
        let fed = &app.federation;
        let group_id = match &intent {
            Intent::PostState { group, .. }
            | Intent::Library { group }
            | Intent::Membership { group, .. }
            | Intent::Group { group } => *group,
        };
        let group = match app.store.group_by_id(group_id).await {
            Ok(g) if g.remote_actor_id.is_none() => g,
            Ok(_) => return Ok(None),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(match intent {
            Intent::PostState { post, .. } => {
                let post = match app.store.post_by_public_id(group.id, &post, None).await {
                    Ok(p) => p,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                crate::outbound::post_state_update(app, &group, &post, Some(id)).await?
            }
            Intent::Library { .. } => {
                crate::outbound::library_update(app, &group, Some(id)).await?
            }
            Intent::Membership { member, .. } => {
                let member = match app.store.member_by_id(group.id, member).await {
                    Ok(m) => m,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let Some(actor) = member.actor_id.clone() else {
                    return Ok(None);
                };
                if member.state == caremesh_domain::MemberState::Pending {
                    return Ok(None);
                }
                fed.membership_update(&group, &member, &actor, Some(id))
                    .await?
            }
            Intent::Group { .. } => fed.group_actor_update(&group, id).await?,
        }))
    }
}

#[async_trait]
impl IntentRenderer for Renderer {
    async fn render(&self, entry: &OutboxEntry) -> Result<Option<Value>, FederationError> {
        let intent: Intent = serde_json::from_str(&entry.payload)
            .map_err(|e| FederationError::Malformed(format!("an unknown intent: {e}")))?;
        self.render_intent(intent, &entry.activity_id)
            .await
            .map_err(|e| match e {
                AppError::Unavailable(m) => {
                    FederationError::Store(caremesh_store::StoreError::NotReady(m))
                }
                other => FederationError::Crypto(other.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip_as_json() {
        let i = Intent::PostState {
            group: 3,
            post: "abc".into(),
        };
        let json = serde_json::to_string(&i).unwrap_or_default();
        assert_eq!(json, r#"{"intent":"post_state","group":3,"post":"abc"}"#);
        assert_eq!(serde_json::from_str::<Intent>(&json).ok(), Some(i));
        assert!(serde_json::from_str::<Intent>(r#"{"intent":"nothing"}"#).is_err());
    }
}
