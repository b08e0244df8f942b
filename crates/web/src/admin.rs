//! Account management for hospital administrators: doctors, staff and other admins, passwords,
//! doctors' credentials, and sign-up invites for patients. Every route requires [`AdminUser`];
//! what they do is [`caremesh_app::admin`]'s.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use caremesh_app::admin::{self, CheckedCredential, CreatedInvite};
use caremesh_app::model::{Invite, InviteState};
use caremesh_domain::{Role, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::auth::{AccountView, CredentialView};
use crate::error::ApiResult;
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery};
use crate::page::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/admin/accounts",
            get(list_accounts).post(create_account),
        )
        .route("/api/v1/admin/accounts/{username}", get(get_account))
        .route(
            "/api/v1/admin/accounts/{username}/password",
            post(reset_password),
        )
        .route(
            "/api/v1/admin/accounts/{username}/disable",
            post(disable_account),
        )
        .route(
            "/api/v1/admin/accounts/{username}/enable",
            post(enable_account),
        )
        .route(
            "/api/v1/admin/accounts/{username}/credential",
            put(set_credential).delete(revoke_credential),
        )
        .route(
            "/api/v1/admin/invites",
            get(list_invites).post(create_invite),
        )
        .route(
            "/api/v1/admin/invites/{id}",
            axum::routing::delete(revoke_invite),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsQuery {
    role: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_accounts(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(q): ApiQuery<AccountsQuery>,
) -> ApiResult<Json<Page<AccountView>>> {
    let role = q.role.as_deref().map(str::parse::<Role>).transpose()?;
    let (after, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let accounts = admin::accounts(&state.app, &admin, role, after.map(UserId), limit + 1).await?;
    let now = state.app.now();
    let views = accounts
        .into_iter()
        .map(|a| (a.user.id.0, AccountView::new(a, now)))
        .collect();
    Ok(Json(Page::from_overfetch(views, limit)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    username: String,
    display_name: String,
    role: Role,
    /// When absent, a password is generated and returned once.
    password: Option<String>,
}

#[derive(Serialize)]
struct CreatedAccount {
    account: AccountView,
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_password: Option<String>,
}

async fn create_account(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, Json<CreatedAccount>)> {
    let (user, generated) = admin::create_staff_account(
        &state.app,
        &admin,
        &req.username,
        &req.display_name,
        req.role,
        req.password,
    )
    .await?;
    let account = AccountView::load(&state, user).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account,
            generated_password: generated,
        }),
    ))
}

async fn get_account(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    let account = admin::account(&state.app, &admin, &username).await?;
    Ok(Json(AccountView::new(account, state.app.now())))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResetPassword {
    password: Option<String>,
}

#[derive(Serialize)]
struct PasswordReset {
    sessions_ended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_password: Option<String>,
}

async fn reset_password(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<ResetPassword>,
) -> ApiResult<Json<PasswordReset>> {
    let generated = admin::reset_password(&state.app, &admin, &username, req.password).await?;
    Ok(Json(PasswordReset {
        sessions_ended: true,
        generated_password: generated,
    }))
}

async fn disable_account(
    state: State<AppState>,
    admin: AdminUser,
    username: ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    set_disabled(state, admin, username, true).await
}

async fn enable_account(
    state: State<AppState>,
    admin: AdminUser,
    username: ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    set_disabled(state, admin, username, false).await
}

async fn set_disabled(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(username): ApiPath<String>,
    disabled: bool,
) -> ApiResult<Json<AccountView>> {
    let account = admin::set_disabled(&state.app, &admin, &username, disabled).await?;
    Ok(Json(AccountView::new(account, state.app.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialRequest {
    title: String,
    specialty: String,
    licence_number: String,
    /// The day the licence was checked, `YYYY-MM-DD`.
    checked_on: chrono::NaiveDate,
    valid_until: Option<Timestamp>,
}

async fn set_credential(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<CredentialRequest>,
) -> ApiResult<Json<CredentialView>> {
    let now = state.app.now();
    let credential = admin::record_credential(
        &state.app,
        &admin,
        &username,
        CheckedCredential {
            title: req.title,
            specialty: req.specialty,
            licence_number: req.licence_number,
            checked_on: req.checked_on,
            valid_until: req.valid_until,
        },
    )
    .await?;
    Ok(Json(CredentialView::new(credential, now)))
}

async fn revoke_credential(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<CredentialView>> {
    let c = admin::revoke_credential(&state.app, &admin, &username).await?;
    Ok(Json(CredentialView::new(c, state.app.now())))
}

#[derive(Serialize)]
struct InviteView {
    id: i64,
    role: Role,
    label: Option<String>,
    created_by: i64,
    created_at: Timestamp,
    expires_at: Timestamp,
    max_uses: u32,
    uses: u32,
    revoked_at: Option<Timestamp>,
    state: InviteState,
}

impl InviteView {
    fn new(i: Invite, now: Timestamp) -> Self {
        Self {
            state: i.state(now),
            id: i.id,
            role: i.role,
            label: i.label,
            created_by: i.created_by.0,
            created_at: i.created_at,
            expires_at: i.expires_at,
            max_uses: i.max_uses,
            uses: i.uses,
            revoked_at: i.revoked_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInvite {
    label: Option<String>,
    /// Hours the invite stays valid; the node's default when absent. At most 90 days.
    valid_hours: Option<i64>,
    /// How many sign-ups the invite allows; 1 when absent. At most 1000.
    max_uses: Option<u32>,
}

#[derive(Serialize)]
struct CreatedInviteView {
    invite: InviteView,
    /// The secret token. Shown once; only its hash is stored.
    token: String,
    /// The link to hand to the patient (also what the QR code encodes).
    url: String,
}

async fn create_invite(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<CreateInvite>,
) -> ApiResult<(StatusCode, Json<CreatedInviteView>)> {
    let CreatedInvite { invite, token, url } =
        admin::create_patient_invite(&state.app, &admin, req.label, req.valid_hours, req.max_uses)
            .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInviteView {
            invite: InviteView::new(invite, state.app.now()),
            token,
            url,
        }),
    ))
}

async fn list_invites(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<InviteView>>> {
    let (before, limit) = q.decode()?;
    let invites = admin::invites(&state.app, &admin, before, limit + 1).await?;
    let now = state.app.now();
    let views = invites
        .into_iter()
        .map(|i| (i.id, InviteView::new(i, now)))
        .collect();
    Ok(Json(Page::from_overfetch(views, limit)))
}

async fn revoke_invite(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<InviteView>> {
    let invite = admin::revoke_invite(&state.app, &admin, id).await?;
    Ok(Json(InviteView::new(invite, state.app.now())))
}
