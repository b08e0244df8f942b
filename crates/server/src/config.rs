//! The node's configuration: built-in defaults, then a TOML file (`--config`), then environment
//! variables `CAREMESH_SECTION__KEY` (e.g. `CAREMESH_DATABASE__URL`, `CAREMESH_LISTEN`).
//! Unknown keys and invalid values are refused at start with a message naming the key. The test
//! scripts' own variables (`CAREMESH_SKIP_LOG`, `CAREMESH_SKIP_POSTGRES`, `CAREMESH_SKIP_BROWSER`)
//! are no configuration and are ignored, so that nodes started by tests accept them.
//!
//! `caremesh.example.toml` at the top of the repository documents every key; a test keeps it equal
//! to [`Config::default`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public URL of the node, as patients' browsers and partner nodes reach it.
    pub base_url: Url,
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, media and keys. Created if missing.
    pub data_dir: PathBuf,
    /// The hospital's name as patients and partner hospitals see it.
    pub hospital_name: String,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub groups: GroupsConfig,
    pub federation: FederationConfig,
    pub media: MediaConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: SQLite in `data_dir/caremesh.db`. Otherwise `sqlite://path` or
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Size of the connection pool (SQLite opens as many again for reads).
    pub max_connections: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `caremesh_web=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` header is believed (for rate limits and logs).
    pub trusted_proxies: Vec<IpAddr>,
    /// Open connections served at once; further clients wait in the listen backlog.
    pub max_connections: u32,
    /// Seconds a client has to send a request's headers (from connecting, or after the previous
    /// answer on a kept-alive connection); then the connection is closed.
    pub header_read_timeout_secs: u32,
    /// Seconds a request body may go without sending anything before the request is dropped
    /// (a slow phone network keeps sending; a stalled client does not).
    pub body_idle_timeout_secs: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a login session lasts, in minutes.
    pub session_ttl_minutes: u32,
    /// Failed logins allowed per account within `login_window_secs` (ten times as many per client
    /// address) before further attempts get 429.
    pub login_max_failures: u32,
    pub login_window_secs: u32,
    /// How long a sign-up invite stays valid when the admin does not say, in hours.
    pub invite_ttl_hours: u32,
    /// Password hashes (Argon2id, 19 MiB each: logins, sign-ups, password changes) computed at
    /// once; up to 64 more requests wait at most 5 seconds, the rest get 503 with `Retry-After`.
    pub max_concurrent_password_hashes: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupsConfig {
    /// Most members a group may have.
    pub max_members: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// Partner hospitals' nodes, by base URL (`https://caremesh.hospital-b.example`) or domain.
    /// The node talks to these and nobody else. `caremesh partner add` adds more at run time.
    pub partners: Vec<String>,
    /// Largest activity the inbox accepts, in bytes.
    pub max_activity_bytes: usize,
    /// Signatures dated more than this many seconds in the past or the future are refused.
    pub signature_max_skew_secs: u32,
    /// Requests whose signature verified accepted per minute from one partner node before 429.
    pub inbox_requests_per_minute: u32,
    /// Requests per minute from one source address (IPv4 address or IPv6 /64) that have not
    /// verified (yet) before 429: every request is charged here until its signature verifies,
    /// then gets its charge back and is charged to its partner instead.
    pub inbox_unverified_requests_per_minute: u32,
    /// Hours a rotated key stays published and verifying.
    pub key_grace_hours: u32,
    /// Timeout of one request to a partner, in seconds.
    pub request_timeout_secs: u32,
    pub delivery: DeliveryConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Partner nodes delivered to at the same time by this process.
    pub concurrency: u32,
    /// Seconds a worker holds a peer's queue before another process may take it over.
    pub lease_secs: u32,
    /// First retry delay in milliseconds; doubles with each consecutive failure.
    pub backoff_base_ms: u32,
    /// Longest delay between attempts, in seconds; the probe interval once the breaker is open.
    pub backoff_max_secs: u32,
    /// A failing partner is tried again at least this often, in seconds, whatever
    /// `backoff_max_secs` says: a short outage delays delivery by at most this much.
    pub max_probe_interval_secs: u32,
    /// Consecutive failures after which a peer's breaker opens.
    pub breaker_threshold: u32,
    /// Hours after which an activity that still cannot be delivered is parked for the admin.
    pub give_up_after_hours: u32,
    /// How often idle workers look for due work, in milliseconds.
    pub poll_interval_ms: u32,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            partners: Vec::new(),
            max_activity_bytes: 256 * 1024,
            signature_max_skew_secs: 300,
            inbox_requests_per_minute: 6000,
            inbox_unverified_requests_per_minute: 600,
            key_grace_hours: 72,
            request_timeout_secs: 10,
            delivery: DeliveryConfig::default(),
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            lease_secs: 30,
            backoff_base_ms: 1000,
            backoff_max_secs: 3600,
            max_probe_interval_secs: 120,
            breaker_threshold: 8,
            give_up_after_hours: 72,
            poll_interval_ms: 1000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Largest attachment accepted in one upload, in bytes; larger ones get 413.
    pub max_file_bytes: usize,
    /// Most bytes of attachments one group may hold; uploads beyond it get 413.
    pub group_quota_bytes: u64,
    /// Largest image accepted, in pixels (width × height); protects against decompression bombs.
    pub max_image_pixels: u64,
    /// Images decoded at once (each may take up to 4 bytes per pixel of `max_image_pixels`);
    /// up to 16 more uploads wait at most 20 seconds, the rest get 503 with `Retry-After`.
    pub max_concurrent_decodes: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            group_quota_bytes: 1024 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            max_concurrent_decodes: 1,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            base_url: Url::parse("http://127.0.0.1:8080/").unwrap_or_else(|_| unreachable_url()),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            hospital_name: "Caremesh node".to_owned(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            groups: GroupsConfig::default(),
            federation: FederationConfig::default(),
            media: MediaConfig::default(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_url() -> Url {
    panic!("the default base URL is valid")
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
            max_connections: 1024,
            header_read_timeout_secs: 15,
            body_idle_timeout_secs: 30,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 7 * 24 * 60,
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            invite_ttl_hours: 7 * 24,
            max_concurrent_password_hashes: 2,
        }
    }
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self { max_members: 500 }
    }
}

/// Which database a configuration names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseChoice {
    Sqlite(String),
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: invalid value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Config {
    /// Defaults, then the file (if given), then `CAREMESH_*` environment variables.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            f = f.merge(Toml::file_exact(path));
        }
        f.merge(Env::prefixed("CAREMESH_").split("__").ignore(&[
            "config",
            "skip_log",
            "skip_postgres",
            "skip_browser",
        ]))
    }

    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(path) = file
            && !path.is_file()
        {
            return Err(invalid(
                "--config",
                format!("{} does not exist or is not a file", path.display()),
            ));
        }
        Self::from_figment(Self::figment(file))
    }

    pub fn from_figment(f: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = f.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot, and normalises `base_url` to end in `/`.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let u = &mut self.base_url;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(invalid(
                "base_url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
            return Err(invalid(
                "base_url",
                "must not have a query, fragment or user name",
            ));
        }
        if !u.path().ends_with('/') {
            let path = format!("{}/", u.path());
            u.set_path(&path);
        }
        let name = self.hospital_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("hospital_name", "must be 1 to 200 characters long"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        self.database_choice()?;
        if !(1..=1000).contains(&self.database.max_connections) {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!(
                    "{:?} is not a tracing filter such as `info` or `caremesh_web=debug`",
                    self.log.level
                ),
            ));
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.http.max_body_bytes) {
            return Err(invalid(
                "http.max_body_bytes",
                "must be between 1024 and 268435456",
            ));
        }
        if !(8..=1_000_000).contains(&self.http.max_connections) {
            return Err(invalid(
                "http.max_connections",
                "must be between 8 and 1000000",
            ));
        }
        if !(1..=600).contains(&self.http.header_read_timeout_secs) {
            return Err(invalid(
                "http.header_read_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        if !(1..=3600).contains(&self.http.body_idle_timeout_secs) {
            return Err(invalid(
                "http.body_idle_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        if self.auth.session_ttl_minutes == 0 {
            return Err(invalid("auth.session_ttl_minutes", "must be at least 1"));
        }
        if self.auth.login_max_failures == 0 {
            return Err(invalid("auth.login_max_failures", "must be at least 1"));
        }
        if self.auth.login_window_secs == 0 {
            return Err(invalid("auth.login_window_secs", "must be at least 1"));
        }
        if !(1..=64).contains(&self.auth.max_concurrent_password_hashes) {
            return Err(invalid(
                "auth.max_concurrent_password_hashes",
                "must be between 1 and 64",
            ));
        }
        if !(1..=90 * 24).contains(&self.auth.invite_ttl_hours) {
            return Err(invalid(
                "auth.invite_ttl_hours",
                "must be between 1 and 2160 (90 days)",
            ));
        }
        let f = &self.federation;
        for p in &f.partners {
            if let Err(e) = caremesh_federation::parse_partner(p) {
                return Err(invalid("federation.partners", e.to_string()));
            }
        }
        if !(1024..=16 * 1024 * 1024).contains(&f.max_activity_bytes) {
            return Err(invalid(
                "federation.max_activity_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        if !(1..=3600).contains(&f.signature_max_skew_secs) {
            return Err(invalid(
                "federation.signature_max_skew_secs",
                "must be between 1 and 3600",
            ));
        }
        if f.inbox_requests_per_minute == 0 {
            return Err(invalid(
                "federation.inbox_requests_per_minute",
                "must be at least 1",
            ));
        }
        if f.inbox_unverified_requests_per_minute == 0 {
            return Err(invalid(
                "federation.inbox_unverified_requests_per_minute",
                "must be at least 1",
            ));
        }
        if !(1..=300).contains(&f.request_timeout_secs) {
            return Err(invalid(
                "federation.request_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        let d = &f.delivery;
        if !(1..=1024).contains(&d.concurrency) {
            return Err(invalid(
                "federation.delivery.concurrency",
                "must be between 1 and 1024",
            ));
        }
        if d.lease_secs < 2 {
            return Err(invalid(
                "federation.delivery.lease_secs",
                "must be at least 2",
            ));
        }
        if d.backoff_base_ms == 0 || d.backoff_max_secs == 0 {
            return Err(invalid(
                "federation.delivery.backoff_base_ms",
                "backoff delays must be positive",
            ));
        }
        if !(1..=86_400).contains(&d.max_probe_interval_secs) {
            return Err(invalid(
                "federation.delivery.max_probe_interval_secs",
                "must be between 1 and 86400",
            ));
        }
        if d.breaker_threshold == 0 {
            return Err(invalid(
                "federation.delivery.breaker_threshold",
                "must be at least 1",
            ));
        }
        if d.give_up_after_hours == 0 {
            return Err(invalid(
                "federation.delivery.give_up_after_hours",
                "must be at least 1",
            ));
        }
        if d.poll_interval_ms < 10 {
            return Err(invalid(
                "federation.delivery.poll_interval_ms",
                "must be at least 10",
            ));
        }
        if !(2..=100_000).contains(&self.groups.max_members) {
            return Err(invalid(
                "groups.max_members",
                "must be between 2 and 100000",
            ));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.media.max_file_bytes) {
            return Err(invalid(
                "media.max_file_bytes",
                "must be between 1024 and 1073741824",
            ));
        }
        if self.media.group_quota_bytes < self.media.max_file_bytes as u64
            || self.media.group_quota_bytes > i64::MAX as u64
        {
            return Err(invalid(
                "media.group_quota_bytes",
                "must be at least media.max_file_bytes",
            ));
        }
        if !(1_000_000..=500_000_000).contains(&self.media.max_image_pixels) {
            return Err(invalid(
                "media.max_image_pixels",
                "must be between 1000000 and 500000000",
            ));
        }
        if !(1..=64).contains(&self.media.max_concurrent_decodes) {
            return Err(invalid(
                "media.max_concurrent_decodes",
                "must be between 1 and 64",
            ));
        }
        Ok(())
    }

    /// Where attachments are stored.
    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }

    pub fn database_choice(&self) -> Result<DatabaseChoice, ConfigError> {
        let url = self.database.url.trim();
        if url.is_empty() {
            let path = self.data_dir.join("caremesh.db");
            return Ok(DatabaseChoice::Sqlite(format!(
                "sqlite://{}",
                path.display()
            )));
        }
        if url.starts_with("sqlite:") {
            Ok(DatabaseChoice::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseChoice::Postgres(url.to_owned()))
        } else {
            Err(invalid(
                "database.url",
                "must be empty (SQLite in data_dir), sqlite://PATH or postgres://USER@HOST/DB",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    // figment's Jail closures return its large error type by design.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]
    use figment::Jail;

    use super::*;

    const EXAMPLE: &str = include_str!("../../../caremesh.example.toml");

    #[test]
    fn example_config_documents_exactly_the_defaults() {
        let example: toml::Value = toml::from_str(EXAMPLE).unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        assert_eq!(
            example, defaults,
            "caremesh.example.toml must list every key with its default"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let mut c = Config::default();
        c.validate().unwrap();
        assert_eq!(
            c.database_choice().unwrap(),
            DatabaseChoice::Sqlite("sqlite://data/caremesh.db".into())
        );
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        Jail::expect_with(|jail| {
            // What the test run itself sets (CAREMESH_SKIP_POSTGRES, …) is not this test's.
            jail.clear_env();
            jail.create_file(
                "node.toml",
                "hospital_name = \"唐山市人民医院\"\nlisten = \"127.0.0.1:7000\"\n[groups]\nmax_members = 300\n",
            )?;
            jail.set_env("CAREMESH_LISTEN", "127.0.0.1:9000");
            jail.set_env("CAREMESH_DATABASE__URL", "postgres://cm@db/caremesh");
            jail.set_env("CAREMESH_BASE_URL", "https://caremesh.example/node");
            let c = Config::load(Some(Path::new("node.toml"))).unwrap();
            assert_eq!(c.hospital_name, "唐山市人民医院");
            assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
            assert_eq!(c.groups.max_members, 300);
            assert_eq!(c.base_url.as_str(), "https://caremesh.example/node/");
            assert_eq!(
                c.database_choice().unwrap(),
                DatabaseChoice::Postgres("postgres://cm@db/caremesh".into())
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        Jail::expect_with(|jail| {
            // What the test run itself sets (CAREMESH_SKIP_POSTGRES, …) is not this test's.
            jail.clear_env();
            jail.create_file("node.toml", "[database]\nurll = \"x\"\n")?;
            let err = Config::load(Some(Path::new("node.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("urll"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            // What the test run itself sets (CAREMESH_SKIP_POSTGRES, …) is not this test's.
            jail.clear_env();
            jail.set_env("CAREMESH_LISTN", "127.0.0.1:1");
            let err = Config::load(None).unwrap_err().to_string().to_lowercase();
            assert!(err.contains("listn"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("CAREMESH_SKIP_LOG", "/tmp/skipped-tests");
            jail.set_env("CAREMESH_SKIP_POSTGRES", "1");
            jail.set_env("CAREMESH_SKIP_BROWSER", "1");
            Config::load(None).unwrap();
            Ok(())
        });
    }

    #[test]
    fn invalid_values_name_the_key() {
        let cases = [
            ("CAREMESH_LISTEN", "not-an-address", "listen"),
            ("CAREMESH_GROUPS__MAX_MEMBERS", "1", "groups.max_members"),
            ("CAREMESH_GROUPS__MAX_MEMBERS", "many", "max_members"),
            ("CAREMESH_BASE_URL", "ftp://x", "base_url"),
            ("CAREMESH_DATABASE__URL", "mysql://x", "database.url"),
            ("CAREMESH_LOG__FORMAT", "yaml", "format"),
            ("CAREMESH_LOG__LEVEL", "[[", "log.level"),
            ("CAREMESH_HTTP__MAX_BODY_BYTES", "10", "http.max_body_bytes"),
            (
                "CAREMESH_HTTP__MAX_CONNECTIONS",
                "2",
                "http.max_connections",
            ),
            (
                "CAREMESH_HTTP__HEADER_READ_TIMEOUT_SECS",
                "0",
                "http.header_read_timeout_secs",
            ),
            (
                "CAREMESH_HTTP__BODY_IDLE_TIMEOUT_SECS",
                "0",
                "http.body_idle_timeout_secs",
            ),
            (
                "CAREMESH_MEDIA__MAX_FILE_BYTES",
                "1",
                "media.max_file_bytes",
            ),
            (
                "CAREMESH_MEDIA__GROUP_QUOTA_BYTES",
                "2000",
                "media.group_quota_bytes",
            ),
            (
                "CAREMESH_MEDIA__MAX_IMAGE_PIXELS",
                "10",
                "media.max_image_pixels",
            ),
            (
                "CAREMESH_MEDIA__MAX_CONCURRENT_DECODES",
                "0",
                "media.max_concurrent_decodes",
            ),
            (
                "CAREMESH_AUTH__MAX_CONCURRENT_PASSWORD_HASHES",
                "0",
                "auth.max_concurrent_password_hashes",
            ),
        ];
        for (var, value, key) in cases {
            Jail::expect_with(|jail| {
                // What the test run itself sets (CAREMESH_SKIP_POSTGRES, …) is not this test's.
                jail.clear_env();
                jail.set_env(var, value);
                let err = Config::load(None).unwrap_err().to_string().to_lowercase();
                assert!(err.contains(key), "{var}={value}: {err}");
                Ok(())
            });
        }
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/caremesh.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
