//! What every handler can reach: the use-cases, the clock, the settings and the metrics.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use caremesh_app::{App, AppSettings};
use caremesh_domain::Clock;
use url::Url;

use crate::metrics::Metrics;

/// The parts of the node's configuration that the HTTP layer needs. The server crate fills it from
/// the node's config file; tests build it directly.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Public URL of the node, e.g. `https://caremesh.hospital-a.example`.
    pub base_url: Url,
    pub hospital_name: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of a login session, in seconds.
    pub session_ttl_secs: i64,
    /// Failed logins allowed per account (and ten times that per client address) within
    /// `login_window_secs` before further attempts are refused with 429.
    pub login_max_failures: u32,
    pub login_window_secs: i64,
    /// Default validity of a sign-up invite, in hours.
    pub invite_ttl_hours: i64,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most active members a group may have.
    pub max_members: u32,
    /// Where attachments are stored (`data_dir/media`).
    pub media_dir: PathBuf,
    /// Largest accepted upload, in bytes (applies to the upload route instead of
    /// `max_body_bytes`).
    pub max_file_bytes: usize,
    /// Most bytes of attachments one group may hold.
    pub group_quota_bytes: i64,
    /// Largest image accepted, in pixels (width × height), against decompression bombs.
    pub max_image_pixels: u64,
    /// Password hashes computed at once (`auth.max_concurrent_password_hashes`).
    pub max_concurrent_password_hashes: usize,
    /// Images decoded at once (`media.max_concurrent_decodes`).
    pub max_concurrent_decodes: usize,
}

impl WebSettings {
    /// What the use-cases need of these settings.
    pub fn app_settings(&self) -> AppSettings {
        AppSettings {
            hospital_name: self.hospital_name.clone(),
            base_url: self.base_url.clone(),
            max_members: self.max_members,
            session_ttl_secs: self.session_ttl_secs,
            login_max_failures: self.login_max_failures,
            login_window_secs: self.login_window_secs,
            invite_ttl_hours: self.invite_ttl_hours,
            media_dir: self.media_dir.clone(),
            max_file_bytes: self.max_file_bytes,
            group_quota_bytes: self.group_quota_bytes,
            max_image_pixels: self.max_image_pixels,
            max_concurrent_password_hashes: self.max_concurrent_password_hashes,
            max_concurrent_decodes: self.max_concurrent_decodes,
        }
    }

    /// Session cookies are marked `Secure` whenever the node is served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.scheme() == "https"
    }
}

#[derive(Clone)]
pub struct AppState {
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<WebSettings>,
    pub metrics: Arc<Metrics>,
    /// The use-cases: every action the API and the pages offer, and the only way to the store
    /// and the federation services.
    pub app: Arc<App>,
}

impl AppState {
    pub fn new(app: Arc<App>, settings: WebSettings) -> Self {
        Self {
            clock: app.clock().clone(),
            app,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
        }
    }
}
