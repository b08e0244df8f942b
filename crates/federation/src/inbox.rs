//! Inbound activities. The order of checks is part of the protocol (`spec/federation.md`):
//! signature present → signer's node is a partner → rate limit → addressed to this host → key →
//! signature, date window and body digest → activity's actor on the signer's node → integrity
//! proofs → stored once, in one transaction (batched with concurrent deliveries).
//! Any refusal stores nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caremesh_domain::{Clock, Timestamp};
use caremesh_protocol::PublicKey;
use caremesh_protocol::httpsig::{self, VerifyOptions};
use caremesh_protocol::proof::{proof_verification_method, verify_proof};
use caremesh_store::{IncomingActivity, IngestOutcome, ObjectChange, Store};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::client::{KeyResolver, system_time};
use crate::error::FederationError;
use crate::partners::Partners;
use crate::urls::{Urls, authority_of_str, key_owner};

/// Activity types whose objects are posts, edits or deletions: they must carry their author's
/// integrity proof.
pub const PROOF_REQUIRED: [&str; 3] = ["Create", "Update", "Delete"];

#[derive(Clone, Debug)]
pub struct InboxSettings {
    pub max_skew_secs: u64,
    pub requests_per_minute: u32,
}

/// A request as the web layer received it.
pub struct InboundRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl InboundRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Who signed a request that passed verification.
#[derive(Clone, Debug)]
pub struct VerifiedSender {
    pub key_id: String,
    /// The actor the key belongs to.
    pub actor_id: String,
    /// The signer's node.
    pub authority: String,
}

pub struct Inbox {
    resolver: Arc<KeyResolver>,
    partners: Arc<Partners>,
    clock: Arc<dyn Clock>,
    urls: Urls,
    settings: InboxSettings,
    limiter: PeerLimiter,
    ingestor: Ingestor,
}

fn classify(e: caremesh_protocol::Error) -> FederationError {
    use caremesh_protocol::Error as P;
    match e {
        P::Expired { .. } | P::FromTheFuture { .. } | P::InvalidDate(_) => {
            FederationError::StaleSignature(e.to_string())
        }
        P::DigestMismatch { .. } | P::MalformedDigest(_) | P::UnsupportedDigestAlgorithm(_) => {
            FederationError::DigestMismatch(e.to_string())
        }
        other => FederationError::BadSignature(other.to_string()),
    }
}

impl Inbox {
    pub fn new(
        store: Arc<dyn Store>,
        resolver: Arc<KeyResolver>,
        partners: Arc<Partners>,
        clock: Arc<dyn Clock>,
        urls: Urls,
        settings: InboxSettings,
    ) -> Self {
        Self {
            limiter: PeerLimiter::new(settings.requests_per_minute),
            ingestor: Ingestor::start(store),
            resolver,
            partners,
            clock,
            urls,
            settings,
        }
    }

    /// Checks a signed request (POST or GET) and says who signed it.
    pub async fn verify_request(
        &self,
        req: &InboundRequest<'_>,
    ) -> Result<VerifiedSender, FederationError> {
        let header = req.header("signature").ok_or(FederationError::Unsigned)?;
        let sig = httpsig::parse_signature_header(header)
            .map_err(|e| FederationError::BadSignature(e.to_string()))?;
        let key_id = sig.key_id().to_owned();
        let owner = key_owner(&key_id).ok_or_else(|| {
            FederationError::BadSignature(format!("keyId {key_id:?} is not a URL"))
        })?;
        let authority = crate::urls::authority_of(&owner).ok_or_else(|| {
            FederationError::BadSignature(format!("keyId {key_id:?} has no host"))
        })?;
        // Before anything is fetched, parsed further or stored.
        if !self.partners.is_partner(&authority).await? {
            return Err(FederationError::NotPartner(authority));
        }
        self.limiter.check(&authority)?;
        let ours = self.urls.authority();
        match req.header("host") {
            Some(h) if h.eq_ignore_ascii_case(&ours) => {}
            other => {
                return Err(FederationError::WrongHost(format!(
                    "signed for {other:?}, this node is {ours}"
                )));
            }
        }
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let request = httpsig::Request {
            method: req.method,
            path_and_query: req.path_and_query,
            headers: &headers,
            body: req.body,
        };
        let options = VerifyOptions::new(system_time(self.clock.now()))
            .with_max_skew(Duration::from_secs(self.settings.max_skew_secs));
        let (key, cached) = self.resolver.key(&key_id, false).await?;
        let pk = PublicKey::from_spki_pem(&key.public_key_pem)?;
        match httpsig::verify(&sig, &request, &pk, &options).map_err(classify) {
            Ok(()) => {}
            // The key may have been rotated: fetch the actor again once.
            Err(FederationError::BadSignature(_)) if cached => {
                let (fresh, _) = self.resolver.key(&key_id, true).await?;
                let pk = PublicKey::from_spki_pem(&fresh.public_key_pem)?;
                httpsig::verify(&sig, &request, &pk, &options).map_err(classify)?;
            }
            Err(e) => return Err(e),
        }
        Ok(VerifiedSender {
            key_id,
            actor_id: key.actor_id,
            authority,
        })
    }

    /// Verifies and checks one delivered activity; returns it and what to store.
    pub async fn verify_and_check(
        &self,
        req: &InboundRequest<'_>,
    ) -> Result<(Value, IncomingActivity), FederationError> {
        let sender = self.verify_request(req).await?;
        let activity: Value = serde_json::from_slice(req.body)
            .map_err(|e| FederationError::Malformed(format!("not JSON: {e}")))?;
        let incoming = self.check_activity(&activity, &sender).await?;
        Ok((activity, incoming))
    }

    /// Stores a checked activity once (batched with concurrent deliveries).
    pub async fn ingest(
        &self,
        incoming: IncomingActivity,
    ) -> Result<IngestOutcome, FederationError> {
        self.ingestor.submit(incoming).await
    }

    /// Effects of a newly stored activity on what this node knows of other actors.
    pub async fn after_stored(&self, activity: &Value) {
        let Ok((_, kind, actor)) = activity_head(activity) else {
            return;
        };
        if is_actor_update(activity, &kind, &actor) {
            // New keys or a new credential: take them now rather than at the next failure.
            if let Err(e) = self.resolver.fetch_actor(&actor).await {
                tracing::warn!(%actor, error = %e, "cannot refresh an updated actor");
            }
        }
    }

    /// Verifies, checks and stores one delivered activity (without group rules; see
    /// `Federation::receive`).
    pub async fn receive(
        &self,
        req: &InboundRequest<'_>,
    ) -> Result<IngestOutcome, FederationError> {
        let (activity, incoming) = self.verify_and_check(req).await?;
        let outcome = self.ingest(incoming).await?;
        if outcome == IngestOutcome::Stored {
            self.after_stored(&activity).await;
        }
        Ok(outcome)
    }

    /// Everything after the signature: shape, actor and node, proofs; returns what to store.
    pub async fn check_activity(
        &self,
        activity: &Value,
        sender: &VerifiedSender,
    ) -> Result<IncomingActivity, FederationError> {
        let (id, kind, actor) = activity_head(activity)?;
        let actor_authority = authority_of_str(&actor)
            .ok_or_else(|| FederationError::Malformed(format!("actor {actor:?} is not a URL")))?;
        if actor_authority != sender.authority {
            return Err(FederationError::ActorMismatch(format!(
                "actor {actor} is not on the signer's node {}",
                sender.authority
            )));
        }
        if authority_of_str(&id).as_deref() != Some(actor_authority.as_str()) {
            return Err(FederationError::ActorMismatch(format!(
                "activity id {id} is not on the actor's node"
            )));
        }
        self.check_proof(activity, &kind, &actor).await?;
        let mut object = object_change(activity, &kind, &actor)?;
        if kind == "Announce"
            && let Some(inner) = activity.get("object").filter(|o| o.is_object())
            && inner.get("actor").is_some()
        {
            // A host forwards a member's activity unchanged: the member's proof must hold.
            let (_, inner_kind, inner_actor) = activity_head(inner)?;
            self.check_proof(inner, &inner_kind, &inner_actor).await?;
            object = object_change(inner, &inner_kind, &inner_actor)?;
        }
        Ok(IncomingActivity {
            activity_id: id,
            activity_type: kind,
            actor_id: actor,
            peer: sender.authority.clone(),
            payload: activity.to_string(),
            received_at: self.clock.now(),
            object,
        })
    }

    async fn check_proof(
        &self,
        doc: &Value,
        kind: &str,
        actor: &str,
    ) -> Result<(), FederationError> {
        if doc.get("proof").is_none() {
            if PROOF_REQUIRED.contains(&kind) && !is_actor_update(doc, kind, actor) {
                return Err(FederationError::BadProof(format!(
                    "a {kind} must carry its author's integrity proof"
                )));
            }
            return Ok(());
        }
        let method = proof_verification_method(doc)
            .map_err(|e| FederationError::BadProof(e.to_string()))?
            .to_owned();
        if key_owner(&method).map(|u| u.to_string()).as_deref() != Some(actor) {
            return Err(FederationError::BadProof(format!(
                "proof made with {method}, which is not a key of {actor}"
            )));
        }
        let (key, cached) = self.resolver.key(&method, false).await?;
        let pk = PublicKey::from_spki_pem(&key.public_key_pem)?;
        match verify_proof(doc, &pk) {
            Ok(()) => Ok(()),
            Err(_) if cached => {
                let (fresh, _) = self.resolver.key(&method, true).await?;
                let pk = PublicKey::from_spki_pem(&fresh.public_key_pem)?;
                verify_proof(doc, &pk).map_err(|e| FederationError::BadProof(e.to_string()))
            }
            Err(e) => Err(FederationError::BadProof(e.to_string())),
        }
    }
}

/// The shape checks every activity passes, without signatures or proofs: its `id`, `type` and
/// `actor`, and what it does to its object (for an `Announce`, what the forwarded activity does).
pub fn examine(
    activity: &Value,
) -> Result<(String, String, String, Option<ObjectChange>), FederationError> {
    let (id, kind, actor) = activity_head(activity)?;
    let mut change = object_change(activity, &kind, &actor)?;
    if kind == "Announce"
        && let Some(inner) = activity.get("object").filter(|o| o.is_object())
        && inner.get("actor").is_some()
    {
        let (_, inner_kind, inner_actor) = activity_head(inner)?;
        change = object_change(inner, &inner_kind, &inner_actor)?;
    }
    Ok((id, kind, actor, change))
}

fn str_or_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `id`, `type` and `actor` of an activity, which every activity must have.
fn activity_head(a: &Value) -> Result<(String, String, String), FederationError> {
    if !a.is_object() {
        return Err(FederationError::Malformed(
            "an activity is a JSON object".into(),
        ));
    }
    let id = a["id"]
        .as_str()
        .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
        .ok_or_else(|| FederationError::Malformed("the activity needs an http(s) `id`".into()))?;
    let kind = a["type"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .ok_or_else(|| FederationError::Malformed("the activity needs a `type`".into()))?;
    let actor = str_or_id(&a["actor"])
        .ok_or_else(|| FederationError::Malformed("the activity needs an `actor`".into()))?;
    if id.len() > 2048 || actor.len() > 2048 {
        return Err(FederationError::Malformed(
            "ids are limited to 2048 characters".into(),
        ));
    }
    Ok((id.to_owned(), kind.to_owned(), actor))
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(Timestamp::parse_rfc3339)
}

/// An `Update` of the actor itself (new keys, name or credential): its node's signature is what
/// vouches for it, not a post proof.
fn is_actor_update(a: &Value, kind: &str, actor: &str) -> bool {
    kind == "Update" && str_or_id(&a["object"]).as_deref() == Some(actor)
}

/// What a Create, Update or Delete does to its object.
fn object_change(
    a: &Value,
    kind: &str,
    actor: &str,
) -> Result<Option<ObjectChange>, FederationError> {
    let object = &a["object"];
    if is_actor_update(a, kind, actor) {
        return Ok(None);
    }
    match kind {
        "Create" | "Update" => {
            let o = object.as_object().ok_or_else(|| {
                FederationError::Malformed(format!("a {kind} must embed its object"))
            })?;
            let object_id = o
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| FederationError::Malformed("the object needs an `id`".into()))?;
            let object_type = o
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| FederationError::Malformed("the object needs a `type`".into()))?;
            let attributed = o.get("attributedTo").and_then(str_or_id);
            if attributed.as_deref() != Some(actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "object {object_id} is not attributed to {actor}"
                )));
            }
            if authority_of_str(object_id) != authority_of_str(actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "object {object_id} is not on its author's node"
                )));
            }
            Ok(Some(ObjectChange::Upsert {
                object_id: object_id.to_owned(),
                object_type: object_type.to_owned(),
                attributed_to: actor.to_owned(),
                document: object.to_string(),
                published_at: timestamp(&object["published"]),
                updated_at: timestamp(&object["updated"]),
            }))
        }
        "Delete" => {
            let object_id = str_or_id(object)
                .ok_or_else(|| FederationError::Malformed("a Delete names its object".into()))?;
            if authority_of_str(&object_id) != authority_of_str(actor) {
                return Err(FederationError::ActorMismatch(format!(
                    "{actor} cannot delete {object_id}"
                )));
            }
            Ok(Some(ObjectChange::Delete {
                object_id,
                attributed_to: actor.to_owned(),
            }))
        }
        _ => Ok(None),
    }
}

/// A token bucket per peer node.
struct PeerLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl PeerLimiter {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, peer: &str) -> Result<(), FederationError> {
        let capacity = f64::from(self.per_minute);
        let rate = capacity / 60.0;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, at) = map.entry(peer.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens < 1.0 {
            return Err(FederationError::RateLimited(peer.to_owned()));
        }
        *tokens -= 1.0;
        Ok(())
    }
}

type Job = (
    IncomingActivity,
    oneshot::Sender<Result<IngestOutcome, String>>,
);

/// Group commit: activities arriving together are stored in one transaction. An activity waits
/// for no timer: a batch is whatever queued while the previous one was being written.
struct Ingestor {
    tx: mpsc::Sender<Job>,
}

const MAX_BATCH: usize = 256;

impl Ingestor {
    fn start(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let (batch, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                match store.ingest(batch).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "storing inbound activities failed");
                        for reply in replies {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    async fn submit(&self, a: IncomingActivity) -> Result<IngestOutcome, FederationError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((a, reply))
            .await
            .map_err(|_| FederationError::Crypto("the ingest task stopped".into()))?;
        rx.await
            .map_err(|_| FederationError::Crypto("the ingest task stopped".into()))?
            .map_err(|e| FederationError::Store(caremesh_store::StoreError::NotReady(e)))
    }
}
