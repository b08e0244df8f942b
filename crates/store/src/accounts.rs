//! Accounts, doctors' credentials, login sessions and sign-up invites.

use async_trait::async_trait;
use caremesh_domain::{Credential, Role, Timestamp, UserId};

use crate::{Invite, NewInvite, NewOutboxEntry, NewSession, NewUser, Result, Session, User};

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account. [`StoreError::Conflict`] with code `username_taken` if the name exists.
    async fn create_user(&self, new: NewUser, now: Timestamp) -> Result<User>;
    async fn user_by_id(&self, id: UserId) -> Result<User>;
    async fn user_by_username(&self, username: &str) -> Result<User>;
    /// Accounts ordered by id, those after `after`, at most `limit`.
    async fn list_users(
        &self,
        role: Option<Role>,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>>;
    async fn count_users(&self, role: Option<Role>) -> Result<u64>;
    /// Replaces the password hash and ends every session of the account.
    async fn set_password(&self, id: UserId, password_hash: &str, now: Timestamp) -> Result<()>;
    /// Disables or re-enables an account; disabling ends every session of it.
    async fn set_disabled(&self, id: UserId, disabled: bool, now: Timestamp) -> Result<()>;

    // ---- doctor credentials ----

    /// Records (or replaces) the credential of a doctor. [`StoreError::Conflict`] with code
    /// `not_a_doctor` if the account is not a doctor.
    /// `announce` (the `Update` of the doctor's actor for partner nodes) is queued in the same
    /// transaction.
    async fn set_credential(
        &self,
        user: UserId,
        credential: &Credential,
        announce: Vec<NewOutboxEntry>,
    ) -> Result<()>;
    async fn credential(&self, user: UserId) -> Result<Option<Credential>>;
    /// Marks the current credential revoked. [`StoreError::NotFound`] if there is none.
    async fn revoke_credential(
        &self,
        user: UserId,
        now: Timestamp,
        announce: Vec<NewOutboxEntry>,
    ) -> Result<Credential>;

    // ---- sessions ----

    async fn create_session(&self, session: NewSession) -> Result<()>;
    /// The session with this token hash and its account, if the session has not expired and the
    /// account is not disabled; [`StoreError::NotFound`] otherwise.
    async fn session_user(&self, token_hash: &str, now: Timestamp) -> Result<(Session, User)>;
    /// Ends a session. Returns whether it existed.
    async fn delete_session(&self, token_hash: &str) -> Result<bool>;
    /// Removes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    // ---- invites ----

    async fn create_invite(&self, new: NewInvite) -> Result<Invite>;
    async fn invite_by_token_hash(&self, token_hash: &str) -> Result<Invite>;
    async fn invite_by_id(&self, id: i64) -> Result<Invite>;
    /// Invites ordered by id, newest first: those with an id below `before`, at most `limit`.
    async fn list_invites(&self, before: Option<i64>, limit: u32) -> Result<Vec<Invite>>;
    /// Revokes an invite so it cannot be used any more; revoking twice is harmless.
    async fn revoke_invite(&self, id: i64, now: Timestamp) -> Result<Invite>;
    /// Uses one redemption of the invite and creates the account with the invite's role, in one
    /// transaction. [`StoreError::Conflict`] with `invite_unusable` if the invite is expired, used
    /// up or revoked, and `username_taken` if the name exists; neither consumes a use.
    async fn redeem_invite(&self, token_hash: &str, new: NewUser, now: Timestamp) -> Result<User>;
}
