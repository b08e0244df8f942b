//! Ed25519 keys: generation, seeds, PEM forms, signing and verification.
//!
//! Every actor key in Caremesh is Ed25519. The private half is kept as its 32-byte seed
//! (or PKCS#8 PEM on disk); the public half is published as SPKI PEM (`publicKeyPem`) and
//! as a FEP-521a multibase value (see [`crate::multikey`]).

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::{Error, Result};

/// Length of an Ed25519 private-key seed.
pub const SEED_LEN: usize = 32;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 signing key together with its public key.
///
/// `Debug` shows the public key only; the seed is never printed.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A fresh key pair from 32 bytes of operating-system randomness.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; SEED_LEN];
        getrandom::fill(&mut seed).map_err(|e| Error::Randomness(e.to_string()))?;
        let pair = Self::from_seed(&seed);
        // The SigningKey zeroizes its own copy on drop; clear ours too.
        seed.fill(0);
        Ok(pair)
    }

    /// The key pair whose private key is this 32-byte seed (RFC 8032 "secret key").
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// Like [`KeyPair::from_seed`], for a slice whose length is checked.
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self> {
        let seed: &[u8; SEED_LEN] = seed.try_into().map_err(|_| Error::KeyLength {
            expected: SEED_LEN,
            found: seed.len(),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// The 32-byte seed. This is the secret: store it with care.
    pub fn seed(&self) -> [u8; SEED_LEN] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Sign `message` (pure Ed25519, RFC 8032; deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// The private key as PKCS#8 v1 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.as_str().to_owned())
            .map_err(|e| Error::InvalidKey(format!("cannot encode PKCS#8: {e}")))
    }

    /// Parse a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, Ed25519 only).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        SigningKey::from_pkcs8_pem(pem.trim())
            .map(|signing| Self { signing })
            .map_err(|e| Error::InvalidKey(format!("not an Ed25519 PKCS#8 PEM key: {e}")))
    }

    /// Parse a DER-encoded PKCS#8 private key (Ed25519 only).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        SigningKey::from_pkcs8_der(der)
            .map(|signing| Self { signing })
            .map_err(|e| Error::InvalidKey(format!("not an Ed25519 PKCS#8 DER key: {e}")))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parse the 32-byte compressed form. Fails if the bytes are not a curve point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| Error::KeyLength {
            expected: PUBLIC_KEY_LEN,
            found: bytes.len(),
        })?;
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|e| Error::InvalidKey(format!("not an Ed25519 public key: {e}")))
    }

    /// The 32-byte compressed form.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.to_bytes()
    }

    /// The key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as published in `publicKeyPem`.
    pub fn to_spki_pem(&self) -> Result<String> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::InvalidKey(format!("cannot encode SPKI: {e}")))
    }

    /// Parse an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`, Ed25519 only).
    ///
    /// Surrounding whitespace is ignored: actor documents often end the PEM with `\n`.
    pub fn from_spki_pem(pem: &str) -> Result<Self> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self)
            .map_err(|e| Error::InvalidKey(format!("not an Ed25519 SPKI PEM key: {e}")))
    }

    /// Parse a DER-encoded SPKI public key (Ed25519 only).
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        VerifyingKey::from_public_key_der(der)
            .map(Self)
            .map_err(|e| Error::InvalidKey(format!("not an Ed25519 SPKI DER key: {e}")))
    }

    /// Verify an Ed25519 signature over `message`.
    ///
    /// Uses the strict rules (no small-order keys, canonical `S`), so one message has exactly
    /// one valid signature per key and a signature cannot be tweaked into another valid one.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let signature: &[u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| {
            Error::MalformedSignature(format!(
                "an Ed25519 signature is {SIGNATURE_LEN} bytes, found {}",
                signature.len()
            ))
        })?;
        let signature = Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| Error::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey")
            .field(&crate::multikey::encode_public_key(self))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_vectors::{hex, s};

    fn rfc8032() -> (KeyPair, Vec<u8>, Vec<u8>, Vec<u8>) {
        let seed = hex(&s("rfc8032_test1", "secret_key_hex"));
        let public = hex(&s("rfc8032_test1", "public_key_hex"));
        let message = hex(&s("rfc8032_test1", "message_hex"));
        let signature = hex(&s("rfc8032_test1", "signature_hex"));
        (
            KeyPair::from_seed_slice(&seed).unwrap(),
            public,
            message,
            signature,
        )
    }

    #[test]
    fn rfc8032_test1_public_key_and_signature() {
        let (pair, public, message, signature) = rfc8032();
        assert_eq!(pair.public_key().to_bytes().to_vec(), public);
        assert_eq!(pair.sign(&message).to_vec(), signature);
        let pk = PublicKey::from_bytes(&public).unwrap();
        pk.verify(&message, &signature).unwrap();
    }

    #[test]
    fn rfc8032_signature_rejects_other_message_and_tampering() {
        let (pair, _, _, signature) = rfc8032();
        let pk = pair.public_key();
        assert_eq!(pk.verify(b"x", &signature), Err(Error::BadSignature));
        let mut tampered = signature.clone();
        tampered[0] ^= 1;
        assert_eq!(pk.verify(b"", &tampered), Err(Error::BadSignature));
    }

    #[test]
    fn signature_from_other_key_is_rejected() {
        let (_, _, message, signature) = rfc8032();
        let other = KeyPair::from_seed(&[7u8; 32]).public_key();
        assert_eq!(other.verify(&message, &signature), Err(Error::BadSignature));
    }

    #[test]
    fn signature_of_wrong_length_is_malformed() {
        let pk = KeyPair::from_seed(&[1u8; 32]).public_key();
        assert!(matches!(
            pk.verify(b"m", &[0u8; 63]),
            Err(Error::MalformedSignature(_))
        ));
    }

    #[test]
    fn generated_keys_differ_and_sign_verifiably() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        assert_ne!(a.seed(), b.seed());
        let sig = a.sign(b"hello");
        a.public_key().verify(b"hello", &sig).unwrap();
        assert_eq!(
            b.public_key().verify(b"hello", &sig),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn seed_round_trip() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::from_seed(&a.seed());
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(
            KeyPair::from_seed_slice(&[0u8; 31]).unwrap_err(),
            Error::KeyLength {
                expected: 32,
                found: 31
            }
        );
    }

    #[test]
    fn pem_round_trips() {
        let a = KeyPair::from_seed(&[42u8; 32]);
        let private_pem = a.to_pkcs8_pem().unwrap();
        assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(
            KeyPair::from_pkcs8_pem(&private_pem).unwrap().seed(),
            a.seed()
        );

        let public_pem = a.public_key().to_spki_pem().unwrap();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(public_pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert_eq!(
            PublicKey::from_spki_pem(&public_pem).unwrap(),
            a.public_key()
        );
    }

    #[test]
    fn rfc9421_keys_parse_from_der_and_pem() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let private = b64
            .decode(s("rfc9421_b26_ed25519", "private_key_pkcs8_b64"))
            .unwrap();
        let public = b64
            .decode(s("rfc9421_b26_ed25519", "public_key_spki_b64"))
            .unwrap();
        let pair = KeyPair::from_pkcs8_der(&private).unwrap();
        assert_eq!(
            PublicKey::from_spki_der(&public).unwrap(),
            pair.public_key()
        );

        // The same keys wrapped as PEM, as RFC 9421 B.1.4 prints them (trailing newline).
        let private_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            s("rfc9421_b26_ed25519", "private_key_pkcs8_b64")
        );
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            s("rfc9421_b26_ed25519", "public_key_spki_b64")
        );
        assert_eq!(
            KeyPair::from_pkcs8_pem(&private_pem).unwrap().public_key(),
            pair.public_key()
        );
        assert_eq!(
            PublicKey::from_spki_pem(&public_pem).unwrap(),
            pair.public_key()
        );
    }

    #[test]
    fn malformed_pem_is_rejected() {
        assert!(matches!(
            PublicKey::from_spki_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Err(Error::InvalidKey(_))
        ));
        // A private key where a public key is expected.
        let private_pem = KeyPair::from_seed(&[3u8; 32]).to_pkcs8_pem().unwrap();
        assert!(matches!(
            PublicKey::from_spki_pem(&private_pem),
            Err(Error::InvalidKey(_))
        ));
        let public_pem = KeyPair::from_seed(&[3u8; 32])
            .public_key()
            .to_spki_pem()
            .unwrap();
        assert!(matches!(
            KeyPair::from_pkcs8_pem(&public_pem),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn public_key_bytes_are_checked() {
        assert!(matches!(
            PublicKey::from_bytes(&[0u8; 31]),
            Err(Error::KeyLength { .. })
        ));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let pair = KeyPair::from_seed(&[0xabu8; 32]);
        let shown = format!("{pair:?} {pair:#?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.to_lowercase().contains("abab"));
        assert!(!shown.contains(&format!("{:?}", pair.seed())));
        assert!(!shown.contains("171, 171"));
    }
}
