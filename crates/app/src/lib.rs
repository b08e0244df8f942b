//! The application layer of a Caremesh node: every use-case, local or federated, as a plain async
//! function over [`App`] and the caller. The JSON API, the web pages, the admin CLI and the inbox
//! are thin adapters over it: they parse, call one use-case and render its result.
//!
//! Rules this crate owns (see CONTRIBUTING.md):
//! - a rule is written once, here, and every surface calls it;
//! - a change and the activities it sends to other nodes are written in one store call (one
//!   transaction);
//! - an inbound activity is applied exactly once.
//!
//! It has no HTTP framework, no HTML and no SQL: it depends on `domain`, `store` (the trait),
//! `federation` (transport, keys, signing) and `protocol`.

pub mod access;
pub mod accounts;
pub mod actions;
pub mod admin;
pub mod error;
pub mod gate;
#[cfg(test)]
mod group_fixtures;
pub mod groups;
pub mod inbound;
pub mod intents;
pub mod invites;
pub mod library;
pub mod media;
pub mod moderation;
pub mod node;
pub mod outbound;
pub mod posts;
pub mod remote;

use std::path::PathBuf;
use std::sync::Arc;

use caremesh_domain::Clock;
use caremesh_federation::Federation;
use caremesh_store::Store;

pub use access::{Caller, GroupAccess, group_not_found};

/// What the adapters (the JSON API, the pages, the CLI) show: the stored models, and what the
/// federation crate says of requests and credentials. They reach the store and the federation
/// services only through the use-cases of this crate.
pub mod model {
    pub use caremesh_federation::clock_skew::{PartnerSkew, WARN_SKEW_SECS};
    pub use caremesh_federation::credentials::{BadgeStatus, CredentialBadge};
    pub use caremesh_federation::{ACTIVITY_JSON, FederationError, InboundRequest};
    pub use caremesh_store::*;
}
pub use error::{AppError, AppResult};

/// The settings the use-cases need, from the node's configuration.
#[derive(Clone, Debug)]
pub struct AppSettings {
    pub hospital_name: String,
    /// Public URL of the node, with a trailing slash.
    pub base_url: url::Url,
    /// Most active members a group may have.
    pub max_members: u32,
    /// Lifetime of a login session, in seconds.
    pub session_ttl_secs: i64,
    /// Failed logins allowed per account (ten times that per client address) in the window.
    pub login_max_failures: u32,
    pub login_window_secs: i64,
    /// Default validity of a sign-up invite, in hours.
    pub invite_ttl_hours: i64,
    /// Where attachments are stored (`data_dir/media`).
    pub media_dir: PathBuf,
    /// Largest accepted upload, in bytes.
    pub max_file_bytes: usize,
    /// Most bytes of attachments one group may hold.
    pub group_quota_bytes: i64,
    /// Largest image accepted, in pixels (width × height).
    pub max_image_pixels: u64,
    /// Password hashes (Argon2id, 19 MiB each) computed at once; more wait briefly or get `Busy`.
    pub max_concurrent_password_hashes: usize,
    /// Images decoded at once (uploads); more wait briefly or get `Busy`.
    pub max_concurrent_decodes: usize,
}

/// Everything a use-case can reach: the store, the federation services, the clock, the settings.
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) federation: Arc<Federation>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Where the groups' files are kept.
    pub(crate) media: media::MediaDir,
    /// Failed logins per account and client address (in memory, per process).
    pub(crate) login_limiter: accounts::LoginLimiter,
    /// The bound on concurrent password hashes, and their reused memory.
    pub(crate) password_hashing: accounts::PasswordHashing,
    /// The bound on concurrent image decodes.
    pub(crate) decoding: gate::Gate,
    pub settings: AppSettings,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        federation: Arc<Federation>,
        settings: AppSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            federation,
            clock,
            login_limiter: accounts::LoginLimiter::new(
                settings.login_max_failures,
                settings.login_window_secs,
            ),
            password_hashing: accounts::PasswordHashing::new(
                settings.max_concurrent_password_hashes,
            ),
            decoding: media::decode_gate(settings.max_concurrent_decodes),
            media: media::MediaDir::new(&settings),
            settings,
        })
    }

    pub fn now(&self) -> caremesh_domain::Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The most password hashes and image decodes that ever ran at once in this node (for
    /// tests and the metrics of an operator who wonders).
    pub fn high_water_marks(&self) -> (usize, usize) {
        (
            self.password_hashing.high_water(),
            self.decoding.high_water(),
        )
    }
}

/// A random, URL-safe public id for groups, posts and attachments (128 bits).
pub fn new_public_id() -> AppResult<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
