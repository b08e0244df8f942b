//! Typed activities: every kind `spec/federation.md` defines, parsed once from the JSON that
//! arrived, so that the inbox checks and the application layer dispatch on a type instead of on
//! strings. Parsing checks shape only (ids are URLs, objects are embedded where they must be, an
//! object is its actor's); whether the actor may do it is checked against stored state by the
//! application layer.
//!
//! Outbound activities are built by the pure functions at the end of this module.

use caremesh_domain::Timestamp;
use caremesh_store::ObjectChange;
use serde_json::{Value, json};

use crate::error::FederationError;
use crate::urls::same_node;

pub const AS: &str = "https://www.w3.org/ns/activitystreams";
pub const DATA_INTEGRITY: &str = "https://w3id.org/security/data-integrity/v2";

/// Activity types whose objects are posts, edits or deletions: they must carry their author's
/// integrity proof (except an actor's `Update` of itself).
pub const PROOF_REQUIRED: [&str; 3] = ["Create", "Update", "Delete"];

/// What every activity has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub id: String,
    pub kind: String,
    pub actor: String,
}

/// One activity, by kind.
#[derive(Clone, Debug)]
pub enum Activity {
    /// An actor asks to join a group (`object`: the group).
    Follow(Follow),
    /// An actor leaves a group.
    UndoFollow(Follow),
    /// A group admits (`Accept`) or refuses (`Reject`) an actor's `Follow`.
    Accept(FollowAnswer),
    Reject(FollowAnswer),
    /// A post written by its author (`Note`).
    Create(NoteActivity),
    /// Its author's edit of a post.
    UpdateNote(NoteActivity),
    /// An actor's new document (keys, name, credential): the actor is fetched again.
    UpdateActor,
    /// A group's new version of one of its objects (a post's state, a membership, its library).
    UpdateGroupObject(GroupObject),
    /// An author's deletion of their post.
    Delete(Delete),
    /// A group forwards an activity of one of its members, unchanged.
    Announce(Box<Announce>),
    /// A member marks a post helpful (`Like`), or takes the mark back (`Undo` of it).
    Like(Like),
    UndoLike(Like),
    /// A member reports a post to the group's moderators.
    Flag(Flag),
    /// A group's doctor or moderator on another node acts on the group (pin, accepted answer,
    /// removal, membership, library); the host checks the role and answers `Accept`/`Reject`.
    GroupAction(GroupAction),
    /// The host's answer to a `GroupAction` (`Accept` or `Reject` whose object is the action).
    ActionAnswer(ActionAnswer),
    /// A kind this node does not act on: recorded, acknowledged, otherwise ignored.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    pub actor: String,
    pub group: String,
    pub invite_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowAnswer {
    /// The group that answers (the activity's actor).
    pub group: String,
    /// Who asked to join.
    pub follower: String,
    /// Why a `Reject` refused.
    pub reason: Option<String>,
}

/// A post as its author signed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub id: String,
    pub attributed_to: String,
    /// The group it was written in.
    pub context: Option<String>,
    /// `announcement`, `question` or `reply` (`caremesh:kind`).
    pub kind: Option<String>,
    pub in_reply_to: Option<String>,
    pub name: Option<String>,
    pub content: String,
    pub published: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    pub pinned: Option<bool>,
    pub attachments: Vec<NoteFile>,
    /// The object as it arrived.
    pub raw: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteFile {
    pub sha256: Option<String>,
    pub url: Option<String>,
    pub name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NoteActivity {
    pub actor: String,
    pub note: Note,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub actor: String,
    pub object: String,
}

#[derive(Clone, Debug)]
pub struct Announce {
    /// The group that forwards.
    pub group: String,
    /// The forwarded activity, as its author sent it.
    pub inner_head: Head,
    pub inner: Activity,
    pub inner_raw: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Like {
    pub actor: String,
    /// The post, as every node knows it (its object id on its author's node).
    pub post: String,
    /// The group it is in.
    pub group: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    pub actor: String,
    pub post: String,
    pub group: String,
    pub reason: String,
}

/// An object a group keeps about its posts and members, by id and type; the newest version the
/// inbox kept is what is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupObject {
    pub group: String,
    pub id: String,
    pub kind: String,
}

/// What a group's doctor or moderator on another node asks the host to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupActionKind {
    Pin {
        post: String,
        pinned: bool,
    },
    AcceptAnswer {
        question: String,
        reply: Option<String>,
    },
    RemovePost {
        post: String,
        reason: Option<String>,
    },
    RemoveMember {
        member: String,
        ban: bool,
        reason: Option<String>,
    },
    Unban {
        member: String,
    },
    CreateFolder {
        name: String,
    },
    DeleteFolder {
        name: String,
    },
    SaveToLibrary {
        folder: String,
        post: String,
    },
    RemoveFromLibrary {
        folder: String,
        post: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupAction {
    pub id: String,
    pub actor: String,
    pub group: String,
    pub action: GroupActionKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionAnswer {
    /// The group that answers.
    pub group: String,
    /// The action's id.
    pub action: String,
    pub accepted: bool,
    /// A stable code for a refusal (`caremesh:code`) and its explanation (`summary`).
    pub code: Option<String>,
    pub reason: Option<String>,
}

/// The `type`s of group actions, as they appear on the wire.
pub mod action_types {
    pub const PIN: &str = "caremesh:Pin";
    pub const UNPIN: &str = "caremesh:Unpin";
    pub const ACCEPT_ANSWER: &str = "caremesh:AcceptAnswer";
    pub const CLEAR_ANSWER: &str = "caremesh:ClearAnswer";
    pub const REMOVE_POST: &str = "caremesh:RemovePost";
    pub const REMOVE_MEMBER: &str = "caremesh:RemoveMember";
    pub const BAN_MEMBER: &str = "caremesh:BanMember";
    pub const UNBAN_MEMBER: &str = "caremesh:UnbanMember";
    pub const CREATE_FOLDER: &str = "caremesh:CreateFolder";
    pub const DELETE_FOLDER: &str = "caremesh:DeleteFolder";
    pub const SAVE_TO_LIBRARY: &str = "caremesh:SaveToLibrary";
    pub const REMOVE_FROM_LIBRARY: &str = "caremesh:RemoveFromLibrary";
    pub const ALL: [&str; 12] = [
        PIN,
        UNPIN,
        ACCEPT_ANSWER,
        CLEAR_ANSWER,
        REMOVE_POST,
        REMOVE_MEMBER,
        BAN_MEMBER,
        UNBAN_MEMBER,
        CREATE_FOLDER,
        DELETE_FOLDER,
        SAVE_TO_LIBRARY,
        REMOVE_FROM_LIBRARY,
    ];
}

/// A parsed activity with its head.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub head: Head,
    pub activity: Activity,
}

fn malformed(m: impl Into<String>) -> FederationError {
    FederationError::Malformed(m.into())
}

/// A string, or an object's `id`.
pub fn str_or_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(Timestamp::parse_rfc3339)
}

fn url_field(v: &Value, what: &str) -> Result<String, FederationError> {
    let s = str_or_id(v).ok_or_else(|| malformed(format!("the activity needs {what}")))?;
    if !(s.starts_with("https://") || s.starts_with("http://")) || s.len() > 2048 {
        return Err(malformed(format!("{what} must be an http(s) URL")));
    }
    Ok(s)
}

/// `id`, `type` and `actor` of an activity, which every activity must have.
pub fn head(a: &Value) -> Result<Head, FederationError> {
    if !a.is_object() {
        return Err(malformed("an activity is a JSON object"));
    }
    let id = a["id"]
        .as_str()
        .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
        .ok_or_else(|| malformed("the activity needs an http(s) `id`"))?;
    let kind = a["type"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .ok_or_else(|| malformed("the activity needs a `type`"))?;
    let actor = str_or_id(&a["actor"]).ok_or_else(|| malformed("the activity needs an `actor`"))?;
    if id.len() > 2048 || actor.len() > 2048 {
        return Err(malformed("ids are limited to 2048 characters"));
    }
    Ok(Head {
        id: id.to_owned(),
        kind: kind.to_owned(),
        actor,
    })
}

/// An `Update` of the actor itself (new keys, name or credential): its node's signature is what
/// vouches for it, not a post proof.
pub fn is_actor_update(a: &Value, head: &Head) -> bool {
    head.kind == "Update" && str_or_id(&a["object"]).as_deref() == Some(head.actor.as_str())
}

fn parse_note(o: &Value, actor: &str, kind: &str) -> Result<Note, FederationError> {
    let obj = o
        .as_object()
        .ok_or_else(|| malformed(format!("a {kind} must embed its object")))?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the object needs an `id`"))?;
    if obj.get("type").and_then(Value::as_str).is_none() {
        return Err(malformed("the object needs a `type`"));
    }
    let attributed = obj.get("attributedTo").and_then(str_or_id);
    if attributed.as_deref() != Some(actor) {
        return Err(FederationError::ActorMismatch(format!(
            "object {id} is not attributed to {actor}"
        )));
    }
    if !same_node(id, actor) {
        return Err(FederationError::ActorMismatch(format!(
            "object {id} is not on its author's node"
        )));
    }
    let attachments = o["attachment"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| NoteFile {
            sha256: text(&a["caremesh:sha256"]),
            url: text(&a["url"]),
            name: text(&a["name"]),
        })
        .collect();
    Ok(Note {
        id: id.to_owned(),
        attributed_to: actor.to_owned(),
        context: text(&o["context"]),
        kind: text(&o["caremesh:kind"]),
        in_reply_to: str_or_id(&o["inReplyTo"]),
        name: text(&o["name"]),
        content: text(&o["content"]).unwrap_or_default(),
        published: timestamp(&o["published"]),
        updated: timestamp(&o["updated"]),
        pinned: o["caremesh:pinned"].as_bool(),
        attachments,
        raw: o.clone(),
    })
}

fn parse_follow(a: &Value, actor: &str) -> Result<Follow, FederationError> {
    Ok(Follow {
        actor: actor.to_owned(),
        group: url_field(&a["object"], "the group to follow (`object`)")?,
        invite_token: text(&a["caremesh:inviteToken"]),
    })
}

fn parse_group_action(a: &Value, head: &Head) -> Result<GroupAction, FederationError> {
    use action_types as t;
    let group = url_field(&a["target"], "the group (`target`)")?;
    let object = || url_field(&a["object"], "the `object`");
    let reason = text(&a["summary"]).filter(|r| !r.trim().is_empty());
    let name = || {
        text(&a["name"])
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| malformed("a folder needs its `name`"))
    };
    let folder = || {
        text(&a["caremesh:folder"])
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| malformed("a library item needs its folder (`caremesh:folder`)"))
    };
    let action = match head.kind.as_str() {
        t::PIN | t::UNPIN => GroupActionKind::Pin {
            post: object()?,
            pinned: head.kind == t::PIN,
        },
        t::ACCEPT_ANSWER => GroupActionKind::AcceptAnswer {
            question: object()?,
            reply: Some(url_field(
                &a["caremesh:answer"],
                "the answer (`caremesh:answer`)",
            )?),
        },
        t::CLEAR_ANSWER => GroupActionKind::AcceptAnswer {
            question: object()?,
            reply: None,
        },
        t::REMOVE_POST => GroupActionKind::RemovePost {
            post: object()?,
            reason,
        },
        t::REMOVE_MEMBER | t::BAN_MEMBER => GroupActionKind::RemoveMember {
            member: object()?,
            ban: head.kind == t::BAN_MEMBER,
            reason,
        },
        t::UNBAN_MEMBER => GroupActionKind::Unban { member: object()? },
        t::CREATE_FOLDER => GroupActionKind::CreateFolder { name: name()? },
        t::DELETE_FOLDER => GroupActionKind::DeleteFolder { name: name()? },
        t::SAVE_TO_LIBRARY => GroupActionKind::SaveToLibrary {
            folder: folder()?,
            post: object()?,
        },
        t::REMOVE_FROM_LIBRARY => GroupActionKind::RemoveFromLibrary {
            folder: folder()?,
            post: object()?,
        },
        other => return Err(malformed(format!("unknown group action {other}"))),
    };
    Ok(GroupAction {
        id: head.id.clone(),
        actor: head.actor.clone(),
        group,
        action,
    })
}

/// Parses an activity. An `Announce` is parsed with the activity it forwards.
pub fn parse(a: &Value) -> Result<Parsed, FederationError> {
    let head = head(a)?;
    let activity = parse_kind(a, &head, true)?;
    Ok(Parsed { head, activity })
}

fn parse_kind(a: &Value, head: &Head, outer: bool) -> Result<Activity, FederationError> {
    let actor = head.actor.as_str();
    let object = &a["object"];
    Ok(match head.kind.as_str() {
        "Follow" => Activity::Follow(parse_follow(a, actor)?),
        "Undo" if object["type"] == "Follow" => {
            if str_or_id(&object["actor"]).as_deref() != Some(actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "{actor} cannot undo another actor's Follow"
                )));
            }
            Activity::UndoFollow(parse_follow(object, actor)?)
        }
        "Undo" if object["type"] == "Like" => {
            if str_or_id(&object["actor"]).as_deref() != Some(actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "{actor} cannot undo another actor's Like"
                )));
            }
            Activity::UndoLike(Like {
                actor: actor.to_owned(),
                post: url_field(&object["object"], "the post (`object`)")?,
                group: text(&object["context"]),
            })
        }
        "Accept" | "Reject" if object["type"] == "Follow" => {
            let answer = FollowAnswer {
                group: actor.to_owned(),
                follower: str_or_id(&object["actor"])
                    .ok_or_else(|| malformed("the answered Follow needs its `actor`"))?,
                reason: text(&a["summary"]),
            };
            if str_or_id(&object["object"]).as_deref() != Some(actor) {
                // Only the group itself answers for the group.
                return Ok(Activity::Other);
            }
            if head.kind == "Accept" {
                Activity::Accept(answer)
            } else {
                Activity::Reject(answer)
            }
        }
        "Accept" | "Reject" => Activity::ActionAnswer(ActionAnswer {
            group: actor.to_owned(),
            action: url_field(object, "the answered activity (`object`)")?,
            accepted: head.kind == "Accept",
            code: text(&a["caremesh:code"]),
            reason: text(&a["summary"]),
        }),
        "Create" => Activity::Create(NoteActivity {
            actor: actor.to_owned(),
            note: parse_note(object, actor, "Create")?,
        }),
        "Update" if is_actor_update(a, head) => Activity::UpdateActor,
        "Update" if object["type"] == "Note" => Activity::UpdateNote(NoteActivity {
            actor: actor.to_owned(),
            note: parse_note(object, actor, "Update")?,
        }),
        "Update" => {
            let o = object
                .as_object()
                .ok_or_else(|| malformed("an Update must embed its object"))?;
            let id = o
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the object needs an `id`"))?;
            let kind = o
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the object needs a `type`"))?;
            if o.get("attributedTo").and_then(str_or_id).as_deref() != Some(actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "object {id} is not attributed to {actor}"
                )));
            }
            if !same_node(id, actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "object {id} is not on its author's node"
                )));
            }
            Activity::UpdateGroupObject(GroupObject {
                group: actor.to_owned(),
                id: id.to_owned(),
                kind: kind.to_owned(),
            })
        }
        "Delete" => {
            let object_id =
                str_or_id(object).ok_or_else(|| malformed("a Delete names its object"))?;
            if !same_node(&object_id, actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "{actor} cannot delete {object_id}"
                )));
            }
            Activity::Delete(Delete {
                actor: actor.to_owned(),
                object: object_id,
            })
        }
        "Announce" if outer && object.is_object() && object.get("actor").is_some() => {
            let inner_head = self::head(object)?;
            let inner = parse_kind(object, &inner_head, false)?;
            Activity::Announce(Box::new(Announce {
                group: actor.to_owned(),
                inner_head,
                inner,
                inner_raw: object.clone(),
            }))
        }
        "Like" => Activity::Like(Like {
            actor: actor.to_owned(),
            post: url_field(object, "the post (`object`)")?,
            group: text(&a["context"]),
        }),
        "Flag" => Activity::Flag(Flag {
            actor: actor.to_owned(),
            post: url_field(object, "the reported post (`object`)")?,
            group: url_field(&a["context"], "the group (`context`)")?,
            reason: text(&a["content"]).unwrap_or_default(),
        }),
        k if action_types::ALL.contains(&k) => Activity::GroupAction(parse_group_action(a, head)?),
        _ => Activity::Other,
    })
}

impl Parsed {
    /// What the activity does to its object, for the inbox's store of newest versions (for an
    /// `Announce`, what the forwarded activity does).
    pub fn object_change(&self, raw: &Value) -> Option<ObjectChange> {
        change_of(&self.activity, raw)
    }
}

fn change_of(activity: &Activity, raw: &Value) -> Option<ObjectChange> {
    match activity {
        Activity::Create(n) | Activity::UpdateNote(n) => Some(ObjectChange::Upsert {
            object_id: n.note.id.clone(),
            object_type: raw["object"]["type"].as_str().unwrap_or("Note").to_owned(),
            attributed_to: n.actor.clone(),
            document: n.note.raw.to_string(),
            published_at: n.note.published,
            updated_at: n.note.updated,
        }),
        Activity::UpdateGroupObject(g) => Some(ObjectChange::Upsert {
            object_id: g.id.clone(),
            object_type: g.kind.clone(),
            attributed_to: g.group.clone(),
            document: raw["object"].to_string(),
            published_at: timestamp(&raw["object"]["published"]),
            updated_at: timestamp(&raw["object"]["updated"]),
        }),
        Activity::Delete(d) => Some(ObjectChange::Delete {
            object_id: d.object.clone(),
            attributed_to: d.actor.clone(),
        }),
        Activity::Announce(a) => change_of(&a.inner, &a.inner_raw),
        _ => None,
    }
}

// ---- outbound: pure builders ----

/// The `Announce` by a hosted group that forwards a member's activity, unchanged, to its
/// members' nodes. Its id is derived from the forwarded activity's, so forwarding twice is
/// received once.
pub fn announce(group_url: &str, activity_id_base: &str, activity: &Value) -> Value {
    json!({
        "@context": AS,
        "id": activity_id_base,
        "type": "Announce",
        "actor": group_url,
        "to": [format!("{group_url}/members")],
        "object": activity,
    })
}

/// A group action: what a doctor or moderator of a group hosted elsewhere asks its host to do
/// (`target` is the group; the host answers `Accept` or `Reject` of it).
pub fn group_action(id: &str, actor: &str, group_url: &str, action: &GroupActionKind) -> Value {
    use action_types as t;
    let mut a = json!({
        "@context": AS,
        "id": id,
        "actor": actor,
        "target": group_url,
    });
    let (kind, object) = match action {
        GroupActionKind::Pin { post, pinned } => {
            (if *pinned { t::PIN } else { t::UNPIN }, Some(post))
        }
        GroupActionKind::AcceptAnswer { question, reply } => {
            if let Some(r) = reply {
                a["caremesh:answer"] = json!(r);
            }
            (
                if reply.is_some() {
                    t::ACCEPT_ANSWER
                } else {
                    t::CLEAR_ANSWER
                },
                Some(question),
            )
        }
        GroupActionKind::RemovePost { post, reason } => {
            if let Some(r) = reason {
                a["summary"] = json!(r);
            }
            (t::REMOVE_POST, Some(post))
        }
        GroupActionKind::RemoveMember {
            member,
            ban,
            reason,
        } => {
            if let Some(r) = reason {
                a["summary"] = json!(r);
            }
            (
                if *ban {
                    t::BAN_MEMBER
                } else {
                    t::REMOVE_MEMBER
                },
                Some(member),
            )
        }
        GroupActionKind::Unban { member } => (t::UNBAN_MEMBER, Some(member)),
        GroupActionKind::CreateFolder { name } => {
            a["name"] = json!(name);
            (t::CREATE_FOLDER, None)
        }
        GroupActionKind::DeleteFolder { name } => {
            a["name"] = json!(name);
            (t::DELETE_FOLDER, None)
        }
        GroupActionKind::SaveToLibrary { folder, post } => {
            a["caremesh:folder"] = json!(folder);
            (t::SAVE_TO_LIBRARY, Some(post))
        }
        GroupActionKind::RemoveFromLibrary { folder, post } => {
            a["caremesh:folder"] = json!(folder);
            (t::REMOVE_FROM_LIBRARY, Some(post))
        }
    };
    a["type"] = json!(kind);
    if let Some(o) = object {
        a["object"] = json!(o);
    }
    a
}

/// A report of a post to its group's moderators, from a member's node to the host.
pub fn flag(id: &str, actor: &str, group_url: &str, post: &str, reason: &str) -> Value {
    json!({
        "@context": AS,
        "id": id,
        "type": "Flag",
        "actor": actor,
        "object": post,
        "context": group_url,
        "content": reason,
    })
}

/// The group's answer to a member's group action.
pub fn action_answer(
    id: &str,
    group_url: &str,
    action_id: &str,
    refusal: Option<(&str, &str)>,
) -> Value {
    let mut a = json!({
        "@context": AS,
        "id": id,
        "type": if refusal.is_some() { "Reject" } else { "Accept" },
        "actor": group_url,
        "object": action_id,
    });
    if let Some((code, reason)) = refusal {
        a["caremesh:code"] = json!(code);
        a["summary"] = json!(reason);
    }
    a
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DR: &str = "https://c.example/users/dr.li";
    const GROUP: &str = "https://b.example/groups/g1";

    fn create(actor: &str, note_id: &str, attributed: &str) -> Value {
        json!({
            "id": "https://c.example/activities/create-1",
            "type": "Create",
            "actor": actor,
            "object": {
                "id": note_id, "type": "Note", "attributedTo": attributed,
                "context": GROUP, "content": "hello", "caremesh:kind": "question",
                "published": "2026-03-05T06:30:00Z",
                "attachment": [{"caremesh:sha256": "ab", "url": "https://c.example/media/ab"}],
            },
        })
    }

    #[test]
    fn a_create_carries_its_note() {
        let p = parse(&create(DR, "https://c.example/objects/1", DR)).unwrap();
        let Activity::Create(c) = &p.activity else {
            panic!("{:?}", p.activity)
        };
        assert_eq!(c.note.content, "hello");
        assert_eq!(c.note.context.as_deref(), Some(GROUP));
        assert_eq!(c.note.kind.as_deref(), Some("question"));
        assert_eq!(c.note.attachments.len(), 1);
        let Some(ObjectChange::Upsert { object_id, .. }) =
            p.object_change(&create(DR, "https://c.example/objects/1", DR))
        else {
            panic!()
        };
        assert_eq!(object_id, "https://c.example/objects/1");
    }

    #[test]
    fn an_object_belongs_to_its_actor() {
        let other = "https://c.example/users/dr.wang";
        assert!(matches!(
            parse(&create(DR, "https://c.example/objects/1", other)),
            Err(FederationError::ActorMismatch(_))
        ));
        assert!(matches!(
            parse(&create(DR, "https://x.example/objects/1", DR)),
            Err(FederationError::ActorMismatch(_))
        ));
        let delete = json!({
            "id": "https://c.example/activities/d", "type": "Delete", "actor": DR,
            "object": "https://b.example/objects/9",
        });
        assert!(matches!(
            parse(&delete),
            Err(FederationError::ActorMismatch(_))
        ));
    }

    #[test]
    fn an_announce_is_parsed_with_what_it_forwards() {
        let inner = create(DR, "https://c.example/objects/1", DR);
        let a = announce(GROUP, "https://b.example/activities/announce-1", &inner);
        let p = parse(&a).unwrap();
        let Activity::Announce(an) = &p.activity else {
            panic!()
        };
        assert_eq!(an.group, GROUP);
        assert_eq!(an.inner_head.actor, DR);
        assert!(matches!(an.inner, Activity::Create(_)));
        assert_eq!(an.inner_raw, inner, "forwarded unchanged");
    }

    #[test]
    fn group_actions_and_their_answers() {
        let pin = json!({
            "id": "https://c.example/activities/pin-1", "type": "caremesh:Pin", "actor": DR,
            "object": "https://a.example/objects/7", "target": GROUP,
        });
        let Activity::GroupAction(g) = parse(&pin).unwrap().activity else {
            panic!()
        };
        assert_eq!(
            g.action,
            GroupActionKind::Pin {
                post: "https://a.example/objects/7".into(),
                pinned: true
            }
        );
        assert_eq!(g.group, GROUP);
        let no_target = json!({
            "id": "https://c.example/activities/pin-2", "type": "caremesh:Pin", "actor": DR,
            "object": "https://a.example/objects/7",
        });
        assert!(matches!(
            parse(&no_target),
            Err(FederationError::Malformed(_))
        ));
        let refusal = action_answer(
            "https://b.example/activities/r1",
            GROUP,
            "https://c.example/activities/pin-1",
            Some(("credential_inactive", "her credential was revoked")),
        );
        let Activity::ActionAnswer(a) = parse(&refusal).unwrap().activity else {
            panic!()
        };
        assert!(!a.accepted);
        assert_eq!(a.code.as_deref(), Some("credential_inactive"));
        assert_eq!(a.action, "https://c.example/activities/pin-1");
    }

    #[test]
    fn every_group_action_parses_back_as_built() {
        let post = "https://a.example/objects/7".to_owned();
        let member = "https://a.example/pseudonyms/p1".to_owned();
        let actions = [
            GroupActionKind::Pin {
                post: post.clone(),
                pinned: true,
            },
            GroupActionKind::Pin {
                post: post.clone(),
                pinned: false,
            },
            GroupActionKind::AcceptAnswer {
                question: post.clone(),
                reply: Some(format!("{post}-r")),
            },
            GroupActionKind::AcceptAnswer {
                question: post.clone(),
                reply: None,
            },
            GroupActionKind::RemovePost {
                post: post.clone(),
                reason: Some("spam".into()),
            },
            GroupActionKind::RemoveMember {
                member: member.clone(),
                ban: true,
                reason: None,
            },
            GroupActionKind::RemoveMember {
                member: member.clone(),
                ban: false,
                reason: Some("x".into()),
            },
            GroupActionKind::Unban {
                member: member.clone(),
            },
            GroupActionKind::CreateFolder {
                name: "康复".into(),
            },
            GroupActionKind::DeleteFolder {
                name: "康复".into(),
            },
            GroupActionKind::SaveToLibrary {
                folder: "康复".into(),
                post: post.clone(),
            },
            GroupActionKind::RemoveFromLibrary {
                folder: "康复".into(),
                post: post.clone(),
            },
        ];
        for (i, kind) in actions.into_iter().enumerate() {
            let id = format!("https://c.example/activities/action-{i}");
            let built = group_action(&id, DR, GROUP, &kind);
            let Activity::GroupAction(g) = parse(&built).unwrap().activity else {
                panic!("{built}")
            };
            assert_eq!(
                (g.id, g.actor, g.group, g.action),
                (id, DR.to_owned(), GROUP.to_owned(), kind)
            );
        }
        let report = flag(
            "https://c.example/activities/f1",
            DR,
            GROUP,
            &post,
            "不实信息",
        );
        let Activity::Flag(f) = parse(&report).unwrap().activity else {
            panic!()
        };
        assert_eq!(
            (f.post, f.group, f.reason),
            (post, GROUP.to_owned(), "不实信息".to_owned())
        );
    }

    #[test]
    fn a_follow_answer_counts_only_from_the_group() {
        let accept = |actor: &str| {
            json!({
                "id": "https://b.example/activities/accept-1", "type": "Accept", "actor": actor,
                "object": { "type": "Follow", "actor": DR, "object": GROUP },
            })
        };
        assert!(matches!(
            parse(&accept(GROUP)).unwrap().activity,
            Activity::Accept(FollowAnswer { ref follower, .. }) if follower == DR
        ));
        assert!(matches!(
            parse(&accept("https://b.example/groups/other"))
                .unwrap()
                .activity,
            Activity::Other
        ));
    }

    #[test]
    fn undo_only_ones_own() {
        let undo = json!({
            "id": "https://c.example/activities/u1", "type": "Undo", "actor": DR,
            "object": { "type": "Like", "actor": "https://c.example/users/x",
                        "object": "https://a.example/objects/1" },
        });
        assert!(matches!(
            parse(&undo),
            Err(FederationError::ActorMismatch(_))
        ));
    }
}
