//! The JSON documents this node serves about itself and its people (see `spec/federation.md`).

use caremesh_protocol::PublicKey;
use caremesh_protocol::multikey::Multikey;
use caremesh_store::LocalKey;
use serde_json::{Value, json};

use crate::error::FederationError;
use crate::urls::Urls;

pub const CONTEXT: [&str; 3] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    "https://w3id.org/security/multikey/v1",
];

/// `publicKey` (the newest key, as PEM) and `assertionMethod` (every published key, as Multikey).
pub(crate) fn key_members(
    actor_id: &str,
    keys: &[LocalKey],
) -> Result<(Value, Value), FederationError> {
    let newest = keys
        .first()
        .ok_or_else(|| FederationError::Crypto(format!("{actor_id} has no key")))?;
    let public_key = json!({
        "id": newest.key_id,
        "owner": actor_id,
        "publicKeyPem": newest.public_key_pem,
    });
    let mut methods = Vec::with_capacity(keys.len());
    for k in keys {
        let pk = PublicKey::from_spki_pem(&k.public_key_pem)?;
        methods.push(
            serde_json::to_value(Multikey::new(&k.key_id, actor_id, &pk))
                .map_err(|e| FederationError::Crypto(format!("multikey of {}: {e}", k.key_id)))?,
        );
    }
    Ok((public_key, Value::Array(methods)))
}

/// The node's own actor: an `Application` named after the hospital.
pub fn instance_actor(
    urls: &Urls,
    hospital_name: &str,
    keys: &[LocalKey],
) -> Result<Value, FederationError> {
    let id = urls.instance_actor();
    let (public_key, methods) = key_members(&id, keys)?;
    Ok(json!({
        "@context": CONTEXT,
        "id": id,
        "type": "Application",
        "preferredUsername": urls.authority(),
        "name": hospital_name,
        "inbox": urls.instance_inbox(),
        "endpoints": { "sharedInbox": urls.shared_inbox() },
        "publicKey": public_key,
        "assertionMethod": methods,
    }))
}

/// A doctor, staff member or administrator as other nodes see them. Patients are never served as
/// persons: they cross to other nodes only as per-group pseudonyms.
pub fn person_actor(
    urls: &Urls,
    username: &str,
    display_name: &str,
    keys: &[LocalKey],
    credential: Option<Value>,
) -> Result<Value, FederationError> {
    let id = urls.person(username);
    let (public_key, methods) = key_members(&id, keys)?;
    let mut doc = json!({
        "@context": CONTEXT,
        "id": id,
        "type": "Person",
        "preferredUsername": username,
        "name": display_name,
        "inbox": urls.person_inbox(username),
        "endpoints": { "sharedInbox": urls.shared_inbox() },
        "publicKey": public_key,
        "assertionMethod": methods,
    });
    if let Some(c) = credential {
        doc["credential"] = c;
    }
    Ok(doc)
}
