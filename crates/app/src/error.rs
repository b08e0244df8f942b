//! The one error type of the application layer. Every use-case returns it; the JSON API, the
//! pages, the CLI and the inbox each turn it into their own answer (status code, page, exit code).
//!
//! Each variant says whose fault it is, so that the meaning survives every surface: the caller's
//! (`Invalid`, `Forbidden`, `NotFound`, `Conflict`, `Gone`, `TooMany`), or the node's
//! (`Busy`: too much expensive work at once, try again; `Unavailable`: the store failed, try again; `Upstream`: a partner did not answer; `Internal`).
//! A store failure is never the caller's fault: across the wire it is a 503 that the sender
//! retries, never a 4xx that it parks.

use caremesh_domain::ValidationError;
use caremesh_federation::FederationError;
use caremesh_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No session, or one that expired.
    #[error("log in first")]
    Unauthenticated,
    /// A login refused: unknown account, wrong password or disabled account (which of them is
    /// not said).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// The caller may not do this. `code` is `forbidden` unless a more precise one helps
    /// (e.g. `credential_inactive`).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The named thing does not exist, or the caller may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change contradicts what is stored (`code` is stable snake_case).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// It existed but is no longer usable (an expired or withdrawn invite).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// A field broke a rule; the message names the field.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A query parameter or path segment could not be understood.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("{message}")]
    TooMany {
        message: String,
        retry_after_secs: u64,
    },
    /// A body or file over its limit (bytes).
    #[error("larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// A file refused for its size (`file_too_large`) or because the group's storage is full
    /// (`group_storage_full`).
    #[error("{message}")]
    FileTooLarge { code: &'static str, message: String },
    /// A file of a kind the node does not take (`unsupported_file_type`).
    #[error("{message}")]
    UnsupportedType { code: &'static str, message: String },
    /// Too much expensive work (password hashing, image decoding) is already running on this
    /// node: nothing was done; try again after `retry_after_secs`.
    #[error("the node is busy with {what}; try again shortly")]
    Busy {
        what: &'static str,
        retry_after_secs: u64,
    },
    /// The store failed (database down, disk full): nothing was changed; try again.
    #[error("the node's database is unavailable: {0}")]
    Unavailable(String),
    /// A partner node did not answer as it should.
    #[error("a partner node did not answer: {0}")]
    Upstream(String),
    /// A federated request was refused by the federation checks (signature, partner list,
    /// proofs): `status` and `code` as `spec/federation.md` lists them.
    #[error("{message}")]
    Federation {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// Anything else on this node's side; logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn forbidden_code(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::Gone {
            code,
            message: message.into(),
        }
    }

    /// A field that broke a rule (`invalid_field`), the message naming it.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            code: "invalid_field",
            message: message.into(),
        }
    }

    pub fn invalid_code(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::Invalid { code, .. }
            | Self::BadRequest { code, .. }
            | Self::FileTooLarge { code, .. }
            | Self::UnsupportedType { code, .. }
            | Self::Federation { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::TooMany { .. } => "too_many_attempts",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Busy { .. } => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Upstream(_) => "partner_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Whether the fault is on this node's side (or a partner's), not the caller's: the caller
    /// should try again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Busy { .. } | Self::Unavailable(_) | Self::Upstream(_) | Self::Internal(_)
        ) || matches!(self, Self::Federation { status, .. } if *status >= 500)
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict { code, message } => Self::Conflict { code, message },
            StoreError::NotReady(m) => Self::Unavailable(m),
            StoreError::Other(cause) => Self::Unavailable(cause.to_string()),
        }
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        Self::invalid(e.to_string())
    }
}

impl From<FederationError> for AppError {
    fn from(e: FederationError) -> Self {
        match e {
            // What the store refused keeps its own meaning; a store failure is the node's.
            FederationError::Store(s) => s.into(),
            FederationError::Crypto(m) => Self::Internal(m),
            FederationError::Remote(m) => Self::Upstream(m),
            FederationError::KeyUnavailable(ref m) => Self::Federation {
                status: e.status(),
                code: e.code(),
                message: m.clone(),
            },
            other => Self::Federation {
                status: other.status(),
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_the_nodes_fault_and_retryable() {
        let e: AppError = StoreError::other(std::io::Error::other("disk full")).into();
        assert!(matches!(e, AppError::Unavailable(_)));
        assert!(e.is_retryable());
        let e: AppError = FederationError::Store(StoreError::NotReady("down".into())).into();
        assert!(e.is_retryable(), "{e:?}");
    }

    #[test]
    fn what_the_store_refused_keeps_its_code() {
        let e: AppError = StoreError::conflict("group_full", "full").into();
        assert_eq!(e.code(), "group_full");
        assert!(!e.is_retryable());
        let e: AppError = FederationError::Store(StoreError::NotFound("post")).into();
        assert!(e.is_not_found());
    }

    #[test]
    fn federation_refusals_keep_their_status() {
        let e: AppError = FederationError::NotPartner("x.example".into()).into();
        assert!(matches!(e, AppError::Federation { status: 403, .. }));
        assert_eq!(e.code(), "not_a_partner");
    }
}
