//! The objects a group's host keeps about its posts and members — `caremesh:PostState`,
//! `caremesh:Membership`, `caremesh:Library` — and the `Update` in which the group signs them.
//!
//! Each of these objects has a fixed id ([`state_id`], [`membership_id`], `{group}/library`)
//! and an `updated` time. The inbox keeps only the newest version of an object
//! (`federated_objects`), and what is applied is always that newest version, so updates that
//! arrive late, twice or out of order converge to the same state.

use caremesh_store::{Group, Member, Post};
use serde_json::{Value, json};

use crate::Federation;
use crate::error::FederationError;
use crate::groups::{random_id, sha_short};

const AS: &str = "https://www.w3.org/ns/activitystreams";
const DATA_INTEGRITY: &str = "https://w3id.org/security/data-integrity/v2";
pub const POST_STATE: &str = "caremesh:PostState";
pub const MEMBERSHIP: &str = "caremesh:Membership";
pub const LIBRARY: &str = "caremesh:Library";

impl Federation {
    /// The id every node knows a post by: its object id on the node where it was written.
    pub fn post_ref(&self, post: &Post) -> String {
        post.origin_id
            .clone()
            .unwrap_or_else(|| self.urls.object(&post.public_id))
    }

    /// The group's signed `Update` of what it decided about a member of another node (role,
    /// removal, ban).
    pub async fn membership_update(
        &self,
        group: &Group,
        member: &Member,
        actor: &str,
        id: Option<&str>,
    ) -> Result<Value, FederationError> {
        let group_url = self.group_url(group);
        let now = self.clock.now();
        let membership = json!({
            "id": membership_id(&group_url, actor),
            "type": MEMBERSHIP,
            "attributedTo": group_url,
            "context": group_url,
            "caremesh:member": actor,
            "caremesh:role": member.role.as_str(),
            "caremesh:state": member.state.as_str(),
            "published": member.created_at.to_rfc3339(),
            "updated": now.to_rfc3339(),
        });
        self.group_update(group, membership, id).await
    }

    /// An `Update` of one of the group's objects, signed by the group (with the activity id
    /// `id`, or a new one).
    pub async fn group_update(
        &self,
        group: &Group,
        object: Value,
        id: Option<&str>,
    ) -> Result<Value, FederationError> {
        let group_url = self.group_url(group);
        let id = match id {
            Some(id) => id.to_owned(),
            None => self
                .urls
                .activity(&format!("group-update-{}", random_id()?)),
        };
        let update = json!({
            "@context": [AS, DATA_INTEGRITY],
            "id": id,
            "type": "Update",
            "actor": group_url,
            "to": [format!("{group_url}/members")],
            "object": object,
        });
        self.sign_as(&group_url, &update).await
    }
}

/// The id of the state a group's host keeps of one of its posts.
pub fn state_id(group_url: &str, post_ref: &str) -> String {
    format!(
        "{group_url}/posts/{}/state",
        hex::encode(sha_short(post_ref))
    )
}

/// The id of the membership a group's host keeps of one remote member.
pub fn membership_id(group_url: &str, actor: &str) -> String {
    format!("{group_url}/members/{}", hex::encode(sha_short(actor)))
}
