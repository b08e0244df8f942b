//! Doctors' credentials. The doctor's own hospital signs the credential it recorded (title,
//! specialty, the day it checked the licence, validity) with the node's key and publishes it on
//! the doctor's actor. Every other node verifies that it is issued and signed by the node actor of
//! the doctor's own node and shows "verified by <hospital>", named as it knows that node (never as
//! the credential writes it); a revoked or expired credential shows as such. The licence number
//! itself stays with the issuing hospital.

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
    /// The issuing hospital's name, as this node knows the doctor's node (its node actor's
    /// `name`), never as the credential writes it.
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

/// The node that may vouch for a doctor of another node: the node actor of the doctor's node (the
/// partner's `{base}actor`), and the hospital's name as this node knows it (that actor's `name`,
/// as fetched and stored here), never the name a credential writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    pub actor_id: String,
    pub name: String,
}

/// Checks the credential on a remote actor document: issued by `issuer` (the node actor of the
/// doctor's own node), about this actor, signed with that node's key, and its status and
/// validity at `now`. The badge names the hospital as `issuer` does.
pub async fn check_credential(
    actor: &Value,
    issuer: &Issuer,
    resolver: &KeyResolver,
    now: Timestamp,
) -> CredentialBadge {
    match check(actor, issuer, resolver, now).await {
        Ok(b) => b,
        Err(e) => CredentialBadge::unverified(e.to_string()),
    }
}

fn bad(why: &str) -> FederationError {
    FederationError::BadProof(why.to_owned())
}

/// What can be checked without a key: the credential is about the actor, issued by the node
/// actor of the actor's own node, and its proof is made with a key of that node actor. Returns
/// the credential and the proof's key id.
fn claims<'a>(actor: &'a Value, issuer: &Issuer) -> Result<(&'a Value, String), FederationError> {
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
    let claimed = cred["issuer"]["id"]
        .as_str()
        .ok_or_else(|| bad("no issuer"))?;
    if !same_node(&issuer.actor_id, actor_id) {
        return Err(bad("a hospital vouches only for its own doctors"));
    }
    if claimed != issuer.actor_id {
        return Err(bad(if same_node(claimed, actor_id) {
            "the credential is not issued by the doctor's node (its node actor)"
        } else {
            "a hospital vouches only for its own doctors"
        }));
    }
    let method = proof_verification_method(cred)
        .map_err(|e| bad(&e.to_string()))?
        .to_owned();
    if key_owner(&method).map(|u| u.to_string()).as_deref() != Some(issuer.actor_id.as_str()) {
        return Err(bad("the credential is not signed with the issuer's key"));
    }
    Ok((cred, method))
}

/// The badge of a credential whose claims and proof hold.
fn verdict(cred: &Value, issuer: &Issuer, now: Timestamp) -> CredentialBadge {
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
    CredentialBadge {
        status,
        issuer_name: Some(issuer.name.clone()),
        title: text(&cred["credentialSubject"]["title"]),
        specialty: text(&cred["credentialSubject"]["specialty"]),
        reason: None,
    }
}

async fn check(
    actor: &Value,
    issuer: &Issuer,
    resolver: &KeyResolver,
    now: Timestamp,
) -> Result<CredentialBadge, FederationError> {
    let (cred, method) = claims(actor, issuer)?;
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
    Ok(verdict(cred, issuer, now))
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
                Some(self.check_remote_credential(&d).await)
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
        Ok(self.check_remote_credential(&doc).await)
    }

    /// The node that may vouch for `actor_id`: the node actor of the partner it is on, named as
    /// that node actor is (fetched if this node does not have it yet; the partner's authority if
    /// it cannot be had).
    pub async fn issuer_of(&self, actor_id: &str) -> Result<Issuer, FederationError> {
        let partner = self.partners.partner_at(actor_id).await?;
        let node_actor = format!("{}actor", partner.base_url);
        let stored = match self.store.remote_actor(&node_actor).await? {
            Some(a) => Some(a),
            None => self.resolver.fetch_actor(&node_actor).await.ok(),
        };
        let name = stored
            .and_then(|a| serde_json::from_str::<Value>(&a.document).ok())
            .and_then(|d| d["name"].as_str().map(str::to_owned))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(partner.authority);
        Ok(Issuer {
            actor_id: node_actor,
            name,
        })
    }

    /// Checks the credential on the actor document of a doctor of another node (§5a): issued
    /// and signed by the doctor's own node, shown under that node's name as known here.
    pub async fn check_remote_credential(&self, actor: &Value) -> CredentialBadge {
        let Some(actor_id) = actor["id"].as_str() else {
            return CredentialBadge::unverified("actor without id");
        };
        match self.issuer_of(actor_id).await {
            Ok(issuer) => check_credential(actor, &issuer, &self.resolver, self.clock.now()).await,
            Err(e) => CredentialBadge::unverified(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use caremesh_protocol::KeyPair;

    const NOW: Timestamp = Timestamp::from_millis(1_795_420_800_000);
    const A: &str = "https://hospital-a.example/";

    fn credential() -> Credential {
        Credential {
            title: "主任医师".into(),
            specialty: "心内科".into(),
            licence_number: "110108".into(),
            checked_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            issued_at: NOW,
            valid_until: None,
            revoked_at: None,
        }
    }

    fn issuer() -> Issuer {
        Issuer {
            actor_id: format!("{A}actor"),
            name: "唐山市人民医院".into(),
        }
    }

    /// Dr. Wang's actor on hospital A carrying `cred` signed by `key` under `key_id`.
    fn actor_with(mut cred: Value, key_id: &str, key: &KeyPair) -> Value {
        cred.as_object_mut().unwrap().remove("proof");
        let options = ProofOptions::new(key_id, system_time(NOW));
        let signed = create_proof(&cred, &options, key).unwrap();
        json!({ "id": format!("{A}users/dr.wang"), "type": "Person", "credential": signed })
    }

    fn document(hospital_name: &str) -> Value {
        let urls = Urls::new(url::Url::parse(A).unwrap());
        credential_document(&urls, hospital_name, "dr.wang", "王医生", &credential())
    }

    /// The whole check with the key of the proof's method known.
    fn check_with(actor: &Value, issuer: &Issuer, key: &KeyPair) -> CredentialBadge {
        match claims(actor, issuer) {
            Ok((cred, _)) => {
                if verify_proof(cred, &key.public_key()).is_err() {
                    return CredentialBadge::unverified("bad signature");
                }
                verdict(cred, issuer, NOW)
            }
            Err(e) => CredentialBadge::unverified(e.to_string()),
        }
    }

    #[test]
    fn the_doctors_node_vouches_under_the_name_this_node_knows() {
        let node = KeyPair::from_seed(&[0x11; 32]);
        let actor = actor_with(
            document("Fake Royal Hospital"),
            &format!("{A}actor#main-key"),
            &node,
        );
        let badge = check_with(&actor, &issuer(), &node);
        assert_eq!(badge.status, BadgeStatus::Verified, "{badge:?}");
        assert_eq!(badge.issuer_name.as_deref(), Some("唐山市人民医院"));
        assert_eq!(badge.title.as_deref(), Some("主任医师"));
    }

    #[test]
    fn a_credential_signed_by_the_doctor_is_refused() {
        let doctor = KeyPair::from_seed(&[0x22; 32]);
        let mut doc = document("唐山市人民医院");
        doc["issuer"]["id"] = json!(format!("{A}users/dr.wang"));
        let actor = actor_with(doc, &format!("{A}users/dr.wang#main-key"), &doctor);
        let badge = check_with(&actor, &issuer(), &doctor);
        assert_eq!(badge.status, BadgeStatus::Unverified);
        assert!(badge.reason.unwrap().contains("doctor's node"));
        assert_eq!(badge.issuer_name, None);
        // Nor signed by the doctor in the node's name.
        let actor = actor_with(
            document("唐山市人民医院"),
            &format!("{A}users/dr.wang#main-key"),
            &doctor,
        );
        let badge = check_with(&actor, &issuer(), &doctor);
        assert_eq!(badge.status, BadgeStatus::Unverified);
        assert!(badge.reason.unwrap().contains("issuer's key"));
    }

    #[test]
    fn an_issuer_on_another_node_is_refused() {
        let other = KeyPair::from_seed(&[0x33; 32]);
        for node in [
            "https://hospital-b.example/actor",
            "http://hospital-a.example/actor",
            "https://hospital-a.example:8443/actor",
        ] {
            let mut doc = document("Hospital B");
            doc["issuer"]["id"] = json!(node);
            let actor = actor_with(doc, &format!("{node}#main-key"), &other);
            let badge = check_with(&actor, &issuer(), &other);
            assert_eq!(badge.status, BadgeStatus::Unverified, "{node}");
            assert!(badge.reason.unwrap().contains("own doctors"), "{node}");
            // Even when told that node is the issuer: it is not the doctor's node.
            let elsewhere = Issuer {
                actor_id: node.to_owned(),
                name: "Hospital B".into(),
            };
            let badge = check_with(&actor, &elsewhere, &other);
            assert_eq!(badge.status, BadgeStatus::Unverified, "{node}");
        }
    }
}
