//! Groups across hospitals: remote members of groups hosted here, mirrors of groups hosted
//! elsewhere, per-group pseudonyms of this node's patients, and posts that came from other nodes.

use async_trait::async_trait;
use caremesh_domain::{GroupRole, MemberState, PostKind, Timestamp, UserId};

use crate::{Group, GroupSettings, Member, NewOutboxEntry, Post, Result};

/// A patient's identity in one group: its own actor and display name, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pseudonym {
    pub id: i64,
    pub public_id: String,
    pub user_id: UserId,
    pub group_id: i64,
    pub display_name: String,
    pub created_at: Timestamp,
}

/// A post written on another node, as this node stores it.
#[derive(Clone, Debug)]
pub struct RemotePost {
    pub public_id: String,
    pub group_id: i64,
    /// The object id on the author's node.
    pub origin_id: String,
    /// For replies, the thread's first post: by its public id when it was written on this node,
    /// by its object id (origin id) when it came from elsewhere.
    pub thread_public_id: Option<String>,
    pub thread_origin_id: Option<String>,
    pub author_actor_id: String,
    pub author_name: String,
    pub kind: PostKind,
    pub title: Option<String>,
    pub body: String,
    pub pinned: bool,
    pub published_at: Timestamp,
    /// Its files; those that would exceed the group's quota are left out.
    pub files: Vec<RemoteAttachment>,
}

/// What a group's host decides about one of its posts, which every member's node shows as the
/// host says: pinned, how many found it helpful, the accepted answer, removal by a moderator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedPostState {
    pub pinned: bool,
    pub helpful_count: u32,
    /// The accepted reply (a post of the same thread on this node), if any.
    pub accepted_reply: Option<i64>,
    /// A doctor of the group has replied.
    pub answered_by_doctor: bool,
    /// Removed by a moderator of the group (final).
    pub removed: bool,
}

/// A folder of a mirrored group's library as its host keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorFolder {
    pub name: String,
    /// In the host's order.
    pub items: Vec<MirrorItem>,
}

/// An item of a mirrored library: a post or a file of the group on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorItem {
    Post { title: String, post_id: i64 },
    File { title: String, attachment_id: i64 },
}

/// A file of a post written elsewhere, fetched, checked and kept (under its SHA-256) by this
/// node before the post is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAttachment {
    pub public_id: String,
    pub content_type: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
}

/// A remote actor's request to join a group hosted here.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFollow<'a> {
    pub group_id: i64,
    pub actor_id: &'a str,
    /// The name the actor shows in the group.
    pub name: &'a str,
    pub invite_token: Option<&'a str>,
    pub max_members: u32,
}

#[async_trait]
pub trait RemoteGroupStore: Send + Sync {
    // ---- groups hosted here, members elsewhere ----

    /// A remote actor asks to join a group hosted here. With a usable invite token of this group
    /// it becomes an active member at once (the invite loses a use) and `on_accept` is queued in
    /// the same transaction; without one it waits for a moderator. Asking again is harmless.
    /// Conflicts: `banned`, `group_full`, `invite_unusable`.
    async fn remote_follow(
        &self,
        follow: RemoteFollow<'_>,
        on_accept: Vec<NewOutboxEntry>,
        now: Timestamp,
    ) -> Result<Member>;
    /// A remote member leaves. `None` if it was not a member.
    async fn remote_unfollow(
        &self,
        group_id: i64,
        actor_id: &str,
        now: Timestamp,
    ) -> Result<Option<Member>> {
        self.remote_unfollow_with(group_id, actor_id, now, Vec::new())
            .await
    }
    /// `remote_unfollow`, queueing `outbox` with it when a member left.
    async fn remote_unfollow_with(
        &self,
        group_id: i64,
        actor_id: &str,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Option<Member>>;
    async fn remote_member(&self, group_id: i64, actor_id: &str) -> Result<Option<Member>>;
    /// An actor of another node has a new name: its memberships and posts here show it.
    async fn rename_remote_actor(&self, actor_id: &str, name: &str) -> Result<()>;
    /// Groups hosted here of which the actor is an active member.
    async fn groups_with_remote_member(&self, actor_id: &str) -> Result<Vec<Group>>;
    /// Actor ids of the group's active remote members.
    async fn remote_member_actors(&self, group_id: i64) -> Result<Vec<String>>;

    // ---- posts from other nodes ----

    /// Stores a post written elsewhere, once: a post with the same origin id is returned as it is
    /// (`false`), a new one is stored with its files (within `quota_bytes` for the group's files)
    /// and `announce` queued in the same transaction (`true`).
    async fn store_remote_post(
        &self,
        post: RemotePost,
        announce: Vec<NewOutboxEntry>,
        quota_bytes: i64,
    ) -> Result<(Post, bool)>;
    /// A post of the group that came from another node, by its object id there.
    async fn post_by_origin(&self, group_id: i64, origin_id: &str) -> Result<Option<Post>>;
    /// Applies its author's edit to a post written elsewhere, if it is newer than the version
    /// shown (`edited_at`); earlier edits become its history. `announce` is queued with it.
    /// `None` if there is no such post of that author, it is deleted, or the edit is not newer.
    async fn edit_remote_post(
        &self,
        origin_id: &str,
        author_actor_id: &str,
        title: Option<String>,
        body: String,
        edited_at: Timestamp,
        announce: Vec<NewOutboxEntry>,
    ) -> Result<Option<Post>>;
    /// A member on another node marks a post helpful (or takes the mark back). Marking twice
    /// counts once. Conflicts: `post_deleted`, `own_post`.
    async fn set_remote_helpful(
        &self,
        post_id: i64,
        actor_id: &str,
        helpful: bool,
        now: Timestamp,
    ) -> Result<Post> {
        self.set_remote_helpful_with(post_id, actor_id, helpful, now, Vec::new())
            .await
    }
    /// `set_remote_helpful`, queueing `outbox` (the post's new count, for members' nodes) with it
    /// when the mark changed.
    async fn set_remote_helpful_with(
        &self,
        post_id: i64,
        actor_id: &str,
        helpful: bool,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// Shows a post of a group hosted elsewhere as its host decided. Removal is final: a removed
    /// post stays a tombstone whatever state arrives later.
    async fn apply_post_state(
        &self,
        post_id: i64,
        state: HostedPostState,
        now: Timestamp,
    ) -> Result<Post>;
    /// Makes a mirrored group's library what its host keeps: these folders with these items, and
    /// nothing else.
    async fn replace_mirror_library(
        &self,
        group_id: i64,
        folders: Vec<MirrorFolder>,
        now: Timestamp,
    ) -> Result<()>;
    /// Records a file of a mirrored group's library (already kept under its SHA-256), within the
    /// group's quota (conflict `group_storage_full`); a file the group has already is returned.
    async fn add_mirror_file(
        &self,
        group_id: i64,
        file: RemoteAttachment,
        quota_bytes: i64,
        now: Timestamp,
    ) -> Result<crate::Attachment>;
    /// A file of the group by its SHA-256, if the group has it.
    async fn attachment_by_sha(
        &self,
        group_id: i64,
        sha256: &str,
    ) -> Result<Option<crate::Attachment>>;
    /// Keeps an activity of a group that refers to a post this node does not have yet (a reply
    /// that arrived before its question), under that post's object id. Keeping it twice keeps
    /// it once.
    async fn keep_waiting(
        &self,
        group_id: i64,
        waiting_for: &str,
        activity_id: &str,
        activity: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Takes the activities that waited for `object_id`, oldest first; they are forgotten.
    async fn take_waiting(&self, group_id: i64, object_id: &str) -> Result<Vec<String>>;
    /// Forgets activities that have waited since before `before` (what they wait for will not
    /// come: it was deleted before it arrived). Returns how many.
    async fn purge_waiting(&self, before: Timestamp) -> Result<u64>;
    /// Tombstones a post written elsewhere, by its author; `announce` is queued with it.
    async fn delete_remote_post(
        &self,
        origin_id: &str,
        author_actor_id: &str,
        announce: Vec<NewOutboxEntry>,
        now: Timestamp,
    ) -> Result<Option<Post>>;

    // ---- groups hosted elsewhere ----

    /// Creates or refreshes the local mirror of a group hosted on another node.
    async fn upsert_mirror_group(
        &self,
        remote_actor_id: &str,
        public_id: &str,
        settings: GroupSettings,
        now: Timestamp,
    ) -> Result<Group>;
    async fn group_by_remote_actor(&self, remote_actor_id: &str) -> Result<Option<Group>>;
    /// Shows a mirrored group with its host's settings and member count (members on every node),
    /// from the host's group document.
    async fn refresh_mirror_group(
        &self,
        group_id: i64,
        settings: GroupSettings,
        member_count: Option<u32>,
        now: Timestamp,
    ) -> Result<Group>;
    /// An account asks to join a mirrored group: a patient as a pseudonym, which is created (or
    /// kept, under the new name); doctors and staff as themselves (`pseudonym` is `None`). The
    /// membership is pending until the host accepts; `follow` is queued in the same transaction.
    /// Conflicts: `already_member`, `banned`.
    async fn join_remote_group(
        &self,
        user: UserId,
        group_id: i64,
        pseudonym: Option<Pseudonym>,
        follow: Vec<NewOutboxEntry>,
        now: Timestamp,
    ) -> Result<Member>;
    /// The host's answer to a pending request: the membership becomes active or rejected.
    async fn answer_remote_join(
        &self,
        group_id: i64,
        user: UserId,
        accepted: bool,
        now: Timestamp,
    ) -> Result<Member>;
    /// The host changed an account's membership of a mirrored group (role, removal, ban): this
    /// node shows it the same way. A membership the member left (or that was refused) is not made
    /// active again this way. `None` if the account has no membership there.
    async fn set_mirror_membership(
        &self,
        group_id: i64,
        user: UserId,
        state: MemberState,
        role: GroupRole,
        now: Timestamp,
    ) -> Result<Option<Member>>;
    async fn pseudonym(&self, public_id: &str) -> Result<Option<Pseudonym>>;
    /// The account's pseudonym in a group, created with `p`'s id and name if it has none.
    async fn ensure_pseudonym(&self, p: Pseudonym) -> Result<Pseudonym>;
    async fn pseudonym_of(&self, user: UserId, group_id: i64) -> Result<Option<Pseudonym>>;
}
