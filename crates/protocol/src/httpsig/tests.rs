use std::collections::BTreeMap;

use super::*;

const KEY_ID: &str = "https://a.example/actor#main-key";
const DATE: &str = "Tue, 20 Apr 2021 02:07:55 GMT";
const DATE_SECS: u64 = 1_618_884_475;
const BODY: &[u8] = br#"{"type":"Create","id":"https://a.example/activities/1"}"#;

fn key() -> KeyPair {
    KeyPair::from_seed(&[11u8; 32])
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn opts() -> VerifyOptions {
    VerifyOptions::new(at(DATE_SECS))
}

fn post_headers(body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("Host", "b.example".to_owned()),
        ("Date", DATE.to_owned()),
        ("Digest", digest::legacy_digest(body)),
        ("Content-Type", "application/activity+json".to_owned()),
    ]
}

fn borrow<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Sign a POST of `BODY` to `/inbox` and return its headers with `Signature` added.
fn signed_post() -> Vec<(&'static str, String)> {
    let mut headers = post_headers(BODY);
    let h = borrow(&headers);
    let request = Request {
        method: "POST",
        path_and_query: "/inbox",
        headers: &h,
        body: BODY,
    };
    let signature = sign(&request, KEY_ID, &key()).unwrap();
    headers.push(("Signature", signature));
    headers
}

fn verify_post(
    headers: &[(&'static str, String)],
    path: &str,
    body: &[u8],
    public: &PublicKey,
    options: &VerifyOptions,
) -> Result<()> {
    let h = borrow(headers);
    let request = Request {
        method: "POST",
        path_and_query: path,
        headers: &h,
        body,
    };
    let parsed = parse_signature_header(&request.header("signature").unwrap())?;
    verify(&parsed, &request, public, options)
}

fn replace(headers: &mut [(&'static str, String)], name: &str, value: &str) {
    for (k, v) in headers.iter_mut() {
        if k.eq_ignore_ascii_case(name) {
            *v = value.to_owned();
        }
    }
}

#[test]
fn signing_string_for_post() {
    let headers = post_headers(BODY);
    let text = signing_string("POST", "/inbox?x=1", &borrow(&headers), POST_HEADERS).unwrap();
    assert_eq!(
        text,
        format!(
            "(request-target): post /inbox?x=1\nhost: b.example\ndate: {DATE}\ndigest: {}",
            digest::legacy_digest(BODY)
        )
    );
}

#[test]
fn signing_string_needs_every_covered_header() {
    let headers = [("Host", "b.example")];
    assert_eq!(
        signing_string("GET", "/", &headers, GET_HEADERS),
        Err(Error::MissingHeader("date".to_owned()))
    );
}

#[test]
fn repeated_headers_are_combined() {
    let headers = [("X-A", " one "), ("x-a", "two")];
    assert_eq!(
        signing_string("GET", "/", &headers, &["x-a"]).unwrap(),
        "x-a: one, two"
    );
}

#[test]
fn post_signature_header_shape() {
    let headers = signed_post();
    let value = &headers.last().unwrap().1;
    assert!(
        value.starts_with(&format!(
            "keyId=\"{KEY_ID}\",algorithm=\"hs2019\",headers=\"(request-target) host date digest\",signature=\""
        )),
        "{value}"
    );
    let parsed = parse_signature_header(value).unwrap();
    assert_eq!(parsed.key_id(), KEY_ID);
    assert_eq!(parsed.algorithm.as_deref(), Some("hs2019"));
    assert_eq!(
        parsed.headers,
        ["(request-target)", "host", "date", "digest"]
    );
    // The signature is over the documented signing string.
    let text = signing_string("POST", "/inbox", &borrow(&headers), POST_HEADERS).unwrap();
    key()
        .public_key()
        .verify(text.as_bytes(), &parsed.signature)
        .unwrap();
}

#[test]
fn post_round_trip_verifies() {
    let headers = signed_post();
    verify_post(&headers, "/inbox", BODY, &key().public_key(), &opts()).unwrap();
}

#[test]
fn get_round_trip_covers_no_digest() {
    let headers = vec![("Host", "b.example".to_owned()), ("Date", DATE.to_owned())];
    let h = borrow(&headers);
    let request = Request {
        method: "GET",
        path_and_query: "/groups/1/outbox?page=2",
        headers: &h,
        body: b"",
    };
    let value = sign(&request, KEY_ID, &key()).unwrap();
    let parsed = parse_signature_header(&value).unwrap();
    assert_eq!(parsed.headers, ["(request-target)", "host", "date"]);
    verify(&parsed, &request, &key().public_key(), &opts()).unwrap();

    let other_path = Request {
        path_and_query: "/groups/1/outbox?page=3",
        ..request
    };
    assert_eq!(
        verify(&parsed, &other_path, &key().public_key(), &opts()),
        Err(Error::BadSignature)
    );
}

#[test]
fn tampered_requests_are_rejected() {
    let public = key().public_key();
    let headers = signed_post();
    assert_eq!(
        verify_post(&headers, "/other-inbox", BODY, &public, &opts()),
        Err(Error::BadSignature)
    );

    let mut h = headers.clone();
    replace(&mut h, "host", "c.example");
    assert_eq!(
        verify_post(&h, "/inbox", BODY, &public, &opts()),
        Err(Error::BadSignature)
    );

    // A different body with its own (unsigned) digest.
    let other = br#"{"type":"Delete"}"#;
    let mut h = headers.clone();
    replace(&mut h, "digest", &digest::legacy_digest(other));
    assert_eq!(
        verify_post(&h, "/inbox", other, &public, &opts()),
        Err(Error::BadSignature)
    );

    // Date moved within the window: still a different signing string.
    let mut h = headers.clone();
    replace(&mut h, "date", "Tue, 20 Apr 2021 02:07:56 GMT");
    assert_eq!(
        verify_post(&h, "/inbox", BODY, &public, &opts()),
        Err(Error::BadSignature)
    );

    // Flipped signature bit.
    let mut h = headers.clone();
    let mut parsed = parse_signature_header(&h.last().unwrap().1).unwrap();
    parsed.signature[10] ^= 0x40;
    h.last_mut().unwrap().1 = format!(
        "keyId=\"{KEY_ID}\",algorithm=\"hs2019\",headers=\"(request-target) host date digest\",signature=\"{}\"",
        BASE64.encode(&parsed.signature)
    );
    assert_eq!(
        verify_post(&h, "/inbox", BODY, &public, &opts()),
        Err(Error::BadSignature)
    );
}

#[test]
fn body_not_matching_digest_is_rejected() {
    let headers = signed_post();
    assert_eq!(
        verify_post(&headers, "/inbox", b"{}", &key().public_key(), &opts()),
        Err(Error::DigestMismatch {
            algorithm: "sha-256".to_owned()
        })
    );
}

#[test]
fn mismatching_content_digest_is_rejected_too() {
    let mut headers = signed_post();
    headers.push((
        "Content-Digest",
        digest::content_digest(digest::DigestAlgorithm::Sha256, b"other"),
    ));
    assert_eq!(
        verify_post(&headers, "/inbox", BODY, &key().public_key(), &opts()),
        Err(Error::DigestMismatch {
            algorithm: "sha-256".to_owned()
        })
    );
}

#[test]
fn wrong_key_is_rejected() {
    let headers = signed_post();
    let other = KeyPair::from_seed(&[12u8; 32]).public_key();
    assert_eq!(
        verify_post(&headers, "/inbox", BODY, &other, &opts()),
        Err(Error::BadSignature)
    );
}

#[test]
fn date_window_is_enforced_both_ways() {
    let headers = signed_post();
    let public = key().public_key();
    let check = |now: u64| {
        verify_post(
            &headers,
            "/inbox",
            BODY,
            &public,
            &VerifyOptions::new(at(now)),
        )
    };

    assert_eq!(check(DATE_SECS + 300), Ok(()));
    assert_eq!(check(DATE_SECS - 300), Ok(()));
    assert_eq!(
        check(DATE_SECS + 301),
        Err(Error::Expired {
            age_secs: 301,
            max_secs: 300
        })
    );
    assert_eq!(
        check(DATE_SECS - 301),
        Err(Error::FromTheFuture {
            ahead_secs: 301,
            max_secs: 300
        })
    );
    assert_eq!(
        check(DATE_SECS + 86_400),
        Err(Error::Expired {
            age_secs: 86_400,
            max_secs: 300
        })
    );
}

#[test]
fn skew_window_is_configurable() {
    let headers = signed_post();
    let public = key().public_key();
    let narrow = VerifyOptions::new(at(DATE_SECS + 61)).with_max_skew(Duration::from_secs(60));
    assert!(matches!(
        verify_post(&headers, "/inbox", BODY, &public, &narrow),
        Err(Error::Expired { .. })
    ));
    let narrow = VerifyOptions::new(at(DATE_SECS + 60)).with_max_skew(Duration::from_secs(60));
    verify_post(&headers, "/inbox", BODY, &public, &narrow).unwrap();
}

#[test]
fn unparsable_or_missing_date_is_rejected() {
    let mut headers = post_headers(BODY);
    replace(&mut headers, "date", "yesterday");
    let h = borrow(&headers);
    let request = Request {
        method: "POST",
        path_and_query: "/inbox",
        headers: &h,
        body: BODY,
    };
    let value = sign(&request, KEY_ID, &key()).unwrap();
    let parsed = parse_signature_header(&value).unwrap();
    assert!(matches!(
        verify(&parsed, &request, &key().public_key(), &opts()),
        Err(Error::InvalidDate(_))
    ));

    let headers = signed_post();
    let without_date: Vec<_> = headers.into_iter().filter(|(k, _)| *k != "Date").collect();
    assert_eq!(
        verify_post(&without_date, "/inbox", BODY, &key().public_key(), &opts()),
        Err(Error::MissingHeader("date".to_owned()))
    );
}

fn sign_post_covering(covered: &[&str]) -> Vec<(&'static str, String)> {
    let mut headers = post_headers(BODY);
    let h = borrow(&headers);
    let request = Request {
        method: "POST",
        path_and_query: "/inbox",
        headers: &h,
        body: BODY,
    };
    let value = sign_covering(&request, covered, KEY_ID, &key()).unwrap();
    headers.push(("Signature", value));
    headers
}

#[test]
fn required_headers_must_be_covered() {
    let public = key().public_key();
    for (covered, missing) in [
        (&[REQUEST_TARGET, "host", "date"][..], "digest"),
        (&[REQUEST_TARGET, "host", "digest"][..], "date"),
        (&[REQUEST_TARGET, "date", "digest"][..], "host"),
        (&["host", "date", "digest"][..], REQUEST_TARGET),
    ] {
        let headers = sign_post_covering(covered);
        assert_eq!(
            verify_post(&headers, "/inbox", BODY, &public, &opts()),
            Err(Error::NotCovered(missing.to_owned())),
            "{covered:?}"
        );
    }
    // Covering more than required is fine, in any order.
    let headers = sign_post_covering(&["date", "content-type", "digest", "host", REQUEST_TARGET]);
    verify_post(&headers, "/inbox", BODY, &public, &opts()).unwrap();
}

#[test]
fn get_with_a_body_needs_digest() {
    let headers = vec![("Host", "b.example".to_owned()), ("Date", DATE.to_owned())];
    let h = borrow(&headers);
    let unsigned_body = Request {
        method: "GET",
        path_and_query: "/x",
        headers: &h,
        body: b"",
    };
    let value = sign(&unsigned_body, KEY_ID, &key()).unwrap();
    let parsed = parse_signature_header(&value).unwrap();
    let with_body = Request {
        body: b"smuggled",
        ..unsigned_body
    };
    assert_eq!(
        verify(&parsed, &with_body, &key().public_key(), &opts()),
        Err(Error::NotCovered("digest".to_owned()))
    );
}

#[test]
fn sign_refuses_missing_or_wrong_digest() {
    let headers = vec![("Host", "b.example"), ("Date", DATE)];
    let request = Request {
        method: "POST",
        path_and_query: "/inbox",
        headers: &headers,
        body: BODY,
    };
    assert_eq!(
        sign(&request, KEY_ID, &key()),
        Err(Error::MissingHeader("digest".to_owned()))
    );
    let wrong = digest::legacy_digest(b"other");
    let headers = vec![
        ("Host", "b.example"),
        ("Date", DATE),
        ("Digest", wrong.as_str()),
    ];
    let request = Request {
        headers: &headers,
        ..request
    };
    assert!(matches!(
        sign(&request, KEY_ID, &key()),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn sign_refuses_key_ids_that_break_the_header() {
    let headers = signed_post();
    let h = borrow(&headers);
    let request = Request {
        method: "POST",
        path_and_query: "/inbox",
        headers: &h,
        body: BODY,
    };
    assert!(matches!(
        sign(&request, "https://a.example/\",algorithm=\"x", &key()),
        Err(Error::MalformedSignatureHeader(_))
    ));
}

#[test]
fn algorithm_is_checked() {
    let public = key().public_key();
    let headers = signed_post();
    let original = headers.last().unwrap().1.clone();
    for (algorithm, ok) in [
        ("hs2019", true),
        ("ed25519", true),
        ("rsa-sha256", false),
        ("hmac-sha256", false),
    ] {
        let mut h = headers.clone();
        h.last_mut().unwrap().1 = original.replace(
            "algorithm=\"hs2019\"",
            &format!("algorithm=\"{algorithm}\""),
        );
        let result = verify_post(&h, "/inbox", BODY, &public, &opts());
        if ok {
            assert_eq!(result, Ok(()), "{algorithm}");
        } else {
            assert_eq!(
                result,
                Err(Error::UnsupportedAlgorithm(algorithm.to_owned())),
                "{algorithm}"
            );
        }
    }
    // No algorithm parameter at all: the key decides.
    let mut h = headers.clone();
    h.last_mut().unwrap().1 = original.replace("algorithm=\"hs2019\",", "");
    verify_post(&h, "/inbox", BODY, &public, &opts()).unwrap();
}

#[test]
fn parses_spacing_authorization_and_unknown_params() {
    let value = "Signature keyId=\"k\", algorithm=\"hs2019\" ,\n\
                 headers=\"(request-target) Host date\",  created=1618884473, \
                 expires=1618884773.5, extra=\"ignored\", signature=\"AAEC\"";
    let parsed = parse_signature_header(&value.replace('\n', " ")).unwrap();
    assert_eq!(parsed.key_id, "k");
    assert_eq!(parsed.headers, ["(request-target)", "host", "date"]);
    assert_eq!(parsed.signature, [0, 1, 2]);
    assert_eq!(parsed.created, Some(1_618_884_473));
    assert_eq!(parsed.expires, Some(1_618_884_773));
    // Quoted values may hold commas and escaped quotes.
    let parsed = parse_signature_header(r#"keyId="a,b\"c",signature="AA==""#).unwrap();
    assert_eq!(parsed.key_id, "a,b\"c");
    assert_eq!(parsed.headers, ["(created)"]);
}

#[test]
fn malformed_signature_headers_are_rejected() {
    for bad in [
        "",
        "signature=\"AA==\"",
        "keyId=\"k\"",
        "keyId=\"\",signature=\"AA==\"",
        "keyId=\"k\",signature=\"not base64!\"",
        "keyId=\"k\",signature=\"AA==",
        "keyId=\"k\" signature=\"AA==\"",
        "keyId=\"k\",keyId=\"j\",signature=\"AA==\"",
        "keyId=\"k\",headers=\"date date\",signature=\"AA==\"",
        "keyId=\"k\",headers=\"\",signature=\"AA==\"",
        "=\"k\"",
    ] {
        assert!(
            matches!(
                parse_signature_header(bad),
                Err(Error::MalformedSignatureHeader(_))
            ),
            "{bad:?} gave {:?}",
            parse_signature_header(bad)
        );
    }
    assert!(matches!(
        parse_signature_header("keyId=\"k\",created=\"soon\",signature=\"AA==\""),
        Err(Error::InvalidDate(_))
    ));
}

fn signed_with_created(created: u64, expires: u64) -> (Vec<(&'static str, String)>, String) {
    let headers = post_headers(BODY);
    let covered = [
        REQUEST_TARGET,
        "(created)",
        "(expires)",
        "host",
        "date",
        "digest",
    ];
    let text = build_signing_string(
        "POST",
        "/inbox",
        &borrow(&headers),
        &covered,
        Some(&created.to_string()),
        Some(&expires.to_string()),
    )
    .unwrap();
    assert!(text.contains(&format!("\n(created): {created}\n(expires): {expires}\n")));
    let value = format!(
        "keyId=\"{KEY_ID}\",algorithm=\"hs2019\",created={created},expires={expires},headers=\"{}\",signature=\"{}\"",
        covered.join(" "),
        BASE64.encode(key().sign(text.as_bytes()))
    );
    (headers, value)
}

#[test]
fn created_and_expires_are_covered_and_checked() {
    let public = key().public_key();
    let (mut headers, value) = signed_with_created(DATE_SECS, DATE_SECS + 60);
    headers.push(("Signature", value));
    verify_post(&headers, "/inbox", BODY, &public, &opts()).unwrap();
    // Past `expires` although within the Date window.
    assert_eq!(
        verify_post(
            &headers,
            "/inbox",
            BODY,
            &public,
            &VerifyOptions::new(at(DATE_SECS + 61))
        ),
        Err(Error::Expired {
            age_secs: 1,
            max_secs: 0
        })
    );
    // `created` far in the future.
    let (mut headers, value) = signed_with_created(DATE_SECS + 3600, DATE_SECS + 3660);
    headers.push(("Signature", value));
    assert!(matches!(
        verify_post(&headers, "/inbox", BODY, &public, &opts()),
        Err(Error::FromTheFuture { .. })
    ));
    // A changed `created` parameter breaks the signature.
    let (mut headers, value) = signed_with_created(DATE_SECS, DATE_SECS + 60);
    headers.push((
        "Signature",
        value.replace(
            &format!("created={DATE_SECS}"),
            &format!("created={}", DATE_SECS - 1),
        ),
    ));
    assert_eq!(
        verify_post(&headers, "/inbox", BODY, &public, &opts()),
        Err(Error::BadSignature)
    );
}

#[test]
fn signed_request_headers_for_post_and_get() {
    let now = at(DATE_SECS);
    let post =
        signed_request_headers("POST", "/inbox", "b.example", BODY, now, KEY_ID, &key()).unwrap();
    let names: Vec<&str> = post.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["Host", "Date", "Digest", "Signature"]);
    assert_eq!(post[1].1, DATE);
    verify_post(&post, "/inbox", BODY, &key().public_key(), &opts()).unwrap();

    let get =
        signed_request_headers("GET", "/actor", "b.example", b"", now, KEY_ID, &key()).unwrap();
    let names: Vec<&str> = get.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["Host", "Date", "Signature"]);
    let h = borrow(&get);
    let request = Request {
        method: "GET",
        path_and_query: "/actor",
        headers: &h,
        body: b"",
    };
    let parsed = parse_signature_header(&request.header("signature").unwrap()).unwrap();
    verify(&parsed, &request, &key().public_key(), &opts()).unwrap();
}

/// Signatures made by `http-signature-normalization` (Mastodon-compatible mode) verify here.
#[test]
fn interop_signed_by_http_signature_normalization() {
    let config = http_signature_normalization::Config::new()
        .mastodon_compat()
        .require_digest();
    let headers = post_headers(BODY);
    let map: BTreeMap<String, String> = headers
        .iter()
        .filter(|(k, _)| *k != "Content-Type")
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let value = config
        .begin_sign("POST", "/inbox", map)
        .unwrap()
        .sign(KEY_ID.to_owned(), |text| {
            Ok::<_, std::convert::Infallible>(BASE64.encode(key().sign(text.as_bytes())))
        })
        .unwrap()
        .signature_header();
    let mut headers = headers;
    headers.push(("Signature", value));
    verify_post(&headers, "/inbox", BODY, &key().public_key(), &opts()).unwrap();
}

/// Signatures made here verify with `http-signature-normalization`.
#[test]
fn interop_verified_by_http_signature_normalization() {
    let now = SystemTime::now();
    let headers =
        signed_request_headers("POST", "/inbox", "b.example", BODY, now, KEY_ID, &key()).unwrap();
    let map: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config = http_signature_normalization::Config::new()
        .mastodon_compat()
        .require_digest()
        .set_expiration(DEFAULT_MAX_SKEW);
    let unverified = config.begin_verify("POST", "/inbox", map).unwrap();
    assert_eq!(unverified.key_id(), KEY_ID);
    let public = key().public_key();
    let ok = unverified.verify(|signature, text| {
        BASE64
            .decode(signature)
            .ok()
            .is_some_and(|sig| public.verify(text.as_bytes(), &sig).is_ok())
    });
    assert!(ok);
}

/// Found by the `signature_headers` fuzz target: a value whose tenth byte falls inside a
/// character made the check for an `Authorization: Signature …` prefix slice a `str` in the middle
/// of a character and panic. It is refused as malformed.
#[test]
fn non_ascii_signature_header_is_refused_not_a_panic() {
    for value in [
        "sig-b26=(\u{FFFD}date\" \"@method\");created=1618884473;keyid=\"test-key-ed25519\"",
        "signatur\u{e9} keyId=\"k\"",
        "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}",
    ] {
        assert!(parse_signature_header(value).is_err(), "{value}");
    }
    // The prefix itself is still recognised.
    let value = "Signature keyId=\"k\",headers=\"(request-target) host date\",signature=\"AA==\"";
    assert_eq!(parse_signature_header(value).unwrap().key_id(), "k");
}
