//! Accounts: passwords and tokens, logging in (with its throttle), sessions, signing up through a
//! hospital's invite, and an account with what the hospital recorded about it.
//!
//! Passwords are hashed with Argon2id (RustCrypto defaults: 19 MiB, 2 passes) on the blocking
//! pool. Session and invite tokens are 256 random bits; only their SHA-256 is stored.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caremesh_domain::{
    Credential, Role, Timestamp, validate_display_name, validate_password, validate_username,
};
use caremesh_store::{Invite, InviteState, NewSession, NewUser, Session, User};
use sha2::{Digest, Sha256};

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

/// Hashes a password with Argon2id off the async threads.
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(AppError::internal)?
}

pub fn hash_password_blocking(password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

/// Checks a password against a stored hash. With no stored hash (unknown account) a fixed dummy
/// hash is checked instead, so that the answer takes as long whether the account exists or not.
pub async fn verify_password(password: String, stored: Option<String>) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = match stored {
            Some(s) => s,
            None => dummy_hash()?.to_owned(),
        };
        let parsed = PasswordHash::new(&stored).map_err(AppError::internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(AppError::internal)?
}

fn dummy_hash() -> AppResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_password_blocking("caremesh-timing-equaliser")?;
    Ok(DUMMY.get_or_init(|| h))
}

// ---- logging in ----

/// Checks a username and password, with the login throttle; `ip` is the client's address (the
/// throttle counts failures per account and per address). A disabled account is refused as a
/// wrong password would be.
pub async fn check_login(
    app: &App,
    ip: Option<IpAddr>,
    username: &str,
    password: String,
) -> AppResult<User> {
    let username = username.trim().to_lowercase();
    let now = app.now();
    if let Some(wait) = app.login_limiter.check(&username, ip, now) {
        tracing::warn!(%username, ?ip, "login throttled");
        return Err(AppError::TooMany {
            message: format!("too many failed logins; try again in {wait} seconds"),
            retry_after_secs: wait,
        });
    }
    let found = match app.store.user_by_username(&username).await {
        Ok(u) => Some(u),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let ok = verify_password(password, found.as_ref().map(|u| u.password_hash.clone())).await?;
    match found {
        Some(user) if ok && !user.disabled => {
            app.login_limiter.record_success(&username);
            tracing::info!(user = %user.id, "login");
            Ok(user)
        }
        _ => {
            app.login_limiter.record_failure(&username, ip, now);
            Err(AppError::InvalidCredentials)
        }
    }
}

/// Login throttling. Failed attempts are counted per account name and per client address in a
/// sliding window; once the limit is reached, further attempts are refused until the oldest
/// failure leaves the window. Kept in memory: a restart forgets it, which is acceptable for a
/// throttle (accounts are never locked permanently, so an attacker cannot lock a doctor out).
pub struct LoginLimiter {
    max_failures: u32,
    window_ms: i64,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
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

    /// `Some(seconds)` to wait when this attempt must be refused without checking the password.
    pub fn check(&self, username: &str, ip: Option<IpAddr>, now: Timestamp) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = now.as_millis();
        let mut wait: Option<i64> = None;
        for (key, factor) in Self::keys(username, ip) {
            let Some(q) = map.get_mut(&key) else { continue };
            while q.front().is_some_and(|&t| t <= now - self.window_ms) {
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
        wait.map(|ms| u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1))
    }

    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>, now: Timestamp) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = now.as_millis();
        if map.len() >= MAX_LIMITER_KEYS {
            let horizon = now - self.window_ms;
            map.retain(|_, q| q.back().is_some_and(|&t| t > horizon));
        }
        for (key, _) in Self::keys(username, ip) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{}", username.to_lowercase()));
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
    let password_hash = hash_password(password).await?;
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
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!verify_password("correct horse".into(), None).await.unwrap());
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
            assert_eq!(l.check("wang", None, t.plus_secs(i)), None);
            l.record_failure("wang", None, t.plus_secs(i));
        }
        assert_eq!(l.check("Wang", None, t.plus_secs(10)), Some(50));
        assert_eq!(l.check("li", None, t.plus_secs(10)), None);
        assert_eq!(l.check("wang", None, t.plus_secs(61)), None);
    }

    #[test]
    fn success_clears_the_accounts_failures_but_not_the_addresss() {
        let l = LoginLimiter::new(1, 60);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t = Timestamp::from_millis(0);
        l.record_failure("wang", Some(ip), t);
        assert!(l.check("wang", Some(ip), t).is_some());
        l.record_success("wang");
        assert_eq!(l.check("wang", Some(ip), t), None);
        for _ in 0..PER_ADDRESS_FACTOR {
            l.record_failure("other", Some(ip), t);
        }
        assert!(l.check("third", Some(ip), t).is_some());
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
