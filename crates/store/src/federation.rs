//! What federation keeps: this node's signing keys, the partner list, remote actors' keys, the
//! activities received (once each), the objects they carried, and the durable outbox.

use async_trait::async_trait;
use caremesh_domain::Timestamp;
use serde::Serialize;

use crate::Result;

/// A signing key of a local actor. The private key never leaves this node.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalKey {
    pub key_id: String,
    pub actor_id: String,
    pub private_key_pem: String,
    pub public_key_pem: String,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A partner hospital's node, by URL authority (`host` or `host:port`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Partner {
    pub authority: String,
    pub base_url: String,
    pub added_at: Timestamp,
    /// `config` (from the configuration file, re-applied at every start) or `cli`.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteKey {
    pub key_id: String,
    pub actor_id: String,
    pub public_key_pem: String,
    pub fetched_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteActor {
    pub actor_id: String,
    pub actor_type: String,
    pub inbox: Option<String>,
    pub shared_inbox: Option<String>,
    pub document: String,
    pub fetched_at: Timestamp,
}

/// An inbound activity that passed every check, ready to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingActivity {
    pub activity_id: String,
    pub activity_type: String,
    pub actor_id: String,
    /// The authority of the node that delivered it.
    pub peer: String,
    pub payload: String,
    pub received_at: Timestamp,
    /// The object it creates, updates or deletes, if any.
    pub object: Option<ObjectChange>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectChange {
    /// Create or Update: the object's current document.
    Upsert {
        object_id: String,
        object_type: String,
        attributed_to: String,
        document: String,
        published_at: Option<Timestamp>,
        updated_at: Option<Timestamp>,
    },
    /// Delete: a tombstone, kept even when the object was never seen.
    Delete {
        object_id: String,
        attributed_to: String,
    },
}

/// What the inbox journal did with an activity. Recording is the first half of receiving it; the
/// caller then applies it and marks it applied ([`FederationStore::mark_applied`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    /// New: recorded under `seq`, not applied yet.
    Stored { seq: i64 },
    /// Received before, under `seq`; `applied` says whether its effects are in place (if not,
    /// the node stopped or failed while applying it, and it must be applied now).
    Duplicate { seq: i64, applied: bool },
}

impl IngestOutcome {
    /// The activity's place in the journal.
    pub fn seq(self) -> i64 {
        match self {
            Self::Stored { seq } | Self::Duplicate { seq, .. } => seq,
        }
    }

    /// Whether the activity still has to be applied.
    pub fn needs_applying(self) -> bool {
        !matches!(self, Self::Duplicate { applied: true, .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredActivity {
    pub seq: i64,
    pub activity_id: String,
    pub activity_type: String,
    pub actor_id: String,
    pub peer: String,
    pub received_at: Timestamp,
    /// When its effects were applied; `None` while it waits to be applied (again).
    pub applied_at: Option<Timestamp>,
    /// Failed attempts to apply it.
    pub apply_attempts: u32,
    /// Why the last attempt failed.
    pub apply_error: Option<String>,
    /// The activity as it arrived.
    #[serde(skip)]
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FederatedObject {
    pub object_id: String,
    pub object_type: String,
    pub attributed_to: String,
    pub document: Option<String>,
    pub published_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
}

/// One activity to deliver to one peer node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxEntry {
    pub peer: String,
    /// The peer's shared inbox.
    pub inbox_url: String,
    pub activity_id: String,
    /// The signed activity; for an intent, what to render (a JSON document the delivery worker's
    /// renderer understands).
    pub payload: String,
    /// `payload` is an intent: the activity is rendered and signed when it is sent, from the
    /// state of its object then (see `migrations/*/0009_inbox_journal.sql`).
    pub intent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub peer: String,
    pub inbox_url: String,
    pub activity_id: String,
    #[serde(skip)]
    pub payload: String,
    /// `payload` is an intent, rendered when it is sent.
    pub intent: bool,
    pub created_at: Timestamp,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub parked_at: Option<Timestamp>,
}

/// The state of one peer's queue, for operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerQueue {
    pub peer: String,
    pub inbox_url: String,
    pub pending: u64,
    pub parked: u64,
    pub consecutive_failures: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub last_success_at: Option<Timestamp>,
    pub lease_owner: Option<String>,
}

/// What happened to a delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    Delivered,
    /// Try again at `retry_at` (the peer's whole queue waits: delivery is in order).
    Retry {
        error: String,
        retry_at: Timestamp,
    },
    /// Give up on this entry (kept, listed for the admin, retryable by hand); the queue moves on.
    Park {
        error: String,
    },
}

#[async_trait]
pub trait FederationStore: Send + Sync {
    // ---- local keys ----

    /// Keys of a local actor, newest first (including retired ones still in their grace period
    /// and older ones; callers filter by `retired_at`).
    async fn local_keys(&self, actor_id: &str) -> Result<Vec<LocalKey>>;
    /// Adds a key; the actor's previous unretired keys are retired at `key.created_at`. The outbox
    /// entries (e.g. the `Update` announcing the new key) are written in the same transaction.
    async fn add_local_key(&self, key: LocalKey, announce: Vec<NewOutboxEntry>) -> Result<()>;
    /// Adds the actor's first key unless it has one already; returns its current key.
    async fn ensure_local_key(&self, key: LocalKey) -> Result<LocalKey>;

    // ---- partners ----

    async fn list_partners(&self) -> Result<Vec<Partner>>;
    /// Adds or updates a partner. Returns whether it was new.
    async fn add_partner(&self, partner: Partner) -> Result<bool>;
    /// Removes a partner. [`crate::StoreError::NotFound`] if it was not one.
    async fn remove_partner(&self, authority: &str) -> Result<()>;

    // ---- remote actors and keys ----

    async fn remote_key(&self, key_id: &str) -> Result<Option<RemoteKey>>;
    /// Stores a fetched actor and replaces the keys known for it.
    async fn save_remote_actor(&self, actor: RemoteActor, keys: Vec<RemoteKey>) -> Result<()>;
    async fn remote_actor(&self, actor_id: &str) -> Result<Option<RemoteActor>>;

    // ---- inbox ----

    /// Records each activity once, in one transaction, with its object change (the newest
    /// version of each object is kept). Activities already received are reported as duplicates
    /// (saying whether they were applied) and change nothing.
    async fn ingest(&self, batch: Vec<IncomingActivity>) -> Result<Vec<IngestOutcome>>;
    /// The effects of the recorded activity `seq` are in place.
    async fn mark_applied(&self, seq: i64, now: Timestamp) -> Result<()>;
    /// Applying `seq` failed (`error`); it stays unapplied and is tried again. Returns the
    /// number of failed attempts so far.
    async fn record_apply_failure(&self, seq: i64, error: &str, now: Timestamp) -> Result<u32>;
    /// Recorded activities not applied yet, received before `received_before` and tried fewer
    /// than `max_attempts` times, in arrival order.
    async fn unapplied_activities(
        &self,
        received_before: Timestamp,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<StoredActivity>>;
    /// Recorded activities that could not be applied after `max_attempts` attempts, newest
    /// first, for the admin.
    async fn failed_activities(&self, max_attempts: u32, limit: u32)
    -> Result<Vec<StoredActivity>>;
    /// Received activities in arrival order, after `after_seq`.
    async fn received_activities(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredActivity>>;
    async fn federated_object(&self, object_id: &str) -> Result<Option<FederatedObject>>;
    /// The stored activities that changed an object (its `Create`, `Update`s, `Delete`), oldest
    /// first: what a group's host forwards again to a node that joins later.
    async fn activities_about(&self, object_id: &str) -> Result<Vec<StoredActivity>>;

    // ---- outbox ----

    /// Queues activities for delivery (used on its own and inside other writes).
    async fn enqueue(&self, entries: Vec<NewOutboxEntry>, now: Timestamp) -> Result<()>;
    /// Leases up to `limit` peers that have pending entries due at `now` and no live lease.
    async fn lease_due_peers(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<String>>;
    /// Extends a lease; false if `owner` no longer holds it.
    async fn renew_peer_lease(&self, peer: &str, owner: &str, until: Timestamp) -> Result<bool>;
    async fn release_peer(&self, peer: &str, owner: &str) -> Result<()>;
    /// The oldest pending (not delivered, not parked) entries of a peer, in order.
    async fn pending_entries(&self, peer: &str, limit: u32) -> Result<Vec<OutboxEntry>>;
    /// Records a delivery attempt's result for an entry of a peer leased by `owner`.
    async fn record_delivery(
        &self,
        entry_id: i64,
        owner: &str,
        result: DeliveryResult,
        now: Timestamp,
    ) -> Result<()>;
    async fn parked_entries(&self, limit: u32) -> Result<Vec<OutboxEntry>>;
    /// Puts parked entries back in their queues (all when `ids` is empty); returns how many.
    async fn retry_parked(&self, ids: &[i64], now: Timestamp) -> Result<u64>;
    /// Makes a peer's waiting queue due at `now` (its failures and parked entries stay as they
    /// are); returns how many entries are pending in it, `None` when there is no queue for it.
    async fn retry_peer_now(&self, peer: &str, now: Timestamp) -> Result<Option<u64>>;
    async fn peer_queues(&self) -> Result<Vec<PeerQueue>>;
}
