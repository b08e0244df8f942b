//! Body digests: RFC 9530 `Content-Digest` and the draft-cavage era `Digest` header.
//!
//! An HTTP signature covers the digest header, not the body, so a receiver must check
//! the digest against the body itself: [`verify_content_digest`] and
//! [`verify_legacy_digest`] do that.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256, Sha512};

use crate::sf::{self, BareItem, Member};
use crate::{Error, Result};

/// Hash algorithms accepted in digest headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256 (`sha-256` in `Content-Digest`, `SHA-256` in `Digest`).
    Sha256,
    /// SHA-512 (`sha-512` in `Content-Digest`, `SHA-512` in `Digest`).
    Sha512,
}

impl DigestAlgorithm {
    /// The RFC 9530 registry name (`sha-256`, `sha-512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    /// The algorithm of an RFC 9530 / RFC 3230 name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("sha-256") {
            Some(Self::Sha256)
        } else if name.eq_ignore_ascii_case("sha-512") {
            Some(Self::Sha512)
        } else {
            None
        }
    }

    /// The digest of `body`.
    pub fn hash(self, body: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(body).to_vec(),
            Self::Sha512 => Sha512::digest(body).to_vec(),
        }
    }
}

/// The `Content-Digest` value for `body`, e.g. `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`.
pub fn content_digest(algorithm: DigestAlgorithm, body: &[u8]) -> String {
    format!(
        "{}=:{}:",
        algorithm.name(),
        BASE64.encode(algorithm.hash(body))
    )
}

/// The entries of a `Content-Digest` header: algorithm name (lower case) and digest bytes.
pub fn parse_content_digest(header: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let members = sf::parse_dictionary(header).map_err(Error::MalformedDigest)?;
    if members.is_empty() {
        return Err(Error::MalformedDigest("empty Content-Digest".to_owned()));
    }
    members
        .into_iter()
        .map(|(name, member)| match member {
            Member::Item(item) => match item.bare {
                BareItem::ByteSeq(bytes) => Ok((name, bytes)),
                _ => Err(Error::MalformedDigest(format!(
                    "{name} is not a byte sequence"
                ))),
            },
            Member::InnerList(..) => Err(Error::MalformedDigest(format!(
                "{name} is not a byte sequence"
            ))),
        })
        .collect()
}

/// Check a `Content-Digest` header against `body`.
///
/// Every `sha-256` and `sha-512` entry must match; at least one of them must be present.
/// Entries of other algorithms are ignored when a supported one is present (RFC 9530 lets a
/// sender list several), and make the header unacceptable when none is. Returns the
/// strongest algorithm that was checked.
pub fn verify_content_digest(header: &str, body: &[u8]) -> Result<DigestAlgorithm> {
    let entries = parse_content_digest(header)?;
    let mut checked: Option<DigestAlgorithm> = None;
    for (name, expected) in &entries {
        let Some(algorithm) = DigestAlgorithm::from_name(name) else {
            continue;
        };
        if algorithm.hash(body) != *expected {
            return Err(Error::DigestMismatch {
                algorithm: algorithm.name().to_owned(),
            });
        }
        if checked != Some(DigestAlgorithm::Sha512) {
            checked = Some(algorithm);
        }
    }
    checked.ok_or_else(|| {
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        Error::UnsupportedDigestAlgorithm(names.join(", "))
    })
}

/// The draft-cavage `Digest` header value for `body`: `SHA-256=<base64>`.
pub fn legacy_digest(body: &[u8]) -> String {
    format!("SHA-256={}", BASE64.encode(Sha256::digest(body)))
}

/// Check a draft-cavage / RFC 3230 `Digest` header (`SHA-256=<base64>`, possibly a
/// comma-separated list) against `body`.
///
/// Same policy as [`verify_content_digest`]: every SHA-256/SHA-512 entry must match, at
/// least one must be present, other algorithms are ignored.
pub fn verify_legacy_digest(header: &str, body: &[u8]) -> Result<DigestAlgorithm> {
    let mut checked: Option<DigestAlgorithm> = None;
    let mut seen = Vec::new();
    for entry in header.split(',') {
        let entry = entry.trim();
        let Some((name, value)) = entry.split_once('=') else {
            return Err(Error::MalformedDigest(format!(
                "{entry:?} is not ALGORITHM=base64"
            )));
        };
        let name = name.trim();
        seen.push(name.to_owned());
        let Some(algorithm) = DigestAlgorithm::from_name(name) else {
            continue;
        };
        let expected = BASE64
            .decode(value.trim())
            .map_err(|e| Error::MalformedDigest(format!("bad base64 in {name} digest: {e}")))?;
        if algorithm.hash(body) != expected {
            return Err(Error::DigestMismatch {
                algorithm: algorithm.name().to_owned(),
            });
        }
        if checked != Some(DigestAlgorithm::Sha512) {
            checked = Some(algorithm);
        }
    }
    checked.ok_or_else(|| Error::UnsupportedDigestAlgorithm(seen.join(", ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_vectors::s;

    fn body() -> String {
        s("rfc9530_content_digest", "body_exact")
    }

    #[test]
    fn rfc9530_sha256_vector() {
        let expected = s("rfc9530_content_digest", "sha256");
        assert_eq!(
            content_digest(DigestAlgorithm::Sha256, body().as_bytes()),
            expected
        );
        assert_eq!(
            verify_content_digest(&expected, body().as_bytes()),
            Ok(DigestAlgorithm::Sha256)
        );
    }

    #[test]
    fn rfc9530_sha512_vector() {
        let expected = s("rfc9530_content_digest", "sha512");
        assert_eq!(
            content_digest(DigestAlgorithm::Sha512, body().as_bytes()),
            expected
        );
        assert_eq!(
            verify_content_digest(&expected, body().as_bytes()),
            Ok(DigestAlgorithm::Sha512)
        );
    }

    #[test]
    fn both_algorithms_in_one_header() {
        let header = format!(
            "{}, {}",
            s("rfc9530_content_digest", "sha256"),
            s("rfc9530_content_digest", "sha512")
        );
        assert_eq!(
            verify_content_digest(&header, body().as_bytes()),
            Ok(DigestAlgorithm::Sha512)
        );
        // One good entry does not excuse a bad one.
        let bad512 = content_digest(DigestAlgorithm::Sha512, b"other");
        let header = format!("{}, {bad512}", s("rfc9530_content_digest", "sha256"));
        assert_eq!(
            verify_content_digest(&header, body().as_bytes()),
            Err(Error::DigestMismatch {
                algorithm: "sha-512".to_owned()
            })
        );
    }

    #[test]
    fn content_digest_mismatch_is_rejected() {
        let header = s("rfc9530_content_digest", "sha256");
        assert_eq!(
            verify_content_digest(&header, b"{\"hello\": \"world!\"}"),
            Err(Error::DigestMismatch {
                algorithm: "sha-256".to_owned()
            })
        );
    }

    #[test]
    fn unknown_content_digest_algorithm_is_rejected() {
        assert_eq!(
            verify_content_digest("md5=:XrY7u+Ae7tCTyyK7j1rNww==:", b"hello world"),
            Err(Error::UnsupportedDigestAlgorithm("md5".to_owned()))
        );
        // Ignored next to a supported one.
        let header = format!(
            "md5=:AAAA:, {}",
            content_digest(DigestAlgorithm::Sha256, b"hi")
        );
        assert_eq!(
            verify_content_digest(&header, b"hi"),
            Ok(DigestAlgorithm::Sha256)
        );
    }

    #[test]
    fn malformed_content_digest_is_rejected() {
        for bad in [
            "",
            "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            "sha-256=:not base64:",
            "sha-256=(:AA==:)",
            "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        ] {
            assert!(
                matches!(
                    verify_content_digest(bad, body().as_bytes()),
                    Err(Error::MalformedDigest(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn legacy_digest_round_trip() {
        let header = legacy_digest(body().as_bytes());
        assert_eq!(
            header,
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
        );
        assert_eq!(
            verify_legacy_digest(&header, body().as_bytes()),
            Ok(DigestAlgorithm::Sha256)
        );
        // Algorithm names are case-insensitive (RFC 3230).
        assert_eq!(
            verify_legacy_digest(
                "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
                body().as_bytes()
            ),
            Ok(DigestAlgorithm::Sha256)
        );
    }

    #[test]
    fn legacy_digest_mismatch_and_unknown_are_rejected() {
        let header = legacy_digest(b"original");
        assert_eq!(
            verify_legacy_digest(&header, b"tampered"),
            Err(Error::DigestMismatch {
                algorithm: "sha-256".to_owned()
            })
        );
        assert_eq!(
            verify_legacy_digest("MD5=XrY7u+Ae7tCTyyK7j1rNww==", b"hello world"),
            Err(Error::UnsupportedDigestAlgorithm("MD5".to_owned()))
        );
        assert!(matches!(
            verify_legacy_digest("SHA-256", b""),
            Err(Error::MalformedDigest(_))
        ));
        assert!(matches!(
            verify_legacy_digest("SHA-256=!!!", b""),
            Err(Error::MalformedDigest(_))
        ));
    }

    #[test]
    fn legacy_digest_sha512_is_verified() {
        let header = format!(
            "SHA-512={}",
            BASE64.encode(Sha512::digest(body().as_bytes()))
        );
        assert_eq!(
            verify_legacy_digest(&header, body().as_bytes()),
            Ok(DigestAlgorithm::Sha512)
        );
        assert!(verify_legacy_digest(&header, b"x").is_err());
    }
}
