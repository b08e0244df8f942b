//! Doctors' credentials. The doctor's own hospital signs the credential it recorded (title,
//! specialty, the day it checked the licence, validity) with the node's key and publishes it on
//! the doctor's actor. Every other node verifies it against the issuing hospital's key and shows
//! "verified by <hospital>"; a revoked or expired credential shows as such. A hospital can vouch
//! only for doctors of its own node. The licence number itself stays with the issuing hospital.

use std::time::{Duration, Instant};

use caremesh_domain::{Credential, CredentialStatus, Timestamp};
use caremesh_protocol::PublicKey;
use caremesh_protocol::proof::{
    ProofOptions, create_proof, proof_verification_method, verify_proof,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Federation;
use crate::client::{KeyResolver, system_time};
use crate::error::FederationError;
use crate::keys::KeyRing;
use crate::urls::{Urls, key_owner, same_node};

/// How long a checked remote credential is shown without checking it again. A new version of the
/// doctor's actor (after their hospital's `Update`) is checked at once.
const BADGE_TTL: Duration = Duration::from_secs(60);

pub const CREDENTIAL_CONTEXT: [&str; 2] = [
    "https://www.w3.org/ns/credentials/v2",
    "https://w3id.org/security/data-integrity/v2",
];

/// The credential document of a doctor, signed by the node.
pub async fn signed_credential(
    urls: &Urls,
    keys: &KeyRing,
    hospital_name: &str,
    username: &str,
    display_name: &str,
    c: &Credential,
) -> Result<Value, FederationError> {
    let doc = credential_document(urls, hospital_name, username, display_name, c);
    // The proof's time is the credential's own, so the document is stable between fetches.
    let created = c.revoked_at.unwrap_or(c.issued_at);
    let (key_id, key) = keys.instance_key().await?;
    let options = ProofOptions::new(key_id, system_time(created));
    Ok(create_proof(&doc, &options, &key)?)
}

/// The unsigned credential document.
pub fn credential_document(
    urls: &Urls,
    hospital_name: &str,
    username: &str,
    display_name: &str,
    c: &Credential,
) -> Value {
    let person = urls.person(username);
    let mut doc = json!({
        "@context": CREDENTIAL_CONTEXT,
        "id": format!("{person}#credential"),
        "type": ["VerifiableCredential", "DoctorCredential"],
        "issuer": { "id": urls.instance_actor(), "name": hospital_name },
        "validFrom": c.issued_at.to_rfc3339(),
        "credentialSubject": {
            "id": person,
            "name": display_name,
            "title": c.title,
            "specialty": c.specialty,
            "licenceCheckedOn": c.checked_on.format("%Y-%m-%d").to_string(),
        },
        "credentialStatus": { "status": "valid" },
    });
    if let Some(until) = c.valid_until {
        doc["validUntil"] = json!(until.to_rfc3339());
    }
    if let Some(revoked) = c.revoked_at {
        doc["credentialStatus"] = json!({ "status": "revoked", "revokedAt": revoked.to_rfc3339() });
    }
    doc
}

/// Hospitals' clocks differ a little: a credential issued "in the future" by less than this is
/// accepted.
const CLOCK_SKEW_SECS: i64 = 300;

/// What a node can say about a remote doctor's credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CredentialBadge {
    pub status: BadgeStatus,
    /// The issuing hospital's name, as its signed credential states it.
    pub issuer_name: Option<String>,
    pub title: Option<String>,
    pub specialty: Option<String>,
    /// Why the credential is not accepted, for `unverified`.
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadgeStatus {
    Verified,
    Expired,
    Revoked,
    Unverified,
}

impl CredentialBadge {
    fn unverified(reason: impl Into<String>) -> Self {
        Self {
            status: BadgeStatus::Unverified,
            issuer_name: None,
            title: None,
            specialty: None,
            reason: Some(reason.into()),
        }
    }
}

impl From<CredentialStatus> for BadgeStatus {
    fn from(s: CredentialStatus) -> Self {
        match s {
            CredentialStatus::Valid => Self::Verified,
            CredentialStatus::Expired => Self::Expired,
            CredentialStatus::Revoked => Self::Revoked,
        }
    }
}

/// Checks the credential on a remote actor document: issued by the node the doctor belongs to,
/// about this actor, signed with that node's key, and its status and validity at `now`.
pub async fn check_credential(
    actor: &Value,
    resolver: &KeyResolver,
    now: Timestamp,
) -> CredentialBadge {
    match check(actor, resolver, now).await {
        Ok(b) => b,
        Err(e) => CredentialBadge::unverified(e.to_string()),
    }
}

async fn check(
    actor: &Value,
    resolver: &KeyResolver,
    now: Timestamp,
) -> Result<CredentialBadge, FederationError> {
    let bad = |why: &str| FederationError::BadProof(why.to_owned());
    let actor_id = actor["id"]
        .as_str()
        .ok_or_else(|| bad("actor without id"))?;
    let cred = actor
        .get("credential")
        .filter(|c| c.is_object())
        .ok_or_else(|| bad("no credential"))?;
    if cred["credentialSubject"]["id"].as_str() != Some(actor_id) {
        return Err(bad("the credential is about someone else"));
    }
    let issuer = cred["issuer"]["id"]
        .as_str()
        .ok_or_else(|| bad("no issuer"))?;
    if !same_node(issuer, actor_id) {
        return Err(bad("a hospital vouches only for its own doctors"));
    }
    let method = proof_verification_method(cred)
        .map_err(|e| bad(&e.to_string()))?
        .to_owned();
    if key_owner(&method).map(|u| u.to_string()).as_deref() != Some(issuer) {
        return Err(bad("the credential is not signed with the issuer's key"));
    }
    let (key, cached) = resolver.key(&method, false).await?;
    let pk = PublicKey::from_spki_pem(&key.public_key_pem)?;
    if verify_proof(cred, &pk).is_err() {
        if !cached {
            return Err(bad("the credential's signature is invalid"));
        }
        let (fresh, _) = resolver.key(&method, true).await?;
        let pk = PublicKey::from_spki_pem(&fresh.public_key_pem)?;
        verify_proof(cred, &pk).map_err(|_| bad("the credential's signature is invalid"))?;
    }
    let time = |v: &Value| v.as_str().and_then(Timestamp::parse_rfc3339);
    let status = if cred["credentialStatus"]["status"] == "revoked" {
        BadgeStatus::Revoked
    } else if time(&cred["validUntil"]).is_some_and(|t| t <= now) {
        BadgeStatus::Expired
    } else if time(&cred["validFrom"]).is_some_and(|t| t > now.plus_secs(CLOCK_SKEW_SECS)) {
        BadgeStatus::Unverified
    } else {
        BadgeStatus::Verified
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Ok(CredentialBadge {
        status,
        issuer_name: text(&cred["issuer"]["name"]),
        title: text(&cred["credentialSubject"]["title"]),
        specialty: text(&cred["credentialSubject"]["specialty"]),
        reason: None,
    })
}

impl CredentialBadge {
    /// The badge of one of this node's own doctors, from the credential it keeps.
    pub fn local(hospital_name: &str, c: &Credential, now: Timestamp) -> Self {
        Self {
            status: c.status(now).into(),
            issuer_name: Some(hospital_name.to_owned()),
            title: Some(c.title.clone()),
            specialty: Some(c.specialty.clone()),
            reason: None,
        }
    }
}

/// Checked badges of remote doctors, by actor: the version of the actor document checked, when.
/// Credentials of this node's own doctors, by account id, with when they were read.
pub(crate) type LocalCredentialCache =
    std::sync::Mutex<std::collections::HashMap<i64, (Instant, Option<Credential>)>>;

pub(crate) type BadgeCache = std::sync::Mutex<
    std::collections::HashMap<String, (Timestamp, Instant, Option<CredentialBadge>)>,
>;

impl Federation {
    /// What this node can say about the credential of an actor of another node, from the actor
    /// document it holds: `None` when the actor carries no credential (patients, most staff).
    pub async fn remote_badge(&self, actor_id: &str) -> Option<CredentialBadge> {
        if let Some((_, checked, badge)) = self
            .badges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(actor_id)
            && checked.elapsed() < BADGE_TTL
        {
            return badge.clone();
        }
        let actor = self.store.remote_actor(actor_id).await.ok().flatten()?;
        let doc: Option<Value> = serde_json::from_str(&actor.document).ok();
        let badge = match doc {
            Some(d) if d.get("credential").is_some() => {
                Some(check_credential(&d, &self.resolver, self.clock.now()).await)
            }
            // Patients and staff carry no credential; remembered too, so feeds do not ask again.
            _ => None,
        };
        self.badges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                actor_id.to_owned(),
                (actor.fetched_at, Instant::now(), badge.clone()),
            );
        badge
    }

    /// The badge of one of this node's own doctors (`None` without a credential), from the
    /// credential it keeps; read again at most once a minute, and at once after it changes
    /// (`forget_local_badge`).
    pub async fn local_badge(&self, user: caremesh_domain::UserId) -> Option<CredentialBadge> {
        let cached = self
            .local_credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user.0)
            .filter(|(checked, _)| checked.elapsed() < BADGE_TTL)
            .map(|(_, c)| c.clone());
        let credential = match cached {
            Some(c) => c,
            None => {
                let c = self.store.credential(user).await.ok().flatten();
                self.local_credentials
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(user.0, (Instant::now(), c.clone()));
                c
            }
        };
        credential
            .map(|c| CredentialBadge::local(&self.settings.hospital_name, &c, self.clock.now()))
    }

    /// Forgets the cached credential of one of this node's doctors: it was recorded or revoked.
    pub fn forget_local_badge(&self, user: caremesh_domain::UserId) {
        self.local_credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user.0);
    }

    /// Forgets what was checked of an actor's credential: its node sent a new version.
    pub fn forget_badge(&self, actor_id: &str) {
        self.badges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(actor_id);
    }

    /// The credential of a doctor of another node, checked on a freshly fetched actor document:
    /// what a host checks before it lets them teach in one of its groups.
    pub async fn fresh_remote_badge(
        &self,
        actor_id: &str,
    ) -> Result<CredentialBadge, FederationError> {
        let actor = self.resolver.fetch_actor(actor_id).await?;
        let doc: Value = serde_json::from_str(&actor.document)
            .map_err(|e| FederationError::Malformed(e.to_string()))?;
        Ok(check_credential(&doc, &self.resolver, self.clock.now()).await)
    }
}
