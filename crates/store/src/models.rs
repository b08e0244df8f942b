use std::fmt;

use caremesh_domain::{Role, Timestamp, UserId};
use serde::Serialize;

/// An account of this node.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A login session. Only the SHA-256 of its token is stored, so a database leak does not leak
/// live sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

pub type NewSession = Session;

/// An invitation to sign up. Only the SHA-256 of its token is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invite {
    pub id: i64,
    #[serde(skip)]
    pub token_hash: String,
    pub role: Role,
    pub label: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub max_uses: u32,
    pub uses: u32,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteState {
    Usable,
    Expired,
    UsedUp,
    Revoked,
}

impl Invite {
    pub fn state(&self, now: Timestamp) -> InviteState {
        if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if self.uses >= self.max_uses {
            InviteState::UsedUp
        } else if self.expires_at <= now {
            InviteState::Expired
        } else {
            InviteState::Usable
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewInvite {
    pub token_hash: String,
    pub role: Role,
    pub label: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub max_uses: u32,
}
