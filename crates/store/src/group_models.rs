//! Models of groups, their members, invites, posts, attachments, library and moderation.
//!
//! Numeric ids (`id`) are node-local; `public_id`s are random and stable, and become part of the
//! ActivityPub URLs once groups federate. A member or a post author is a local account
//! (`user_id`) or a remote actor (`actor_id`, its URL).

use caremesh_domain::{
    GroupRole, Language, MemberListVisibility, MemberState, PostKind, Role, Timestamp, UserId,
};
use serde::Serialize;

use crate::InviteState;

/// What the owner sets about a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    pub name: String,
    pub condition: String,
    /// An optional code such as an ICD-10 chapter or code (`C50`).
    pub condition_code: Option<String>,
    pub city: String,
    pub language: Language,
    pub description: String,
    pub rules: String,
    pub member_list: MemberListVisibility,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub public_id: String,
    /// The actor URL of a group hosted on another node; `None` for groups hosted here.
    pub remote_actor_id: Option<String>,
    pub settings: GroupSettings,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Active members.
    pub member_count: u32,
    /// Bytes of attachments stored for the group.
    pub storage_bytes: i64,
}

#[derive(Clone, Debug)]
pub struct NewGroup {
    pub public_id: String,
    pub settings: GroupSettings,
    /// The creator, who becomes the group's owner.
    pub owner: UserId,
}

/// One account's (or remote actor's) membership of one group, in any state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub group_id: i64,
    pub user_id: Option<UserId>,
    pub actor_id: Option<String>,
    /// The name shown in this group: the one the member chose for it, else the account's display
    /// name (local members) or the actor's name (remote members).
    pub display_name: String,
    /// The account's role on this node, for local members.
    pub account_role: Option<Role>,
    pub role: GroupRole,
    pub state: MemberState,
    pub request_message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Member {
    pub fn is_active(&self) -> bool {
        self.state == MemberState::Active
    }
}

/// A link (and QR code) that admits logged-in accounts of this node into one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInvite {
    pub id: i64,
    pub group_id: i64,
    pub token: String,
    pub label: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub revoked_at: Option<Timestamp>,
}

impl GroupInvite {
    pub fn state(&self, now: Timestamp) -> InviteState {
        if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            InviteState::UsedUp
        } else if self.expires_at.is_some_and(|t| t <= now) {
            InviteState::Expired
        } else {
            InviteState::Usable
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewGroupInvite {
    pub group_id: i64,
    pub token: String,
    pub label: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletedBy {
    Author,
    Moderator,
}

impl DeletedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedBy::Author => "author",
            DeletedBy::Moderator => "moderator",
        }
    }
}

/// Who wrote a post, as the group shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostAuthor {
    pub user_id: Option<UserId>,
    pub actor_id: Option<String>,
    pub name: String,
    /// The author's membership in the group and its role now (`None` once the row is gone).
    pub member_id: Option<i64>,
    pub role: Option<GroupRole>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub id: i64,
    pub public_id: String,
    pub group_id: i64,
    pub kind: PostKind,
    /// For replies: the thread's first post.
    pub thread_id: Option<i64>,
    pub thread_public_id: Option<String>,
    pub author: PostAuthor,
    /// The object id on the node the post came from; `None` for posts written here.
    pub origin_id: Option<String>,
    pub title: Option<String>,
    pub body: String,
    pub pinned: bool,
    pub publish_at: Timestamp,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub deleted_by: Option<DeletedBy>,
    pub helpful_count: u32,
    pub reply_count: u32,
    pub accepted_reply_public_id: Option<String>,
    pub answered_by_doctor: bool,
    /// Whether the account that asked marked this post helpful.
    pub marked_helpful: bool,
    pub attachment_count: u32,
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug)]
pub struct NewPost {
    pub public_id: String,
    pub group_id: i64,
    pub kind: PostKind,
    pub thread_id: Option<i64>,
    pub author: UserId,
    pub title: Option<String>,
    pub body: String,
    pub pinned: bool,
    pub publish_at: Timestamp,
    pub created_at: Timestamp,
    /// Public ids of attachments the author uploaded to the group and has not used yet.
    pub attachments: Vec<String>,
}

/// A post for [`GroupStore::import_posts`](crate::GroupStore::import_posts): bulk loads
/// (benchmarks, and later backfills from other nodes).
#[derive(Clone, Debug)]
pub struct ImportedPost {
    pub public_id: String,
    pub kind: PostKind,
    pub title: Option<String>,
    pub body: String,
    pub publish_at: Timestamp,
    pub helpful_count: u32,
}

/// An earlier version of a post, kept for moderators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostEdit {
    pub id: i64,
    pub title: Option<String>,
    pub body: String,
    /// When this version was replaced.
    pub replaced_at: Timestamp,
    /// `edit` (the author changed it) or `removed` (a moderator removed the post).
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedSort {
    /// Pinned first, then newest first.
    Newest,
    /// Pinned first, then most "helpful" marks first.
    Helpful,
}

/// A position in the feed: the last post seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedPosition {
    pub pinned: bool,
    /// `publish_at` (newest) or `helpful_count` (helpful) of the last post.
    pub key: i64,
    pub id: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplySort {
    /// In the order written.
    Oldest,
    /// Most "helpful" marks first, then in the order written.
    Helpful,
}

/// A question in a doctor's queue, with the group it was asked in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    pub post: Post,
    pub group_public_id: String,
    pub group_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    pub public_id: String,
    pub group_id: i64,
    pub post_id: Option<i64>,
    pub uploaded_by: Option<UserId>,
    pub content_type: String,
    pub file_name: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the stored bytes; names the file under the media directory.
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub public_id: String,
    pub group_id: i64,
    pub uploaded_by: UserId,
    pub content_type: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryFolder {
    pub id: i64,
    pub group_id: i64,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub item_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryItem {
    pub id: i64,
    pub folder_id: i64,
    pub folder_name: String,
    pub title: String,
    pub post_public_id: Option<String>,
    pub attachment: Option<Attachment>,
    pub added_by: Option<UserId>,
    pub added_at: Timestamp,
}

/// What to save into a folder: a post or an attachment of the group (numeric ids).
#[derive(Clone, Debug)]
pub struct NewLibraryItem {
    pub group_id: i64,
    pub folder_id: i64,
    pub post_id: Option<i64>,
    pub attachment_id: Option<i64>,
    pub title: String,
    pub added_by: UserId,
    pub added_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub id: i64,
    pub group_id: i64,
    pub post_id: i64,
    pub post_public_id: String,
    /// The reported post's text as it is now (empty once removed).
    pub post_body: String,
    pub reporter: Option<UserId>,
    /// On a group's host, a reporter of another node (their actor there).
    pub reporter_actor: Option<String>,
    /// On the reporter's node, when the report was sent to the group's host (a group hosted
    /// elsewhere).
    pub forwarded_at: Option<Timestamp>,
    pub reason: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub resolution: Option<String>,
}

/// One line of a group's moderation log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModerationEntry {
    pub id: i64,
    pub group_id: i64,
    pub moderator: Option<UserId>,
    pub moderator_name: Option<String>,
    /// `join_by_invite` (the member is the one who acted), `approve_join`, `reject_join`, `remove_member`, `ban`, `unban`, `appoint_moderator`,
    /// `dismiss_moderator`, `appoint_doctor`, `dismiss_doctor`, `remove_post`, `dismiss_report`,
    /// `update_settings`.
    pub action: String,
    pub target_member_id: Option<i64>,
    pub target_name: Option<String>,
    pub target_post_public_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: Timestamp,
}

/// Who changes a group: an account of this node, or a member of the group who belongs to another
/// node (by membership id; they have no account here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acting {
    Account(UserId),
    Member(i64),
}

impl From<UserId> for Acting {
    fn from(u: UserId) -> Self {
        Self::Account(u)
    }
}

/// Who reports a post: an account of this node, or a member of another node by their actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reporter {
    Account(UserId),
    Remote(String),
}

/// What a doctor or moderator of a group hosted elsewhere asked its host to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRequest {
    pub id: i64,
    pub group_id: i64,
    pub user: Option<UserId>,
    /// The activity sent to the host.
    pub activity_id: String,
    /// `pin`, `unpin`, `accept_answer`, `clear_answer`, `remove_post`, `remove_member`,
    /// `ban_member`, `unban_member`, `create_folder`, `delete_folder`, `save_to_library`,
    /// `remove_from_library`.
    pub action: String,
    /// What it acts on (a post's or member's id as every node knows it, a folder's name).
    pub object: Option<String>,
    /// `pending`, `accepted` or `refused`.
    pub state: String,
    /// Why the host refused (a stable code and its explanation).
    pub code: Option<String>,
    pub reason: Option<String>,
    pub created_at: Timestamp,
    pub answered_at: Option<Timestamp>,
}

/// A request about to be sent to a group's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroupRequest {
    pub group_id: i64,
    pub user: UserId,
    pub activity_id: String,
    pub action: String,
    pub object: Option<String>,
    pub created_at: Timestamp,
}
