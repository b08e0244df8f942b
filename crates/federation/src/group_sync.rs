//! What happens to a group's posts and members after they exist, on every node of the group.
//!
//! - An author's edit is an `Update` of the `Note`, signed by the author; the host applies it and
//!   forwards it unchanged (`Announce`), like the post itself.
//! - What the host decides about a post (pinned, helpful count, accepted answer, a doctor's answer,
//!   removal by a moderator) is a `caremesh:PostState` object of the group, sent in an `Update`
//!   signed by the group. Members' nodes mark posts helpful with `Like` / `Undo` to the host,
//!   which counts and sends the new state.
//! - What the host decides about a remote member (role, removal, ban) is a `caremesh:Membership`
//!   object of the group, sent to the member's node only.
//!
//! Each of these objects has a fixed id and an `updated` time. The inbox keeps only the newest
//! version of an object (`federated_objects`), and what is applied is always that newest version,
//! so activities that arrive late, twice or out of order converge to the same state. A state or an
//! edit that arrives before its post waits there and is applied when the post arrives.

use caremesh_domain::{MemberState, Timestamp};
use caremesh_store::{
    DeletedBy, FeedSort, Group, Member, NewOutboxEntry, Partner, Post, ReplySort, StoreError, User,
};
use serde_json::{Value, json};

use crate::Federation;
use crate::error::FederationError;
use crate::groups::{NoteDraft, random_id, sha_short};
use crate::outbox::entries_for;
use crate::urls::authority_of_str;

const AS: &str = "https://www.w3.org/ns/activitystreams";
const DATA_INTEGRITY: &str = "https://w3id.org/security/data-integrity/v2";
pub const POST_STATE: &str = "caremesh:PostState";
/// How many of a group's latest threads a node gets when its first member joins, and how many
/// replies of each.
const BACKFILL_THREADS: u32 = 30;
const BACKFILL_REPLIES: u32 = 50;
pub const MEMBERSHIP: &str = "caremesh:Membership";
pub const LIBRARY: &str = "caremesh:Library";
/// Most library items a snapshot carries.
const LIBRARY_ITEMS: u32 = 1000;

impl Federation {
    /// The id every node knows a post by: its object id on the node where it was written.
    pub fn post_ref(&self, post: &Post) -> String {
        post.origin_id
            .clone()
            .unwrap_or_else(|| self.urls.object(&post.public_id))
    }

    /// The post of `group` that `post_ref` names, if this node has it.
    pub async fn post_by_ref(
        &self,
        group: &Group,
        post_ref: &str,
    ) -> Result<Option<Post>, FederationError> {
        if let Some(pid) = post_ref.strip_prefix(&self.urls.object("")) {
            return match self.store.post_by_public_id(group.id, pid, None).await {
                Ok(p) => Ok(Some(p)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        Ok(self.store.post_by_origin(group.id, post_ref).await?)
    }

    /// The partner nodes with an active member of a group hosted here, except `skip`.
    pub async fn member_nodes(
        &self,
        group: &Group,
        skip: Option<&str>,
    ) -> Result<Vec<Partner>, FederationError> {
        let mut nodes: Vec<String> = Vec::new();
        for actor in self.store.remote_member_actors(group.id).await? {
            if let Some(a) = authority_of_str(&actor)
                && Some(a.as_str()) != skip
                && !nodes.contains(&a)
            {
                nodes.push(a);
            }
        }
        let mut peers = Vec::with_capacity(nodes.len());
        for n in nodes {
            if let Some(p) = self.partners.get(&n).await? {
                peers.push(p);
            }
        }
        Ok(peers)
    }

    /// Where a signed activity of a local author in `group` goes: to the host of a mirrored
    /// group, or forwarded by a group hosted here to every node with a member.
    pub(crate) async fn route(
        &self,
        group: &Group,
        signed: &Value,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        match &group.remote_actor_id {
            Some(url) => Ok(entries_for(signed, &[self.partner_of(url).await?])),
            None => self.announce_entries(group, signed, None).await,
        }
    }

    /// What goes to the other nodes when its author edits a post written on this node, to be
    /// queued in the same transaction as the edit: an `Update` of the whole `Note`, routed like the
    /// post.
    pub async fn post_edited_entries(
        &self,
        group: &Group,
        post: &Post,
        title: Option<&str>,
        body: &str,
        edited_at: Timestamp,
        author: &User,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        if post.origin_id.is_some() {
            return Ok(Vec::new());
        }
        let thread = match &post.thread_public_id {
            Some(t) => Some(self.store.post_by_public_id(group.id, t, None).await?),
            None => None,
        };
        let actor = self.author_actor(author, group).await?;
        let draft = NoteDraft {
            title,
            body,
            edited_at: Some(edited_at),
            ..NoteDraft::of_post(post)
        };
        let note = self.post_note(group, &draft, &actor, thread.as_ref());
        let update = json!({
            "@context": [AS, DATA_INTEGRITY],
            "id": self.urls.activity(&format!(
                "update-{}-{}",
                post.public_id,
                edited_at.as_millis()
            )),
            "type": "Update",
            "actor": actor,
            "to": [self.group_url(group)],
            "object": note,
        });
        let signed = self.sign_as(&actor, &update).await?;
        self.route(group, &signed).await
    }

    /// A post's state changed on this node: pinned, accepted answer, helpful marks, a doctor's
    /// answer, removal by a moderator. In a group hosted here every member's node is told; in a
    /// mirrored group only a local member's helpful mark is this node's to tell (`Like`).
    pub async fn post_state_changed(
        &self,
        group: &Group,
        post: &Post,
    ) -> Result<(), FederationError> {
        if group.remote_actor_id.is_some() {
            return Ok(());
        }
        let peers = self.member_nodes(group, None).await?;
        if peers.is_empty() {
            return Ok(());
        }
        let update = self.post_state_update(group, post, None).await?;
        self.publish(&update, &peers).await
    }

    /// The group's signed `Update` of what it decided about one of its posts (with the activity
    /// id `id`, or a new one).
    pub async fn post_state_update(
        &self,
        group: &Group,
        post: &Post,
        id: Option<&str>,
    ) -> Result<Value, FederationError> {
        let group_url = self.group_url(group);
        let post_ref = self.post_ref(post);
        let accepted = match &post.accepted_reply_public_id {
            Some(pid) => match self.store.post_by_public_id(group.id, pid, None).await {
                Ok(r) => Some(self.post_ref(&r)),
                Err(_) => None,
            },
            None => None,
        };
        let now = self.clock.now();
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
        self.group_update(group, state, id).await
    }

    /// A node's first member of a group hosted here was accepted: that node gets the group's
    /// recent threads (the pinned ones and the latest, with scheduled announcements), their replies
    /// and the group's decisions about them, as the other members' nodes got them: the authors'
    /// activities, unchanged, forwarded by the group.
    pub async fn backfill_node(&self, group: &Group, actor: &str) -> Result<(), FederationError> {
        let Some(node) = authority_of_str(actor) else {
            return Ok(());
        };
        let others = self
            .store
            .remote_member_actors(group.id)
            .await?
            .into_iter()
            .filter(|a| a != actor && authority_of_str(a).as_deref() == Some(node.as_str()))
            .count();
        if others > 0 || group.remote_actor_id.is_some() {
            return Ok(());
        }
        let peer = [self.partner_of(actor).await?];
        let now = self.clock.now();
        let mut threads = self
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
            self.store
                .scheduled_posts(group.id, None, BACKFILL_THREADS, now)
                .await?,
        );
        for thread in threads.iter().filter(|t| t.deleted_at.is_none()) {
            let mut entries = self.backfill_entries(group, thread, None, &peer).await?;
            let replies = self
                .store
                .replies(thread.id, None, ReplySort::Oldest, None, BACKFILL_REPLIES)
                .await?;
            for r in replies.iter().filter(|r| r.deleted_at.is_none()) {
                entries.extend(self.backfill_entries(group, r, Some(thread), &peer).await?);
            }
            // The thread's state after its replies, which an accepted answer refers to.
            if thread.pinned
                || thread.helpful_count > 0
                || thread.accepted_reply_public_id.is_some()
                || thread.answered_by_doctor
            {
                let update = self.post_state_update(group, thread, None).await?;
                entries.extend(entries_for(&update, &peer));
            }
            self.store.enqueue(entries, now).await?;
        }
        if !self.store.list_folders(group.id).await?.is_empty() {
            let update = self.library_update(group, None).await?;
            self.store.enqueue(entries_for(&update, &peer), now).await?;
        }
        self.wake();
        Ok(())
    }

    /// One post for a node that joins later: its author's activities (the `Create`, and the
    /// latest `Update` if it was edited) in the group's `Announce`.
    async fn backfill_entries(
        &self,
        group: &Group,
        post: &Post,
        thread: Option<&Post>,
        peer: &[Partner],
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let activities: Vec<Value> = match &post.origin_id {
            None => {
                let Some(uid) = post.author.user_id else {
                    return Ok(Vec::new());
                };
                let author = self.store.user_by_id(uid).await?;
                // Lists do not carry files; the post itself does.
                let full;
                let post = if post.attachment_count > 0 && post.attachments.is_empty() {
                    full = self
                        .store
                        .post_by_public_id(group.id, &post.public_id, None)
                        .await?;
                    &full
                } else {
                    post
                };
                vec![
                    self.signed_create(group, &NoteDraft::of_post(post), &author, thread)
                        .await?,
                ]
            }
            Some(origin) => {
                let stored = self.store.activities_about(origin).await?;
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
            .flat_map(|a| entries_for(&self.announce_of(group, a), peer))
            .collect())
    }

    /// The library of a group hosted here changed: every member's node gets the whole library
    /// (folders, and the posts they keep) as the group's `caremesh:Library`.
    pub async fn library_changed(&self, group: &Group) -> Result<(), FederationError> {
        if group.remote_actor_id.is_some() {
            return Ok(());
        }
        let peers = self.member_nodes(group, None).await?;
        if peers.is_empty() {
            return Ok(());
        }
        let update = self.library_update(group, None).await?;
        self.publish(&update, &peers).await
    }

    /// The group's signed `Update` of its library. Files saved in it stay with the host for now:
    /// only posts are listed.
    pub async fn library_update(
        &self,
        group: &Group,
        id: Option<&str>,
    ) -> Result<Value, FederationError> {
        let group_url = self.group_url(group);
        let folders = self.store.list_folders(group.id).await?;
        let items = self
            .store
            .library_items(group.id, None, None, LIBRARY_ITEMS)
            .await?;
        let mut out = Vec::with_capacity(folders.len());
        for f in &folders {
            let mut listed = Vec::new();
            for i in items.iter().rev().filter(|i| i.folder_id == f.id) {
                if let Some(pid) = &i.post_public_id
                    && let Ok(p) = self.store.post_by_public_id(group.id, pid, None).await
                {
                    listed.push(json!({ "title": i.title, "post": self.post_ref(&p) }));
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
        let now = self.clock.now();
        let library = json!({
            "id": format!("{group_url}/library"),
            "type": LIBRARY,
            "attributedTo": group_url,
            "context": group_url,
            "caremesh:folders": out,
            "published": group.created_at.to_rfc3339(),
            "updated": now.to_rfc3339(),
        });
        self.group_update(group, library, id).await
    }

    /// A member of a group hosted here who belongs to another node: their node is told what the
    /// group decided (role, removal, ban).
    pub async fn remote_member_changed(
        &self,
        group: &Group,
        member: &Member,
    ) -> Result<(), FederationError> {
        let Some(actor) = &member.actor_id else {
            return Ok(());
        };
        if group.remote_actor_id.is_some() || member.state == MemberState::Pending {
            return Ok(());
        }
        let update = self.membership_update(group, member, actor, None).await?;
        let peer = self.partner_of(actor).await?;
        self.publish(&update, &[peer]).await
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

    /// An `Update` of one of the group's objects, signed by the group.
    async fn group_update(
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

    /// What goes to the host when a local member marks a post of a group hosted elsewhere helpful
    /// (or takes the mark back), to be queued with the mark: a `Like` (or its `Undo`). The host
    /// counts it and sends the count to every node. In a group hosted here there is nothing to
    /// send with the mark; the new state goes out after it (`post_state_changed`).
    pub async fn helpful_entries(
        &self,
        group: &Group,
        post: &Post,
        user: &User,
        helpful: bool,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let Some(group_url) = &group.remote_actor_id else {
            return Ok(Vec::new());
        };
        let actor = self.author_actor(user, group).await?;
        let like = json!({
            "type": "Like",
            "actor": actor,
            "object": self.post_ref(post),
            "context": group_url,
        });
        let activity = if helpful {
            let mut a = like;
            a["@context"] = json!(AS);
            a["id"] = json!(self.urls.activity(&format!("like-{}", random_id()?)));
            a
        } else {
            json!({
                "@context": AS,
                "id": self.urls.activity(&format!("unlike-{}", random_id()?)),
                "type": "Undo",
                "actor": actor,
                "object": like,
            })
        };
        Ok(entries_for(&activity, &[self.partner_of(group_url).await?]))
    }

    /// A patient chose a new name for a group hosted elsewhere: the host is told with an `Update`
    /// of the pseudonym, fetches it again and shows the new name (and forwards the `Update` to its
    /// other members' nodes, which do the same).
    pub async fn rename_entries(
        &self,
        group: &Group,
        user: &User,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let Some(group_url) = &group.remote_actor_id else {
            return Ok(Vec::new());
        };
        let Some(p) = self.store.pseudonym_of(user.id, group.id).await? else {
            return Ok(Vec::new());
        };
        let actor = self.urls.pseudonym(&p.public_id);
        let update = json!({
            "@context": AS,
            "id": self.urls.activity(&format!("rename-{}", random_id()?)),
            "type": "Update",
            "actor": actor,
            "object": actor,
        });
        Ok(entries_for(&update, &[self.partner_of(group_url).await?]))
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
