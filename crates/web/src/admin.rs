//! Account management for hospital administrators: doctors, staff and other admins, passwords,
//! doctors' credentials, and sign-up invites for patients. Every route requires [`AdminUser`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use caremesh_domain::{
    Credential, Role, Timestamp, UserId, validate_display_name, validate_password,
    validate_username,
};
use caremesh_store::{Invite, InviteState, NewInvite, NewUser, User};
use serde::{Deserialize, Serialize};

use caremesh_app::accounts::{Account, hash_password, hash_token, new_token};

use crate::auth::{AccountView, CredentialView};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminUser, ApiJson, ApiPath, ApiQuery, AuthUser};
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
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<AccountsQuery>,
) -> ApiResult<Json<Page<AccountView>>> {
    let role = q.role.as_deref().map(str::parse::<Role>).transpose()?;
    let (after, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let users = state
        .store
        .list_users(role, after.map(UserId), limit + 1)
        .await?;
    let now = state.clock.now();
    let mut views = Vec::with_capacity(users.len());
    for u in users {
        let cred = if u.role == Role::Doctor {
            state.store.credential(u.id).await?
        } else {
            None
        };
        let id = u.id.0;
        views.push((
            id,
            AccountView::new(
                Account {
                    user: u,
                    credential: cred,
                },
                now,
            ),
        ));
    }
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
    let (user, generated) = create_staff_account(
        &state,
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

/// Creates a staff, doctor or admin account (shared by the JSON API and the admin pages); returns
/// the generated password when none was given.
pub(crate) async fn create_staff_account(
    state: &AppState,
    admin: &AuthUser,
    username: &str,
    display_name: &str,
    role: Role,
    password: Option<String>,
) -> ApiResult<(User, Option<String>)> {
    if role == Role::Patient {
        return Err(ApiError::unprocessable(
            "patients_sign_up_by_invite",
            "patient accounts are created by the patients themselves through an invite",
        ));
    }
    let username = username.trim().to_owned();
    validate_username(&username)?;
    validate_display_name(display_name)?;
    let (password, generated) = password_or_generate(password)?;
    let new = NewUser {
        username,
        display_name: display_name.trim().to_owned(),
        role,
        password_hash: hash_password(password).await?,
    };
    let user = state.store.create_user(new, state.clock.now()).await?;
    tracing::info!(admin = %admin.user.id, user = %user.id, role = %user.role, "account created");
    Ok((user, generated))
}

/// The given password after validation, or a generated one (returned to the admin once).
fn password_or_generate(given: Option<String>) -> ApiResult<(String, Option<String>)> {
    match given {
        Some(p) => {
            validate_password(&p)?;
            Ok((p, None))
        }
        None => {
            let p = new_token()?;
            Ok((p.clone(), Some(p)))
        }
    }
}

async fn get_account(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    let user = state.store.user_by_username(&username).await?;
    Ok(Json(AccountView::load(&state, user).await?))
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
    let user = state.store.user_by_username(&username).await?;
    let (password, generated) = password_or_generate(req.password)?;
    let hash = hash_password(password).await?;
    state
        .store
        .set_password(user.id, &hash, state.clock.now())
        .await?;
    tracing::info!(admin = %admin.user.id, user = %user.id, "password reset");
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
    let user = state.store.user_by_username(&username).await?;
    if disabled && user.id == admin.user.id {
        return Err(ApiError::conflict(
            "cannot_disable_self",
            "administrators cannot disable their own account",
        ));
    }
    state
        .store
        .set_disabled(user.id, disabled, state.clock.now())
        .await?;
    tracing::info!(admin = %admin.user.id, user = %user.id, disabled, "account status changed");
    let user = state.store.user_by_id(user.id).await?;
    Ok(Json(AccountView::load(&state, user).await?))
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
    let now = state.clock.now();
    let credential = record_credential(
        &state,
        &admin,
        &username,
        &req.title,
        &req.specialty,
        &req.licence_number,
        req.checked_on,
        req.valid_until,
    )
    .await?;
    Ok(Json(CredentialView::new(credential, now)))
}

/// Records (and federates) the credential the hospital checked for a doctor; shared by the JSON
/// API and the admin pages.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_credential(
    state: &AppState,
    admin: &AuthUser,
    username: &str,
    title: &str,
    specialty: &str,
    licence_number: &str,
    checked_on: chrono::NaiveDate,
    valid_until: Option<Timestamp>,
) -> ApiResult<Credential> {
    let user = state.store.user_by_username(username).await?;
    let now = state.clock.now();
    let credential = Credential {
        title: title.trim().to_owned(),
        specialty: specialty.trim().to_owned(),
        licence_number: licence_number.trim().to_owned(),
        checked_on,
        issued_at: now,
        valid_until,
        revoked_at: None,
    };
    credential.validate()?;
    if user.role != Role::Doctor {
        return Err(ApiError::conflict(
            "not_a_doctor",
            "credentials can only be recorded for doctors",
        ));
    }
    let announce = state
        .federation
        .person_update(&user, Some(&credential))
        .await?;
    state
        .store
        .set_credential(user.id, &credential, announce)
        .await?;
    state.federation.forget_local_badge(user.id);
    state.federation.wake();
    tracing::info!(admin = %admin.user.id, doctor = %user.id, "credential recorded");
    Ok(credential)
}

async fn revoke_credential(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<CredentialView>> {
    let c = revoke_doctor_credential(&state, &admin, &username).await?;
    Ok(Json(CredentialView::new(c, state.clock.now())))
}

/// Revokes (and federates the revocation of) a doctor's credential.
pub(crate) async fn revoke_doctor_credential(
    state: &AppState,
    admin: &AuthUser,
    username: &str,
) -> ApiResult<Credential> {
    let user = state.store.user_by_username(username).await?;
    let now = state.clock.now();
    let current = state
        .store
        .credential(user.id)
        .await?
        .ok_or(ApiError::not_found("credential"))?;
    let revoked = Credential {
        revoked_at: current.revoked_at.or(Some(now)),
        ..current
    };
    let announce = state
        .federation
        .person_update(&user, Some(&revoked))
        .await?;
    let c = state
        .store
        .revoke_credential(user.id, now, announce)
        .await?;
    state.federation.forget_local_badge(user.id);
    state.federation.wake();
    tracing::info!(admin = %admin.user.id, doctor = %user.id, "credential revoked");
    Ok(c)
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
struct CreatedInvite {
    invite: InviteView,
    /// The secret token. Shown once; only its hash is stored.
    token: String,
    /// The link to hand to the patient (also what the QR code encodes).
    url: String,
}

const MAX_INVITE_HOURS: i64 = 90 * 24;
const MAX_INVITE_USES: u32 = 1000;

async fn create_invite(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(req): ApiJson<CreateInvite>,
) -> ApiResult<(StatusCode, Json<CreatedInvite>)> {
    let (invite, token, url) =
        create_patient_invite(&state, &admin, req.label, req.valid_hours, req.max_uses).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvite {
            invite: InviteView::new(invite, state.clock.now()),
            token,
            url,
        }),
    ))
}

/// Creates a patient sign-up invite: the invite, its secret token and the link `{base_url}join/{token}`.
pub(crate) async fn create_patient_invite(
    state: &AppState,
    admin: &AuthUser,
    label: Option<String>,
    valid_hours: Option<i64>,
    max_uses: Option<u32>,
) -> ApiResult<(Invite, String, String)> {
    let hours = valid_hours.unwrap_or(state.settings.invite_ttl_hours);
    if !(1..=MAX_INVITE_HOURS).contains(&hours) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("valid_hours: must be between 1 and {MAX_INVITE_HOURS}"),
        ));
    }
    let max_uses = max_uses.unwrap_or(1);
    if !(1..=MAX_INVITE_USES).contains(&max_uses) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("max_uses: must be between 1 and {MAX_INVITE_USES}"),
        ));
    }
    let label = label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 200) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "label: must be at most 200 characters long",
        ));
    }
    let token = new_token()?;
    let now = state.clock.now();
    let invite = state
        .store
        .create_invite(NewInvite {
            token_hash: hash_token(&token),
            role: Role::Patient,
            label,
            created_by: admin.user.id,
            created_at: now,
            expires_at: now.plus_secs(hours * 3600),
            max_uses,
        })
        .await?;
    tracing::info!(admin = %admin.user.id, invite = invite.id, "invite created");
    let url = state
        .settings
        .base_url
        .join(&format!("join/{token}"))
        .map_err(ApiError::internal)?
        .to_string();
    Ok((invite, token, url))
}

async fn list_invites(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<InviteView>>> {
    let (before, limit) = q.decode()?;
    let invites = state.store.list_invites(before, limit + 1).await?;
    let now = state.clock.now();
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
    let now = state.clock.now();
    let invite = state.store.revoke_invite(id, now).await?;
    tracing::info!(admin = %admin.user.id, invite = id, "invite revoked");
    Ok(Json(InviteView::new(invite, now)))
}
