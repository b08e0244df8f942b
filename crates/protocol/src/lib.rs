//! Cryptographic and wire-format building blocks of the Caremesh federation protocol.
//!
//! This crate owns:
//!
//! - [`keys`]: Ed25519 key pairs and public keys (seed, PKCS#8 and SPKI PEM forms);
//! - [`multikey`]: FEP-521a `Multikey` documents and multibase key encodings;
//! - [`digest`]: RFC 9530 `Content-Digest` and the older `Digest` header;
//! - [`jcs`]: RFC 8785 JSON canonicalization;
//! - [`proof`]: FEP-8b32 object integrity proofs with the `eddsa-jcs-2022` cryptosuite;
//! - [`httpsig`]: draft-cavage-12 HTTP signatures (`hs2019`) and RFC 9421 HTTP message
//!   signatures (`Signature-Input`).
//!
//! It performs no I/O: every function takes bytes, strings or JSON values and returns the
//! same, and a clock is always passed in by the caller. It must not depend on storage,
//! HTTP client or server frameworks, or an async runtime; those live in `federation`,
//! `web` and `server`, which call into this crate.

pub mod digest;
pub mod httpsig;
pub mod jcs;
pub mod keys;
pub mod multikey;
pub mod proof;
mod sf;
#[cfg(test)]
mod sf_suite;

pub use keys::{KeyPair, PublicKey};

/// Everything that can go wrong while encoding, decoding, signing or verifying.
///
/// The variants are deliberately specific so that a federation endpoint can log why a
/// request was refused; none of them carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system could not provide random bytes.
    #[error("operating system randomness unavailable: {0}")]
    Randomness(String),

    /// A key could not be decoded (bad PEM/DER, not Ed25519, not a curve point, ...).
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A key or seed had the wrong number of bytes.
    #[error("wrong key length: expected {expected} bytes, found {found}")]
    KeyLength {
        /// Required length in bytes.
        expected: usize,
        /// Length that was supplied.
        found: usize,
    },

    /// A multibase string did not use the base58btc (`z`) encoding or was not valid base58.
    #[error("invalid multibase value: {0}")]
    Multibase(String),

    /// A multibase key started with the wrong multicodec prefix.
    #[error("wrong multicodec prefix: expected {expected}, found {found}")]
    MulticodecPrefix {
        /// The prefix that was required, as hex bytes.
        expected: &'static str,
        /// The bytes that were found, as hex.
        found: String,
    },

    /// A `Multikey` document was not usable (wrong `type`, ...).
    #[error("invalid Multikey document: {0}")]
    InvalidMultikey(String),

    /// The signature bytes had a wrong length or encoding.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),

    /// The signature is well-formed but does not verify with the given key and message.
    #[error("signature verification failed")]
    BadSignature,

    /// A `Digest` or `Content-Digest` header could not be parsed.
    #[error("malformed digest header: {0}")]
    MalformedDigest(String),

    /// A digest header names no algorithm this node accepts.
    #[error("unsupported digest algorithm: {0}")]
    UnsupportedDigestAlgorithm(String),

    /// A digest header does not match the body it came with.
    #[error("{algorithm} digest does not match the request body")]
    DigestMismatch {
        /// The algorithm whose digest differed.
        algorithm: String,
    },

    /// A JSON value cannot be canonicalized (RFC 8785 only allows finite IEEE doubles).
    #[error("cannot canonicalize JSON: {0}")]
    Canonicalization(String),

    /// An integrity proof or its options were missing or badly shaped.
    #[error("malformed integrity proof: {0}")]
    MalformedProof(String),

    /// The proof uses a type or cryptosuite other than `DataIntegrityProof`/`eddsa-jcs-2022`.
    #[error("unsupported proof type or cryptosuite: {0}")]
    UnsupportedCryptosuite(String),

    /// A `Signature`, `Signature-Input` or `Authorization` header could not be parsed.
    #[error("malformed signature header: {0}")]
    MalformedSignatureHeader(String),

    /// The signature names an algorithm other than Ed25519 / `hs2019`.
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedAlgorithm(String),

    /// A header the signature needs is absent from the request.
    #[error("missing header: {0}")]
    MissingHeader(String),

    /// The signature does not cover a header or component this node requires.
    #[error("signature does not cover required component `{0}`")]
    NotCovered(String),

    /// A date (HTTP `Date`, `created`, `expires`) could not be parsed or is not usable.
    #[error("invalid date: {0}")]
    InvalidDate(String),

    /// The signature's date is further in the past than the allowed skew.
    #[error("signature expired: dated {age_secs} s in the past, at most {max_secs} s allowed")]
    Expired {
        /// How old the date is, in seconds.
        age_secs: u64,
        /// The allowed window, in seconds.
        max_secs: u64,
    },

    /// The signature's date is further in the future than the allowed skew.
    #[error("signature dated {ahead_secs} s in the future, at most {max_secs} s allowed")]
    FromTheFuture {
        /// How far ahead of the verifier's clock the date is, in seconds.
        ahead_secs: u64,
        /// The allowed window, in seconds.
        max_secs: u64,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
pub(crate) mod test_vectors {
    //! The published test vectors (RFC 8032, RFC 9421, FEP-8b32 and others), copied into this
    //! repository as `tests/vectors/signatures.json` and loaded from that file: each value was
    //! computed independently of this code, so a test that disagrees with one is wrong.
    #![allow(clippy::expect_used)]

    use serde_json::Value;

    pub(crate) const SIGNATURES_JSON: &str = include_str!("../tests/vectors/signatures.json");

    pub(crate) fn vectors() -> Value {
        serde_json::from_str(SIGNATURES_JSON).expect("signatures.json is valid JSON")
    }

    /// The string at `section.field`.
    pub(crate) fn s(section: &str, field: &str) -> String {
        vectors()[section][field]
            .as_str()
            .unwrap_or_else(|| panic!("vector {section}.{field} is a string"))
            .to_owned()
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "even hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
            .collect()
    }
}
