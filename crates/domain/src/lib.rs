//! Caremesh's domain: identifiers, value types and the rules that do not depend on storage or HTTP
//! (which usernames are valid, how long a password must be, which role may do what).
//!
//! This crate does no I/O and depends on no other Caremesh crate; every other crate depends on it.

pub mod account;
pub mod group;
pub mod time;

pub use account::{
    Credential, CredentialStatus, Role, UserId, ValidationError, validate_display_name,
    validate_password, validate_username,
};
pub use group::{
    GroupRole, Language, MemberListVisibility, MemberState, PostKind, clean_line, clean_text,
    validate_condition_code,
};
pub use time::{Clock, SystemClock, Timestamp};
