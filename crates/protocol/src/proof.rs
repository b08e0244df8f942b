//! FEP-8b32 Object Integrity Proofs with the W3C `eddsa-jcs-2022` cryptosuite.
//!
//! A proof is made with the **author's** key and travels with the object, so a post stays
//! verifiable however many hops forward it.
//!
//! Algorithm (vc-di-eddsa, "eddsa-jcs-2022"):
//!
//! 1. `proofConfig` = the proof options without `proofValue`, with the document's
//!    `@context` copied in;
//! 2. `hashData` = SHA-256(JCS(`proofConfig`)) ‖ SHA-256(JCS(document without `proof`));
//! 3. `proofValue` = `z` + base58btc(Ed25519(`hashData`)).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::keys::{KeyPair, PublicKey, SIGNATURE_LEN};
use crate::{Error, Result, jcs};

/// The proof `type`.
pub const PROOF_TYPE: &str = "DataIntegrityProof";
/// The only cryptosuite Caremesh makes and accepts.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// The proof purpose FEP-8b32 uses for objects and activities.
pub const ASSERTION_METHOD: &str = "assertionMethod";

/// What a proof says about itself, apart from the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofOptions {
    /// The key id, e.g. `https://node.example/users/alice#main-key`.
    pub verification_method: String,
    /// Always [`ASSERTION_METHOD`] in FEP-8b32.
    pub proof_purpose: String,
    /// XML Schema `dateTimeStamp`, e.g. `2023-02-24T23:36:38Z`.
    pub created: Option<String>,
}

impl ProofOptions {
    /// Options for an `assertionMethod` proof by `verification_method`, created at `created`.
    pub fn new(verification_method: impl Into<String>, created: SystemTime) -> Self {
        Self {
            verification_method: verification_method.into(),
            proof_purpose: ASSERTION_METHOD.to_owned(),
            created: Some(format_datetime(created)),
        }
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), PROOF_TYPE.into());
        m.insert("cryptosuite".into(), CRYPTOSUITE.into());
        m.insert(
            "verificationMethod".into(),
            self.verification_method.clone().into(),
        );
        m.insert("proofPurpose".into(), self.proof_purpose.clone().into());
        if let Some(created) = &self.created {
            m.insert("created".into(), created.clone().into());
        }
        m
    }
}

/// `document` with a `proof` member made by `key`.
///
/// The document must be a JSON object without a `proof` (proof sets and chains are not
/// used by Caremesh). The returned proof carries the document's `@context`, as the
/// cryptosuite specifies.
pub fn create_proof(document: &Value, options: &ProofOptions, key: &KeyPair) -> Result<Value> {
    let Value::Object(doc) = document else {
        return Err(Error::MalformedProof(
            "only a JSON object can carry a proof".to_owned(),
        ));
    };
    if doc.contains_key("proof") {
        return Err(Error::MalformedProof(
            "document already has a proof".to_owned(),
        ));
    }
    let mut proof = options.to_json();
    if let Some(context) = doc.get("@context") {
        proof.insert("@context".into(), context.clone());
    }
    let hash = hash_data(&proof, document)?;
    let signature = key.sign(&hash);
    proof.insert(
        "proofValue".into(),
        format!("z{}", bs58::encode(signature).into_string()).into(),
    );
    let mut secured = doc.clone();
    secured.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(secured))
}

/// Verify the `eddsa-jcs-2022` proof of `document` with `key`.
///
/// Fails if the proof is missing or malformed, uses another type or cryptosuite or
/// purpose, if its `@context` is not a prefix of the document's, or if the signature does
/// not match the document and proof options (any change to either breaks it).
pub fn verify_proof(document: &Value, key: &PublicKey) -> Result<()> {
    let Value::Object(doc) = document else {
        return Err(Error::MalformedProof(
            "document is not a JSON object".to_owned(),
        ));
    };
    let proof = single_proof(doc)?;

    let kind = proof.get("type").and_then(Value::as_str);
    if kind != Some(PROOF_TYPE) {
        return Err(Error::UnsupportedCryptosuite(format!(
            "proof type {kind:?}"
        )));
    }
    let suite = proof.get("cryptosuite").and_then(Value::as_str);
    if suite != Some(CRYPTOSUITE) {
        return Err(Error::UnsupportedCryptosuite(format!(
            "cryptosuite {suite:?}"
        )));
    }
    let purpose = proof.get("proofPurpose").and_then(Value::as_str);
    if purpose != Some(ASSERTION_METHOD) {
        return Err(Error::MalformedProof(format!(
            "proofPurpose is {purpose:?}, expected \"assertionMethod\""
        )));
    }
    if !proof
        .get("verificationMethod")
        .is_some_and(Value::is_string)
    {
        return Err(Error::MalformedProof(
            "verificationMethod is missing or not a string".to_owned(),
        ));
    }
    let signature = decode_proof_value(proof.get("proofValue"))?;

    let mut options = proof.clone();
    options.remove("proofValue");
    let mut unsecured = doc.clone();
    unsecured.remove("proof");

    // The proof's @context must be the document's or a prefix of it; the document is then
    // hashed with the proof's @context (vc-di-eddsa, "Verify Proof (eddsa-jcs-2022)").
    if let Some(proof_context) = options.get("@context") {
        let doc_context = unsecured.get("@context").ok_or_else(|| {
            Error::MalformedProof("proof has an @context but the document has none".to_owned())
        })?;
        if !context_starts_with(doc_context, proof_context) {
            return Err(Error::MalformedProof(
                "document @context does not start with the proof @context".to_owned(),
            ));
        }
        unsecured.insert("@context".into(), proof_context.clone());
    }
    if let Some(context) = unsecured.get("@context") {
        options.insert("@context".into(), context.clone());
    }

    let hash = hash_data(&options, &Value::Object(unsecured))?;
    key.verify(&hash, &signature)
}

/// The `verificationMethod` (key id) of the document's proof, so a caller can fetch the
/// key before calling [`verify_proof`].
pub fn proof_verification_method(document: &Value) -> Result<&str> {
    let Value::Object(doc) = document else {
        return Err(Error::MalformedProof(
            "document is not a JSON object".to_owned(),
        ));
    };
    single_proof(doc)?
        .get("verificationMethod")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::MalformedProof("verificationMethod is missing or not a string".to_owned())
        })
}

fn single_proof(doc: &Map<String, Value>) -> Result<&Map<String, Value>> {
    match doc.get("proof") {
        Some(Value::Object(proof)) => Ok(proof),
        Some(Value::Array(_)) => Err(Error::MalformedProof(
            "proof sets are not supported: expected a single proof object".to_owned(),
        )),
        Some(_) => Err(Error::MalformedProof("proof is not an object".to_owned())),
        None => Err(Error::MalformedProof("document has no proof".to_owned())),
    }
}

fn decode_proof_value(value: Option<&Value>) -> Result<Vec<u8>> {
    let Some(text) = value.and_then(Value::as_str) else {
        return Err(Error::MalformedProof(
            "proofValue is missing or not a string".to_owned(),
        ));
    };
    let Some(encoded) = text.strip_prefix('z') else {
        return Err(Error::MalformedProof(
            "proofValue is not base58btc multibase (no 'z' prefix)".to_owned(),
        ));
    };
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|e| Error::MalformedProof(format!("proofValue is not base58btc: {e}")))?;
    if bytes.len() != SIGNATURE_LEN {
        return Err(Error::MalformedProof(format!(
            "proofValue decodes to {} bytes, expected {SIGNATURE_LEN}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn hash_data(proof_config: &Map<String, Value>, document: &Value) -> Result<Vec<u8>> {
    let config = jcs::canonicalize_to_vec(&Value::Object(proof_config.clone()))?;
    let doc = jcs::canonicalize_to_vec(document)?;
    let mut hash = Vec::with_capacity(64);
    hash.extend_from_slice(&Sha256::digest(config));
    hash.extend_from_slice(&Sha256::digest(doc));
    Ok(hash)
}

fn context_starts_with(document: &Value, prefix: &Value) -> bool {
    fn as_list(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        }
    }
    let document = as_list(document);
    let prefix = as_list(prefix);
    prefix.len() <= document.len() && prefix.iter().zip(&document).all(|(a, b)| a == b)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds). Times before 1970 are clamped to it.
pub fn format_datetime(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is in 1..=31 and month in 1..=12 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::multikey;
    use crate::test_vectors::vectors;
    use serde_json::json;

    struct Fixture {
        key: KeyPair,
        public: PublicKey,
        document: Value,
        options: ProofOptions,
        proof_options: Value,
        proof_value: String,
    }

    fn fixture() -> Fixture {
        let v = &vectors()["fep8b32_eddsa_jcs_2022"];
        let key =
            multikey::decode_private_key(v["secret_key_multibase"].as_str().unwrap()).unwrap();
        let public =
            multikey::decode_public_key(v["public_key_multibase"].as_str().unwrap()).unwrap();
        let po = &v["proof_options"];
        let options = ProofOptions {
            verification_method: po["verificationMethod"].as_str().unwrap().to_owned(),
            proof_purpose: po["proofPurpose"].as_str().unwrap().to_owned(),
            created: Some(po["created"].as_str().unwrap().to_owned()),
        };
        Fixture {
            key,
            public,
            document: v["document"].clone(),
            options,
            proof_options: po.clone(),
            proof_value: v["proof_value"].as_str().unwrap().to_owned(),
        }
    }

    fn signed() -> (Fixture, Value) {
        let f = fixture();
        let secured = create_proof(&f.document, &f.options, &f.key).unwrap();
        (f, secured)
    }

    #[test]
    fn fep8b32_vector_proof_value_is_reproduced() {
        let (f, secured) = signed();
        assert_eq!(f.key.public_key(), f.public);
        assert_eq!(secured["proof"]["proofValue"], json!(f.proof_value));
        // The proof is the published proof options plus proofValue.
        let mut expected_proof = f.proof_options.clone();
        expected_proof["proofValue"] = json!(f.proof_value);
        assert_eq!(secured["proof"], expected_proof);
        // The rest of the document is untouched.
        let mut without = secured.clone();
        without.as_object_mut().unwrap().remove("proof");
        assert_eq!(without, f.document);
    }

    #[test]
    fn fep8b32_vector_verifies() {
        let f = fixture();
        let mut secured = f.document.clone();
        let mut proof = f.proof_options.clone();
        proof["proofValue"] = json!(f.proof_value);
        secured["proof"] = proof;
        verify_proof(&secured, &f.public).unwrap();
    }

    #[test]
    fn fep8b32_vector_verifies_without_proof_context() {
        // Senders that leave @context out of the proof are still verified: the document's
        // @context is used for the proof configuration either way.
        let f = fixture();
        let mut secured = f.document.clone();
        let mut proof = f.proof_options.clone();
        proof.as_object_mut().unwrap().remove("@context");
        proof["proofValue"] = json!(f.proof_value);
        secured["proof"] = proof;
        verify_proof(&secured, &f.public).unwrap();
    }

    #[test]
    fn verification_method_is_exposed() {
        let (_, secured) = signed();
        assert_eq!(
            proof_verification_method(&secured).unwrap(),
            "https://server.example/users/alice#ed25519-key"
        );
        assert!(matches!(
            proof_verification_method(&json!({"id": "x"})),
            Err(Error::MalformedProof(_))
        ));
    }

    #[test]
    fn altered_document_is_rejected() {
        let (f, mut secured) = signed();
        secured["object"]["content"] = json!("Hello world!");
        assert_eq!(verify_proof(&secured, &f.public), Err(Error::BadSignature));

        let (f, mut secured) = signed();
        secured["object"]["location"]["latitude"] = json!(25.273963);
        assert_eq!(verify_proof(&secured, &f.public), Err(Error::BadSignature));

        let (f, mut secured) = signed();
        secured
            .as_object_mut()
            .unwrap()
            .insert("cc".into(), json!([]));
        assert_eq!(verify_proof(&secured, &f.public), Err(Error::BadSignature));
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let (f, secured) = signed();
        let text = serde_json::to_string_pretty(&secured).unwrap();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        verify_proof(&reparsed, &f.public).unwrap();
    }

    #[test]
    fn altered_proof_options_are_rejected() {
        for (field, value) in [
            ("created", json!("2023-02-24T23:36:39Z")),
            (
                "verificationMethod",
                json!("https://evil.example/users/mallory#key"),
            ),
        ] {
            let (f, mut secured) = signed();
            secured["proof"][field] = value;
            assert_eq!(
                verify_proof(&secured, &f.public),
                Err(Error::BadSignature),
                "{field}"
            );
        }
        let (f, mut secured) = signed();
        secured["proof"]["proofPurpose"] = json!("authentication");
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::MalformedProof(_))
        ));
        let (f, mut secured) = signed();
        secured["proof"]["nonce"] = json!("added");
        assert_eq!(verify_proof(&secured, &f.public), Err(Error::BadSignature));
    }

    #[test]
    fn context_mismatch_is_rejected() {
        let (f, mut secured) = signed();
        secured["proof"]["@context"] = json!([
            "https://www.w3.org/ns/activitystreams",
            "https://other.example/ctx"
        ]);
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::MalformedProof(_))
        ));
        // Replacing a context the proof names is refused.
        let (f, mut secured) = signed();
        secured["@context"][1] = json!("https://other.example/ctx");
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::MalformedProof(_))
        ));
        // The cryptosuite lets a forwarder append contexts after the signed ones: the
        // document is then hashed with the proof's @context, and still verifies.
        let (f, mut secured) = signed();
        secured["@context"]
            .as_array_mut()
            .unwrap()
            .push(json!("https://extra.example/ctx"));
        verify_proof(&secured, &f.public).unwrap();
        // Without @context in the proof, the document's whole @context is signed.
        let key = KeyPair::from_seed(&[6u8; 32]);
        let mut secured = create_proof(&f.document, &f.options, &key).unwrap();
        secured["proof"].as_object_mut().unwrap().remove("@context");
        verify_proof(&secured, &key.public_key()).unwrap();
        secured["@context"]
            .as_array_mut()
            .unwrap()
            .push(json!("https://extra.example/ctx"));
        assert_eq!(
            verify_proof(&secured, &key.public_key()),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn wrong_key_is_rejected() {
        let (_, secured) = signed();
        let other = KeyPair::from_seed(&[8u8; 32]).public_key();
        assert_eq!(verify_proof(&secured, &other), Err(Error::BadSignature));
    }

    #[test]
    fn missing_or_unknown_cryptosuite_is_rejected() {
        let (f, mut secured) = signed();
        secured["proof"]
            .as_object_mut()
            .unwrap()
            .remove("cryptosuite");
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::UnsupportedCryptosuite(_))
        ));
        let (f, mut secured) = signed();
        secured["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022");
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::UnsupportedCryptosuite(_))
        ));
        let (f, mut secured) = signed();
        secured["proof"]["type"] = json!("Ed25519Signature2020");
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::UnsupportedCryptosuite(_))
        ));
    }

    #[test]
    fn malformed_proof_value_is_rejected() {
        let (f, secured) = signed();
        let good = f.proof_value.clone();
        for bad in [
            json!(null),
            json!(42),
            json!(good[1..].to_string()),       // no multibase prefix
            json!(format!("u{}", &good[1..])),  // other multibase
            json!(format!("z{}0", &good[1..])), // not base58
            json!(&good[..good.len() - 3]),     // too short
            json!(format!("{good}2")),          // too long
        ] {
            let mut s = secured.clone();
            s["proof"]["proofValue"] = bad.clone();
            assert!(
                matches!(verify_proof(&s, &f.public), Err(Error::MalformedProof(_))),
                "{bad}"
            );
        }
        let mut s = secured.clone();
        s["proof"].as_object_mut().unwrap().remove("proofValue");
        assert!(matches!(
            verify_proof(&s, &f.public),
            Err(Error::MalformedProof(_))
        ));
    }

    #[test]
    fn missing_and_odd_proofs_are_rejected() {
        let f = fixture();
        assert!(matches!(
            verify_proof(&f.document, &f.public),
            Err(Error::MalformedProof(_))
        ));
        let (f, mut secured) = signed();
        let proof = secured["proof"].clone();
        secured["proof"] = json!([proof]);
        assert!(matches!(
            verify_proof(&secured, &f.public),
            Err(Error::MalformedProof(_))
        ));
        assert!(matches!(
            verify_proof(&json!("text"), &f.public),
            Err(Error::MalformedProof(_))
        ));
    }

    #[test]
    fn create_refuses_non_objects_and_existing_proofs() {
        let f = fixture();
        assert!(create_proof(&json!([1]), &f.options, &f.key).is_err());
        let (f, secured) = signed();
        assert!(matches!(
            create_proof(&secured, &f.options, &f.key),
            Err(Error::MalformedProof(_))
        ));
    }

    #[test]
    fn document_without_context_round_trips() {
        let key = KeyPair::from_seed(&[4u8; 32]);
        let doc = json!({"id": "https://a.example/notes/1", "type": "Note", "content": "hi"});
        let options = ProofOptions::new(
            "https://a.example/users/d#main-key",
            UNIX_EPOCH + Duration::from_secs(1_677_281_798),
        );
        let secured = create_proof(&doc, &options, &key).unwrap();
        assert!(secured["proof"].get("@context").is_none());
        assert_eq!(secured["proof"]["created"], json!("2023-02-24T23:36:38Z"));
        verify_proof(&secured, &key.public_key()).unwrap();
        let mut altered = secured.clone();
        altered["content"] = json!("ho");
        assert_eq!(
            verify_proof(&altered, &key.public_key()),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn datetime_formatting() {
        assert_eq!(format_datetime(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_datetime(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_datetime(UNIX_EPOCH + Duration::from_secs(1_618_884_473)),
            "2021-04-20T02:07:53Z"
        );
        assert_eq!(
            format_datetime(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59Z"
        );
    }
}
