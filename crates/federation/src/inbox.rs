//! Inbound activities. The order of checks is part of the protocol (`spec/federation.md`):
//! source address within the unverified rate → signature present → signer's node is a partner →
//! addressed to this host → key → signature, date window and body digest → partner within its
//! rate → activity's actor on the signer's node → integrity proofs → stored once, in one
//! transaction (batched with concurrent deliveries). Any refusal stores nothing.

use std::collections::HashMap;
use std::net::IpAddr;
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
use crate::clock_skew::ClockSkews;
use crate::error::FederationError;
use crate::partners::Partners;
use crate::urls::{Urls, key_owner, origin_of, origin_of_str};

pub use crate::activity::PROOF_REQUIRED;
use crate::activity::{Parsed, is_actor_update};

#[derive(Clone, Debug)]
pub struct InboxSettings {
    pub max_skew_secs: u64,
    /// Verified requests per partner node.
    pub requests_per_minute: u32,
    /// Requests per source address whose signature has not (yet) verified.
    pub unverified_requests_per_minute: u32,
}

/// A request as the web layer received it.
pub struct InboundRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    /// The client's address (behind trusted proxies, the one they forwarded), if known.
    pub client_ip: Option<IpAddr>,
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
    /// Verified requests, per partner.
    limiter: PeerLimiter,
    /// Requests not verified yet, per source address.
    unverified: PeerLimiter,
    ingestor: Ingestor,
    /// Partners' clocks, from the dates of their signed requests.
    skews: Arc<ClockSkews>,
}

/// A window wide enough for any clock: a signature refused for its date is checked again with it,
/// to tell a partner whose clock is off from a forgery before its date is believed.
const ANY_DATE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

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
        skews: Arc<ClockSkews>,
    ) -> Self {
        Self {
            skews,
            limiter: PeerLimiter::new(settings.requests_per_minute),
            unverified: PeerLimiter::new(settings.unverified_requests_per_minute),
            ingestor: Ingestor::start(store),
            resolver,
            partners,
            clock,
            urls,
            settings,
        }
    }

    /// Checks a signed request (POST or GET) and says who signed it.
    ///
    /// Until its signature verifies, a request is charged to its source address
    /// (`unverified_requests_per_minute`), never to the partner its `keyId` names: anyone can
    /// write a partner's key id. A request that verifies gets its charge back and is charged to
    /// its partner (`requests_per_minute`) instead.
    pub async fn verify_request(
        &self,
        req: &InboundRequest<'_>,
    ) -> Result<VerifiedSender, FederationError> {
        let source = source_of(req.client_ip);
        self.unverified.check(&source)?;
        match self.verify_signature(req).await {
            Ok(sender) => {
                self.unverified.refund(&source);
                self.limiter.check(&sender.authority)?;
                Ok(sender)
            }
            Err(e) => {
                if e.status() >= 500 {
                    // This node's failure, not the sender's.
                    self.unverified.refund(&source);
                }
                Err(e)
            }
        }
    }

    async fn verify_signature(
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
        let now = self.clock.now();
        let date = req.header("date");
        match httpsig::verify(&sig, &request, &pk, &options).map_err(classify) {
            Ok(()) => {}
            // The key may have been rotated: fetch the actor again once.
            Err(FederationError::BadSignature(_)) if cached => {
                let (fresh, _) = self.resolver.key(&key_id, true).await?;
                let pk = PublicKey::from_spki_pem(&fresh.public_key_pem)?;
                httpsig::verify(&sig, &request, &pk, &options).map_err(classify)?;
            }
            // Refused for its date: if everything else holds, the partner's clock is off, and
            // its administrator should hear of it. The request stays refused.
            Err(e @ FederationError::StaleSignature(_)) => {
                let any_date = VerifyOptions::new(system_time(now)).with_max_skew(ANY_DATE);
                if httpsig::verify(&sig, &request, &pk, &any_date).is_ok() {
                    self.skews.observe(&authority, date, now);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.skews.observe(&authority, date, now);
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

/// How a request's source is named for its rate: an IPv4 address, or the /64 an IPv6 address is
/// in (one client usually holds a whole /64).
fn source_of(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown address".into(),
    }
}

/// How many peers or addresses a limiter tracks at most: its memory stays bounded whatever keys
/// a flood uses.
const MAX_TRACKED: usize = 10_000;

/// A token bucket per peer node, or per source address.
struct PeerLimiter {
    per_minute: u32,
    max_tracked: usize,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl PeerLimiter {
    fn new(per_minute: u32) -> Self {
        Self::bounded(per_minute, MAX_TRACKED)
    }

    fn bounded(per_minute: u32, max_tracked: usize) -> Self {
        Self {
            per_minute: per_minute.max(1),
            max_tracked: max_tracked.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn check(&self, peer: &str) -> Result<(), FederationError> {
        let capacity = self.capacity();
        let rate = capacity / 60.0;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if !map.contains_key(peer) && map.len() >= self.max_tracked {
            // A bucket that has filled up again is the same as no bucket: forget those first,
            // then, if every one is in use, the one seen longest ago.
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < capacity
            });
            if map.len() >= self.max_tracked
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let (tokens, at) = map.entry(peer.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens < 1.0 {
            return Err(FederationError::RateLimited(peer.to_owned()));
        }
        *tokens -= 1.0;
        Ok(())
    }

    /// Gives back what [`PeerLimiter::check`] took.
    fn refund(&self, peer: &str) {
        let capacity = self.capacity();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tokens, _)) = map.get_mut(peer) {
            *tokens = (*tokens + 1.0).min(capacity);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limiter_memory_stays_bounded() {
        let limiter = PeerLimiter::bounded(2, 100);
        for n in 0..5_000u32 {
            let _ = limiter.check(&format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255));
            assert!(limiter.tracked() <= 100);
        }
        // A source it still tracks keeps its rate.
        limiter.check("192.0.2.1").unwrap();
        limiter.check("192.0.2.1").unwrap();
        assert_eq!(
            limiter.check("192.0.2.1").unwrap_err().code(),
            "rate_limited"
        );
        // What is given back can be used again.
        limiter.refund("192.0.2.1");
        limiter.check("192.0.2.1").unwrap();
    }

    #[test]
    fn sources_are_addresses_or_ipv6_prefixes() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(source_of(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(
            source_of(ip("2001:db8:1:2:aaaa::1")),
            source_of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            source_of(ip("2001:db8:1:2::1")),
            source_of(ip("2001:db8:1:3::1"))
        );
    }
}
