//! Inbound activities. The order of checks is part of the protocol (`spec/federation.md`):
//! signature present → signer's node is a partner → rate limit → addressed to this host → key →
//! signature, date window and body digest → activity's actor on the signer's node → integrity
//! proofs → stored once, in one transaction (batched with concurrent deliveries).
//! Any refusal stores nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caremesh_domain::Clock;
use caremesh_protocol::PublicKey;
use caremesh_protocol::httpsig::{self, VerifyOptions};
use caremesh_protocol::proof::{proof_verification_method, verify_proof};
use caremesh_store::{IncomingActivity, IngestOutcome, Store};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::client::{KeyResolver, system_time};
use crate::error::FederationError;
use crate::partners::Partners;
use crate::urls::{Urls, key_owner, origin_of, origin_of_str};

pub use crate::activity::PROOF_REQUIRED;
use crate::activity::{Parsed, is_actor_update};

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
    /// The signer's node, by name (`host` or `host:port`).
    pub authority: String,
    /// The signer's node, by origin (`scheme://authority`), which ids on it must share.
    pub origin: String,
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
        let origin = origin_of(&owner).ok_or_else(|| {
            FederationError::BadSignature(format!("keyId {key_id:?} has no host"))
        })?;
        // Before anything is fetched, parsed further or stored; scheme, host and port must be
        // the partner's.
        let Some(partner) = self.partners.for_url(&owner).await? else {
            return Err(FederationError::NotPartner(origin));
        };
        let authority = partner.authority;
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
            origin,
        })
    }

    /// Verifies and checks one delivered activity; returns it, parsed, and what to record.
    pub async fn verify_and_check(
        &self,
        req: &InboundRequest<'_>,
    ) -> Result<(Value, Parsed, IncomingActivity), FederationError> {
        let sender = self.verify_request(req).await?;
        let activity: Value = serde_json::from_slice(req.body)
            .map_err(|e| FederationError::Malformed(format!("not JSON: {e}")))?;
        let (parsed, incoming) = self.check_activity(&activity, &sender).await?;
        Ok((activity, parsed, incoming))
    }

    /// Stores a checked activity once (batched with concurrent deliveries).
    pub async fn ingest(
        &self,
        incoming: IncomingActivity,
    ) -> Result<IngestOutcome, FederationError> {
        self.ingestor.submit(incoming).await
    }

    /// An actor's `Update` of itself: new keys or a new credential are taken now rather than at
    /// the next failure.
    pub async fn refresh_actor(&self, actor: &str) {
        if let Err(e) = self.resolver.fetch_actor(actor).await {
            tracing::warn!(%actor, error = %e, "cannot refresh an updated actor");
        }
    }

    /// Everything after the signature: shape, actor and node, proofs; returns the activity,
    /// parsed, and what to record.
    pub async fn check_activity(
        &self,
        activity: &Value,
        sender: &VerifiedSender,
    ) -> Result<(Parsed, IncomingActivity), FederationError> {
        let head = crate::activity::head(activity)?;
        let actor_origin = origin_of_str(&head.actor).ok_or_else(|| {
            FederationError::Malformed(format!("actor {:?} is not a URL", head.actor))
        })?;
        if actor_origin != sender.origin {
            return Err(FederationError::ActorMismatch(format!(
                "actor {} is not on the signer's node {}",
                head.actor, sender.origin
            )));
        }
        if origin_of_str(&head.id).as_deref() != Some(actor_origin.as_str()) {
            return Err(FederationError::ActorMismatch(format!(
                "activity id {} is not on the actor's node",
                head.id
            )));
        }
        self.check_proof(activity, &head.kind, &head.actor).await?;
        let inner = &activity["object"];
        if head.kind == "Announce" && inner.is_object() && inner.get("actor").is_some() {
            // A host forwards a member's activity unchanged: the member's proof must hold.
            let inner_head = crate::activity::head(inner)?;
            self.check_proof(inner, &inner_head.kind, &inner_head.actor)
                .await?;
        }
        // The proofs hold: now what the activity says is its author's.
        let parsed = crate::activity::parse(activity)?;
        let head = &parsed.head;
        let incoming = IncomingActivity {
            activity_id: head.id.clone(),
            activity_type: head.kind.clone(),
            actor_id: head.actor.clone(),
            peer: sender.authority.clone(),
            payload: activity.to_string(),
            received_at: self.clock.now(),
            object: parsed.object_change(activity),
        };
        Ok((parsed, incoming))
    }

    async fn check_proof(
        &self,
        doc: &Value,
        kind: &str,
        actor: &str,
    ) -> Result<(), FederationError> {
        if doc.get("proof").is_none() {
            let head = crate::activity::Head {
                id: String::new(),
                kind: kind.to_owned(),
                actor: actor.to_owned(),
            };
            if PROOF_REQUIRED.contains(&kind) && !is_actor_update(doc, &head) {
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
