//! HTTP signature headers as an inbox receives them: the draft-cavage `Signature` header, RFC 9421
//! `Signature-Input` with `Signature`, and the `Content-Digest` and `Digest` headers. The input is
//! the header values separated by newlines. A parsed RFC 9421 signature must serialize to an inner
//! list that parses back to the same components and parameters, and its signature base must be
//! computable or refused, never a panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use caremesh_protocol::keys::KeyPair;
use caremesh_protocol::{digest, httpsig, httpsig::rfc9421};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let first = lines.next().unwrap_or("");
    let second = lines.next().unwrap_or("");
    let body = lines.next().unwrap_or("").as_bytes();

    let key = KeyPair::from_seed(&[7; 32]).public_key();
    let options = httpsig::VerifyOptions::new(UNIX_EPOCH + Duration::from_secs(1_618_884_473));
    if let Ok(header) = httpsig::parse_signature_header(first) {
        let _ = header.key_id();
        let headers = [
            ("host", "example.com"),
            ("date", second),
            ("digest", second),
            ("content-digest", second),
        ];
        let request = httpsig::Request {
            method: "POST",
            path_and_query: "/inbox",
            headers: &headers,
            body,
        };
        let _ = httpsig::verify(&header, &request, &key, &options);
    }
    let _ = digest::parse_content_digest(first);
    let _ = digest::verify_content_digest(first, body);
    let _ = digest::verify_legacy_digest(first, body);

    let Ok(signatures) = rfc9421::parse_signatures(first, second) else {
        return;
    };
    let headers = [
        ("host", "example.com"),
        ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("content-type", "application/json"),
    ];
    let message = rfc9421::Message {
        method: "POST",
        scheme: "https",
        authority: "example.com",
        path: "/inbox",
        query: Some("x=1"),
        headers: &headers,
    };
    for signature in &signatures {
        let _ = rfc9421::verify_request(signature, &message, body, &key, &options);
        let params = &signature.params;
        let _ = rfc9421::signature_base(&message, params);
        let Ok(serialized) = params.serialize() else {
            continue;
        };
        let again = rfc9421::parse_signatures(
            &format!("{}={serialized}", signature.label),
            &format!("{}=:AA==:", signature.label),
        )
        .expect("a serialized Signature-Input member parses again");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].params, *params, "{serialized}");
    }
});
