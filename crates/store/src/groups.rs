//! Groups, memberships, group invites, posts, attachments, the library, reports and the
//! moderation log.
//!
//! The store enforces what must hold even under concurrent requests (the size limit, one use per
//! invite redemption, authorship of edits, membership of authors) and writes every moderation
//! action to the moderation log in the same transaction as the action. Who may call what (roles)
//! is checked by the caller.

use async_trait::async_trait;
use caremesh_domain::{GroupRole, MemberState, Timestamp, UserId};

use crate::{
    Acting, Attachment, FeedPosition, FeedSort, Group, GroupInvite, GroupRequest, GroupSettings,
    ImportedPost, LibraryFolder, LibraryItem, Member, ModerationEntry, NewAttachment, NewGroup,
    NewGroupInvite, NewGroupRequest, NewLibraryItem, NewOutboxEntry, NewPost, Post, PostEdit,
    QueueItem, ReplySort, Report, Reporter, Result, Session, User,
};

#[async_trait]
pub trait GroupStore: Send + Sync {
    // ---- groups ----

    /// Creates a group with its creator as the active owner. [`StoreError::Conflict`]
    /// `group_exists` if the public id is taken.
    async fn create_group(&self, new: NewGroup, now: Timestamp) -> Result<Group>;
    async fn group_by_public_id(&self, public_id: &str) -> Result<Group>;
    async fn group_by_id(&self, id: i64) -> Result<Group>;
    /// Replaces the group's settings; logged as `update_settings`.
    async fn update_group(
        &self,
        group_id: i64,
        settings: GroupSettings,
        by: UserId,
        now: Timestamp,
    ) -> Result<Group> {
        self.update_group_with(group_id, settings, by.into(), now, Vec::new())
            .await
    }
    /// `update_group` by an account or a member of another node, queueing `outbox` (what other
    /// nodes are told) in the same transaction.
    async fn update_group_with(
        &self,
        group_id: i64,
        settings: GroupSettings,
        by: Acting,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Group>;
    /// The groups in which `user` is an active member, by group id, after `after`.
    async fn groups_of_user(
        &self,
        user: UserId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(Group, Member)>>;
    /// The group with this public id and the account's membership of it (in any state): what
    /// every group request checks first.
    async fn group_access(&self, public_id: &str, user: UserId) -> Result<(Group, Option<Member>)>;
    /// [`AccountStore::session_user`](crate::AccountStore::session_user) and
    /// [`GroupStore::group_access`] in one round trip, as every group request needs both: the
    /// session and its account (not found when unknown, expired or disabled), and the group with
    /// this public id (`None` when there is none) with the account's membership of it.
    async fn session_group_access(
        &self,
        token_hash: &str,
        group_public_id: &str,
        now: Timestamp,
    ) -> Result<(Session, User, Option<(Group, Option<Member>)>)>;
    /// Every group of the node, by id, after `after` (for hospital administrators).
    async fn list_groups(&self, after: Option<i64>, limit: u32) -> Result<Vec<Group>>;

    // ---- members ----

    /// The account's membership of the group in any state, if it has one.
    async fn membership(&self, group_id: i64, user: UserId) -> Result<Option<Member>>;
    async fn member_by_id(&self, group_id: i64, member_id: i64) -> Result<Member>;
    /// Members in the given state, by membership id, after `after`.
    async fn list_members(
        &self,
        group_id: i64,
        state: MemberState,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Member>>;
    /// Redeems a group invite: the account becomes an active member and the invite loses a use,
    /// in one transaction. Conflicts: `invite_unusable`, `already_member`, `banned`, `group_full`
    /// (with `max_members` active members); none of them uses the invite.
    async fn join_by_invite(
        &self,
        token: &str,
        user: UserId,
        max_members: u32,
        now: Timestamp,
    ) -> Result<(Group, Member)>;
    /// Asks to join. Conflicts: `already_member`, `already_requested`, `banned`.
    async fn request_join(
        &self,
        group_id: i64,
        user: UserId,
        message: Option<String>,
        now: Timestamp,
    ) -> Result<Member>;
    /// Approves (the requester becomes an active member) or rejects a pending request; logged as
    /// `approve_join` or `reject_join`. Conflicts: `no_pending_request`, `group_full`.
    async fn decide_join(
        &self,
        group_id: i64,
        member_id: i64,
        approve: bool,
        by: UserId,
        max_members: u32,
        now: Timestamp,
    ) -> Result<Member> {
        self.decide_join_with(
            group_id,
            member_id,
            approve,
            by.into(),
            max_members,
            now,
            Vec::new(),
        )
        .await
    }
    /// `decide_join`, queueing `outbox` (the answer to a member of another node) with it.
    #[allow(clippy::too_many_arguments)]
    async fn decide_join_with(
        &self,
        group_id: i64,
        member_id: i64,
        approve: bool,
        by: Acting,
        max_members: u32,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Member>;
    /// The account leaves the group. Conflicts: `not_a_member`, `owner_cannot_leave`.
    async fn leave_group(&self, group_id: i64, user: UserId, now: Timestamp) -> Result<Member> {
        self.leave_group_with(group_id, user, now, Vec::new()).await
    }
    /// `leave_group`, queueing `outbox` (for a group hosted elsewhere, the host is told) with it.
    async fn leave_group_with(
        &self,
        group_id: i64,
        user: UserId,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Member>;
    /// Removes (or bans) a member; logged as `remove_member` (or `ban`) with `reason`. A banned
    /// member cannot come back until unbanned. Conflicts: `not_a_member` (nothing to remove),
    /// `already_banned`, `cannot_remove_owner`.
    async fn remove_member(
        &self,
        group_id: i64,
        member_id: i64,
        ban: bool,
        reason: Option<String>,
        by: UserId,
        now: Timestamp,
    ) -> Result<Member> {
        self.remove_member_with(group_id, member_id, ban, reason, by.into(), now, Vec::new())
            .await
    }
    /// `remove_member` by an account or a member of another node, queueing `outbox` with it.
    #[allow(clippy::too_many_arguments)]
    async fn remove_member_with(
        &self,
        group_id: i64,
        member_id: i64,
        ban: bool,
        reason: Option<String>,
        by: Acting,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Member>;
    /// Lifts a ban (the member may be invited again); logged as `unban`. Conflict `not_banned`.
    async fn unban_member(
        &self,
        group_id: i64,
        member_id: i64,
        by: UserId,
        now: Timestamp,
    ) -> Result<Member> {
        self.unban_member_with(group_id, member_id, by.into(), now, Vec::new())
            .await
    }
    /// `unban_member` by an account or a member of another node, queueing `outbox` with it.
    async fn unban_member_with(
        &self,
        group_id: i64,
        member_id: i64,
        by: Acting,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Member>;
    /// Changes an active member's role among doctor, moderator and member; logged as
    /// `appoint_*`/`dismiss_*`. Conflicts: `not_a_member`, `not_a_doctor` (only doctors' accounts
    /// can be the group's doctors; for a member of another node, the caller checks the credential
    /// their hospital signed), `cannot_change_owner`.
    async fn set_member_role(
        &self,
        group_id: i64,
        member_id: i64,
        role: GroupRole,
        by: UserId,
        now: Timestamp,
    ) -> Result<Member> {
        self.set_member_role_with(group_id, member_id, role, by.into(), now, Vec::new())
            .await
    }
    /// `set_member_role`, queueing `outbox` (the member's node is told) with it.
    async fn set_member_role_with(
        &self,
        group_id: i64,
        member_id: i64,
        role: GroupRole,
        by: Acting,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Member>;

    /// Sets the name the account shows in the group (`name`, already checked), as a member who is
    /// active or waiting to be admitted; conflict `not_a_member` otherwise. Posts and member lists
    /// show it instead of the account's display name. When the account has a pseudonym in the
    /// group (always so in a group mirrored from another node), the pseudonym's display name
    /// changes in the same transaction: it is the same name, as other nodes see it.
    async fn set_member_name(&self, group_id: i64, user: UserId, name: String) -> Result<Member> {
        self.set_member_name_with(group_id, user, name, Timestamp::from_millis(0), Vec::new())
            .await
    }
    /// `set_member_name`, queueing `outbox` (the pseudonym's new name, for the host) with it.
    async fn set_member_name_with(
        &self,
        group_id: i64,
        user: UserId,
        name: String,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Member>;

    // ---- group invites ----

    /// Conflict `invite_exists` if the token is taken.
    async fn create_group_invite(&self, new: NewGroupInvite) -> Result<GroupInvite>;
    async fn group_invite_by_token(&self, token: &str) -> Result<GroupInvite>;
    async fn group_invite_by_id(&self, group_id: i64, id: i64) -> Result<GroupInvite>;
    /// The group's invites, newest first, with ids below `before`.
    async fn list_group_invites(
        &self,
        group_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<GroupInvite>>;
    /// Revoking twice keeps the first revocation time.
    async fn revoke_group_invite(
        &self,
        group_id: i64,
        id: i64,
        now: Timestamp,
    ) -> Result<GroupInvite>;

    // ---- posts ----

    /// Writes a post. The author must be an active member (conflict `not_a_member`); a reply's
    /// thread must be a top-level post of the same group that is not deleted (`not_found` /
    /// `thread_deleted`); attachments must be the author's, of this group and unused
    /// (`attachment_unusable`). A reply by a doctor of the group marks its question answered.
    async fn create_post(&self, new: NewPost) -> Result<Post> {
        self.create_post_with(new, Vec::new()).await
    }
    /// `create_post`, queueing `outbox` (the post for other nodes) in the same transaction.
    async fn create_post_with(&self, new: NewPost, outbox: Vec<NewOutboxEntry>) -> Result<Post>;
    /// A post of the group (any kind, also deleted or scheduled), as `viewer` sees it.
    async fn post_by_public_id(
        &self,
        group_id: i64,
        public_id: &str,
        viewer: Option<UserId>,
    ) -> Result<Post>;
    /// Top-level posts published by `now`, pinned first, after `after`. Deleted posts without
    /// replies are left out; deleted posts with replies stay as tombstones.
    async fn feed(
        &self,
        group_id: i64,
        viewer: Option<UserId>,
        sort: FeedSort,
        after: Option<FeedPosition>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Post>>;
    /// Announcements scheduled after `now`, soonest first, after the position `(publish_at, id)`.
    async fn scheduled_posts(
        &self,
        group_id: i64,
        after: Option<(i64, i64)>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Post>>;
    /// Replies in a thread. `after` is `(key, id)`: key is the id (oldest) or the helpful count.
    async fn replies(
        &self,
        thread_id: i64,
        viewer: Option<UserId>,
        sort: ReplySort,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<Post>>;
    /// The author changes a post; the previous version is kept in its history. Conflicts:
    /// `not_author`, `post_deleted`.
    async fn edit_post(
        &self,
        post_id: i64,
        editor: UserId,
        title: Option<String>,
        body: String,
        now: Timestamp,
    ) -> Result<Post> {
        self.edit_post_with(post_id, editor, title, body, now, Vec::new())
            .await
    }
    /// `edit_post`, queueing `outbox` (the edit for other nodes) in the same transaction.
    async fn edit_post_with(
        &self,
        post_id: i64,
        editor: UserId,
        title: Option<String>,
        body: String,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// Deletes a post, leaving a tombstone. By its author (`moderator_reason` is `None`): the
    /// text and its history are erased. By a moderator: the text is kept in the history for
    /// moderators, open reports of it are resolved, and the removal is logged as `remove_post`.
    /// Conflict `post_deleted` if it is deleted already.
    async fn delete_post(
        &self,
        post_id: i64,
        by: UserId,
        moderator_reason: Option<Option<String>>,
        now: Timestamp,
    ) -> Result<Post> {
        self.delete_post_with(post_id, by, moderator_reason, now, Vec::new())
            .await
    }
    /// `delete_post`, queueing `outbox` (the deletion for other nodes) in the same transaction.
    async fn delete_post_with(
        &self,
        post_id: i64,
        by: UserId,
        moderator_reason: Option<Option<String>>,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// Earlier versions, oldest first.
    async fn post_history(&self, post_id: i64) -> Result<Vec<PostEdit>>;
    /// Marks (or unmarks) a post helpful; idempotent. Conflicts: `own_post`, `post_deleted`.
    async fn set_helpful(
        &self,
        post_id: i64,
        user: UserId,
        helpful: bool,
        now: Timestamp,
    ) -> Result<Post> {
        self.set_helpful_with(post_id, user, helpful, now, Vec::new())
            .await
    }
    /// `set_helpful`, queueing `outbox` (the mark for the group's host) in the same transaction
    /// when the mark changed.
    async fn set_helpful_with(
        &self,
        post_id: i64,
        user: UserId,
        helpful: bool,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// Marks `reply_id` the accepted answer of its question (or clears it with `None`).
    /// Conflicts: `not_a_question`, `not_in_thread`, `post_deleted`.
    async fn accept_answer(&self, question_id: i64, reply_id: Option<i64>) -> Result<Post> {
        self.accept_answer_with(question_id, reply_id, Timestamp::from_millis(0), Vec::new())
            .await
    }
    /// `accept_answer`, queueing `outbox` (the question's new state, for members' nodes) with it.
    async fn accept_answer_with(
        &self,
        question_id: i64,
        reply_id: Option<i64>,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// Conflict `not_top_level` for replies.
    async fn set_pinned(&self, post_id: i64, pinned: bool) -> Result<Post> {
        self.set_pinned_with(post_id, pinned, Timestamp::from_millis(0), Vec::new())
            .await
    }
    /// `set_pinned`, queueing `outbox` (the post's new state, for members' nodes) with it.
    async fn set_pinned_with(
        &self,
        post_id: i64,
        pinned: bool,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// A moderator removes someone's post (by an account, or by a member of another node):
    /// `delete_post` with a moderator's reason, queueing `outbox` with it.
    async fn remove_post_with(
        &self,
        post_id: i64,
        by: Acting,
        reason: Option<String>,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Post>;
    /// Notes that `user` has seen these posts (idempotent). Only ever counted, never listed: the
    /// pages show a doctor how many members saw an announcement, never who.
    async fn record_post_views(&self, post_ids: &[i64], user: UserId, now: Timestamp)
    -> Result<()>;
    /// How many distinct accounts have seen each of these posts, as `(post_id, count)`; posts
    /// nobody has seen are left out.
    async fn post_view_counts(&self, post_ids: &[i64]) -> Result<Vec<(i64, u64)>>;
    /// Open questions (no accepted answer, no reply by a doctor of the group, published, not
    /// deleted) in every group where `doctor` is an active owner or doctor, oldest first.
    async fn doctor_queue(
        &self,
        doctor: UserId,
        after: Option<(i64, i64)>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<QueueItem>>;
    /// Published, not deleted posts of the group whose title or text contains `query`
    /// (case-insensitive for Latin letters), newest first, with ids below `before`.
    async fn search_posts(
        &self,
        group_id: i64,
        viewer: Option<UserId>,
        query: &str,
        before: Option<i64>,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<Post>>;
    /// Loads many top-level posts by one author into a group at once, in one transaction
    /// (benchmarks; later, backfills). Returns how many were written.
    async fn import_posts(
        &self,
        group_id: i64,
        author: UserId,
        posts: Vec<ImportedPost>,
    ) -> Result<u64>;

    // ---- attachments ----

    /// Records a stored file, counting its size against the group's `quota_bytes`. Conflict
    /// `group_storage_full` when it would not fit.
    async fn add_attachment(&self, new: NewAttachment, quota_bytes: i64) -> Result<Attachment>;
    async fn attachment_by_public_id(&self, group_id: i64, public_id: &str) -> Result<Attachment>;

    // ---- library ----

    /// Conflict `folder_exists` for a second folder of the same name.
    async fn create_folder(
        &self,
        group_id: i64,
        name: String,
        by: UserId,
        now: Timestamp,
    ) -> Result<LibraryFolder> {
        self.create_folder_with(group_id, name, by.into(), now, Vec::new())
            .await
    }
    /// `create_folder`, queueing `outbox` (the library's new state) with it.
    async fn create_folder_with(
        &self,
        group_id: i64,
        name: String,
        by: Acting,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<LibraryFolder>;
    /// Folders by name.
    async fn list_folders(&self, group_id: i64) -> Result<Vec<LibraryFolder>>;
    async fn folder_by_id(&self, group_id: i64, folder_id: i64) -> Result<LibraryFolder>;
    /// Deletes a folder and its items (the posts and files themselves stay).
    async fn delete_folder(&self, group_id: i64, folder_id: i64) -> Result<()> {
        self.delete_folder_with(group_id, folder_id, Timestamp::from_millis(0), Vec::new())
            .await
    }
    /// `delete_folder`, queueing `outbox` with it.
    async fn delete_folder_with(
        &self,
        group_id: i64,
        folder_id: i64,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<()>;
    /// Conflicts: `already_in_folder`; not found if the folder, post or file is not the group's.
    async fn add_library_item(&self, new: NewLibraryItem) -> Result<LibraryItem> {
        let by = new.added_by.into();
        self.add_library_item_with(new, by, Vec::new()).await
    }
    /// `add_library_item` by an account or a member of another node (`by`, which stands for
    /// `new.added_by`), queueing `outbox` with it.
    async fn add_library_item_with(
        &self,
        new: NewLibraryItem,
        by: Acting,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<LibraryItem>;
    /// Items of one folder (or of the whole library), newest first, with ids below `before`.
    async fn library_items(
        &self,
        group_id: i64,
        folder_id: Option<i64>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LibraryItem>>;
    async fn remove_library_item(&self, group_id: i64, item_id: i64) -> Result<()> {
        self.remove_library_item_with(group_id, item_id, Timestamp::from_millis(0), Vec::new())
            .await
    }
    /// `remove_library_item`, queueing `outbox` with it.
    async fn remove_library_item_with(
        &self,
        group_id: i64,
        item_id: i64,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<()>;
    /// Library items whose title, folder name or file name contains `query`, newest first.
    async fn search_library(
        &self,
        group_id: i64,
        query: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LibraryItem>>;

    // ---- reports and moderation ----

    /// Conflicts: `already_reported` (an open report by the same account), `post_deleted`.
    async fn report_post(
        &self,
        group_id: i64,
        post_id: i64,
        reporter: UserId,
        reason: String,
        now: Timestamp,
    ) -> Result<Report> {
        self.report_post_with(
            group_id,
            post_id,
            Reporter::Account(reporter),
            reason,
            now,
            Vec::new(),
        )
        .await
    }
    /// `report_post` by an account or a member of another node. `outbox` (the report, for the
    /// group's host) is queued with it, and the report is then marked as sent (`forwarded_at`).
    async fn report_post_with(
        &self,
        group_id: i64,
        post_id: i64,
        reporter: Reporter,
        reason: String,
        now: Timestamp,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<Report>;
    /// Reports, oldest first, after `after`; only unresolved ones when `open_only`.
    async fn list_reports(
        &self,
        group_id: i64,
        open_only: bool,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Report>>;
    /// Closes a report without removing the post; logged as `dismiss_report`. Conflict
    /// `report_resolved`.
    async fn dismiss_report(
        &self,
        group_id: i64,
        report_id: i64,
        by: UserId,
        now: Timestamp,
    ) -> Result<Report>;

    // ---- requests to the hosts of groups mirrored here ----

    /// Records what a local doctor or moderator asks a group's host to do, and queues the
    /// request (`outbox`) in the same transaction.
    async fn add_group_request(
        &self,
        new: NewGroupRequest,
        outbox: Vec<NewOutboxEntry>,
    ) -> Result<GroupRequest>;
    /// The host of the group `group_id` answered the request sent as `activity_id`: `accepted`,
    /// or refused with a code and a reason. `None` if the group has no such pending request.
    async fn answer_group_request(
        &self,
        group_id: i64,
        activity_id: &str,
        accepted: bool,
        code: Option<String>,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<Option<GroupRequest>>;
    /// The requests an account sent about a group, newest first, with ids below `before`.
    async fn group_requests(
        &self,
        group_id: i64,
        user: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<GroupRequest>>;
    /// The moderation log, newest first, with ids below `before`.
    async fn moderation_log(
        &self,
        group_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ModerationEntry>>;
}
