//! The routes that log people in and out and sign patients up, and the session cookie. What
//! they do (passwords, the login throttle, sessions, invites) is [`caremesh_app::accounts`]'s.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caremesh_app::accounts::{self, Account};
use caremesh_app::model::User;
use caremesh_domain::{Credential, CredentialStatus, Role, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, AuthUser, ClientIp};
use crate::state::AppState;

// Still used by the group routes and pages, the test kit and the benchmarks.
pub use caremesh_app::accounts::{hash_password_blocking, hash_token, new_token};

pub const SESSION_COOKIE: &str = "caremesh_session";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/invites/{token}", get(invite_info))
        .route("/api/v1/signup", post(signup))
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
    pub fn new(account: Account, now: Timestamp) -> Self {
        let Account {
            user: u,
            credential,
        } = account;
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
        let account = Account::load(&state.app, u).await?;
        Ok(Self::new(account, state.app.now()))
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
    let (session, cookie) = new_session(state, &user).await?;
    let body = SessionResponse {
        token: session.token,
        expires_at: session.expires_at,
        account: AccountView::load(state, user).await?,
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// Opens a session for `user`, and the `Set-Cookie` value that carries its token.
pub(crate) async fn new_session(
    state: &AppState,
    user: &User,
) -> ApiResult<(accounts::OpenedSession, HeaderValue)> {
    let session = accounts::new_session(&state.app, user).await?;
    let cookie = session_cookie(
        &session.token,
        state.app.settings.session_ttl_secs,
        state.settings.secure_cookies(),
    );
    Ok((session, cookie))
}

pub(crate) fn session_cookie(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    // Tokens are URL-safe base64, so the value is always a valid header.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn cleared_session_cookie(state: &AppState) -> HeaderValue {
    session_cookie("", 0, state.settings.secure_cookies())
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let user = accounts::check_login(&state.app, ip, &req.username, req.password).await?;
    start_session(&state, user, StatusCode::OK).await
}

async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Response> {
    accounts::logout(&state.app, &auth.session).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cleared_session_cookie(&state));
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
    let invite = accounts::signup_invite(&state.app, &token).await?;
    Ok(Json(InviteInfo {
        hospital_name: state.app.settings.hospital_name.clone(),
        role: invite.role,
        expires_at: invite.expires_at,
    }))
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
    let user = accounts::sign_up(
        &state.app,
        &req.invite,
        &req.username,
        &req.display_name,
        req.password,
    )
    .await?;
    start_session(&state, user, StatusCode::CREATED).await
}
