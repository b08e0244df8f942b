//! Groups across hospitals (FEP-1b12 style). A group lives on its host node. A patient of another
//! node joins as a per-group pseudonym (`Follow` → `Accept`/`Reject`); members' nodes send their
//! posts to the host (`Create`), which stores them and forwards them unchanged (`Announce`) to
//! every node with an active member, one delivery per node. What crosses about a patient is the
//! pseudonym's actor id, key and display name and what they post in that group (`spec/privacy.md`).

use caremesh_domain::group::limits;
use caremesh_domain::{
    GroupRole, Language, MemberListVisibility, MemberState, PostKind, Role, Timestamp,
};
use caremesh_store::{
    Group, GroupSettings, Member, NewOutboxEntry, Partner, Post, Pseudonym, RemoteFollow,
    RemotePost, StoreError, User,
};
use serde_json::{Value, json};

use crate::error::FederationError;
use crate::inbox::{InboundRequest, examine};
use crate::outbox::entries_for;
use crate::urls::authority_of_str;
use crate::{Federation, actors};

const AS: &str = "https://www.w3.org/ns/activitystreams";

pub(crate) fn random_id() -> Result<String, FederationError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| FederationError::Crypto(e.to_string()))?;
    Ok(hex::encode(b))
}

fn kind_name(k: PostKind) -> &'static str {
    match k {
        PostKind::Announcement => "announcement",
        PostKind::Question => "question",
        PostKind::Reply => "reply",
    }
}

impl Federation {
    /// The public id of a group hosted here, from its actor URL.
    pub fn local_group_id(&self, url: &str) -> Option<String> {
        url.strip_prefix(&self.urls.group(""))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(str::to_owned)
    }

    /// The `Group` actor of a group hosted here.
    pub async fn group_document(&self, g: &Group) -> Result<Value, FederationError> {
        let id = self.urls.group(&g.public_id);
        let keys = self.keys.published(&id).await?;
        let (public_key, methods) = actors::key_members(&id, &keys)?;
        Ok(json!({
            "@context": actors::CONTEXT,
            "id": id,
            "type": "Group",
            "name": g.settings.name,
            "summary": g.settings.description,
            "caremesh:condition": g.settings.condition,
            "caremesh:city": g.settings.city,
            "caremesh:language": g.settings.language.as_str(),
            "attributedTo": self.urls.instance_actor(),
            "inbox": format!("{id}/inbox"),
            "endpoints": { "sharedInbox": self.urls.shared_inbox() },
            "publicKey": public_key,
            "assertionMethod": methods,
        }))
    }

    /// A patient's pseudonym as other nodes see it: a name chosen for one group, and a key.
    pub async fn pseudonym_document(&self, p: &Pseudonym) -> Result<Value, FederationError> {
        let id = self.urls.pseudonym(&p.public_id);
        let keys = self.keys.published(&id).await?;
        let (public_key, methods) = actors::key_members(&id, &keys)?;
        Ok(json!({
            "@context": actors::CONTEXT,
            "id": id,
            "type": "Person",
            "name": p.display_name,
            "inbox": format!("{id}/inbox"),
            "endpoints": { "sharedInbox": self.urls.shared_inbox() },
            "publicKey": public_key,
            "assertionMethod": methods,
        }))
    }

    pub(crate) async fn partner_of(&self, url: &str) -> Result<Partner, FederationError> {
        let authority = authority_of_str(url)
            .ok_or_else(|| FederationError::Malformed(format!("{url} is not a URL")))?;
        self.partners
            .get(&authority)
            .await?
            .ok_or(FederationError::NotPartner(authority))
    }

    /// A patient of this node asks to join a group hosted on a partner node, under a name chosen
    /// for that group. Creates the local mirror of the group and the pseudonym, and queues the
    /// `Follow` (with the host's invite token, if the patient has one) in the same transaction.
    pub async fn join_remote_group(
        &self,
        user: &User,
        group_url: &str,
        display_name: &str,
        invite_token: Option<&str>,
    ) -> Result<(Group, Member), FederationError> {
        let host = self.partner_of(group_url).await?;
        let doc = self.client.get_json(group_url).await?;
        if doc["id"].as_str() != Some(group_url) || doc["type"] != "Group" {
            return Err(FederationError::Malformed(format!(
                "{group_url} is not a group"
            )));
        }
        let text = |k: &str, max: usize| -> String {
            let s: String = doc[k].as_str().unwrap_or("").chars().take(max).collect();
            s
        };
        let language = match doc["caremesh:language"].as_str() {
            Some("en") => Language::En,
            _ => Language::ZhCn,
        };
        let settings = GroupSettings {
            name: text("name", 100),
            condition: text("caremesh:condition", 100),
            condition_code: None,
            city: text("caremesh:city", 100),
            language,
            description: text("summary", 2000),
            rules: String::new(),
            member_list: MemberListVisibility::Moderators,
        };
        let now = self.clock.now();
        let group = self
            .store
            .upsert_mirror_group(group_url, &random_id()?, settings, now)
            .await?;
        // Patients join as a pseudonym made for this group; doctors and staff as themselves, so
        // that their hospital's credential goes with them.
        let (actor, pseudonym) = if user.role == Role::Patient {
            let wanted = Pseudonym {
                id: 0,
                public_id: random_id()?,
                user_id: user.id,
                group_id: group.id,
                display_name: display_name.to_owned(),
                created_at: now,
            };
            let public_id = match self.store.pseudonym_of(user.id, group.id).await? {
                Some(p) => p.public_id,
                None => wanted.public_id.clone(),
            };
            (self.urls.pseudonym(&public_id), Some(wanted))
        } else {
            (self.urls.person(&user.username), None)
        };
        let mut follow = json!({
            "@context": AS,
            "id": self.urls.activity(&format!(
                "follow-{}-{}",
                hex::encode(sha_short(&actor)),
                now.as_millis()
            )),
            "type": "Follow",
            "actor": actor,
            "object": group_url,
        });
        if let Some(t) = invite_token {
            follow["caremesh:inviteToken"] = json!(t);
        }
        let entries = entries_for(&follow, std::slice::from_ref(&host));
        let member = self
            .store
            .join_remote_group(user.id, group.id, pseudonym, entries, now)
            .await?;
        self.wake();
        Ok((group, member))
    }

    /// A patient of this node left a group hosted elsewhere: the host is told (`Undo` of the
    /// `Follow`) and stops sending the group's content here once no member is left.
    pub async fn leave_remote_group(
        &self,
        group: &Group,
        user: &User,
    ) -> Result<(), FederationError> {
        let Some(group_url) = &group.remote_actor_id else {
            return Ok(());
        };
        let actor = self.member_actor(user, group).await?;
        let now = self.clock.now();
        let undo = json!({
            "@context": AS,
            "id": self.urls.activity(&format!(
                "leave-{}-{}",
                hex::encode(sha_short(&actor)),
                now.as_millis()
            )),
            "type": "Undo",
            "actor": actor,
            "object": { "type": "Follow", "actor": actor, "object": group_url },
        });
        self.publish(&undo, &[self.partner_of(group_url).await?])
            .await
    }

    /// The actor a local account writes as in a group: doctors and staff as themselves, patients
    /// as their pseudonym for that group.
    pub(crate) async fn author_actor(
        &self,
        user: &User,
        group: &Group,
    ) -> Result<String, FederationError> {
        if user.role != Role::Patient {
            return Ok(self.urls.person(&user.username));
        }
        let p = self
            .store
            .ensure_pseudonym(Pseudonym {
                id: 0,
                public_id: random_id()?,
                user_id: user.id,
                group_id: group.id,
                // A new pseudonym takes the name the patient shows in the group.
                display_name: match self.store.membership(group.id, user.id).await? {
                    Some(m) => m.display_name,
                    None => user.display_name.clone(),
                },
                created_at: self.clock.now(),
            })
            .await?;
        Ok(self.urls.pseudonym(&p.public_id))
    }

    /// The actor an account is a member as, in a group hosted elsewhere: its pseudonym there
    /// (patients) or its own actor.
    pub(crate) async fn member_actor(
        &self,
        user: &User,
        group: &Group,
    ) -> Result<String, FederationError> {
        Ok(match self.store.pseudonym_of(user.id, group.id).await? {
            Some(p) => self.urls.pseudonym(&p.public_id),
            None => self.urls.person(&user.username),
        })
    }

    fn object_url(&self, post_public_id: &str) -> String {
        self.urls.object(post_public_id)
    }

    /// The URL of a group's actor: its host's for a mirrored group.
    pub(crate) fn group_url(&self, group: &Group) -> String {
        match &group.remote_actor_id {
            Some(url) => url.clone(),
            None => self.urls.group(&group.public_id),
        }
    }

    /// The name a remote actor shows, from its stored or freshly fetched actor document.
    pub(crate) async fn remote_actor_name(&self, actor: &str) -> String {
        let doc = match self.store.remote_actor(actor).await {
            Ok(Some(a)) => Some(a.document),
            _ => self
                .resolver
                .fetch_actor(actor)
                .await
                .ok()
                .map(|a| a.document),
        };
        doc.and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .and_then(|d| d["name"].as_str().map(|s| s.chars().take(64).collect()))
            .unwrap_or_else(|| "—".to_owned())
    }

    /// What goes to the other nodes of the group when a post is written on this node, to be
    /// queued in the same transaction as the post: its `Create`, signed by the author, to the host
    /// (mirrored group) or forwarded to every node with a member (hosted group). A scheduled
    /// announcement goes at once with its future `published` time, and every node shows it from
    /// then on, so it appears on time even where the host cannot be reached at that moment.
    pub async fn post_created_entries(
        &self,
        group: &Group,
        draft: &NoteDraft<'_>,
        author: &User,
        thread: Option<&Post>,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let signed = self.signed_create(group, draft, author, thread).await?;
        self.route(group, &signed).await
    }

    /// The `Create` of a post written on this node, signed by its author.
    pub(crate) async fn signed_create(
        &self,
        group: &Group,
        draft: &NoteDraft<'_>,
        author: &User,
        thread: Option<&Post>,
    ) -> Result<Value, FederationError> {
        let actor = self.author_actor(author, group).await?;
        let note = self.post_note(group, draft, &actor, thread);
        let create = json!({
            "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
            "id": self.urls.activity(&format!("create-{}", draft.public_id)),
            "type": "Create",
            "actor": actor,
            "to": [self.group_url(group)],
            "object": note,
        });
        self.sign_as(&actor, &create).await
    }

    /// The `Note` of a post written on this node, as its author signs it.
    pub(crate) fn post_note(
        &self,
        group: &Group,
        post: &NoteDraft<'_>,
        actor: &str,
        thread: Option<&Post>,
    ) -> Value {
        let group_url = self.group_url(group);
        let mut note = json!({
            "id": self.object_url(post.public_id),
            "type": "Note",
            "attributedTo": actor,
            "context": group_url,
            "to": [group_url],
            "content": post.body,
            "mediaType": "text/plain",
            "published": post.publish_at.to_rfc3339(),
            "caremesh:kind": kind_name(post.kind),
        });
        if post.kind == PostKind::Announcement {
            note["caremesh:pinned"] = json!(post.pinned);
        }
        if let Some(t) = post.title {
            note["name"] = json!(t);
        }
        if let Some(t) = thread {
            note["inReplyTo"] = json!(self.post_ref(t));
        }
        if !post.attachments.is_empty() {
            note["attachment"] = self.note_attachments(&group_url, post.attachments);
        }
        if let Some(edited) = post.edited_at {
            note["updated"] = json!(edited.to_rfc3339());
        }
        note
    }

    /// A moderator decided a remote actor's request to join a group hosted here: the answer goes
    /// to the actor's node (`Accept` or `Reject` of its `Follow`).
    pub async fn answer_remote_member(
        &self,
        group: &Group,
        actor: &str,
        accepted: bool,
    ) -> Result<(), FederationError> {
        let group_url = self.urls.group(&group.public_id);
        let now = self.clock.now();
        let kind = if accepted { "Accept" } else { "Reject" };
        let answer = json!({
            "@context": AS,
            "id": self.urls.activity(&format!(
                "{}-{}-{}",
                kind.to_lowercase(),
                hex::encode(sha_short(actor)),
                now.as_millis()
            )),
            "type": kind,
            "actor": group_url,
            "object": { "type": "Follow", "actor": actor, "object": group_url },
        });
        self.publish(&answer, &[self.partner_of(actor).await?])
            .await?;
        if accepted {
            self.backfill_node(group, actor).await?;
        }
        Ok(())
    }

    /// What goes to the other nodes when an author deletes their own post written on this node,
    /// to be queued in the same transaction: the `Delete`, to the host (mirrored group) or to every
    /// member's node (hosted group).
    pub async fn post_deleted_entries(
        &self,
        group: &Group,
        post: &Post,
        author: &User,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        if post.origin_id.is_some() {
            return Ok(Vec::new());
        }
        let actor = self.author_actor(author, group).await?;
        let delete = json!({
            "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
            "id": self.urls.activity(&format!("delete-{}", post.public_id)),
            "type": "Delete",
            "actor": actor,
            "to": [self.group_url(group)],
            "object": { "id": self.object_url(&post.public_id), "type": "Tombstone" },
        });
        let signed = self.sign_as(&actor, &delete).await?;
        self.route(group, &signed).await
    }

    /// `Announce`s of `activity` by a hosted group to every node with an active member, except
    /// `skip` (the node the activity came from, which has it already).
    pub(crate) async fn announce_entries(
        &self,
        group: &Group,
        activity: &Value,
        skip: Option<&str>,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let peers = self.member_nodes(group, skip).await?;
        if peers.is_empty() {
            return Ok(Vec::new());
        }
        Ok(entries_for(&self.announce_of(group, activity), &peers))
    }

    /// The `Announce` by a hosted group that forwards an activity to its members' nodes.
    pub(crate) fn announce_of(&self, group: &Group, activity: &Value) -> Value {
        let group_url = self.urls.group(&group.public_id);
        let inner_id = activity["id"].as_str().unwrap_or_default();
        json!({
            "@context": AS,
            "id": self.urls.activity(&format!("announce-{}", hex::encode(sha_short(inner_id)))),
            "type": "Announce",
            "actor": group_url,
            "to": [format!("{group_url}/members")],
            "object": activity,
        })
    }

    /// Checks a verified inbound activity against group rules before it is stored: only active
    /// members post and edit in a group hosted here, and only its doctors, moderators and owner
    /// post announcements.
    pub async fn authorize_group_activity(&self, activity: &Value) -> Result<(), FederationError> {
        let (_, kind, actor, _) = examine(activity)?;
        if kind != "Create" && kind != "Update" {
            return Ok(());
        }
        let object = &activity["object"];
        let Some(group_url) = object["context"].as_str() else {
            return Ok(());
        };
        let Some(pid) = self.local_group_id(group_url) else {
            return Ok(());
        };
        let group = self
            .store
            .group_by_public_id(&pid)
            .await
            .map_err(|_| FederationError::Malformed(format!("no group {group_url}")))?;
        let member = self.store.remote_member(group.id, &actor).await?;
        let Some(m) = member.filter(|m| m.state == MemberState::Active) else {
            return Err(FederationError::ActorMismatch(format!(
                "{actor} is not a member of {group_url}"
            )));
        };
        let announcement = object["caremesh:kind"] == "announcement";
        if announcement && !m.role.can_teach() {
            return Err(FederationError::ActorMismatch(format!(
                "{actor} does not teach in {group_url}: only its doctors post announcements"
            )));
        }
        Ok(())
    }

    /// Applies a stored inbound activity to groups: memberships, posts, edits, helpful marks,
    /// and what a host decided about its posts and members.
    pub async fn apply_group_activity(
        &self,
        activity: &Value,
        from: &str,
    ) -> Result<(), FederationError> {
        let (id, kind, actor, _) = examine(activity)?;
        let object = &activity["object"];
        let now = self.clock.now();
        match kind.as_str() {
            "Follow" => self.apply_follow(activity, &id, &actor).await?,
            "Undo" if object["type"] == "Follow" => {
                if let Some(pid) = object["object"]
                    .as_str()
                    .and_then(|u| self.local_group_id(u))
                {
                    let group = self.store.group_by_public_id(&pid).await?;
                    self.store.remote_unfollow(group.id, &actor, now).await?;
                }
            }
            "Like" => self.apply_like(activity, &actor, true).await?,
            "Undo" if object["type"] == "Like" && object["actor"] == actor.as_str() => {
                self.apply_like(object, &actor, false).await?;
            }
            "Accept" | "Reject" => {
                // Only the group itself answers for the group.
                let group_url = object["object"].as_str().unwrap_or_default();
                if group_url != actor {
                    return Ok(());
                }
                let Some(group) = self.store.group_by_remote_actor(&actor).await? else {
                    return Ok(());
                };
                let follower = object["actor"].as_str().unwrap_or_default();
                if let Some(user) = self.local_member_account(follower, &group).await? {
                    self.store
                        .answer_remote_join(group.id, user, kind == "Accept", now)
                        .await?;
                }
            }
            "Create" => {
                let Some(pid) = object["context"]
                    .as_str()
                    .and_then(|u| self.local_group_id(u))
                else {
                    return Ok(());
                };
                let group = self.store.group_by_public_id(&pid).await?;
                let announce = self.announce_entries(&group, activity, None).await?;
                if let Some(post) = self
                    .store_post_from(&group, activity, activity, announce)
                    .await?
                    && let Some(thread) = &post.thread_public_id
                    && post.author.role.is_some_and(GroupRole::can_teach)
                {
                    // A doctor's answer: every node shows the question as answered.
                    let thread = self.store.post_by_public_id(group.id, thread, None).await?;
                    self.post_state_changed(&group, &thread).await?;
                }
                self.wake();
            }
            "Update" if object.as_str().or(object["id"].as_str()) == Some(actor.as_str()) => {
                self.remote_actor_updated(activity, &actor, from, true)
                    .await?;
            }
            "Update" => {
                if let Some(group) = self.store.group_by_remote_actor(&actor).await? {
                    // The host of a group mirrored here: a post's state or a membership.
                    self.apply_group_update(&group, object).await?;
                } else if object["type"] == "Note"
                    && let Some(pid) = object["context"]
                        .as_str()
                        .and_then(|u| self.local_group_id(u))
                {
                    // A member's edit of their post in a group hosted here goes on to every other
                    // node with a member, whether or not it is newer than what this node shows.
                    let group = self.store.group_by_public_id(&pid).await?;
                    let announce = self.announce_entries(&group, activity, Some(from)).await?;
                    self.store.enqueue(announce, now).await?;
                    let object_id = object["id"].as_str().unwrap_or_default();
                    self.apply_newest_edit(object_id, &actor, Vec::new())
                        .await?;
                    self.wake();
                }
            }
            "Delete" => {
                let Some(object_id) = object["id"].as_str().or(object.as_str()) else {
                    return Ok(());
                };
                // On the host, the deletion goes on to every other node with a member.
                if let Some(post) = self
                    .store
                    .delete_remote_post(object_id, &actor, Vec::new(), now)
                    .await?
                    && let Ok(group) = self.store.group_by_id(post.group_id).await
                    && group.remote_actor_id.is_none()
                {
                    let entries = self.announce_entries(&group, activity, Some(from)).await?;
                    self.store.enqueue(entries, now).await?;
                    self.wake();
                }
            }
            "Announce" => {
                // A group hosted elsewhere forwards an activity to its members here.
                let Some(group) = self.store.group_by_remote_actor(&actor).await? else {
                    return Ok(());
                };
                let (_, inner_kind, inner_actor, _) = examine(object)?;
                let inner = &object["object"];
                let own = authority_of_str(inner["id"].as_str().unwrap_or_default())
                    == Some(self.urls.authority());
                let in_group = inner["context"].as_str() == Some(actor.as_str());
                match inner_kind.as_str() {
                    "Create" if !own && in_group => {
                        self.store_post_from(&group, activity, object, Vec::new())
                            .await?;
                    }
                    "Update" if !own && in_group && inner["type"] == "Note" => {
                        let object_id = inner["id"].as_str().unwrap_or_default();
                        self.apply_newest_edit(object_id, &inner_actor, Vec::new())
                            .await?;
                    }
                    // A member renamed: take the actor from its own node.
                    "Update"
                        if inner.as_str().or(inner["id"].as_str())
                            == Some(inner_actor.as_str())
                            && self.resolver.fetch_actor(&inner_actor).await.is_ok() =>
                    {
                        self.remote_actor_updated(object, &inner_actor, from, false)
                            .await?;
                    }
                    "Delete" => {
                        if let Some(object_id) = inner["id"].as_str().or(inner.as_str()) {
                            self.store
                                .delete_remote_post(object_id, &inner_actor, Vec::new(), now)
                                .await?;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A remote actor asks to join a group hosted here (`Follow`): accepted at once with a
    /// usable invite of the group, otherwise waiting for a moderator; refused when banned, when
    /// the group is full or the invite unusable.
    async fn apply_follow(
        &self,
        activity: &Value,
        id: &str,
        actor: &str,
    ) -> Result<(), FederationError> {
        let Some(pid) = activity["object"]
            .as_str()
            .and_then(|u| self.local_group_id(u))
        else {
            return Ok(());
        };
        let group = self.store.group_by_public_id(&pid).await?;
        let name = self.remote_actor_name(actor).await;
        let accept = json!({
            "@context": AS,
            "id": self.urls.activity(&format!("accept-{}", hex::encode(sha_short(id)))),
            "type": "Accept",
            "actor": self.urls.group(&pid),
            "object": activity,
        });
        let peer = self.partner_of(actor).await?;
        let token = activity["caremesh:inviteToken"].as_str();
        let result = self
            .store
            .remote_follow(
                RemoteFollow {
                    group_id: group.id,
                    actor_id: actor,
                    name: &name,
                    invite_token: token,
                    max_members: self.settings.max_members,
                },
                entries_for(&accept, std::slice::from_ref(&peer)),
                self.clock.now(),
            )
            .await;
        match result {
            Ok(m) if m.state == MemberState::Active => {
                self.wake();
                self.backfill_node(&group, actor).await?;
            }
            Ok(_) => {}
            Err(e) if e.conflict_code().is_some() => {
                let reject = json!({
                    "@context": AS,
                    "id": self.urls.activity(&format!("reject-{}", hex::encode(sha_short(id)))),
                    "type": "Reject",
                    "actor": self.urls.group(&pid),
                    "object": activity,
                    "summary": e.to_string(),
                });
                self.publish(&reject, &[peer]).await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.wake();
        Ok(())
    }

    /// Stores a post that came from another node, once; `Some` when it is new here. `activity` is
    /// what was delivered (the `Create`, or the host's `Announce` of it).
    async fn store_post_from(
        &self,
        group: &Group,
        activity: &Value,
        create: &Value,
        announce: Vec<NewOutboxEntry>,
    ) -> Result<Option<Post>, FederationError> {
        let note = &create["object"];
        let author = create["actor"].as_str().unwrap_or_default().to_owned();
        let origin_id = note["id"].as_str().unwrap_or_default().to_owned();
        if let Some(obj) = self.store.federated_object(&origin_id).await?
            && obj.deleted_at.is_some()
        {
            return Ok(None);
        }
        let author_name = self.remote_actor_name(&author).await;
        let kind = match note["caremesh:kind"].as_str() {
            Some("announcement") => PostKind::Announcement,
            Some("reply") => PostKind::Reply,
            _ if note.get("inReplyTo").is_some() => PostKind::Reply,
            _ => PostKind::Question,
        };
        let (thread_public_id, thread_origin_id) = match note["inReplyTo"].as_str() {
            None => (None, None),
            Some(url) => match url.strip_prefix(&self.urls.object("")) {
                Some(local) => (Some(local.to_owned()), None),
                None => (None, Some(url.to_owned())),
            },
        };
        let (title, body) = note_text(note);
        let published = note["published"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_else(|| self.clock.now());
        let pinned = note["caremesh:pinned"]
            .as_bool()
            .unwrap_or(kind == PostKind::Announcement);
        // Its files first (unless the post is here already), so that they are stored with it and
        // are here before it is forwarded.
        let files = if self
            .store
            .post_by_origin(group.id, &origin_id)
            .await?
            .is_none()
        {
            self.fetch_note_files(group, note, &author).await
        } else {
            Vec::new()
        };
        let stored = self
            .store
            .store_remote_post(
                RemotePost {
                    public_id: random_id()?,
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
                self.group_quota(),
            )
            .await;
        let (post, new) = match stored {
            Err(StoreError::NotFound("thread")) => {
                // A reply before its question: it waits for the question.
                let waiting_for = note["inReplyTo"].as_str().unwrap_or_default();
                self.store
                    .keep_waiting(
                        group.id,
                        waiting_for,
                        create["id"].as_str().unwrap_or_default(),
                        &activity.to_string(),
                        self.clock.now(),
                    )
                    .await?;
                return Ok(None);
            }
            other => other?,
        };
        if !new {
            return Ok(None);
        }
        // Whatever arrived before the post itself: a later edit by its author, and (on a
        // member's node) what the host decided about it.
        self.catch_up_post(group, &post, &author).await?;
        Ok(Some(post))
    }

    /// Everything the inbox does with a delivery: verify and check it, apply group rules, store
    /// it once, then apply its effects (actor refresh, memberships, posts).
    pub async fn receive(
        &self,
        req: &InboundRequest<'_>,
    ) -> Result<caremesh_store::IngestOutcome, FederationError> {
        let (activity, incoming) = self.inbox.verify_and_check(req).await?;
        self.authorize_group_activity(&activity).await?;
        let peer = incoming.peer.clone();
        let outcome = self.inbox.ingest(incoming).await?;
        if outcome == caremesh_store::IngestOutcome::Stored {
            self.inbox.after_stored(&activity).await;
            if let Err(e) = self.apply_group_activity(&activity, &peer).await {
                tracing::warn!(error = %e, activity = %activity["id"], "applying a group activity failed");
            }
        }
        Ok(outcome)
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

/// What a `Note` says about a post written on this node, from the post or from the post about
/// to be stored.
#[derive(Clone, Copy, Debug)]
pub struct NoteDraft<'a> {
    pub public_id: &'a str,
    pub kind: PostKind,
    pub title: Option<&'a str>,
    pub body: &'a str,
    pub pinned: bool,
    pub publish_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub attachments: &'a [caremesh_store::Attachment],
}

impl<'a> NoteDraft<'a> {
    pub fn of_post(p: &'a Post) -> Self {
        Self {
            public_id: &p.public_id,
            kind: p.kind,
            title: p.title.as_deref(),
            body: &p.body,
            pinned: p.pinned,
            publish_at: p.publish_at,
            edited_at: p.edited_at,
            attachments: &p.attachments,
        }
    }

    pub fn of_new(n: &'a caremesh_store::NewPost) -> Self {
        Self {
            public_id: &n.public_id,
            kind: n.kind,
            title: n.title.as_deref(),
            body: &n.body,
            pinned: n.pinned,
            publish_at: n.publish_at,
            edited_at: None,
            attachments: &[],
        }
    }
}

pub(crate) fn sha_short(s: &str) -> [u8; 12] {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(s.as_bytes());
    let mut out = [0u8; 12];
    out.copy_from_slice(&d[..12]);
    out
}
