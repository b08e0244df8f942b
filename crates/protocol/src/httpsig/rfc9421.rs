//! RFC 9421 HTTP Message Signatures with Ed25519 (`alg="ed25519"`).
//!
//! A signature covers an ordered list of components — derived ones such as `@method`,
//! `@authority`, `@path`, and header fields by lower-case name — plus its own parameters
//! (`created`, `keyid`, ...), serialized as `@signature-params`. The signature base is one
//! line per component, `"name": value`, and the `@signature-params` line last.
//!
//! Supported: the derived components `@method`, `@target-uri`, `@authority`, `@scheme`,
//! `@request-target`, `@path` and `@query`, and header fields without parameters
//! (no `;sf`, `;key`, `;bs`, `;req`, no `@query-param`). That is what request signing
//! between nodes needs.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{VerifyOptions, header_value, needs_digest};
use crate::keys::{KeyPair, PublicKey};
use crate::sf::{self, BareItem, Member, Parameters};
use crate::{Error, Result, digest};

/// The `alg` value for Ed25519.
pub const ALG_ED25519: &str = "ed25519";

/// The request as RFC 9421 sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The method, e.g. `POST` (case-sensitive, as on the request line).
    pub method: &'a str,
    /// `https` or `http`.
    pub scheme: &'a str,
    /// Host and optional port, e.g. `example.com`.
    pub authority: &'a str,
    /// The absolute path, e.g. `/foo`.
    pub path: &'a str,
    /// The query without `?`, if the request has one.
    pub query: Option<&'a str>,
    /// The request headers (any case; repeated names are combined with `, `).
    pub headers: &'a [(&'a str, &'a str)],
}

impl Message<'_> {
    fn component(&self, name: &str) -> Result<String> {
        let path = if self.path.is_empty() { "/" } else { self.path };
        let query = self.query.map(|q| format!("?{q}")).unwrap_or_default();
        Ok(match name {
            "@method" => self.method.to_owned(),
            "@target-uri" => format!(
                "{}://{}{path}{query}",
                self.scheme.to_ascii_lowercase(),
                self.authority.to_ascii_lowercase()
            ),
            "@authority" => self.authority.to_ascii_lowercase(),
            "@scheme" => self.scheme.to_ascii_lowercase(),
            "@request-target" => format!("{path}{query}"),
            "@path" => path.to_owned(),
            "@query" => {
                if query.is_empty() {
                    "?".to_owned()
                } else {
                    query
                }
            }
            derived if derived.starts_with('@') => {
                return Err(Error::MalformedSignatureHeader(format!(
                    "derived component {derived} is not supported"
                )));
            }
            header => header_value(self.headers, header)
                .ok_or_else(|| Error::MissingHeader(header.to_owned()))?,
        })
    }
}

/// The covered components and parameters of one signature, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    components: Vec<String>,
    params: Parameters,
}

impl SignatureParams {
    /// Parameters covering `components` (e.g. `["@method", "@path", "content-digest"]`).
    /// Header names are lower-cased.
    pub fn new<I, S>(components: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            components: components
                .into_iter()
                .map(|c| c.into().to_ascii_lowercase())
                .collect(),
            params: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: BareItem) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value));
        self
    }

    /// Add `created` (Unix seconds).
    #[must_use]
    pub fn created(self, unix_secs: i64) -> Self {
        self.with("created", BareItem::Integer(unix_secs))
    }

    /// Add `expires` (Unix seconds).
    #[must_use]
    pub fn expires(self, unix_secs: i64) -> Self {
        self.with("expires", BareItem::Integer(unix_secs))
    }

    /// Add `keyid`.
    #[must_use]
    pub fn keyid(self, key_id: &str) -> Self {
        self.with("keyid", BareItem::String(key_id.to_owned()))
    }

    /// Add `alg`.
    #[must_use]
    pub fn alg(self, alg: &str) -> Self {
        self.with("alg", BareItem::String(alg.to_owned()))
    }

    /// Add `nonce`.
    #[must_use]
    pub fn nonce(self, nonce: &str) -> Self {
        self.with("nonce", BareItem::String(nonce.to_owned()))
    }

    /// Add `tag`.
    #[must_use]
    pub fn tag(self, tag: &str) -> Self {
        self.with("tag", BareItem::String(tag.to_owned()))
    }

    /// The covered component names, in order.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// Whether `name` is covered.
    pub fn covers(&self, name: &str) -> bool {
        self.components.iter().any(|c| c == name)
    }

    fn integer(&self, name: &str) -> Option<i64> {
        self.params.iter().find_map(|(k, v)| match v {
            BareItem::Integer(i) if k == name => Some(*i),
            _ => None,
        })
    }

    fn string(&self, name: &str) -> Option<&str> {
        self.params.iter().find_map(|(k, v)| match v {
            BareItem::String(s) if k == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// The `created` parameter.
    pub fn created_at(&self) -> Option<i64> {
        self.integer("created")
    }

    /// The `expires` parameter.
    pub fn expires_at(&self) -> Option<i64> {
        self.integer("expires")
    }

    /// The `keyid` parameter: the key to fetch before verifying.
    pub fn key_id(&self) -> Option<&str> {
        self.string("keyid")
    }

    /// The `alg` parameter.
    pub fn algorithm(&self) -> Option<&str> {
        self.string("alg")
    }

    /// The serialized inner list, e.g. `("@method" "@path");created=1618884473;keyid="k"`:
    /// the value of `@signature-params` and of the `Signature-Input` member.
    pub fn serialize(&self) -> Result<String> {
        sf::serialize_inner_list(&self.components, &self.params)
            .map_err(Error::MalformedSignatureHeader)
    }
}

/// The signature base of `message` for `params` (RFC 9421 §2.5).
pub fn signature_base(message: &Message<'_>, params: &SignatureParams) -> Result<String> {
    let mut base = String::new();
    for (i, name) in params.components.iter().enumerate() {
        if params.components[..i].contains(name) {
            return Err(Error::MalformedSignatureHeader(format!(
                "component {name} is covered twice"
            )));
        }
        if name == "@signature-params" {
            return Err(Error::MalformedSignatureHeader(
                "@signature-params cannot be a covered component".to_owned(),
            ));
        }
        let value = message.component(name)?;
        let id = sf::serialize_string(name).map_err(Error::MalformedSignatureHeader)?;
        base.push_str(&format!("{id}: {value}\n"));
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&params.serialize()?);
    Ok(base)
}

/// Header values produced by [`sign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `Signature-Input` value, e.g. `sig1=("@method" ...);created=...;keyid="..."`.
    pub signature_input: String,
    /// The `Signature` value, e.g. `sig1=:base64:`.
    pub signature: String,
}

/// Sign `message` covering `params`, under dictionary key `label` (e.g. `sig1`).
pub fn sign(
    message: &Message<'_>,
    params: &SignatureParams,
    label: &str,
    key: &KeyPair,
) -> Result<SignedHeaders> {
    check_label(label)?;
    let base = signature_base(message, params)?;
    let signature = key.sign(base.as_bytes());
    Ok(SignedHeaders {
        signature_input: format!("{label}={}", params.serialize()?),
        signature: format!("{label}=:{}:", BASE64.encode(signature)),
    })
}

fn check_label(label: &str) -> Result<()> {
    let ok = label
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::MalformedSignatureHeader(format!(
            "{label:?} is not a valid signature label"
        )))
    }
}

/// Verify an Ed25519 signature over a signature base.
pub fn verify_base(base: &str, signature: &[u8], key: &PublicKey) -> Result<()> {
    key.verify(base.as_bytes(), signature)
}

/// One signature from a request's `Signature-Input` and `Signature` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSignature {
    /// The dictionary key both headers use for it.
    pub label: String,
    /// Covered components and parameters.
    pub params: SignatureParams,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
}

impl MessageSignature {
    /// The `keyid` parameter, so the caller can fetch the key.
    pub fn key_id(&self) -> Option<&str> {
        self.params.key_id()
    }
}

/// Parse the `Signature-Input` and `Signature` headers into the signatures both name.
pub fn parse_signatures(signature_input: &str, signature: &str) -> Result<Vec<MessageSignature>> {
    let bad = Error::MalformedSignatureHeader;
    let inputs = sf::parse_dictionary(signature_input).map_err(bad)?;
    let signatures = sf::parse_dictionary(signature).map_err(bad)?;
    let mut out = Vec::new();
    for (label, member) in inputs {
        let Member::InnerList(items, params) = member else {
            return Err(Error::MalformedSignatureHeader(format!(
                "Signature-Input member {label} is not an inner list"
            )));
        };
        let mut components = Vec::with_capacity(items.len());
        for item in items {
            match item.bare {
                BareItem::String(name) if item.params.is_empty() => components.push(name),
                BareItem::String(name) => {
                    return Err(Error::MalformedSignatureHeader(format!(
                        "component parameters on {name} are not supported"
                    )));
                }
                _ => {
                    return Err(Error::MalformedSignatureHeader(format!(
                        "Signature-Input member {label} lists a non-string component"
                    )));
                }
            }
        }
        let Some((_, sig)) = signatures.iter().find(|(l, _)| *l == label) else {
            continue;
        };
        let Member::Item(sf::Item {
            bare: BareItem::ByteSeq(bytes),
            ..
        }) = sig
        else {
            return Err(Error::MalformedSignatureHeader(format!(
                "Signature member {label} is not a byte sequence"
            )));
        };
        out.push(MessageSignature {
            label,
            params: SignatureParams { components, params },
            signature: bytes.clone(),
        });
    }
    if out.is_empty() {
        return Err(Error::MalformedSignatureHeader(
            "no signature is named in both Signature-Input and Signature".to_owned(),
        ));
    }
    Ok(out)
}

/// Verify `signature` on a request, with the same policy as draft-cavage [`super::verify`]:
///
/// - `alg`, if present, is `ed25519`;
/// - `@method` is covered, and either `@target-uri` or `@authority` with `@path` or
///   `@request-target`;
/// - when there is (or should be) a body, `content-digest` is covered and matches `body`;
/// - `created` is present and within [`VerifyOptions::max_skew`] of `now` in both
///   directions, and `expires`, if present, has not passed;
/// - the Ed25519 signature over the signature base is valid.
pub fn verify_request(
    signature: &MessageSignature,
    message: &Message<'_>,
    body: &[u8],
    key: &PublicKey,
    options: &VerifyOptions,
) -> Result<()> {
    let params = &signature.params;
    if let Some(alg) = params.algorithm()
        && alg != ALG_ED25519
    {
        return Err(Error::UnsupportedAlgorithm(alg.to_owned()));
    }
    if !params.covers("@method") {
        return Err(Error::NotCovered("@method".to_owned()));
    }
    if !params.covers("@target-uri") {
        if !params.covers("@authority") {
            return Err(Error::NotCovered("@authority".to_owned()));
        }
        if !params.covers("@path") && !params.covers("@request-target") {
            return Err(Error::NotCovered("@path".to_owned()));
        }
    }
    let digest_needed = needs_digest(message.method, body);
    if digest_needed && !params.covers("content-digest") {
        return Err(Error::NotCovered("content-digest".to_owned()));
    }

    let created = params
        .created_at()
        .ok_or_else(|| Error::NotCovered("created parameter".to_owned()))?;
    options.check_time(unix_time(created)?)?;
    if let Some(expires) = params.expires_at() {
        options.check_expires(unix_time(expires)?)?;
    }

    if digest_needed || header_value(message.headers, "content-digest").is_some() {
        let header = header_value(message.headers, "content-digest")
            .ok_or_else(|| Error::MissingHeader("content-digest".to_owned()))?;
        digest::verify_content_digest(&header, body)?;
    }

    let base = signature_base(message, params)?;
    verify_base(&base, &signature.signature, key)
}

fn unix_time(secs: i64) -> Result<std::time::SystemTime> {
    u64::try_from(secs)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .map_err(|_| Error::InvalidDate(format!("{secs} is before 1970")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::test_vectors::s;

    const SECTION: &str = "rfc9421_b26_ed25519";

    /// The RFC 9421 test request (appendix B.2).
    fn b2_headers() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Host", "example.com"),
            ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("Content-Type", "application/json"),
            (
                "Content-Digest",
                "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            ),
            ("Content-Length", "18"),
        ]
    }

    const B2_BODY: &[u8] = br#"{"hello": "world"}"#;

    fn b2_message<'a>(headers: &'a [(&'a str, &'a str)]) -> Message<'a> {
        Message {
            method: "POST",
            scheme: "https",
            authority: "example.com",
            path: "/foo",
            query: Some("param=Value&Pet=dog"),
            headers,
        }
    }

    fn b26_params() -> SignatureParams {
        SignatureParams::new([
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ])
        .created(1_618_884_473)
        .keyid("test-key-ed25519")
    }

    fn b14_key() -> KeyPair {
        KeyPair::from_pkcs8_der(&BASE64.decode(s(SECTION, "private_key_pkcs8_b64")).unwrap())
            .unwrap()
    }

    fn b14_public() -> PublicKey {
        PublicKey::from_spki_der(&BASE64.decode(s(SECTION, "public_key_spki_b64")).unwrap())
            .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn b26_signature_base_is_reproduced() {
        let headers = b2_headers();
        let base = signature_base(&b2_message(&headers), &b26_params()).unwrap();
        assert_eq!(base, s(SECTION, "signature_base"));
    }

    #[test]
    fn b26_signature_is_reproduced_and_verifies() {
        let headers = b2_headers();
        let signed = sign(&b2_message(&headers), &b26_params(), "sig-b26", &b14_key()).unwrap();
        let expected = s(SECTION, "signature_b64");
        assert_eq!(signed.signature, format!("sig-b26=:{expected}:"));
        assert_eq!(
            signed.signature_input,
            "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        let signature = BASE64.decode(&expected).unwrap();
        verify_base(&s(SECTION, "signature_base"), &signature, &b14_public()).unwrap();
    }

    #[test]
    fn b26_rejects_tampering_and_other_keys() {
        let signature = BASE64.decode(s(SECTION, "signature_b64")).unwrap();
        let base = s(SECTION, "signature_base");
        let tampered = base.replace("/foo", "/bar");
        assert_eq!(
            verify_base(&tampered, &signature, &b14_public()),
            Err(Error::BadSignature)
        );
        let other = KeyPair::from_seed(&[1u8; 32]).public_key();
        assert_eq!(
            verify_base(&base, &signature, &other),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn b26_headers_parse_and_verify_but_fail_the_node_policy() {
        let headers = b2_headers();
        let message = b2_message(&headers);
        let input = format!("sig-b26={}", b26_params().serialize().unwrap());
        let sig = format!("sig-b26=:{}:", s(SECTION, "signature_b64"));
        let parsed = parse_signatures(&input, &sig).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].key_id(), Some("test-key-ed25519"));
        assert_eq!(parsed[0].params, b26_params());
        let base = signature_base(&message, &parsed[0].params).unwrap();
        verify_base(&base, &parsed[0].signature, &b14_public()).unwrap();
        // B.2.6 does not cover content-digest, which a node requires for a POST.
        let options = VerifyOptions::new(at(1_618_884_473));
        assert_eq!(
            verify_request(&parsed[0], &message, B2_BODY, &b14_public(), &options),
            Err(Error::NotCovered("content-digest".to_owned()))
        );
    }

    fn node_params(created: i64) -> SignatureParams {
        SignatureParams::new(["@method", "@target-uri", "content-digest", "date"])
            .created(created)
            .keyid("https://a.example/actor#main-key")
            .alg(ALG_ED25519)
    }

    fn signed_node_request(created: i64) -> (Vec<(&'static str, &'static str)>, MessageSignature) {
        let headers = b2_headers();
        let signed = sign(
            &b2_message(&headers),
            &node_params(created),
            "sig1",
            &b14_key(),
        )
        .unwrap();
        let parsed = parse_signatures(&signed.signature_input, &signed.signature).unwrap();
        (headers, parsed.into_iter().next().unwrap())
    }

    #[test]
    fn node_request_round_trip() {
        let (headers, sig) = signed_node_request(1_618_884_475);
        let options = VerifyOptions::new(at(1_618_884_475));
        verify_request(
            &sig,
            &b2_message(&headers),
            B2_BODY,
            &b14_public(),
            &options,
        )
        .unwrap();
    }

    #[test]
    fn node_request_rejects_changes() {
        let (headers, sig) = signed_node_request(1_618_884_475);
        let options = VerifyOptions::new(at(1_618_884_475));
        let public = b14_public();

        let mut message = b2_message(&headers);
        message.query = Some("param=Value&Pet=cat");
        assert_eq!(
            verify_request(&sig, &message, B2_BODY, &public, &options),
            Err(Error::BadSignature)
        );
        assert_eq!(
            verify_request(
                &sig,
                &b2_message(&headers),
                br#"{"hello": "there"}"#,
                &public,
                &options
            ),
            Err(Error::DigestMismatch {
                algorithm: "sha-512".to_owned()
            })
        );
        let other = KeyPair::from_seed(&[2u8; 32]).public_key();
        assert_eq!(
            verify_request(&sig, &b2_message(&headers), B2_BODY, &other, &options),
            Err(Error::BadSignature)
        );
        let mut tampered = sig.clone();
        tampered.params = tampered.params.keyid("https://evil.example/actor#main-key");
        assert_eq!(
            verify_request(&tampered, &b2_message(&headers), B2_BODY, &public, &options),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn node_request_time_window() {
        let (headers, sig) = signed_node_request(1_618_884_475);
        let public = b14_public();
        let check = |now: u64| {
            verify_request(
                &sig,
                &b2_message(&headers),
                B2_BODY,
                &public,
                &VerifyOptions::new(at(now)),
            )
        };
        assert_eq!(check(1_618_884_475 + 300), Ok(()));
        assert_eq!(
            check(1_618_884_475 + 301),
            Err(Error::Expired {
                age_secs: 301,
                max_secs: 300
            })
        );
        assert_eq!(
            check(1_618_884_475 - 301),
            Err(Error::FromTheFuture {
                ahead_secs: 301,
                max_secs: 300
            })
        );
    }

    #[test]
    fn expires_is_enforced() {
        let headers = b2_headers();
        let params = node_params(1_618_884_475).expires(1_618_884_485);
        let signed = sign(&b2_message(&headers), &params, "sig1", &b14_key()).unwrap();
        let sig = parse_signatures(&signed.signature_input, &signed.signature)
            .unwrap()
            .remove(0);
        let ok = VerifyOptions::new(at(1_618_884_485));
        verify_request(&sig, &b2_message(&headers), B2_BODY, &b14_public(), &ok).unwrap();
        let late = VerifyOptions::new(at(1_618_884_486));
        assert!(matches!(
            verify_request(&sig, &b2_message(&headers), B2_BODY, &b14_public(), &late),
            Err(Error::Expired { .. })
        ));
    }

    #[test]
    fn policy_requires_components_created_and_ed25519() {
        let headers = b2_headers();
        let message = b2_message(&headers);
        let options = VerifyOptions::new(at(1_618_884_475));
        let public = b14_public();
        let check = |params: SignatureParams| {
            let signed = sign(&message, &params, "sig1", &b14_key()).unwrap();
            let sig = parse_signatures(&signed.signature_input, &signed.signature)
                .unwrap()
                .remove(0);
            verify_request(&sig, &message, B2_BODY, &public, &options)
        };
        assert_eq!(
            check(SignatureParams::new(["@target-uri", "content-digest"]).created(1_618_884_475)),
            Err(Error::NotCovered("@method".to_owned()))
        );
        assert_eq!(
            check(
                SignatureParams::new(["@method", "@path", "content-digest"]).created(1_618_884_475)
            ),
            Err(Error::NotCovered("@authority".to_owned()))
        );
        assert_eq!(
            check(
                SignatureParams::new(["@method", "@authority", "content-digest"])
                    .created(1_618_884_475)
            ),
            Err(Error::NotCovered("@path".to_owned()))
        );
        assert_eq!(
            check(SignatureParams::new([
                "@method",
                "@target-uri",
                "content-digest"
            ])),
            Err(Error::NotCovered("created parameter".to_owned()))
        );
        assert_eq!(
            check(node_params(1_618_884_475).alg("rsa-pss-sha512")),
            Err(Error::UnsupportedAlgorithm("rsa-pss-sha512".to_owned()))
        );
        assert_eq!(
            check(
                SignatureParams::new([
                    "@method",
                    "@authority",
                    "@request-target",
                    "content-digest"
                ])
                .created(1_618_884_475)
            ),
            Ok(())
        );
    }

    #[test]
    fn get_needs_no_content_digest() {
        let headers = [("Host", "b.example")];
        let message = Message {
            method: "GET",
            scheme: "https",
            authority: "b.example",
            path: "/actor",
            query: None,
            headers: &headers,
        };
        let params = SignatureParams::new(["@method", "@target-uri"]).created(1_700_000_000);
        let signed = sign(&message, &params, "sig1", &b14_key()).unwrap();
        let sig = parse_signatures(&signed.signature_input, &signed.signature)
            .unwrap()
            .remove(0);
        let options = VerifyOptions::new(at(1_700_000_000));
        verify_request(&sig, &message, b"", &b14_public(), &options).unwrap();
        assert_eq!(
            verify_request(&sig, &message, b"body", &b14_public(), &options),
            Err(Error::NotCovered("content-digest".to_owned()))
        );
    }

    #[test]
    fn derived_components() {
        let headers = [("X-Multi", "a"), ("x-multi", " b ")];
        let message = Message {
            method: "POST",
            scheme: "HTTPS",
            authority: "Example.COM:8443",
            path: "",
            query: None,
            headers: &headers,
        };
        let params = SignatureParams::new([
            "@target-uri",
            "@scheme",
            "@authority",
            "@request-target",
            "@path",
            "@query",
            "X-Multi",
        ]);
        assert_eq!(
            signature_base(&message, &params).unwrap(),
            "\"@target-uri\": https://example.com:8443/\n\"@scheme\": https\n\
             \"@authority\": example.com:8443\n\"@request-target\": /\n\"@path\": /\n\
             \"@query\": ?\n\"x-multi\": a, b\n\
             \"@signature-params\": (\"@target-uri\" \"@scheme\" \"@authority\" \"@request-target\" \"@path\" \"@query\" \"x-multi\")"
        );
    }

    #[test]
    fn bad_components_are_rejected() {
        let headers = b2_headers();
        let message = b2_message(&headers);
        assert_eq!(
            signature_base(&message, &SignatureParams::new(["x-absent"])),
            Err(Error::MissingHeader("x-absent".to_owned()))
        );
        assert!(matches!(
            signature_base(&message, &SignatureParams::new(["@status"])),
            Err(Error::MalformedSignatureHeader(_))
        ));
        assert!(matches!(
            signature_base(&message, &SignatureParams::new(["date", "date"])),
            Err(Error::MalformedSignatureHeader(_))
        ));
        assert!(matches!(
            signature_base(&message, &SignatureParams::new(["@signature-params"])),
            Err(Error::MalformedSignatureHeader(_))
        ));
        assert!(matches!(
            sign(&message, &b26_params(), "Bad Label", &b14_key()),
            Err(Error::MalformedSignatureHeader(_))
        ));
    }

    #[test]
    fn malformed_signature_headers_are_rejected() {
        let input = format!("sig1={}", b26_params().serialize().unwrap());
        for (input, signature) in [
            (input.as_str(), "sig2=:AAAA:"),
            (input.as_str(), "sig1=\"AAAA\""),
            ("sig1=\"not a list\"", "sig1=:AAAA:"),
            ("sig1=(\"date\";sf)", "sig1=:AAAA:"),
            ("sig1=(date)", "sig1=:AAAA:"),
            ("sig1=(\"date\"", "sig1=:AAAA:"),
        ] {
            assert!(
                matches!(
                    parse_signatures(input, signature),
                    Err(Error::MalformedSignatureHeader(_))
                ),
                "{input} / {signature}"
            );
        }
    }

    #[test]
    fn picks_matching_labels_among_several() {
        let headers = b2_headers();
        let signed = sign(
            &b2_message(&headers),
            &node_params(1_618_884_475),
            "sig1",
            &b14_key(),
        )
        .unwrap();
        let input = format!("other=(\"@method\");created=1, {}", signed.signature_input);
        let signature = format!("{}, unrelated=:AAAA:", signed.signature);
        let parsed = parse_signatures(&input, &signature).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].label, "sig1");
    }
}
