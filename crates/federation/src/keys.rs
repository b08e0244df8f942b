//! This node's signing keys: generated on first use, stored in the database (private keys are
//! never served), rotated by the admin CLI with the previous key kept published for a grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caremesh_domain::{Clock, Timestamp};
use caremesh_protocol::KeyPair;
use caremesh_store::{LocalKey, NewOutboxEntry, Store};
use tokio::sync::RwLock;

use crate::error::FederationError;
use crate::urls::{Urls, first_key_id, rotated_key_id};

/// How long the signing key is cached (rotation happens in another process).
const CACHE: Duration = Duration::from_secs(30);

pub struct KeyRing {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    urls: Urls,
    grace_secs: i64,
    instance: RwLock<Option<(Instant, String, Arc<KeyPair>)>>,
}

/// A new key for `actor_id`, with the given id.
pub fn generate_key(
    actor_id: &str,
    key_id: &str,
    now: Timestamp,
) -> Result<LocalKey, FederationError> {
    let pair = KeyPair::generate()?;
    Ok(LocalKey {
        key_id: key_id.to_owned(),
        actor_id: actor_id.to_owned(),
        private_key_pem: pair.to_pkcs8_pem()?,
        public_key_pem: pair.public_key().to_spki_pem()?,
        created_at: now,
        retired_at: None,
    })
}

impl KeyRing {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, urls: Urls, grace_secs: i64) -> Self {
        Self {
            store,
            clock,
            urls,
            grace_secs,
            instance: RwLock::new(None),
        }
    }

    /// The current key of a local actor, created if the actor has none yet.
    pub async fn current(&self, actor_id: &str) -> Result<(String, KeyPair), FederationError> {
        let now = self.clock.now();
        let key = self
            .store
            .ensure_local_key(generate_key(actor_id, &first_key_id(actor_id), now)?)
            .await?;
        Ok((
            key.key_id.clone(),
            KeyPair::from_pkcs8_pem(&key.private_key_pem)?,
        ))
    }

    /// The node's own key, which signs every server-to-server request.
    pub async fn instance_key(&self) -> Result<(String, Arc<KeyPair>), FederationError> {
        if let Some((at, id, pair)) = self.instance.read().await.as_ref()
            && at.elapsed() < CACHE
        {
            return Ok((id.clone(), pair.clone()));
        }
        let (id, pair) = self.current(&self.urls.instance_actor()).await?;
        let pair = Arc::new(pair);
        *self.instance.write().await = Some((Instant::now(), id.clone(), pair.clone()));
        Ok((id, pair))
    }

    /// The keys an actor document publishes: the current one and those retired less than the
    /// grace period ago, newest first.
    pub async fn published(&self, actor_id: &str) -> Result<Vec<LocalKey>, FederationError> {
        let now = self.clock.now();
        let mut keys = self.store.local_keys(actor_id).await?;
        if keys.is_empty() {
            self.current(actor_id).await?;
            keys = self.store.local_keys(actor_id).await?;
        }
        Ok(keys
            .into_iter()
            .filter(|k| {
                k.retired_at
                    .is_none_or(|r| r.plus_secs(self.grace_secs) > now)
            })
            .collect())
    }

    /// Replaces the actor's key. The previous key is retired now and stays published for the grace
    /// period; `announce` (built with the new key's id) is queued in the same transaction.
    pub async fn rotate(
        &self,
        actor_id: &str,
        announce: impl FnOnce(&str) -> Vec<NewOutboxEntry>,
    ) -> Result<LocalKey, FederationError> {
        let now = self.clock.now();
        let key = generate_key(actor_id, &rotated_key_id(actor_id, now), now)?;
        let entries = announce(&key.key_id);
        self.store.add_local_key(key.clone(), entries).await?;
        *self.instance.write().await = None;
        Ok(key)
    }
}
