//! JSON canonicalization (RFC 8785), which integrity proofs hash: any JSON document either
//! canonicalizes or is refused; a canonical form is valid JSON of the same value (numbers as
//! parsed), and is its own canonical form.
#![no_main]

use caremesh_protocol::jcs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(canonical) = jcs::canonicalize(&value) else {
        return;
    };
    let reparsed: serde_json::Value = serde_json::from_str(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} is not JSON: {e}"));
    let again = jcs::canonicalize(&reparsed).expect("a canonical form canonicalizes");
    assert_eq!(again, canonical);
    assert_eq!(
        jcs::canonicalize_to_vec(&value).expect("canonicalizes as bytes too"),
        canonical.as_bytes()
    );
});
