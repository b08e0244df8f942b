//! Accounts of a hospital node: who they are, which role they have, and the rules their fields obey.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The node-local, numeric id of an account. Never shown to other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an account may do on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Hospital administrator: manages accounts, invites, credentials and partner hospitals.
    Admin,
    /// Hospital staff (nurses, educators, IT) who help moderate but are not doctors.
    Staff,
    /// A doctor, who may carry a credential issued by the hospital.
    Doctor,
    /// A patient, who signs up through an invite from the hospital.
    Patient,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Staff, Role::Doctor, Role::Patient];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Doctor => "doctor",
            Role::Patient => "patient",
        }
    }

    /// Whether this role manages the node's accounts.
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("role", "must be one of admin, staff, doctor, patient")
            })
    }
}

/// A field that broke a rule, and which rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 10;
/// Argon2 accepts longer input, but nobody types more; the bound keeps hashing cheap for the server.
pub const PASSWORD_MAX: usize = 256;
pub const DISPLAY_NAME_MAX: usize = 64;

/// Usernames are login names: lower-case ASCII letters, digits, `_`, `-` and `.`, starting with a
/// letter or digit. They also name doctors' actors in URLs, so they must be URL-safe.
/// Display names carry the human (and Chinese) name.
pub fn validate_username(name: &str) -> Result<(), ValidationError> {
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(ValidationError::new(
            "username",
            format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters long"),
        ));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
    if !name.chars().all(ok_char) {
        return Err(ValidationError::new(
            "username",
            "may contain only lower-case letters a-z, digits, '_', '-' and '.'",
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "username",
            "must start with a letter or a digit",
        ));
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), ValidationError> {
    let len = password.chars().count();
    if len < PASSWORD_MIN {
        return Err(ValidationError::new(
            "password",
            format!("must be at least {PASSWORD_MIN} characters long"),
        ));
    }
    if len > PASSWORD_MAX {
        return Err(ValidationError::new(
            "password",
            format!("must be at most {PASSWORD_MAX} characters long"),
        ));
    }
    Ok(())
}

pub fn validate_display_name(name: &str) -> Result<(), ValidationError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new("display_name", "must not be empty"));
    }
    if trimmed.chars().count() > DISPLAY_NAME_MAX {
        return Err(ValidationError::new(
            "display_name",
            format!("must be at most {DISPLAY_NAME_MAX} characters long"),
        ));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A doctor's credential as recorded by the hospital: who checked which licence, and when.
/// The hospital node signs it when it federates (see `spec/federation.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Professional title, e.g. "主任医师" or "Consultant cardiologist".
    pub title: String,
    pub specialty: String,
    pub licence_number: String,
    /// The day the hospital checked the licence (YYYY-MM-DD).
    pub checked_on: chrono::NaiveDate,
    pub issued_at: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Valid,
    Expired,
    Revoked,
}

impl Credential {
    pub fn status(&self, now: Timestamp) -> CredentialStatus {
        if self.revoked_at.is_some_and(|t| t <= now) {
            CredentialStatus::Revoked
        } else if self.valid_until.is_some_and(|t| t <= now) {
            CredentialStatus::Expired
        } else {
            CredentialStatus::Valid
        }
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, value) in [
            ("title", &self.title),
            ("specialty", &self.specialty),
            ("licence_number", &self.licence_number),
        ] {
            let len = value.trim().chars().count();
            if len == 0 {
                return Err(ValidationError::new(field, "must not be empty"));
            }
            if len > 128 {
                return Err(ValidationError::new(
                    field,
                    "must be at most 128 characters long",
                ));
            }
        }
        if let Some(until) = self.valid_until
            && until <= self.issued_at
        {
            return Err(ValidationError::new(
                "valid_until",
                "must be later than the moment the credential is recorded",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(validate_username("dr.wang").is_ok());
        assert!(validate_username("li_2").is_ok());
        assert!(validate_username("ab").is_err());
        assert!(validate_username("Wang").is_err());
        assert!(validate_username("王医生").is_err());
        assert!(validate_username(".hidden").is_err());
        assert!(validate_username(&"a".repeat(33)).is_err());
    }

    #[test]
    fn passwords_and_names() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough pass").is_ok());
        assert!(validate_password(&"x".repeat(257)).is_err());
        assert!(validate_display_name("王医生").is_ok());
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name("a\u{7}b").is_err());
    }

    #[test]
    fn roles_parse() {
        assert_eq!("doctor".parse::<Role>(), Ok(Role::Doctor));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn credential_status_follows_dates() {
        let mut c = Credential {
            title: "主任医师".into(),
            specialty: "Cardiology".into(),
            licence_number: "110101".into(),
            checked_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
            issued_at: Timestamp::from_millis(1_000),
            valid_until: Some(Timestamp::from_millis(10_000)),
            revoked_at: None,
        };
        assert_eq!(
            c.status(Timestamp::from_millis(5_000)),
            CredentialStatus::Valid
        );
        assert_eq!(
            c.status(Timestamp::from_millis(10_000)),
            CredentialStatus::Expired
        );
        c.revoked_at = Some(Timestamp::from_millis(2_000));
        assert_eq!(
            c.status(Timestamp::from_millis(5_000)),
            CredentialStatus::Revoked
        );
        c.valid_until = Some(Timestamp::from_millis(500));
        assert!(c.validate().is_err());
    }
}
