use std::error::Error as StdError;

/// What can go wrong in a store. The web layer maps each variant to a status code; `Other` is
/// logged and never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (or is not visible, e.g. an expired session).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change contradicts what is stored. `code` is a stable snake_case identifier.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The database is reachable but not ready (e.g. migrations missing).
    #[error("store not ready: {0}")]
    NotReady(String),
    /// Anything else: connection failures, I/O, corrupt rows.
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn other(e: impl StdError + Send + Sync + 'static) -> Self {
        Self::Other(Box::new(e))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    pub fn conflict_code(&self) -> Option<&'static str> {
        match self {
            Self::Conflict { code, .. } => Some(code),
            _ => None,
        }
    }
}
