//! Why a federated request was refused or a federation step failed. Each variant has a stable
//! snake_case code and an HTTP status, listed in `spec/federation.md`.

use caremesh_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("the request carries no Signature header")]
    Unsigned,
    #[error("the signature is invalid: {0}")]
    BadSignature(String),
    #[error("the signature's date is outside the accepted window: {0}")]
    StaleSignature(String),
    #[error("the body does not match its digest: {0}")]
    DigestMismatch(String),
    #[error("the request was signed for another host: {0}")]
    WrongHost(String),
    #[error("{0} is not a partner of this node")]
    NotPartner(String),
    #[error("the signing key could not be obtained: {0}")]
    KeyUnavailable(String),
    #[error("the activity's actor does not belong to the signer's node: {0}")]
    ActorMismatch(String),
    #[error("the integrity proof is missing or invalid: {0}")]
    BadProof(String),
    #[error("malformed activity: {0}")]
    Malformed(String),
    #[error("too many requests from {0}")]
    RateLimited(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("invalid partner {0}")]
    InvalidPartner(String),
    #[error("remote request failed: {0}")]
    Remote(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key handling failed: {0}")]
    Crypto(String),
}

impl FederationError {
    /// The stable code sent in error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "signature_missing",
            Self::BadSignature(_) => "signature_invalid",
            Self::StaleSignature(_) => "signature_expired",
            Self::DigestMismatch(_) => "digest_mismatch",
            Self::WrongHost(_) => "wrong_host",
            Self::NotPartner(_) => "not_a_partner",
            Self::KeyUnavailable(_) => "key_unavailable",
            Self::ActorMismatch(_) => "actor_mismatch",
            Self::BadProof(_) => "proof_invalid",
            Self::Malformed(_) => "malformed_activity",
            Self::RateLimited(_) => "rate_limited",
            Self::TooLarge(_) => "payload_too_large",
            Self::InvalidPartner(_) => "invalid_partner",
            Self::Remote(_) => "remote_failed",
            Self::Store(_) | Self::Crypto(_) => "internal_error",
        }
    }

    /// The HTTP status the inbox answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unsigned
            | Self::BadSignature(_)
            | Self::StaleSignature(_)
            | Self::DigestMismatch(_)
            | Self::WrongHost(_)
            | Self::KeyUnavailable(_) => 401,
            Self::NotPartner(_) | Self::ActorMismatch(_) => 403,
            Self::BadProof(_) | Self::Malformed(_) | Self::InvalidPartner(_) => 400,
            Self::RateLimited(_) => 429,
            Self::TooLarge(_) => 413,
            Self::Remote(_) => 502,
            Self::Store(_) | Self::Crypto(_) => 500,
        }
    }
}

impl From<caremesh_protocol::Error> for FederationError {
    fn from(e: caremesh_protocol::Error) -> Self {
        Self::Crypto(e.to_string())
    }
}
