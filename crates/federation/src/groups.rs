//! Groups across hospitals (FEP-1b12 style). A group lives on its host node. A patient of another
//! node joins as a per-group pseudonym (`Follow` → `Accept`/`Reject`); members' nodes send their
//! posts to the host (`Create`), which stores them and forwards them unchanged (`Announce`) to
//! every node with an active member, one delivery per node. What crosses about a patient is the
//! pseudonym's actor id, key and display name and what they post in that group (`spec/privacy.md`).

use caremesh_domain::{PostKind, Role, Timestamp};
use caremesh_store::{Group, NewOutboxEntry, Partner, Post, Pseudonym, User};
use serde_json::{Value, json};

use crate::error::FederationError;
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
            "caremesh:conditionCode": g.settings.condition_code,
            "caremesh:memberCount": g.member_count,
            "caremesh:city": g.settings.city,
            "caremesh:language": g.settings.language.as_str(),
            "attributedTo": self.urls.instance_actor(),
            "inbox": format!("{id}/inbox"),
            "endpoints": { "sharedInbox": self.urls.shared_inbox() },
            "publicKey": public_key,
            "assertionMethod": methods,
        }))
    }

    /// The `Update` that tells members' nodes a group hosted here changed (its settings, its
    /// member count): they fetch its document again and show it as the host has it.
    pub async fn group_actor_update(&self, g: &Group, id: &str) -> Result<Value, FederationError> {
        let group_url = self.urls.group(&g.public_id);
        Ok(json!({
            "@context": actors::CONTEXT,
            "id": id,
            "type": "Update",
            "actor": group_url,
            "object": self.group_document(g).await?,
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

    pub async fn partner_of(&self, url: &str) -> Result<Partner, FederationError> {
        let authority = authority_of_str(url)
            .ok_or_else(|| FederationError::Malformed(format!("{url} is not a URL")))?;
        self.partners
            .get(&authority)
            .await?
            .ok_or(FederationError::NotPartner(authority))
    }

    /// A patient of this node leaves a group hosted elsewhere: what tells the host (`Undo` of the
    /// `Follow`), to queue with leaving; it stops sending the group's content here once no member
    /// is left.
    pub async fn leave_entries(
        &self,
        group: &Group,
        user: &User,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let Some(group_url) = &group.remote_actor_id else {
            return Ok(Vec::new());
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
        Ok(entries_for(&undo, &[self.partner_of(group_url).await?]))
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
    pub async fn member_actor(
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

    /// A moderator decided a remote actor's request to join a group hosted here: the answer that
    /// goes to the actor's node (`Accept` or `Reject` of its `Follow`), to queue with the decision.
    pub async fn answer_entries(
        &self,
        group: &Group,
        actor: &str,
        accepted: bool,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
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
        Ok(entries_for(&answer, &[self.partner_of(actor).await?]))
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
    pub async fn announce_entries(
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
