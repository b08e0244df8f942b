//! Groups across hospitals (FEP-1b12 style). A group lives on its host node. A patient of another
//! node joins as a per-group pseudonym (`Follow` → `Accept`/`Reject`); members' nodes send their
//! posts to the host (`Create`), which stores them and forwards them unchanged (`Announce`) to
//! every node with an active member, one delivery per node. What crosses about a patient is the
//! pseudonym's actor id, key and display name and what they post in that group (`spec/privacy.md`).

use caremesh_domain::{Language, MemberListVisibility, MemberState, PostKind, Role, Timestamp};
use caremesh_store::{
    Group, GroupSettings, Member, NewOutboxEntry, Partner, Post, Pseudonym, RemoteFollow,
    RemotePost, User,
};
use serde_json::{Value, json};

use crate::error::FederationError;
use crate::inbox::{InboundRequest, examine};
use crate::outbox::entries_for;
use crate::urls::authority_of_str;
use crate::{Federation, actors};

const AS: &str = "https://www.w3.org/ns/activitystreams";

fn random_id() -> Result<String, FederationError> {
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
    fn local_group_id(&self, url: &str) -> Option<String> {
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

    async fn partner_of(&self, url: &str) -> Result<Partner, FederationError> {
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
        let wanted = Pseudonym {
            id: 0,
            public_id: random_id()?,
            user_id: user.id,
            group_id: group.id,
            display_name: display_name.to_owned(),
            created_at: now,
        };
        let pseudonym_id = match self.store.pseudonym_of(user.id, group.id).await? {
            Some(p) => p.public_id,
            None => wanted.public_id.clone(),
        };
        let actor = self.urls.pseudonym(&pseudonym_id);
        let mut follow = json!({
            "@context": AS,
            "id": self.urls.activity(&format!("follow-{pseudonym_id}-{}", now.as_millis())),
            "type": "Follow",
            "actor": actor,
            "object": group_url,
        });
        if let Some(t) = invite_token {
            follow["caremesh:inviteToken"] = json!(t);
        }
        let entries = entries_for(&follow, std::slice::from_ref(&host));
        let (_, member) = self.store.join_remote_group(wanted, entries, now).await?;
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
        let Some(p) = self.store.pseudonym_of(user.id, group.id).await? else {
            return Ok(());
        };
        let actor = self.urls.pseudonym(&p.public_id);
        let now = self.clock.now();
        let undo = json!({
            "@context": AS,
            "id": self.urls.activity(&format!("leave-{}-{}", p.public_id, now.as_millis())),
            "type": "Undo",
            "actor": actor,
            "object": { "type": "Follow", "actor": actor, "object": group_url },
        });
        self.publish(&undo, &[self.partner_of(group_url).await?])
            .await
    }

    /// The actor a local account writes as in a group: doctors and staff as themselves, patients
    /// as their pseudonym for that group.
    async fn author_actor(&self, user: &User, group: &Group) -> Result<String, FederationError> {
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
                display_name: user.display_name.clone(),
                created_at: self.clock.now(),
            })
            .await?;
        Ok(self.urls.pseudonym(&p.public_id))
    }

    fn object_url(&self, post_public_id: &str) -> String {
        self.urls.object(post_public_id)
    }

    /// A post written on this node, in a hosted group or a mirrored one, goes to the other nodes:
    /// to the host (mirrored group) or to every node with a member (hosted group).
    pub async fn local_post_created(
        &self,
        group: &Group,
        post: &Post,
        author: &User,
        thread: Option<&Post>,
    ) -> Result<(), FederationError> {
        if post.publish_at > self.clock.now() {
            // Scheduled announcements federate when they are published (not yet supported).
            return Ok(());
        }
        let group_url = match &group.remote_actor_id {
            Some(url) => url.clone(),
            None => self.urls.group(&group.public_id),
        };
        let actor = self.author_actor(author, group).await?;
        let mut note = json!({
            "id": self.object_url(&post.public_id),
            "type": "Note",
            "attributedTo": actor,
            "context": group_url,
            "to": [group_url],
            "content": post.body,
            "mediaType": "text/plain",
            "published": post.publish_at.to_rfc3339(),
            "caremesh:kind": kind_name(post.kind),
        });
        if let Some(t) = &post.title {
            note["name"] = json!(t);
        }
        if let Some(t) = thread {
            note["inReplyTo"] = json!(
                t.origin_id
                    .clone()
                    .unwrap_or_else(|| self.object_url(&t.public_id))
            );
        }
        let create = json!({
            "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
            "id": self.urls.activity(&format!("create-{}", post.public_id)),
            "type": "Create",
            "actor": actor,
            "to": [group_url],
            "object": note,
        });
        let signed = self.sign_as(&actor, &create).await?;
        let entries = if group.remote_actor_id.is_some() {
            entries_for(&signed, &[self.partner_of(&group_url).await?])
        } else {
            self.announce_entries(group, &signed, None).await?
        };
        self.store.enqueue(entries, self.clock.now()).await?;
        self.wake();
        Ok(())
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
            .await
    }

    /// An author deleted their own post written on this node: the deletion follows it to the
    /// host (mirrored group) or to every member's node (hosted group).
    pub async fn local_post_deleted(
        &self,
        group: &Group,
        post: &Post,
        author: &User,
    ) -> Result<(), FederationError> {
        let actor = self.author_actor(author, group).await?;
        let group_url = match &group.remote_actor_id {
            Some(url) => url.clone(),
            None => self.urls.group(&group.public_id),
        };
        let delete = json!({
            "@context": [AS, "https://w3id.org/security/data-integrity/v2"],
            "id": self.urls.activity(&format!("delete-{}", post.public_id)),
            "type": "Delete",
            "actor": actor,
            "to": [group_url],
            "object": { "id": self.object_url(&post.public_id), "type": "Tombstone" },
        });
        let signed = self.sign_as(&actor, &delete).await?;
        let entries = if group.remote_actor_id.is_some() {
            entries_for(&signed, &[self.partner_of(&group_url).await?])
        } else {
            self.announce_entries(group, &signed, None).await?
        };
        self.store.enqueue(entries, self.clock.now()).await?;
        self.wake();
        Ok(())
    }

    /// `Announce`s of `activity` by a hosted group to every node with an active member, except
    /// `skip` (the node the activity came from, which has it already).
    async fn announce_entries(
        &self,
        group: &Group,
        activity: &Value,
        skip: Option<&str>,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let mut nodes: Vec<String> = Vec::new();
        for actor in self.store.remote_member_actors(group.id).await? {
            if let Some(a) = authority_of_str(&actor)
                && Some(a.as_str()) != skip
                && !nodes.contains(&a)
            {
                nodes.push(a);
            }
        }
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let group_url = self.urls.group(&group.public_id);
        let inner_id = activity["id"].as_str().unwrap_or_default();
        let announce = json!({
            "@context": AS,
            "id": self.urls.activity(&format!("announce-{}", hex::encode(sha_short(inner_id)))),
            "type": "Announce",
            "actor": group_url,
            "to": [format!("{group_url}/members")],
            "object": activity,
        });
        let mut peers = Vec::new();
        for n in nodes {
            if let Some(p) = self.partners.get(&n).await? {
                peers.push(p);
            }
        }
        Ok(entries_for(&announce, &peers))
    }

    /// Checks a verified inbound activity against group rules before it is stored: only active
    /// members post in a group hosted here.
    pub async fn authorize_group_activity(&self, activity: &Value) -> Result<(), FederationError> {
        let (_, kind, actor, _) = examine(activity)?;
        if kind != "Create" {
            return Ok(());
        }
        let Some(group_url) = activity["object"]["context"].as_str() else {
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
        match member {
            Some(m) if m.state == MemberState::Active => Ok(()),
            _ => Err(FederationError::ActorMismatch(format!(
                "{actor} is not a member of {group_url}"
            ))),
        }
    }

    /// Applies a stored inbound activity to groups: memberships, posts, answers.
    pub async fn apply_group_activity(
        &self,
        activity: &Value,
        from: &str,
    ) -> Result<(), FederationError> {
        let (id, kind, actor, _) = examine(activity)?;
        let object = &activity["object"];
        let now = self.clock.now();
        match kind.as_str() {
            "Follow" => {
                let Some(pid) = object.as_str().and_then(|u| self.local_group_id(u)) else {
                    return Ok(());
                };
                let group = self.store.group_by_public_id(&pid).await?;
                let name = match self.resolver.fetch_actor(&actor).await {
                    Ok(a) => serde_json::from_str::<Value>(&a.document)
                        .ok()
                        .and_then(|d| d["name"].as_str().map(|s| s.chars().take(64).collect()))
                        .unwrap_or_else(|| "—".to_owned()),
                    Err(_) => "—".to_owned(),
                };
                let accept = json!({
                    "@context": AS,
                    "id": self.urls.activity(&format!("accept-{}", hex::encode(sha_short(&id)))),
                    "type": "Accept",
                    "actor": self.urls.group(&pid),
                    "object": activity,
                });
                let peer = self.partner_of(&actor).await?;
                let token = activity["caremesh:inviteToken"].as_str();
                let result = self
                    .store
                    .remote_follow(
                        RemoteFollow {
                            group_id: group.id,
                            actor_id: &actor,
                            name: &name,
                            invite_token: token,
                            max_members: self.settings.max_members,
                        },
                        entries_for(&accept, std::slice::from_ref(&peer)),
                        now,
                    )
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e) if e.conflict_code().is_some() => {
                        let reject = json!({
                            "@context": AS,
                            "id": self.urls.activity(&format!("reject-{}", hex::encode(sha_short(&id)))),
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
            }
            "Undo" if object["type"] == "Follow" => {
                if let Some(pid) = object["object"]
                    .as_str()
                    .and_then(|u| self.local_group_id(u))
                {
                    let group = self.store.group_by_public_id(&pid).await?;
                    self.store.remote_unfollow(group.id, &actor, now).await?;
                }
            }
            "Accept" | "Reject" => {
                let follower = object["actor"].as_str().unwrap_or_default();
                if let Some(pid) = follower.strip_prefix(&self.urls.pseudonym("")) {
                    // Only the group itself answers for the group.
                    let group_url = object["object"].as_str().unwrap_or_default();
                    if group_url == actor {
                        self.store
                            .answer_remote_join(pid, kind == "Accept", now)
                            .await?;
                    }
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
                self.store_post_from(&group, activity, announce).await?;
                self.wake();
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
                let own = authority_of_str(object["object"]["id"].as_str().unwrap_or_default())
                    == Some(self.urls.authority());
                match inner_kind.as_str() {
                    "Create" if !own => {
                        self.store_post_from(&group, object, Vec::new()).await?;
                    }
                    "Delete" => {
                        let inner = &object["object"];
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

    async fn store_post_from(
        &self,
        group: &Group,
        create: &Value,
        announce: Vec<NewOutboxEntry>,
    ) -> Result<(), FederationError> {
        let note = &create["object"];
        let author = create["actor"].as_str().unwrap_or_default().to_owned();
        let origin_id = note["id"].as_str().unwrap_or_default().to_owned();
        if let Some(obj) = self.store.federated_object(&origin_id).await?
            && obj.deleted_at.is_some()
        {
            return Ok(());
        }
        let author_name = match self.store.remote_actor(&author).await? {
            Some(a) => serde_json::from_str::<Value>(&a.document)
                .ok()
                .and_then(|d| d["name"].as_str().map(str::to_owned)),
            None => match self.resolver.fetch_actor(&author).await {
                Ok(a) => serde_json::from_str::<Value>(&a.document)
                    .ok()
                    .and_then(|d| d["name"].as_str().map(str::to_owned)),
                Err(_) => None,
            },
        }
        .unwrap_or_else(|| "—".to_owned());
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
        let body: String = note["content"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(20_000)
            .collect();
        let title = note["name"].as_str().map(|t| t.chars().take(200).collect());
        let published = note["published"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_else(|| self.clock.now());
        self.store
            .store_remote_post(
                RemotePost {
                    public_id: random_id()?,
                    group_id: group.id,
                    origin_id,
                    thread_public_id,
                    thread_origin_id,
                    author_actor_id: author,
                    author_name,
                    kind,
                    title,
                    body,
                    pinned: kind == PostKind::Announcement,
                    published_at: published,
                },
                announce,
            )
            .await?;
        Ok(())
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

fn sha_short(s: &str) -> [u8; 12] {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(s.as_bytes());
    let mut out = [0u8; 12];
    out.copy_from_slice(&d[..12]);
    out
}
