//! Durable delivery. Activities are queued in the database (in the same transaction as the change
//! they announce), one ordered queue per peer node and one POST per peer however many recipients
//! live there. Workers lease a peer's queue, so several node processes over one database never
//! deliver the same queue at once; a crashed worker's lease expires and another takes over,
//! re-sending at most what was in flight (receivers deduplicate by activity id).

use std::sync::Arc;
use std::time::Duration;

use caremesh_domain::{Clock, Timestamp};
use caremesh_store::{DeliveryResult, NewOutboxEntry, OutboxEntry, Partner, Store};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use crate::client::SignedClient;
use crate::error::FederationError;

#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Peers delivered to at the same time by one process.
    pub concurrency: usize,
    pub lease_secs: i64,
    /// First retry delay; doubles with each consecutive failure of the peer.
    pub backoff_base_ms: i64,
    /// Longest delay between attempts; also the probe interval once the breaker is open.
    pub backoff_max_secs: i64,
    /// A failing peer is tried again at least this often, whatever `backoff_max_secs` says, so
    /// that a short outage delays delivery by minutes, not by the backoff cap.
    pub max_probe_interval_secs: i64,
    /// Consecutive failures after which the peer's breaker opens (probed every
    /// `min(backoff_max, max_probe_interval)`).
    pub breaker_threshold: u32,
    /// An entry still failing this long after it was queued is parked.
    pub give_up_after_secs: i64,
    /// How often idle workers look for due work queued by other processes or retries.
    pub poll_interval_ms: u64,
}

/// The entries that deliver `activity` to each of `peers`' shared inboxes.
pub fn entries_for(activity: &Value, peers: &[Partner]) -> Vec<NewOutboxEntry> {
    let id = activity["id"].as_str().unwrap_or_default().to_owned();
    let payload = activity.to_string();
    peers
        .iter()
        .map(|p| NewOutboxEntry {
            peer: p.authority.clone(),
            inbox_url: format!("{}inbox", p.base_url),
            activity_id: id.clone(),
            payload: payload.clone(),
            intent: false,
        })
        .collect()
}

/// The delay before the next attempt after `failures` consecutive failures, with jitter (50–100%
/// of the exponential delay) so that many nodes recovering together do not retry in lockstep.
pub fn backoff(settings: &DeliverySettings, failures: u32) -> Duration {
    let max_ms = settings
        .backoff_max_secs
        .min(settings.max_probe_interval_secs)
        .max(1)
        * 1000;
    let exp = if failures >= settings.breaker_threshold {
        max_ms
    } else {
        let shift = failures.min(30);
        settings
            .backoff_base_ms
            .max(1)
            .saturating_mul(1i64 << shift)
            .min(max_ms)
    };
    let mut b = [0u8; 2];
    let jitter = if getrandom::fill(&mut b).is_ok() {
        f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
    } else {
        0.5
    };
    let ms = (exp as f64) * (0.5 + 0.5 * jitter);
    Duration::from_millis(ms as u64)
}

/// The codes of a 401 that say the signature's date is off: the two clocks disagree, which
/// heals when a clock is fixed, so the delivery is retried rather than parked.
pub const CLOCK_CODES: [&str; 1] = ["signature_expired"];

/// Whether a refusal is worth retrying: a network-level or server failure, a rate limit, or a
/// signature refused for its date (a clock is off; it will be fixed).
pub fn retryable(status: u16, body: &str) -> bool {
    if status == 408 || status == 429 || status >= 500 {
        return true;
    }
    status == 401 && CLOCK_CODES.contains(&error_code(body).as_deref().unwrap_or_default())
}

/// The `error` code of a refusal's body, if it is the JSON error body of the protocol.
fn error_code(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

/// Renders an intent: the signed activity that tells a peer the state of an object as it is now
/// (`None` when there is nothing to tell any more, e.g. the object is gone). Implemented by the
/// application layer, which knows the objects.
#[async_trait::async_trait]
pub trait IntentRenderer: Send + Sync {
    async fn render(&self, entry: &OutboxEntry) -> Result<Option<Value>, FederationError>;
}

pub struct DeliveryWorker {
    store: Arc<dyn Store>,
    renderer: Option<Arc<dyn IntentRenderer>>,
    client: Arc<SignedClient>,
    clock: Arc<dyn Clock>,
    settings: DeliverySettings,
    owner: String,
    wake: Arc<Notify>,
}

impl DeliveryWorker {
    pub fn new(
        store: Arc<dyn Store>,
        client: Arc<SignedClient>,
        clock: Arc<dyn Clock>,
        settings: DeliverySettings,
        wake: Arc<Notify>,
        renderer: Option<Arc<dyn IntentRenderer>>,
    ) -> Result<Self, FederationError> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| FederationError::Crypto(e.to_string()))?;
        Ok(Self {
            store,
            renderer,
            client,
            clock,
            settings,
            owner: format!("worker-{}-{}", std::process::id(), hex::encode(b)),
            wake,
        })
    }

    /// Delivers until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        loop {
            let free = slots.available_permits();
            if free > 0 {
                let now = self.clock.now();
                let until = now.plus_secs(self.settings.lease_secs);
                let limit = u32::try_from(free).unwrap_or(1);
                match self
                    .store
                    .lease_due_peers(&self.owner, now, until, limit)
                    .await
                {
                    Ok(peers) => {
                        for peer in peers {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                return;
                            };
                            let me = self.clone();
                            tokio::spawn(async move {
                                me.deliver_peer(&peer).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot lease outbox peers"),
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn deliver_peer(&self, peer: &str) {
        loop {
            let entries = match self.store.pending_entries(peer, 32).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(peer, error = %e, "cannot read the outbox");
                    break;
                }
            };
            if entries.is_empty() {
                break;
            }
            let mut stop = false;
            for entry in entries {
                let until = self.clock.now().plus_secs(self.settings.lease_secs);
                match self.store.renew_peer_lease(peer, &self.owner, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(peer, error = %e, "cannot renew the lease");
                        return;
                    }
                }
                let result = self.attempt(&entry).await;
                let retry = matches!(result, DeliveryResult::Retry { .. });
                let now = self.clock.now();
                if let Err(e) = self
                    .store
                    .record_delivery(entry.id, &self.owner, result, now)
                    .await
                {
                    tracing::warn!(peer, entry = entry.id, error = %e, "cannot record a delivery");
                    return;
                }
                if retry {
                    stop = true;
                    break;
                }
            }
            if stop {
                break;
            }
        }
        let _ = self.store.release_peer(peer, &self.owner).await;
    }

    async fn attempt(&self, entry: &OutboxEntry) -> DeliveryResult {
        let now = self.clock.now();
        let failed = |error: String| -> DeliveryResult {
            let age_secs = (now.as_millis() - entry.created_at.as_millis()) / 1000;
            if age_secs >= self.settings.give_up_after_secs {
                DeliveryResult::Park {
                    error: format!("gave up after {} attempts: {error}", entry.attempts + 1),
                }
            } else {
                // The peer's failure count is not known here; attempts of the head entry is.
                let wait = backoff(&self.settings, entry.attempts);
                let retry_at = Timestamp::from_millis(
                    now.as_millis() + i64::try_from(wait.as_millis()).unwrap_or(0),
                );
                DeliveryResult::Retry { error, retry_at }
            }
        };
        let body = if entry.intent {
            let Some(renderer) = &self.renderer else {
                return failed("this process cannot render intents".into());
            };
            match renderer.render(entry).await {
                Ok(Some(activity)) => activity.to_string().into_bytes(),
                Ok(None) => {
                    tracing::debug!(peer = %entry.peer, activity = %entry.activity_id, "nothing left to send");
                    return DeliveryResult::Delivered;
                }
                Err(e) => return failed(format!("cannot render: {e}")),
            }
        } else {
            entry.payload.clone().into_bytes()
        };
        match self.client.post(&entry.inbox_url, body).await {
            Ok(out) if (200..300).contains(&out.status) => {
                tracing::debug!(peer = %entry.peer, activity = %entry.activity_id, "delivered");
                DeliveryResult::Delivered
            }
            Ok(out) if retryable(out.status, &out.body) => {
                if out.status == 401 {
                    tracing::warn!(peer = %entry.peer, body = %out.body, "the partner refuses the date of this node's signature: one of the two clocks is off; retrying");
                }
                failed(format!("HTTP {}: {}", out.status, out.body))
            }
            Ok(out) => {
                tracing::warn!(peer = %entry.peer, status = out.status, body = %out.body, "delivery refused; parked");
                DeliveryResult::Park {
                    error: format!("refused with HTTP {}: {}", out.status, out.body),
                }
            }
            // Not a partner any more: keep the entry for the admin rather than retrying blindly.
            Err(FederationError::NotPartner(p)) => DeliveryResult::Park {
                error: format!("{p} is no longer a partner"),
            },
            Err(e) => failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeliverySettings {
        DeliverySettings {
            concurrency: 1,
            lease_secs: 30,
            backoff_base_ms: 1000,
            backoff_max_secs: 3600,
            max_probe_interval_secs: 3600,
            breaker_threshold: 8,
            give_up_after_secs: 72 * 3600,
            poll_interval_ms: 1000,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps_at_the_breaker() {
        let s = settings();
        for failures in 0..8u32 {
            let full = 1000u64 << failures;
            for _ in 0..20 {
                let d = backoff(&s, failures).as_millis() as u64;
                assert!((full / 2..=full).contains(&d), "{failures}: {d}");
            }
        }
        // Open breaker: probed once per backoff_max (with jitter), however many failures.
        for failures in [8u32, 9, 50, 10_000] {
            let d = backoff(&s, failures).as_millis() as u64;
            assert!((1_800_000..=3_600_000).contains(&d), "{failures}: {d}");
        }
        // The cap also holds below the threshold.
        let small_cap = DeliverySettings {
            backoff_max_secs: 5,
            ..settings()
        };
        assert!(backoff(&small_cap, 7).as_millis() <= 5000);
    }

    #[test]
    fn a_failing_peer_is_probed_within_the_probe_interval() {
        let s = DeliverySettings {
            max_probe_interval_secs: 120,
            ..settings()
        };
        for failures in [6u32, 7, 8, 9, 50, 10_000] {
            let d = backoff(&s, failures).as_millis() as u64;
            assert!(d <= 120_000, "{failures}: {d}");
        }
        let d = backoff(&s, 50).as_millis() as u64;
        assert!((60_000..=120_000).contains(&d), "{d}");
    }

    #[test]
    fn a_signature_refused_for_its_date_is_retried_other_refusals_are_not() {
        let refusal = |code: &str| format!(r#"{{"error":"{code}","message":"x"}}"#);
        assert!(retryable(401, &refusal("signature_expired")));
        assert!(retryable(503, &refusal("unavailable")));
        assert!(retryable(429, &refusal("rate_limited")));
        assert!(retryable(408, ""));
        assert!(!retryable(401, &refusal("signature_invalid")));
        assert!(!retryable(401, &refusal("key_unavailable")));
        assert!(!retryable(401, "signature_expired"));
        assert!(!retryable(403, &refusal("signature_expired")));
        assert!(!retryable(400, &refusal("malformed_activity")));
    }
}
