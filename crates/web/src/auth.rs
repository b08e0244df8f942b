//! Passwords, session tokens and the routes that log people in and out and sign patients up.
//!
//! Passwords are hashed with Argon2id (RustCrypto defaults: 19 MiB, 2 passes) on the blocking pool.
//! Session and invite tokens are 256 random bits; only their SHA-256 is stored.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caremesh_domain::{
    Credential, CredentialStatus, Role, Timestamp, validate_display_name, validate_password,
    validate_username,
};
use caremesh_store::{InviteState, NewSession, NewUser, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, AuthUser, ClientIp};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "caremesh_session";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/invites/{token}", get(invite_info))
        .route("/api/v1/signup", post(signup))
}

/// 32 random bytes from the operating system, URL-safe base64 without padding (43 characters).
pub fn new_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a password with Argon2id off the async threads.
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(ApiError::internal)?
}

pub fn hash_password_blocking(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Checks a password against a stored hash. With no stored hash (unknown account) a fixed dummy
/// hash is checked instead, so that the answer takes as long whether the account exists or not.
pub async fn verify_password(password: String, stored: Option<String>) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = match stored {
            Some(s) => s,
            None => dummy_hash()?.to_owned(),
        };
        let parsed = PasswordHash::new(&stored).map_err(ApiError::internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(ApiError::internal)?
}

fn dummy_hash() -> ApiResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_password_blocking("caremesh-timing-equaliser")?;
    Ok(DUMMY.get_or_init(|| h))
}

/// An account as the API shows it.
#[derive(Serialize)]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialView>,
}

#[derive(Serialize)]
pub struct CredentialView {
    pub title: String,
    pub specialty: String,
    pub licence_number: String,
    pub checked_on: chrono::NaiveDate,
    pub issued_at: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub status: CredentialStatus,
}

impl CredentialView {
    pub fn new(c: Credential, now: Timestamp) -> Self {
        Self {
            status: c.status(now),
            title: c.title,
            specialty: c.specialty,
            licence_number: c.licence_number,
            checked_on: c.checked_on,
            issued_at: c.issued_at,
            valid_until: c.valid_until,
            revoked_at: c.revoked_at,
        }
    }
}

impl AccountView {
    pub fn new(u: User, credential: Option<Credential>, now: Timestamp) -> Self {
        Self {
            id: u.id.0,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            disabled: u.disabled,
            created_at: u.created_at,
            credential: credential.map(|c| CredentialView::new(c, now)),
        }
    }

    pub async fn load(state: &AppState, u: User) -> ApiResult<Self> {
        let credential = if u.role == Role::Doctor {
            state.store.credential(u.id).await?
        } else {
            None
        };
        Ok(Self::new(u, credential, state.clock.now()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct SessionResponse {
    /// The bearer token, for API clients. Browsers use the cookie set alongside.
    token: String,
    expires_at: Timestamp,
    account: AccountView,
}

async fn start_session(state: &AppState, user: User, status: StatusCode) -> ApiResult<Response> {
    let (token, expires_at, cookie) = new_session(state, &user).await?;
    let body = SessionResponse {
        token,
        expires_at,
        account: AccountView::load(state, user).await?,
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// Opens a session for `user`: its token, expiry and the `Set-Cookie` value that carries it.
pub(crate) async fn new_session(
    state: &AppState,
    user: &User,
) -> ApiResult<(String, Timestamp, HeaderValue)> {
    let token = new_token()?;
    let now = state.clock.now();
    let ttl = state.settings.session_ttl_secs;
    let expires_at = now.plus_secs(ttl);
    state
        .store
        .create_session(NewSession {
            token_hash: hash_token(&token),
            user_id: user.id,
            created_at: now,
            expires_at,
        })
        .await?;
    let cookie = session_cookie(&token, ttl, state.settings.secure_cookies());
    Ok((token, expires_at, cookie))
}

pub(crate) fn session_cookie(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    // Tokens are URL-safe base64, so the value is always a valid header.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let user = check_login(&state, ip, &req.username, req.password).await?;
    start_session(&state, user, StatusCode::OK).await
}

/// Checks a username and password, with the login throttle; shared by the API and the login page.
pub(crate) async fn check_login(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    username: &str,
    password: String,
) -> ApiResult<User> {
    let username = username.trim().to_lowercase();
    let now = state.clock.now();
    if let Some(wait) = state.login_limiter.check(&username, ip, now) {
        tracing::warn!(%username, ?ip, "login throttled");
        return Err(ApiError::too_many(
            format!("too many failed logins; try again in {wait} seconds"),
            wait,
        ));
    }
    let found = match state.store.user_by_username(&username).await {
        Ok(u) => Some(u),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let ok = verify_password(password, found.as_ref().map(|u| u.password_hash.clone())).await?;
    match found {
        Some(user) if ok && !user.disabled => {
            state.login_limiter.record_success(&username);
            tracing::info!(user = %user.id, "login");
            Ok(user)
        }
        _ => {
            state.login_limiter.record_failure(&username, ip, now);
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong username or password",
            ))
        }
    }
}

async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Response> {
    state.store.delete_session(&auth.session.token_hash).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, state.settings.secure_cookies()),
    );
    Ok(resp)
}

async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<AccountView>> {
    Ok(Json(AccountView::load(&state, auth.user).await?))
}

#[derive(Serialize)]
struct InviteInfo {
    hospital_name: String,
    role: Role,
    expires_at: Timestamp,
}

/// What the sign-up page shows before the patient fills in the form. Unknown tokens are 404;
/// expired, used-up and revoked invites are 410 with a code saying which.
async fn invite_info(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<InviteInfo>> {
    let invite = state
        .store
        .invite_by_token_hash(&hash_token(&token))
        .await?;
    check_invite_state(invite.state(state.clock.now()))?;
    Ok(Json(InviteInfo {
        hospital_name: state.settings.hospital_name.clone(),
        role: invite.role,
        expires_at: invite.expires_at,
    }))
}

pub(crate) fn check_invite_state(s: InviteState) -> ApiResult<()> {
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
    Err(ApiError::new(StatusCode::GONE, code, message))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupRequest {
    invite: String,
    username: String,
    display_name: String,
    password: String,
}

async fn signup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    let user = sign_up(
        &state,
        &req.invite,
        &req.username,
        &req.display_name,
        req.password,
    )
    .await?;
    start_session(&state, user, StatusCode::CREATED).await
}

/// Creates an account through a sign-up invite; shared by the API and the `/join/{token}` page.
pub(crate) async fn sign_up(
    state: &AppState,
    invite_token: &str,
    username: &str,
    display_name: &str,
    password: String,
) -> ApiResult<User> {
    let username = username.trim().to_owned();
    validate_username(&username)?;
    validate_display_name(display_name)?;
    validate_password(&password)?;
    let token_hash = hash_token(invite_token);
    let now = state.clock.now();
    let invite = state.store.invite_by_token_hash(&token_hash).await?;
    check_invite_state(invite.state(now))?;
    let password_hash = hash_password(password).await?;
    let new = NewUser {
        username,
        display_name: display_name.trim().to_owned(),
        role: invite.role,
        password_hash,
    };
    // The store re-checks the invite atomically: two sign-ups racing for the last use cannot both
    // succeed.
    let user = match state
        .store
        .redeem_invite(&token_hash, new, state.clock.now())
        .await
    {
        Ok(u) => u,
        Err(e) if e.conflict_code() == Some("invite_unusable") => {
            let again = state.store.invite_by_token_hash(&token_hash).await?;
            check_invite_state(again.state(state.clock.now()))?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, invite = invite.id, "signed up through invite");
    Ok(user)
}
