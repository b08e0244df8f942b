//! FEP-521a `Multikey`: Ed25519 keys as multibase strings.
//!
//! A public key is `z` + base58btc(`0xed 0x01` ‖ 32-byte key) — the multicodec
//! `ed25519-pub` (0xed) as an unsigned varint. A private key is `z` + base58btc(`0x80 0x26`
//! ‖ 32-byte seed) — the multicodec `ed25519-priv` (0x1300) as a varint.

use serde::{Deserialize, Serialize};

use crate::keys::{KeyPair, PUBLIC_KEY_LEN, PublicKey, SEED_LEN};
use crate::{Error, Result};

/// Varint of multicodec `ed25519-pub` (0xed).
pub const ED25519_PUB_PREFIX: [u8; 2] = [0xed, 0x01];
/// Varint of multicodec `ed25519-priv` (0x1300).
pub const ED25519_PRIV_PREFIX: [u8; 2] = [0x80, 0x26];
/// The multibase prefix of base58btc.
pub const BASE58BTC_PREFIX: char = 'z';
/// The `type` of a FEP-521a key document.
pub const MULTIKEY_TYPE: &str = "Multikey";

/// `z` + base58btc(`0xed 0x01` ‖ public key).
pub fn encode_public_key(key: &PublicKey) -> String {
    encode(&ED25519_PUB_PREFIX, &key.to_bytes())
}

/// Decode a `publicKeyMultibase` value into an Ed25519 public key.
pub fn decode_public_key(multibase: &str) -> Result<PublicKey> {
    let bytes = decode(multibase, &ED25519_PUB_PREFIX, "ed 01", PUBLIC_KEY_LEN)?;
    PublicKey::from_bytes(&bytes)
}

/// `z` + base58btc(`0x80 0x26` ‖ seed). This is the secret key.
pub fn encode_private_key(key: &KeyPair) -> String {
    encode(&ED25519_PRIV_PREFIX, &key.seed())
}

/// Decode a `secretKeyMultibase` value into a key pair.
pub fn decode_private_key(multibase: &str) -> Result<KeyPair> {
    let bytes = decode(multibase, &ED25519_PRIV_PREFIX, "80 26", SEED_LEN)?;
    KeyPair::from_seed_slice(&bytes)
}

fn encode(prefix: &[u8; 2], key: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(prefix.len() + key.len());
    bytes.extend_from_slice(prefix);
    bytes.extend_from_slice(key);
    format!("{BASE58BTC_PREFIX}{}", bs58::encode(bytes).into_string())
}

fn decode(
    multibase: &str,
    prefix: &[u8; 2],
    prefix_name: &'static str,
    key_len: usize,
) -> Result<Vec<u8>> {
    let Some(encoded) = multibase.strip_prefix(BASE58BTC_PREFIX) else {
        let found = multibase
            .chars()
            .next()
            .map_or_else(|| "an empty string".to_owned(), |c| format!("prefix {c:?}"));
        return Err(Error::Multibase(format!(
            "expected base58btc prefix 'z', found {found}"
        )));
    };
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|e| Error::Multibase(format!("invalid base58btc: {e}")))?;
    if !bytes.starts_with(prefix) {
        let found = bytes
            .iter()
            .take(prefix.len())
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(Error::MulticodecPrefix {
            expected: prefix_name,
            found,
        });
    }
    let key = &bytes[prefix.len()..];
    if key.len() != key_len {
        return Err(Error::KeyLength {
            expected: key_len,
            found: key.len(),
        });
    }
    Ok(key.to_vec())
}

impl PublicKey {
    /// This key as a FEP-521a `publicKeyMultibase` value.
    pub fn to_multibase(&self) -> String {
        encode_public_key(self)
    }

    /// Parse a FEP-521a `publicKeyMultibase` value.
    pub fn from_multibase(multibase: &str) -> Result<Self> {
        decode_public_key(multibase)
    }
}

/// A FEP-521a key document, as published in an actor's `assertionMethod`.
///
/// ```json
/// {"id": "https://node.example/groups/1#main-key", "type": "Multikey",
///  "controller": "https://node.example/groups/1", "publicKeyMultibase": "z6Mk..."}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Multikey {
    /// The key id, e.g. `https://node.example/actor#main-key`.
    pub id: String,
    /// Always `Multikey` (checked by [`Multikey::public_key`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The actor that owns the key.
    pub controller: String,
    /// `z` + base58btc(`0xed 0x01` ‖ key).
    pub public_key_multibase: String,
}

impl Multikey {
    /// The document for `key`, owned by `controller`, with key id `id`.
    pub fn new(id: impl Into<String>, controller: impl Into<String>, key: &PublicKey) -> Self {
        Self {
            id: id.into(),
            kind: MULTIKEY_TYPE.to_owned(),
            controller: controller.into(),
            public_key_multibase: encode_public_key(key),
        }
    }

    /// The public key, after checking that the document is a `Multikey`.
    pub fn public_key(&self) -> Result<PublicKey> {
        if self.kind != MULTIKEY_TYPE {
            return Err(Error::InvalidMultikey(format!(
                "type is {:?}, expected \"Multikey\"",
                self.kind
            )));
        }
        decode_public_key(&self.public_key_multibase)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_vectors::{hex, s};

    #[test]
    fn fep521a_vector_encodes_and_decodes() {
        let public = hex(&s("fep521a_multikey", "public_key_hex"));
        let expected = s("fep521a_multikey", "public_key_multibase");
        let key = PublicKey::from_bytes(&public).unwrap();
        assert_eq!(encode_public_key(&key), expected);
        assert_eq!(key.to_multibase(), expected);
        assert_eq!(decode_public_key(&expected).unwrap(), key);
        assert_eq!(PublicKey::from_multibase(&expected).unwrap(), key);
    }

    #[test]
    fn fep8b32_secret_key_multibase_decodes_to_its_public_key() {
        let secret = s("fep8b32_eddsa_jcs_2022", "secret_key_multibase");
        let public = s("fep8b32_eddsa_jcs_2022", "public_key_multibase");
        let pair = decode_private_key(&secret).unwrap();
        assert_eq!(encode_public_key(&pair.public_key()), public);
        assert_eq!(encode_private_key(&pair), secret);
    }

    #[test]
    fn private_key_round_trip() {
        let pair = KeyPair::from_seed(&[9u8; 32]);
        let encoded = encode_private_key(&pair);
        assert!(encoded.starts_with('z'));
        assert_eq!(decode_private_key(&encoded).unwrap().seed(), pair.seed());
    }

    #[test]
    fn wrong_multibase_prefix_is_rejected() {
        let good = s("fep521a_multikey", "public_key_multibase");
        let as_base64url = format!("u{}", &good[1..]);
        let err = decode_public_key(&as_base64url).unwrap_err();
        assert!(
            matches!(&err, Error::Multibase(m) if m.contains("'z'")),
            "{err}"
        );
        assert!(matches!(decode_public_key(""), Err(Error::Multibase(_))));
    }

    #[test]
    fn invalid_base58_is_rejected() {
        // '0', 'O', 'I' and 'l' are not in the base58btc alphabet.
        assert!(matches!(
            decode_public_key("z6Mk0OIl"),
            Err(Error::Multibase(_))
        ));
    }

    #[test]
    fn private_key_is_not_accepted_as_public_key_and_vice_versa() {
        let pair = KeyPair::from_seed(&[5u8; 32]);
        let private = encode_private_key(&pair);
        let public = encode_public_key(&pair.public_key());
        assert_eq!(
            decode_public_key(&private).unwrap_err(),
            Error::MulticodecPrefix {
                expected: "ed 01",
                found: "80 26".to_owned()
            }
        );
        assert_eq!(
            decode_private_key(&public).unwrap_err(),
            Error::MulticodecPrefix {
                expected: "80 26",
                found: "ed 01".to_owned()
            }
        );
    }

    #[test]
    fn other_key_types_are_rejected() {
        // 0xe7 0x01 is secp256k1-pub.
        let mut bytes = vec![0xe7, 0x01];
        bytes.extend_from_slice(&[2u8; 33]);
        let encoded = format!("z{}", bs58::encode(bytes).into_string());
        assert!(matches!(
            decode_public_key(&encoded),
            Err(Error::MulticodecPrefix { .. })
        ));
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        let key = KeyPair::from_seed(&[5u8; 32]).public_key().to_bytes();
        let mut long = ED25519_PUB_PREFIX.to_vec();
        long.extend_from_slice(&key);
        long.push(0);
        let long = format!("z{}", bs58::encode(long).into_string());
        assert_eq!(
            decode_public_key(&long).unwrap_err(),
            Error::KeyLength {
                expected: 32,
                found: 33
            }
        );
        let mut short = ED25519_PUB_PREFIX.to_vec();
        short.extend_from_slice(&key[..31]);
        let short = format!("z{}", bs58::encode(short).into_string());
        assert_eq!(
            decode_public_key(&short).unwrap_err(),
            Error::KeyLength {
                expected: 32,
                found: 31
            }
        );
        let only_prefix = format!("z{}", bs58::encode([0xedu8]).into_string());
        assert!(matches!(
            decode_public_key(&only_prefix),
            Err(Error::MulticodecPrefix { .. })
        ));
    }

    #[test]
    fn multikey_document_serializes_as_fep521a() {
        let key = PublicKey::from_bytes(&hex(&s("fep521a_multikey", "public_key_hex"))).unwrap();
        let doc = Multikey::new(
            "https://node.example/actor#main-key",
            "https://node.example/actor",
            &key,
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "https://node.example/actor#main-key",
                "type": "Multikey",
                "controller": "https://node.example/actor",
                "publicKeyMultibase": s("fep521a_multikey", "public_key_multibase"),
            })
        );
        let back: Multikey = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.public_key().unwrap(), key);
    }

    #[test]
    fn multikey_document_of_other_type_is_rejected() {
        let key = KeyPair::from_seed(&[1u8; 32]).public_key();
        let mut doc = Multikey::new("k", "c", &key);
        doc.kind = "JsonWebKey".to_owned();
        assert!(matches!(doc.public_key(), Err(Error::InvalidMultikey(_))));
    }
}
