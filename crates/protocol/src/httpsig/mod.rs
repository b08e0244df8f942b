//! HTTP signatures for server-to-server requests.
//!
//! This module implements draft-cavage-http-signatures-12 as the fediverse uses it:
//! `algorithm="hs2019"` with Ed25519 keys, covering `(request-target) host date digest` on
//! POST and `(request-target) host date` on GET. [`rfc9421`] implements RFC 9421 HTTP
//! Message Signatures (`Signature-Input`), which peers may use instead.
//!
//! The design names `http-signature-normalization` for this. That crate stamps
//! `SystemTime::now()` inside its parser, so expiry cannot be checked against a clock the
//! caller pins; it lets unparsable `Date` headers through, does not reject future dates, and
//! mis-parses `Signature` headers with a space after a comma. The signing string is simple
//! enough to build here; the tests check that signatures made by that crate verify here and
//! signatures made here verify there.
//!
//! Verification ([`verify`]) checks, in order: the algorithm, that `(request-target)`,
//! `host`, `date` (and `digest` when there is a body) are covered, that `Date` is within
//! [`VerifyOptions::max_skew`] of the caller's `now` in both directions, that the `Digest`
//! (and `Content-Digest`, if sent) match the body, and finally the Ed25519 signature. It does
//! **not** check that `host` names this node or that the key belongs to the activity's
//! actor: the caller knows both.

pub mod rfc9421;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::digest;
use crate::keys::{KeyPair, PublicKey};
use crate::{Error, Result};

/// The `algorithm` value Caremesh sends.
pub const ALGORITHM: &str = "hs2019";
/// The pseudo-header for the method and path.
pub const REQUEST_TARGET: &str = "(request-target)";
/// Default allowed difference between a signature's date and the verifier's clock.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);

const POST_HEADERS: &[&str] = &[REQUEST_TARGET, "host", "date", "digest"];
const GET_HEADERS: &[&str] = &[REQUEST_TARGET, "host", "date"];

/// The parts of an HTTP request that a signature covers or that verification checks.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path and query as sent on the request line, e.g. `/inbox?x=1`.
    pub path_and_query: &'a str,
    /// The request headers (any case; repeated names are combined with `, `).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; empty for GET.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The value of header `name`: every occurrence, trimmed, joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(self.headers, name)
    }
}

/// Whether a request with this method and body must carry and sign a digest.
pub fn needs_digest(method: &str, body: &[u8]) -> bool {
    !body.is_empty() || !(method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD"))
}

/// The headers Caremesh signs: `(request-target) host date digest` when the request has (or
/// should have) a body, `(request-target) host date` for GET and HEAD.
pub fn covered_headers(method: &str, body: &[u8]) -> &'static [&'static str] {
    if needs_digest(method, body) {
        POST_HEADERS
    } else {
        GET_HEADERS
    }
}

/// The draft-cavage signing string for `covered` (lower-case names, `(request-target)`
/// allowed), e.g. `(request-target): post /inbox\nhost: b.example\ndate: ...`.
pub fn signing_string(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    covered: &[&str],
) -> Result<String> {
    build_signing_string(method, path_and_query, headers, covered, None, None)
}

fn build_signing_string(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    covered: &[&str],
    created: Option<&str>,
    expires: Option<&str>,
) -> Result<String> {
    let mut lines = Vec::with_capacity(covered.len());
    for &name in covered {
        let name = name.to_ascii_lowercase();
        let value = match name.as_str() {
            REQUEST_TARGET => format!("{} {path_and_query}", method.to_ascii_lowercase()),
            "(created)" => created
                .ok_or_else(|| Error::MissingHeader("(created) parameter".to_owned()))?
                .to_owned(),
            "(expires)" => expires
                .ok_or_else(|| Error::MissingHeader("(expires) parameter".to_owned()))?
                .to_owned(),
            _ => header_value(headers, &name).ok_or_else(|| Error::MissingHeader(name.clone()))?,
        };
        lines.push(format!("{name}: {value}"));
    }
    Ok(lines.join("\n"))
}

/// The `Signature` header value for `request`, covering [`covered_headers`].
///
/// `request.headers` must already hold `Host`, `Date` and, when a digest is needed, a
/// `Digest` that matches `request.body` (use [`signed_request_headers`] to build them all).
pub fn sign(request: &Request<'_>, key_id: &str, key: &KeyPair) -> Result<String> {
    let covered = covered_headers(request.method, request.body);
    if covered.contains(&"digest") {
        let digest = request
            .header("digest")
            .ok_or_else(|| Error::MissingHeader("digest".to_owned()))?;
        digest::verify_legacy_digest(&digest, request.body)?;
    }
    sign_covering(request, covered, key_id, key)
}

/// The `Signature` header value for `request`, covering exactly `covered`.
pub fn sign_covering(
    request: &Request<'_>,
    covered: &[&str],
    key_id: &str,
    key: &KeyPair,
) -> Result<String> {
    if key_id.contains(['"', '\\']) || key_id.chars().any(char::is_control) {
        return Err(Error::MalformedSignatureHeader(
            "keyId must not contain quotes, backslashes or control characters".to_owned(),
        ));
    }
    let text = signing_string(
        request.method,
        request.path_and_query,
        request.headers,
        covered,
    )?;
    let signature = BASE64.encode(key.sign(text.as_bytes()));
    let names: Vec<String> = covered.iter().map(|h| h.to_ascii_lowercase()).collect();
    Ok(format!(
        "keyId=\"{key_id}\",algorithm=\"{ALGORITHM}\",headers=\"{}\",signature=\"{signature}\"",
        names.join(" ")
    ))
}

/// Every header an outgoing signed request needs: `Host`, `Date`, `Digest` (when a digest
/// is needed, see [`needs_digest`]) and `Signature`, in that order.
pub fn signed_request_headers(
    method: &str,
    path_and_query: &str,
    host: &str,
    body: &[u8],
    now: SystemTime,
    key_id: &str,
    key: &KeyPair,
) -> Result<Vec<(&'static str, String)>> {
    let mut out: Vec<(&'static str, String)> =
        vec![("Host", host.to_owned()), ("Date", http_date(now))];
    if needs_digest(method, body) {
        out.push(("Digest", digest::legacy_digest(body)));
    }
    let signature = {
        let headers: Vec<(&str, &str)> = out.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let request = Request {
            method,
            path_and_query,
            headers: &headers,
            body,
        };
        sign(&request, key_id, key)?
    };
    out.push(("Signature", signature));
    Ok(out)
}

/// An HTTP `Date` value (IMF-fixdate), e.g. `Tue, 20 Apr 2021 02:07:55 GMT`.
pub fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

/// A parsed draft-cavage `Signature` (or `Authorization: Signature ...`) header.
///
/// Build it with [`parse_signature_header`]: `(created)`/`(expires)` are re-signed from the
/// header's original text, so changing the numeric fields does not change what is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The key id; fetch the key it names, then call [`verify`].
    pub key_id: String,
    /// The `algorithm` parameter, if sent.
    pub algorithm: Option<String>,
    /// The covered headers, lower case, in signing order.
    pub headers: Vec<String>,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
    /// The `created` parameter (Unix seconds), if sent.
    pub created: Option<u64>,
    /// The `expires` parameter (Unix seconds, fraction dropped), if sent.
    pub expires: Option<u64>,
    created_text: Option<String>,
    expires_text: Option<String>,
}

impl SignatureHeader {
    /// The key id, so the caller can fetch the key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether the signature covers header `name` (case-insensitive).
    pub fn covers(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Parse a `Signature` header value, or an `Authorization` value starting with `Signature `.
pub fn parse_signature_header(value: &str) -> Result<SignatureHeader> {
    let malformed = |m: &str| Error::MalformedSignatureHeader(m.to_owned());
    let mut rest = value.trim();
    // `get`: the tenth byte may fall inside a character of a non-ASCII value.
    if rest.len() > 10
        && let Some(scheme) = rest.get(..10)
        && scheme.eq_ignore_ascii_case("signature ")
    {
        rest = rest[10..].trim_start();
    }
    let params = parse_params(rest)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    let key_id = get("keyId").ok_or_else(|| malformed("keyId is missing"))?;
    if key_id.is_empty() {
        return Err(malformed("keyId is empty"));
    }
    let signature = get("signature").ok_or_else(|| malformed("signature is missing"))?;
    let signature = BASE64
        .decode(signature.trim())
        .map_err(|e| Error::MalformedSignatureHeader(format!("signature is not base64: {e}")))?;
    let headers: Vec<String> = match get("headers") {
        // draft-cavage-12 §2.1.6: the default is `(created)`.
        None => vec!["(created)".to_owned()],
        Some(list) => list
            .split_ascii_whitespace()
            .map(str::to_ascii_lowercase)
            .collect(),
    };
    if headers.is_empty() {
        return Err(malformed("headers is empty"));
    }
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err(Error::MalformedSignatureHeader(format!(
                "header {h} listed twice"
            )));
        }
    }
    let created_text = get("created");
    let expires_text = get("expires");
    let created = created_text
        .as_deref()
        .map(|t| parse_timestamp(t, false))
        .transpose()?;
    let expires = expires_text
        .as_deref()
        .map(|t| parse_timestamp(t, true))
        .transpose()?;
    Ok(SignatureHeader {
        key_id,
        algorithm: get("algorithm"),
        headers,
        signature,
        created,
        expires,
        created_text,
        expires_text,
    })
}

fn parse_timestamp(text: &str, allow_fraction: bool) -> Result<u64> {
    let whole = match text.split_once('.') {
        Some((whole, frac))
            if allow_fraction && !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) =>
        {
            whole
        }
        _ => text,
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidDate(format!(
            "{text:?} is not a Unix timestamp"
        )));
    }
    whole
        .parse()
        .map_err(|_| Error::InvalidDate(format!("{text:?} is out of range")))
}

/// `name="quoted value", name=token, ...` with optional whitespace around the separators.
fn parse_params(input: &str) -> Result<Vec<(String, String)>> {
    let malformed = |m: String| Error::MalformedSignatureHeader(m);
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut out: Vec<(String, String)> = Vec::new();
    let skip_ws = |pos: &mut usize| {
        while *pos < bytes.len() && matches!(bytes[*pos], b' ' | b'\t') {
            *pos += 1;
        }
    };
    loop {
        skip_ws(&mut pos);
        if pos >= bytes.len() {
            break;
        }
        let start = pos;
        while pos < bytes.len()
            && (bytes[pos].is_ascii_alphanumeric() || b"-_".contains(&bytes[pos]))
        {
            pos += 1;
        }
        let name = &input[start..pos];
        if name.is_empty() {
            return Err(malformed(format!("expected a parameter name at {start}")));
        }
        skip_ws(&mut pos);
        if bytes.get(pos) != Some(&b'=') {
            return Err(malformed(format!("expected '=' after {name}")));
        }
        pos += 1;
        skip_ws(&mut pos);
        let value = if bytes.get(pos) == Some(&b'"') {
            pos += 1;
            let mut value = String::new();
            loop {
                match bytes.get(pos) {
                    None => return Err(malformed(format!("unterminated value of {name}"))),
                    Some(b'"') => {
                        pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let Some(&c) = bytes.get(pos + 1) else {
                            return Err(malformed(format!("unterminated value of {name}")));
                        };
                        value.push(char::from(c));
                        pos += 2;
                    }
                    Some(&c) if c == b'\t' || (0x20..0x7f).contains(&c) => {
                        value.push(char::from(c));
                        pos += 1;
                    }
                    Some(_) => {
                        return Err(malformed(format!(
                            "value of {name} holds a non-printable or non-ASCII byte"
                        )));
                    }
                }
            }
            value
        } else {
            let start = pos;
            while pos < bytes.len() && !matches!(bytes[pos], b',' | b' ' | b'\t') {
                pos += 1;
            }
            let token = &input[start..pos];
            if token.is_empty() {
                return Err(malformed(format!("empty value of {name}")));
            }
            token.to_owned()
        };
        if out.iter().any(|(k, _)| k == name) {
            return Err(malformed(format!("parameter {name} given twice")));
        }
        out.push((name.to_owned(), value));
        skip_ws(&mut pos);
        match bytes.get(pos) {
            None => break,
            Some(b',') => pos += 1,
            Some(_) => return Err(malformed(format!("expected ',' after {name}"))),
        }
    }
    Ok(out)
}

/// How [`verify`] and [`rfc9421::verify_request`] judge time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The verifier's clock.
    pub now: SystemTime,
    /// How far the signature's date may lie before or after `now`.
    pub max_skew: Duration,
}

impl VerifyOptions {
    /// Options with `now` and the default skew of [`DEFAULT_MAX_SKEW`] (5 minutes).
    pub fn new(now: SystemTime) -> Self {
        Self {
            now,
            max_skew: DEFAULT_MAX_SKEW,
        }
    }

    /// The same options with another allowed skew.
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    pub(crate) fn check_time(&self, time: SystemTime) -> Result<()> {
        let max_secs = self.max_skew.as_secs();
        match self.now.duration_since(time) {
            Ok(age) if age > self.max_skew => Err(Error::Expired {
                age_secs: age.as_secs(),
                max_secs,
            }),
            Ok(_) => Ok(()),
            Err(ahead) if ahead.duration() > self.max_skew => Err(Error::FromTheFuture {
                ahead_secs: ahead.duration().as_secs(),
                max_secs,
            }),
            Err(_) => Ok(()),
        }
    }

    pub(crate) fn check_expires(&self, expires: SystemTime) -> Result<()> {
        match self.now.duration_since(expires) {
            Ok(past) if !past.is_zero() => Err(Error::Expired {
                age_secs: past.as_secs(),
                max_secs: 0,
            }),
            _ => Ok(()),
        }
    }
}

/// Verify a parsed draft-cavage signature on `request` with `key`.
///
/// See the module documentation for what is checked.
pub fn verify(
    signature: &SignatureHeader,
    request: &Request<'_>,
    key: &PublicKey,
    options: &VerifyOptions,
) -> Result<()> {
    if let Some(algorithm) = &signature.algorithm {
        let ok =
            algorithm.eq_ignore_ascii_case(ALGORITHM) || algorithm.eq_ignore_ascii_case("ed25519");
        if !ok {
            return Err(Error::UnsupportedAlgorithm(algorithm.clone()));
        }
    }

    let mut required: Vec<&str> = vec![REQUEST_TARGET, "host", "date"];
    let digest_needed = needs_digest(request.method, request.body);
    if digest_needed {
        required.push("digest");
    }
    for name in required {
        if !signature.covers(name) {
            return Err(Error::NotCovered(name.to_owned()));
        }
    }

    let date = request
        .header("date")
        .ok_or_else(|| Error::MissingHeader("date".to_owned()))?;
    let date = httpdate::parse_http_date(&date)
        .map_err(|_| Error::InvalidDate(format!("Date header {date:?} is not an HTTP date")))?;
    options.check_time(date)?;
    if let Some(created) = signature.created {
        options.check_time(UNIX_EPOCH + Duration::from_secs(created))?;
    }
    if let Some(expires) = signature.expires {
        options.check_expires(UNIX_EPOCH + Duration::from_secs(expires))?;
    }

    if digest_needed {
        let header = request
            .header("digest")
            .ok_or_else(|| Error::MissingHeader("digest".to_owned()))?;
        digest::verify_legacy_digest(&header, request.body)?;
    }
    if let Some(content_digest) = request.header("content-digest") {
        digest::verify_content_digest(&content_digest, request.body)?;
    }

    let covered: Vec<&str> = signature.headers.iter().map(String::as_str).collect();
    let text = build_signing_string(
        request.method,
        request.path_and_query,
        request.headers,
        &covered,
        signature.created_text.as_deref(),
        signature.expires_text.as_deref(),
    )?;
    key.verify(text.as_bytes(), &signature.signature)
}

pub(crate) fn header_value(headers: &[(&str, &str)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
