//! Federation between hospital nodes, as transport and crypto: the partner allow-list, this
//! node's keys, the signed HTTP client, the inbox's checks (signature, partner, actor's node,
//! proofs), typed activities and their pure builders, the documents of the node's actors, and
//! durable outbound delivery (the outbox workers), as specified in `spec/federation.md`.
//!
//! Depends on `protocol` for the cryptography and on the `Store` trait for keys, partners,
//! remote actors, the inbox journal and the outbox; knows nothing of axum, of a particular
//! database, nor of group rules: what an activity does to a group, and which activities a change
//! sends, is the application layer's (`caremesh-app`).

pub mod activity;
pub mod actors;
pub mod client;
pub mod clock_skew;
pub mod credentials;
pub mod error;
#[cfg(test)]
mod examples;
pub mod group_sync;
pub mod groups;
pub mod inbox;
pub mod keys;
pub mod media;
pub mod outbox;
pub mod partners;
pub mod urls;

use std::sync::Arc;
use std::time::Duration;

use caremesh_domain::Clock;
use caremesh_protocol::proof::{ProofOptions, create_proof};
use caremesh_store::{NewOutboxEntry, Partner, Store};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use client::{ACTIVITY_JSON, KeyResolver, LD_JSON, SignedClient};
pub use error::FederationError;
pub use inbox::{InboundRequest, Inbox, InboxSettings, VerifiedSender};
pub use keys::KeyRing;
pub use outbox::{DeliverySettings, DeliveryWorker, IntentRenderer, entries_for};
pub use partners::{Partners, parse_partner};
pub use urls::Urls;

#[derive(Clone, Debug)]
pub struct FederationSettings {
    pub hospital_name: String,
    pub inbox: InboxSettings,
    pub delivery: DeliverySettings,
    /// How long a rotated key stays published and verifying.
    pub key_grace_secs: i64,
    pub request_timeout_secs: u64,
    /// Largest activity accepted by the inbox, in bytes.
    pub max_activity_bytes: usize,
    /// Most members a group hosted here may have (`groups.max_members`).
    pub max_members: u32,
}

impl Default for FederationSettings {
    /// The defaults of the node's configuration (`caremesh.example.toml`).
    fn default() -> Self {
        Self {
            hospital_name: "Caremesh node".into(),
            inbox: InboxSettings {
                max_skew_secs: 300,
                requests_per_minute: 6000,
                unverified_requests_per_minute: 600,
            },
            delivery: DeliverySettings {
                concurrency: 16,
                lease_secs: 30,
                backoff_base_ms: 1000,
                backoff_max_secs: 3600,
                max_probe_interval_secs: 120,
                breaker_threshold: 8,
                give_up_after_secs: 72 * 3600,
                poll_interval_ms: 1000,
            },
            key_grace_secs: 72 * 3600,
            request_timeout_secs: 10,
            max_activity_bytes: 256 * 1024,
            max_members: 500,
        }
    }
}

/// The federation services of one node.
pub struct Federation {
    pub urls: Urls,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: FederationSettings,
    pub keys: Arc<KeyRing>,
    pub partners: Arc<Partners>,
    pub client: Arc<SignedClient>,
    pub resolver: Arc<KeyResolver>,
    pub inbox: Inbox,
    /// Partners' clocks as their signed requests show them.
    pub clock_skews: Arc<clock_skew::ClockSkews>,
    wake: Arc<Notify>,
    badges: credentials::BadgeCache,
    local_credentials: credentials::LocalCredentialCache,
}

impl Federation {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        urls: Urls,
        settings: FederationSettings,
    ) -> Result<Arc<Self>, FederationError> {
        let keys = Arc::new(KeyRing::new(
            store.clone(),
            clock.clone(),
            urls.clone(),
            settings.key_grace_secs,
        ));
        let partners = Arc::new(Partners::new(store.clone()));
        let client = Arc::new(SignedClient::new(
            keys.clone(),
            partners.clone(),
            clock.clone(),
            Duration::from_secs(settings.request_timeout_secs.max(1)),
        )?);
        let resolver = Arc::new(KeyResolver::new(
            store.clone(),
            client.clone(),
            partners.clone(),
            clock.clone(),
        ));
        let clock_skews = Arc::new(clock_skew::ClockSkews::default());
        let inbox = Inbox::new(
            store.clone(),
            resolver.clone(),
            partners.clone(),
            clock.clone(),
            urls.clone(),
            settings.inbox.clone(),
            clock_skews.clone(),
        );
        Ok(Arc::new(Self {
            urls,
            store,
            clock,
            settings,
            keys,
            partners,
            client,
            resolver,
            inbox,
            clock_skews,
            wake: Arc::new(Notify::new()),
            badges: Default::default(),
            local_credentials: Default::default(),
        }))
    }

    /// Starts the delivery worker of this process; `renderer` renders queued intents.
    pub fn start_delivery(
        self: &Arc<Self>,
        renderer: Option<Arc<dyn IntentRenderer>>,
    ) -> Result<JoinHandle<()>, FederationError> {
        let worker = Arc::new(DeliveryWorker::new(
            self.store.clone(),
            self.client.clone(),
            self.clock.clone(),
            self.settings.delivery.clone(),
            self.wake.clone(),
            renderer,
        )?);
        Ok(tokio::spawn(worker.run()))
    }

    /// Tells this process's worker that new entries were queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Adds the author's integrity proof (FEP-8b32, eddsa-jcs-2022) to an activity.
    pub async fn sign_as(
        &self,
        author_actor: &str,
        activity: &Value,
    ) -> Result<Value, FederationError> {
        let (key_id, key) = self.keys.current(author_actor).await?;
        let options = ProofOptions::new(key_id, client::system_time(self.clock.now()));
        Ok(create_proof(activity, &options, &key)?)
    }

    /// The partners an activity goes to, resolved from authorities; unknown ones are refused.
    pub async fn peers(&self, authorities: &[String]) -> Result<Vec<Partner>, FederationError> {
        let mut out = Vec::with_capacity(authorities.len());
        for a in authorities {
            out.push(
                self.partners
                    .get(a)
                    .await?
                    .ok_or_else(|| FederationError::NotPartner(a.clone()))?,
            );
        }
        Ok(out)
    }

    /// Queues an activity for the given peers (one entry per peer node) and wakes the worker.
    pub async fn publish(
        &self,
        activity: &Value,
        peers: &[Partner],
    ) -> Result<(), FederationError> {
        let entries: Vec<NewOutboxEntry> = entries_for(activity, peers);
        self.store.enqueue(entries, self.clock.now()).await?;
        self.wake();
        Ok(())
    }

    /// A doctor's or staff member's actor document, with the credential the hospital signed.
    pub async fn person_document(
        &self,
        user: &caremesh_store::User,
        credential: Option<&caremesh_domain::Credential>,
    ) -> Result<Value, FederationError> {
        let actor_id = self.urls.person(&user.username);
        let keys = self.keys.published(&actor_id).await?;
        let credential = match credential {
            Some(c) => Some(
                credentials::signed_credential(
                    &self.urls,
                    &self.keys,
                    &self.settings.hospital_name,
                    &user.username,
                    &user.display_name,
                    c,
                )
                .await?,
            ),
            None => None,
        };
        actors::person_actor(
            &self.urls,
            &user.username,
            &user.display_name,
            &keys,
            credential,
        )
    }

    /// The `Update` that tells every partner about a person's new actor document (e.g. a credential
    /// recorded or revoked), as outbox entries to write with the change.
    pub async fn person_update(
        &self,
        user: &caremesh_store::User,
        credential: Option<&caremesh_domain::Credential>,
    ) -> Result<Vec<NewOutboxEntry>, FederationError> {
        let doc = self.person_document(user, credential).await?;
        let now = self.clock.now();
        let actor = self.urls.person(&user.username);
        let update = json!({
            "@context": actors::CONTEXT,
            "id": self.urls.activity(&format!("update-{}-{}", user.username, now.as_millis())),
            "type": "Update",
            "actor": actor,
            "object": doc,
            "published": now.to_rfc3339(),
        });
        Ok(entries_for(&update, &self.partners.all().await?))
    }

    /// Rotates the node's key and announces it to every partner with an `Update` of the node's
    /// actor, queued in the same transaction.
    pub async fn rotate_instance_key(&self) -> Result<String, FederationError> {
        let actor = self.urls.instance_actor();
        let partners = self.partners.all().await?;
        let now = self.clock.now();
        let activity_id = self
            .urls
            .activity(&format!("key-rotation-{}", now.as_millis()));
        let urls = self.urls.clone();
        let key = self
            .keys
            .rotate(&actor, |new_key_id| {
                let update = json!({
                    "@context": actors::CONTEXT,
                    "id": activity_id,
                    "type": "Update",
                    "actor": urls.instance_actor(),
                    "object": urls.instance_actor(),
                    "published": now.to_rfc3339(),
                    "summary": format!("key rotated to {new_key_id}"),
                });
                entries_for(&update, &partners)
            })
            .await?;
        self.wake();
        Ok(key.key_id)
    }
}
