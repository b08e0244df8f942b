//! Accounts: passwords and tokens, logging in (with its throttle), sessions, signing up through a
//! hospital's invite, and an account with what the hospital recorded about it.
//!
//! Passwords are hashed with Argon2id (RustCrypto defaults: 19 MiB, 2 passes) on the blocking
//! pool, at most `auth.max_concurrent_password_hashes` at once ([`PasswordHashing`]). Session and invite tokens are 256 random bits; only their SHA-256 is stored.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caremesh_domain::{
    Credential, Role, Timestamp, validate_display_name, validate_password, validate_username,
};
use caremesh_store::{Invite, InviteState, NewSession, NewUser, Session, User};
use sha2::{Digest, Sha256};

use crate::gate::Gate;
use crate::{App, AppError, AppResult};

// ---- passwords and tokens ----

/// 32 random bytes from the operating system, URL-safe base64 without padding (43 characters).
pub fn new_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a session or invite token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a password with Argon2id, within the node's bound on concurrent hashes
/// ([`PasswordHashing`]); `Busy` when too many are already running or waiting.
pub async fn hash_password(app: &App, password: String) -> AppResult<String> {
    let memory = app.password_hashing.memory.clone();
    app.password_hashing
        .gate
        .run(move || hash_with(&memory, &password))
        .await
}

/// Hashes a password on the calling thread, with memory of its own (for seeding accounts in
/// tests and benchmarks; the node's use-cases go through [`hash_password`]).
pub fn hash_password_blocking(password: &str) -> AppResult<String> {
    hash_with(&Mutex::new(Vec::new()), password)
}

/// Checks a password against a stored hash, within the node's bound on concurrent hashes. With
/// no stored hash (unknown account) a fixed dummy hash is checked instead, so that the answer
/// takes as long whether the account exists or not.
pub async fn verify_password(
    app: &App,
    password: String,
    stored: Option<String>,
) -> AppResult<bool> {
    let memory = app.password_hashing.memory.clone();
    app.password_hashing
        .gate
        .run(move || {
            let stored = match stored {
                Some(s) => s,
                None => dummy_hash(&memory)?.to_owned(),
            };
            verify_with(&memory, &password, &stored)
        })
        .await
}

/// The node's bound on password hashing: at most `auth.max_concurrent_password_hashes` Argon2id
/// computations at once (each needs 19 MiB), a few callers waiting briefly, the rest `Busy`.
/// The memory of finished hashes is kept and reused, so that the node holds at most one block
/// of memory per permit instead of allocating (and the allocator keeping) 19 MiB per login.
pub struct PasswordHashing {
    gate: Gate,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// Callers that may wait for a hashing permit; more are refused at once.
const HASH_MAX_WAITERS: usize = 64;
/// How long a caller waits for a hashing permit.
const HASH_MAX_WAIT: Duration = Duration::from_secs(5);

impl PasswordHashing {
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            gate: Gate::new(
                "password hashing",
                max_concurrent,
                HASH_MAX_WAITERS,
                HASH_MAX_WAIT,
            ),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The most hashes that ran at once.
    pub fn high_water(&self) -> usize {
        self.gate.high_water()
    }
}

/// Argon2 into `out`, with a block of memory from `pool` (or a new one), given back afterwards.
fn argon2_into(
    pool: &Mutex<Vec<Vec<Block>>>,
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> AppResult<()> {
    let needed = params.block_count();
    let taken = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut blocks = match taken {
        Some(b) if b.len() >= needed => b,
        _ => vec![Block::default(); needed],
    };
    let result = argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed]);
    if blocks.len() == Params::DEFAULT.block_count() {
        pool.lock().unwrap_or_else(|p| p.into_inner()).push(blocks);
    }
    result.map_err(AppError::internal)
}

fn hash_with(pool: &Mutex<Vec<Vec<Block>>>, password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    let params = Params::DEFAULT;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(pool, &argon, &params, password.as_bytes(), &salt, &mut out)?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(AppError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(AppError::internal)?),
    };
    Ok(hash.to_string())
}

fn verify_with(pool: &Mutex<Vec<Vec<Block>>>, password: &str, stored: &str) -> AppResult<bool> {
    let parsed = PasswordHash::new(stored).map_err(AppError::internal)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(AppError::internal)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(AppError::internal)?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(AppError::internal)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(AppError::internal(
            "stored password hash without salt or hash",
        ));
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(AppError::internal)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    argon2_into(pool, &argon, &params, password.as_bytes(), salt, &mut out)?;
    // `Output`'s comparison takes the same time wherever the bytes differ.
    Ok(Output::new(&out).map_err(AppError::internal)? == expected)
}

fn dummy_hash(pool: &Mutex<Vec<Vec<Block>>>) -> AppResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_with(pool, "caremesh-timing-equaliser")?;
    Ok(DUMMY.get_or_init(|| h))
}

// ---- logging in ----

/// Checks a username and password, with the login throttle; `ip` is the client's address (the
/// throttle counts failures per account and per address). A disabled account is refused as a
/// wrong password would be.
///
/// The attempt is counted before the password is checked, as a failure until it succeeds: so
/// however many attempts arrive at once, no more than the limit are ever checked.
pub async fn check_login(
    app: &App,
    ip: Option<IpAddr>,
    username: &str,
    password: String,
) -> AppResult<User> {
    let username = username.trim().to_lowercase();
    let now = app.now();
    let attempt = match app.login_limiter.begin(&username, ip, now) {
        Ok(a) => a,
        Err(wait) => {
            tracing::warn!(%username, ?ip, "login throttled");
            return Err(AppError::TooMany {
                message: format!("too many failed logins; try again in {wait} seconds"),
                retry_after_secs: wait,
            });
        }
    };
    let checked = async {
        let found = match app.store.user_by_username(&username).await {
            Ok(u) => Some(u),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(AppError::from(e)),
        };
        let hash = found.as_ref().map(|u| u.password_hash.clone());
        let ok = verify_password(app, password, hash).await?;
        Ok((found, ok))
    }
    .await;
    match checked {
        Ok((Some(user), true)) if !user.disabled => {
            app.login_limiter.succeeded(attempt);
            tracing::info!(user = %user.id, "login");
            Ok(user)
        }
        Ok(_) => Err(AppError::InvalidCredentials),
        Err(e) => {
            // The password was not checked (store down, node busy): not a failed guess.
            app.login_limiter.withdraw(attempt);
            Err(e)
        }
    }
}

/// Login throttling. Attempts are counted per account name and per client address in a sliding
/// window, each as a failure from the moment it begins until it succeeds; once the limit is
/// reached, further attempts are refused without checking the password until the oldest failure
/// leaves the window. Kept in memory: a restart forgets it, which is acceptable for a throttle
/// (accounts are never locked permanently, so an attacker cannot lock a doctor out).
pub struct LoginLimiter {
    max_failures: u32,
    window_ms: i64,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

/// One login attempt, counted as a failure until [`LoginLimiter::succeeded`] (or, when the
/// password could not be checked, [`LoginLimiter::withdraw`]).
#[must_use = "an attempt stays counted as a failure unless it succeeded or is withdrawn"]
#[derive(Debug)]
pub struct Attempt {
    keys: [String; 2],
    at: i64,
}

/// Keys kept before old entries are swept, so a flood of random usernames cannot grow memory
/// without bound.
const MAX_LIMITER_KEYS: usize = 100_000;
/// A client address may fail this many times more often than one account.
const PER_ADDRESS_FACTOR: u32 = 10;

impl LoginLimiter {
    pub fn new(max_failures: u32, window_secs: i64) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window_ms: window_secs.max(1) * 1000,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
        [
            (format!("u:{}", username.to_lowercase()), 1),
            (
                format!(
                    "ip:{}",
                    ip.map_or_else(|| "-".to_owned(), |i| i.to_string())
                ),
                PER_ADDRESS_FACTOR,
            ),
        ]
    }

    /// Begins an attempt: refused with the seconds to wait when the account's or the address's
    /// failures (those still being checked included) have reached the limit; otherwise counted
    /// as a failure at once, under the same lock, so that concurrent attempts cannot all pass.
    pub fn begin(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<Attempt, u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = now.as_millis();
        let horizon = now - self.window_ms;
        if map.len() >= MAX_LIMITER_KEYS {
            map.retain(|_, q| q.back().is_some_and(|&t| t > horizon));
        }
        let keys = Self::keys(username, ip);
        let mut wait: Option<i64> = None;
        for (key, factor) in &keys {
            let Some(q) = map.get_mut(key) else { continue };
            while q.front().is_some_and(|&t| t <= horizon) {
                q.pop_front();
            }
            let limit = (self.max_failures * factor) as usize;
            if q.len() >= limit
                && let Some(&oldest) = q.front()
            {
                let w = oldest + self.window_ms - now;
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        if let Some(ms) = wait {
            return Err(u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1));
        }
        for (key, _) in &keys {
            map.entry(key.clone()).or_default().push_back(now);
        }
        let [(user_key, _), (ip_key, _)] = keys;
        Ok(Attempt {
            keys: [user_key, ip_key],
            at: now,
        })
    }

    /// A successful login clears the account's failures (not the address's earlier ones) and is
    /// not counted against the address: many people log in from one hospital's address.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&attempt.keys[0]);
        if let Some(q) = map.get_mut(&attempt.keys[1])
            && let Some(i) = q.iter().rposition(|&t| t == attempt.at)
        {
            q.remove(i);
        }
    }

    /// An attempt whose password could not be checked is not counted.
    pub fn withdraw(&self, attempt: Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in &attempt.keys {
            if let Some(q) = map.get_mut(key)
                && let Some(i) = q.iter().rposition(|&t| t == attempt.at)
            {
                q.remove(i);
            }
        }
    }
}

// ---- sessions ----

/// A session just opened: the secret token (given to the client once; only its hash is stored)
/// and when it expires.
#[derive(Clone, Debug)]
pub struct OpenedSession {
    pub token: String,
    pub expires_at: Timestamp,
}

/// Opens a session for `user`, valid for the node's session lifetime.
pub async fn new_session(app: &App, user: &User) -> AppResult<OpenedSession> {
    let token = new_token()?;
    let now = app.now();
    let expires_at = now.plus_secs(app.settings.session_ttl_secs);
    app.store
        .create_session(NewSession {
            token_hash: hash_token(&token),
            user_id: user.id,
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(OpenedSession { token, expires_at })
}

/// The session a token opens and its account: `Unauthenticated` when the token is unknown, the
/// session expired or the account is disabled.
pub async fn session_user(app: &App, token: &str) -> AppResult<(Session, User)> {
    match app.store.session_user(&hash_token(token), app.now()).await {
        Ok(found) => Ok(found),
        Err(e) if e.is_not_found() => Err(AppError::Unauthenticated),
        Err(e) => Err(e.into()),
    }
}

/// Ends a session (logging out). Ending one that is already gone is harmless.
pub async fn logout(app: &App, session: &Session) -> AppResult<()> {
    app.store.delete_session(&session.token_hash).await?;
    Ok(())
}

// ---- signing up ----

/// A sign-up invite that can still be used: `NotFound` for an unknown token, `Gone` (with a code
/// saying why) for an expired, used-up or withdrawn one.
pub async fn signup_invite(app: &App, token: &str) -> AppResult<Invite> {
    let invite = app.store.invite_by_token_hash(&hash_token(token)).await?;
    check_invite_state(invite.state(app.now()))?;
    Ok(invite)
}

/// Whether an invite in this state can be used, and if not, why.
pub fn check_invite_state(s: InviteState) -> AppResult<()> {
    let (code, message) = match s {
        InviteState::Usable => return Ok(()),
        InviteState::Expired => (
            "invite_expired",
            "this invite has expired; ask the hospital for a new one",
        ),
        InviteState::UsedUp => ("invite_used", "this invite has already been used"),
        InviteState::Revoked => (
            "invite_revoked",
            "this invite has been withdrawn by the hospital",
        ),
    };
    Err(AppError::gone(code, message))
}

/// Creates an account through a sign-up invite, with the invite's role.
pub async fn sign_up(
    app: &App,
    invite_token: &str,
    username: &str,
    display_name: &str,
    password: String,
) -> AppResult<User> {
    let username = username.trim().to_owned();
    validate_username(&username)?;
    validate_display_name(display_name)?;
    validate_password(&password)?;
    let token_hash = hash_token(invite_token);
    let invite = app.store.invite_by_token_hash(&token_hash).await?;
    check_invite_state(invite.state(app.now()))?;
    let password_hash = hash_password(app, password).await?;
    let new = NewUser {
        username,
        display_name: display_name.trim().to_owned(),
        role: invite.role,
        password_hash,
    };
    // The store re-checks the invite atomically: two sign-ups racing for the last use cannot both
    // succeed.
    let user = match app.store.redeem_invite(&token_hash, new, app.now()).await {
        Ok(u) => u,
        Err(e) if e.conflict_code() == Some("invite_unusable") => {
            let again = app.store.invite_by_token_hash(&token_hash).await?;
            check_invite_state(again.state(app.now()))?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, invite = invite.id, "signed up through invite");
    Ok(user)
}

// ---- an account as it is shown ----

/// An account with what the hospital recorded about it: a doctor's credential.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: User,
    /// Doctors only; `None` for other roles and for doctors without one.
    pub credential: Option<Credential>,
}

impl Account {
    pub async fn load(app: &App, user: User) -> AppResult<Self> {
        let credential = if user.role == Role::Doctor {
            app.store.credential(user.id).await?
        } else {
            None
        };
        Ok(Self { user, credential })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use caremesh_domain::{Clock, Role, Timestamp};
    use caremesh_federation::{Federation, FederationSettings, Urls};
    use caremesh_store::{NewInvite, NewUser, Store, User};
    use caremesh_store_sqlite::SqliteStore;

    use super::*;
    use crate::{App, AppSettings};

    /// 2026-11-23T08:00:00Z.
    pub(crate) const T0: Timestamp = Timestamp::from_millis(1_795_420_800_000);

    /// A clock that stands still until the test moves it.
    #[derive(Debug)]
    pub(crate) struct TestClock(AtomicI64);

    impl TestClock {
        pub(crate) fn advance_secs(&self, secs: i64) {
            self.0.fetch_add(secs * 1000, Ordering::SeqCst);
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            Timestamp::from_millis(self.0.load(Ordering::SeqCst))
        }
    }

    pub(crate) struct Fixture {
        pub app: Arc<App>,
        pub store: Arc<dyn Store>,
        pub clock: Arc<TestClock>,
    }

    pub(crate) fn settings() -> AppSettings {
        AppSettings {
            hospital_name: "Test Hospital".into(),
            base_url: url::Url::parse("https://caremesh.hospital-a.example/").unwrap(),
            max_members: 500,
            session_ttl_secs: 3600,
            login_max_failures: 3,
            login_window_secs: 900,
            invite_ttl_hours: 24,
            media_dir: std::env::temp_dir().join("caremesh-app-test-media"),
            max_file_bytes: 1 << 20,
            group_quota_bytes: 1 << 30,
            max_image_pixels: 1_000_000,
            max_concurrent_password_hashes: 2,
            max_concurrent_decodes: 1,
        }
    }

    /// An application over an in-memory SQLite store, with the node's federation services.
    pub(crate) async fn fixture() -> Fixture {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let clock = Arc::new(TestClock(AtomicI64::new(T0.as_millis())));
        let settings = settings();
        let federation = Federation::new(
            store.clone(),
            clock.clone(),
            Urls::new(settings.base_url.clone()),
            FederationSettings::default(),
        )
        .unwrap();
        let app = App::new(store.clone(), clock.clone(), federation, settings);
        Fixture { app, store, clock }
    }

    pub(crate) async fn user(f: &Fixture, role: Role, username: &str, password: &str) -> User {
        f.store
            .create_user(
                NewUser {
                    username: username.into(),
                    display_name: format!("{username} name"),
                    role,
                    password_hash: hash_password_blocking(password).unwrap(),
                },
                T0,
            )
            .await
            .unwrap()
    }

    async fn invite(f: &Fixture, token: &str, max_uses: u32) -> Invite {
        let admin = user(
            f,
            Role::Admin,
            &format!("admin.{max_uses}"),
            "admin password",
        )
        .await;
        f.store
            .create_invite(NewInvite {
                token_hash: hash_token(token),
                role: Role::Patient,
                label: None,
                created_by: admin.id,
                created_at: T0,
                expires_at: T0.plus_secs(3600),
                max_uses,
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let f = fixture().await;
        let app = &f.app;
        let hash = hash_password(app, "correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password(app, "correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password(app, "wrong horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password(app, "correct horse".into(), None)
                .await
                .unwrap()
        );
        // Hashes stored before (made by the argon2 crate's own hasher) still verify, and the
        // crate verifies ours.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(
            verify_password(app, "correct horse".into(), Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password(app, "correct hors".into(), Some(theirs))
                .await
                .unwrap()
        );
        let ours = PasswordHash::new(&hash).unwrap();
        Argon2::default()
            .verify_password(b"correct horse", &ours)
            .unwrap();
        assert!(f.app.password_hashing.high_water() >= 1);
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_token().unwrap());
        assert_eq!(hash_token(&t).len(), 64);
    }

    #[tokio::test]
    async fn login_takes_the_right_password_of_an_enabled_account_only() {
        let f = fixture().await;
        let u = user(&f, Role::Doctor, "dr.wang", "the doctor password").await;
        let ok = check_login(&f.app, None, " Dr.Wang ", "the doctor password".into())
            .await
            .unwrap();
        assert_eq!(ok.id, u.id, "names are trimmed and case-insensitive");
        for (name, password) in [
            ("dr.wang", "a wrong password"),
            ("nobody", "the doctor password"),
        ] {
            let e = check_login(&f.app, None, name, password.into())
                .await
                .unwrap_err();
            assert!(matches!(e, AppError::InvalidCredentials), "{e:?}");
        }
        f.store.set_disabled(u.id, true, T0).await.unwrap();
        let e = check_login(&f.app, None, "dr.wang", "the doctor password".into())
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::InvalidCredentials), "{e:?}");
    }

    #[tokio::test]
    async fn failed_logins_are_throttled_even_with_the_right_password_then_forgotten() {
        let f = fixture().await;
        user(&f, Role::Staff, "nurse.li", "the nurse password").await;
        let ip: IpAddr = [10, 0, 0, 7].into();
        for _ in 0..3 {
            let e = check_login(&f.app, Some(ip), "nurse.li", "guess".into())
                .await
                .unwrap_err();
            assert!(matches!(e, AppError::InvalidCredentials));
        }
        let e = check_login(&f.app, Some(ip), "nurse.li", "the nurse password".into())
            .await
            .unwrap_err();
        let AppError::TooMany {
            retry_after_secs, ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(retry_after_secs, 900);
        f.clock.advance_secs(901);
        check_login(&f.app, Some(ip), "nurse.li", "the nurse password".into())
            .await
            .unwrap();
    }

    #[test]
    fn the_throttle_refuses_after_the_limit_until_the_window_passes() {
        let l = LoginLimiter::new(3, 60);
        let t = Timestamp::from_millis(1_000_000);
        for i in 0..3 {
            // Failed attempts stay counted.
            let _failed = l.begin("wang", None, t.plus_secs(i)).unwrap();
        }
        assert_eq!(l.begin("Wang", None, t.plus_secs(10)).unwrap_err(), 50);
        let _other = l.begin("li", None, t.plus_secs(10)).unwrap();
        let _later = l.begin("wang", None, t.plus_secs(61)).unwrap();
    }

    #[test]
    fn successful_logins_from_one_address_are_never_throttled() {
        // A hospital's staff and patients may all come from one address (its proxy).
        let l = LoginLimiter::new(5, 60);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t = Timestamp::from_millis(1_000_000);
        for i in 0..200 {
            let a = l
                .begin(&format!("user{i}"), Some(ip), t)
                .unwrap_or_else(|w| panic!("login {i} throttled for {w} s"));
            l.succeeded(a);
        }
        // Failures from it still count: ten times an account's limit.
        for i in 0..50 {
            let _failed = l.begin(&format!("guess{i}"), Some(ip), t).unwrap();
        }
        assert!(l.begin("one.more", Some(ip), t).is_err());
    }

    #[test]
    fn attempts_count_from_their_start_so_concurrent_ones_cannot_pass_the_limit() {
        let l = std::sync::Arc::new(LoginLimiter::new(5, 60));
        let ip: IpAddr = [10, 0, 0, 9].into();
        let t = Timestamp::from_millis(1_000_000);
        // 40 attempts begin before any of them is answered.
        let started: Vec<_> = (0..40)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || l.begin("wang", Some(ip), t).ok())
            })
            .map(|h| h.join().unwrap())
            .collect();
        let admitted: Vec<Attempt> = started.into_iter().flatten().collect();
        assert_eq!(admitted.len(), 5, "exactly the limit is checked");
        // One whose password could not be checked gives its place back; a success clears the
        // account's count.
        let mut admitted = admitted.into_iter();
        l.withdraw(admitted.next().unwrap());
        let again = l.begin("wang", Some(ip), t).unwrap();
        assert!(l.begin("wang", Some(ip), t).is_err());
        l.succeeded(again);
        let _next = l.begin("wang", Some(ip), t).unwrap();
    }

    #[test]
    fn success_clears_the_accounts_failures_but_not_the_addresss() {
        let l = LoginLimiter::new(1, 60);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t = Timestamp::from_millis(0);
        let first = l.begin("wang", Some(ip), t).unwrap();
        assert!(l.begin("wang", Some(ip), t).is_err());
        l.succeeded(first);
        let _failed = l.begin("wang", Some(ip), t).unwrap();
        // The success is not counted against the address: it has one failure, and nine more
        // reach its limit.
        for i in 1..PER_ADDRESS_FACTOR {
            let _failed = l.begin(&format!("other{i}"), Some(ip), t).unwrap();
        }
        assert!(l.begin("third", Some(ip), t).is_err());
    }

    #[tokio::test]
    async fn a_session_opens_until_logout_or_expiry() {
        let f = fixture().await;
        let u = user(&f, Role::Patient, "xiaoli", "patient password").await;
        let s = new_session(&f.app, &u).await.unwrap();
        assert_eq!(s.expires_at, T0.plus_secs(3600));
        let (session, found) = session_user(&f.app, &s.token).await.unwrap();
        assert_eq!(found.id, u.id);
        assert_ne!(session.token_hash, s.token, "only the hash is stored");
        logout(&f.app, &session).await.unwrap();
        logout(&f.app, &session).await.unwrap();
        let e = session_user(&f.app, &s.token).await.unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated), "{e:?}");

        let s = new_session(&f.app, &u).await.unwrap();
        f.clock.advance_secs(3601);
        let e = session_user(&f.app, &s.token).await.unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated), "{e:?}");
        let e = session_user(&f.app, "not a token").await.unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated), "{e:?}");
    }

    #[tokio::test]
    async fn signing_up_uses_the_invite_once_and_takes_its_role() {
        let f = fixture().await;
        let inv = invite(&f, "the-invite-token", 1).await;
        assert_eq!(
            signup_invite(&f.app, "the-invite-token").await.unwrap().id,
            inv.id
        );
        // A refused field uses nothing up.
        let e = sign_up(&f.app, "the-invite-token", "xiaoli", "小李", "short".into())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        let u = sign_up(
            &f.app,
            "the-invite-token",
            " xiaoli ",
            " 小李 ",
            "a patient password".into(),
        )
        .await
        .unwrap();
        assert_eq!(
            (u.username.as_str(), u.display_name.as_str(), u.role),
            ("xiaoli", "小李", Role::Patient)
        );
        check_login(&f.app, None, "xiaoli", "a patient password".into())
            .await
            .unwrap();
        let e = sign_up(
            &f.app,
            "the-invite-token",
            "other",
            "Other",
            "a patient password".into(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code(), matches!(e, AppError::Gone { .. })),
            ("invite_used", true)
        );
        let e = signup_invite(&f.app, "the-invite-token").await.unwrap_err();
        assert_eq!(e.code(), "invite_used");
        let e = signup_invite(&f.app, "no-such-token").await.unwrap_err();
        assert!(e.is_not_found());
    }

    #[tokio::test]
    async fn expired_and_withdrawn_invites_say_so() {
        let f = fixture().await;
        let inv = invite(&f, "expiring", 5).await;
        f.clock.advance_secs(3600);
        assert_eq!(
            signup_invite(&f.app, "expiring").await.unwrap_err().code(),
            "invite_expired"
        );
        let inv2 = invite(&f, "withdrawn", 6).await;
        f.store.revoke_invite(inv2.id, f.app.now()).await.unwrap();
        let e = sign_up(
            &f.app,
            "withdrawn",
            "late",
            "Late",
            "a patient password".into(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "invite_revoked");
        assert_eq!(f.store.invite_by_id(inv.id).await.unwrap().uses, 0);
    }

    #[tokio::test]
    async fn a_doctors_account_carries_its_credential() {
        let f = fixture().await;
        let d = user(&f, Role::Doctor, "dr.li", "doctor password").await;
        let c = Credential {
            title: "主任医师".into(),
            specialty: "心内科".into(),
            licence_number: "110108".into(),
            checked_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            issued_at: T0,
            valid_until: None,
            revoked_at: None,
        };
        assert!(
            Account::load(&f.app, d.clone())
                .await
                .unwrap()
                .credential
                .is_none()
        );
        f.store.set_credential(d.id, &c, Vec::new()).await.unwrap();
        let a = Account::load(&f.app, d).await.unwrap();
        assert_eq!(a.credential.unwrap().licence_number, "110108");
        let s = user(&f, Role::Staff, "nurse", "staff password").await;
        assert!(Account::load(&f.app, s).await.unwrap().credential.is_none());
    }
}
