//! Groups across hospitals (FEP-1b12 style): the documents of a group and of a patient's
//! per-group pseudonym, and the activities about posts, built from what the caller gives and
//! this node's URLs and keys. No store, no group rules: which post goes where, and when, is the
//! application layer's (`caremesh_app::outbound`, `caremesh_app::inbound`). What crosses about a
//! patient is the pseudonym's actor id, key and display name and what they post in that group
//! (`spec/privacy.md`).

use caremesh_domain::{PostKind, Timestamp};
use caremesh_store::{Group, NewOutboxEntry, Partner, Post, Pseudonym};
use serde_json::{Value, json};

use crate::error::FederationError;
use crate::outbox::entries_for;
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

    /// The partner node `url` is on (scheme, host and port).
    pub async fn partner_of(&self, url: &str) -> Result<Partner, FederationError> {
        self.partners.partner_at(url).await
    }

    pub fn object_url(&self, post_public_id: &str) -> String {
        self.urls.object(post_public_id)
    }

    /// The URL of a group's actor: its host's for a mirrored group.
    pub fn group_url(&self, group: &Group) -> String {
        match &group.remote_actor_id {
            Some(url) => url.clone(),
            None => self.urls.group(&group.public_id),
        }
    }

    /// The `Note` of a post written on this node, as its author signs it.
    pub fn post_note(
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

    /// The `Announce` by a hosted group that forwards an activity to its members' nodes.
    pub fn announce_of(&self, group: &Group, activity: &Value) -> Value {
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
