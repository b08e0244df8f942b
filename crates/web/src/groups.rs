//! Groups and membership: creating and changing groups, members and their roles, join requests,
//! invite links with their QR codes, leaving, removing and banning.
//!
//! Access policy (every group route): anonymous requests get 401. An account that is not an
//! active member gets `404 not_found`, exactly as for a group that does not exist, so group ids
//! reveal nothing to outsiders. Hospital administrators are the exception: they may see every
//! group's settings, reports and moderation log and act as moderators, but they read no group
//! content unless they are members, and get `403 forbidden` (not 404) where they may not act.
//! Members whose role does not allow an action get `403 forbidden`.

use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use caremesh_app::model::{Group, GroupInvite, InviteState, Member};
use caremesh_app::{groups, invites};
use caremesh_domain::{GroupRole, Language, MemberListVisibility, MemberState, Role, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};

use crate::auth::hash_token;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, session_token};
use crate::page::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{gid}", get(get_group).patch(update_group))
        .route("/api/v1/groups/{gid}/members", get(list_members))
        .route("/api/v1/groups/{gid}/members/{mid}", delete(remove_member))
        .route("/api/v1/groups/{gid}/members/{mid}/role", put(set_role))
        .route(
            "/api/v1/groups/{gid}/members/{mid}/ban",
            post(ban_member).delete(unban_member),
        )
        .route("/api/v1/groups/{gid}/leave", post(leave))
        .route("/api/v1/groups/{gid}/requests", get(list_requests))
        .route("/api/v1/groups/{gid}/me", put(set_my_name))
        .route(
            "/api/v1/groups/{gid}/join-requests",
            get(list_join_requests).post(request_join),
        )
        .route(
            "/api/v1/groups/{gid}/join-requests/{mid}/approve",
            post(approve_join),
        )
        .route(
            "/api/v1/groups/{gid}/join-requests/{mid}/reject",
            post(reject_join),
        )
        .route(
            "/api/v1/groups/{gid}/invites",
            get(list_invites).post(create_invite),
        )
        .route("/api/v1/groups/{gid}/invites/{iid}", delete(revoke_invite))
        .route("/api/v1/groups/{gid}/invites/{iid}/qr", get(invite_qr))
        .route("/api/v1/group-invites/{token}", get(invite_preview))
        .route("/api/v1/group-invites/{token}/accept", post(accept_invite))
}

/// Who is asking about which group (the `{gid}` of the route), and what they may do there: the
/// application layer's [`GroupAccess`](caremesh_app::GroupAccess).
///
/// As an extractor it checks the session and loads the group and the membership in one round
/// trip. Anonymous requests get 401; outsiders (not active members, not admins) get the same 404
/// as for a group that does not exist.
pub type GroupCtx = caremesh_app::GroupAccess;

impl FromRequestParts<AppState> for GroupCtx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(parts, state)?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        let gid = params
            .iter()
            .find(|(k, _)| *k == "gid")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| ApiError::internal("a group route without {gid}"))?;
        Ok(caremesh_app::GroupAccess::for_session(&state.app, &hash_token(&token), &gid).await?)
    }
}

/// The same checks as the extractor, for callers that already hold the session (web pages).
pub async fn load_ctx(state: &AppState, auth: &AuthUser, public_id: &str) -> ApiResult<GroupCtx> {
    Ok(caremesh_app::GroupAccess::load(&state.app, &auth.user, public_id).await?)
}

/// `Option<Option<T>>` for PATCH bodies: absent, `null` and a value are three different things.
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A group as the API shows it.
#[derive(Serialize)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub condition: String,
    pub condition_code: Option<String>,
    pub city: String,
    pub language: Language,
    pub description: String,
    pub rules: String,
    pub member_list: MemberListVisibility,
    pub member_count: u32,
    pub hosted_here: bool,
    pub created_at: Timestamp,
    /// The asker's role, when they are an active member.
    pub my_role: Option<GroupRole>,
    /// Shown on question forms: answers in a group are education, not diagnosis.
    pub notice: &'static str,
}

impl GroupView {
    pub fn new(g: Group, my_role: Option<GroupRole>) -> Self {
        let notice = match g.settings.language {
            Language::ZhCn => "本群内容为健康教育，不构成诊断或治疗建议；如有不适请及时就医。",
            Language::En => {
                "Posts in this group are education, not a diagnosis or treatment advice; see your doctor if you feel unwell."
            }
        };
        Self {
            id: g.public_id,
            name: g.settings.name,
            condition: g.settings.condition,
            condition_code: g.settings.condition_code,
            city: g.settings.city,
            language: g.settings.language,
            description: g.settings.description,
            rules: g.settings.rules,
            member_list: g.settings.member_list,
            member_count: g.member_count,
            hosted_here: g.remote_actor_id.is_none(),
            created_at: g.created_at,
            my_role,
            notice,
        }
    }
}

#[derive(Serialize)]
pub struct MemberView {
    pub id: i64,
    pub display_name: String,
    pub role: GroupRole,
    pub state: MemberState,
    /// Whether the account is a doctor of this hospital.
    pub is_doctor: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_message: Option<String>,
    pub since: Timestamp,
}

impl MemberView {
    pub fn new(m: Member) -> Self {
        Self {
            id: m.id,
            display_name: m.display_name,
            role: m.role,
            state: m.state,
            is_doctor: m.account_role == Some(Role::Doctor),
            request_message: m.request_message,
            since: m.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsQuery {
    /// `mine` (default) or `all` (hospital administrators).
    scope: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_groups(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<GroupsQuery>,
) -> ApiResult<Json<Page<GroupView>>> {
    let (after, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    match q.scope.as_deref() {
        None | Some("mine") => {
            let rows = groups::my_groups(&state.app, &auth.user, after, limit + 1).await?;
            let items = rows
                .into_iter()
                .map(|(g, m)| (g.id, GroupView::new(g, Some(m.role))))
                .collect();
            Ok(Json(Page::from_overfetch(items, limit)))
        }
        Some("all") => {
            let rows = groups::all_groups(&state.app, &auth.user, after, limit + 1).await?;
            let items = rows
                .into_iter()
                .map(|(g, role)| (g.id, GroupView::new(g, role)))
                .collect();
            Ok(Json(Page::from_overfetch(items, limit)))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "scope must be mine or all",
        )),
    }
}

/// What a group's creator sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    condition: String,
    condition_code: Option<String>,
    city: String,
    language: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    rules: String,
    /// `moderators` (default) or `members`.
    member_list: Option<String>,
}

impl From<CreateGroup> for groups::NewGroupFields {
    fn from(r: CreateGroup) -> Self {
        Self {
            name: r.name,
            condition: r.condition,
            condition_code: r.condition_code,
            city: r.city,
            language: r.language,
            description: r.description,
            rules: r.rules,
            member_list: r.member_list,
        }
    }
}

async fn create_group(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateGroup>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let group = groups::create_group_as(&state.app, &auth.user, &req.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(GroupView::new(group, Some(GroupRole::Owner))),
    ))
}

async fn get_group(ctx: GroupCtx) -> ApiResult<Json<GroupView>> {
    let role = ctx.role();
    Ok(Json(GroupView::new(ctx.group, role)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateGroup {
    name: Option<String>,
    condition: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    condition_code: Option<Option<String>>,
    city: Option<String>,
    language: Option<String>,
    description: Option<String>,
    rules: Option<String>,
    member_list: Option<String>,
}

async fn update_group(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiJson(req): ApiJson<UpdateGroup>,
) -> ApiResult<Json<GroupView>> {
    let changes = groups::GroupChanges {
        name: req.name,
        condition: req.condition,
        condition_code: req.condition_code,
        city: req.city,
        language: req.language,
        description: req.description,
        rules: req.rules,
        member_list: req.member_list,
    };
    let group = groups::update_group(&state.app, &ctx, changes).await?;
    Ok(Json(GroupView::new(group, ctx.role())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersQuery {
    /// `active` (default), or for moderators also `banned`, `removed`, `left`.
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_members(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> ApiResult<Json<Page<MemberView>>> {
    let wanted: MemberState = q
        .state
        .as_deref()
        .unwrap_or("active")
        .parse()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                "state must be active, pending, banned, removed, left or rejected",
            )
        })?;
    ctx.may_list_members(wanted)?;
    let (after, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let members = groups::members(&state.app, &ctx, wanted, after, limit + 1).await?;
    let items = members
        .into_iter()
        .map(|m| (m.id, MemberView::new(m)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

async fn remove_member(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
    body: Option<ApiJson<Reason>>,
) -> ApiResult<Response> {
    let reason = body.and_then(|b| b.0.reason);
    let m = groups::remove_or_ban(&state.app, &ctx, mid, false, reason).await?;
    Ok(respond(m, |m| Json(MemberView::new(m)).into_response()))
}

async fn ban_member(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
    body: Option<ApiJson<Reason>>,
) -> ApiResult<Response> {
    let reason = body.and_then(|b| b.0.reason);
    let m = groups::remove_or_ban(&state.app, &ctx, mid, true, reason).await?;
    Ok(respond(m, |m| Json(MemberView::new(m)).into_response()))
}

async fn unban_member(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
) -> ApiResult<Response> {
    let m = groups::unban(&state.app, &ctx, mid).await?;
    Ok(respond(m, |m| Json(MemberView::new(m)).into_response()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRole {
    role: GroupRole,
}

async fn set_role(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
    ApiJson(req): ApiJson<SetRole>,
) -> ApiResult<Json<MemberView>> {
    let m = groups::change_role(&state.app, &ctx, mid, req.role).await?;
    Ok(Json(MemberView::new(m)))
}

async fn leave(State(state): State<AppState>, ctx: GroupCtx) -> ApiResult<StatusCode> {
    groups::leave_as(&state.app, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MyName {
    display_name: String,
}

/// Chooses the name the asker shows in this group (patients only: doctors and staff are known by
/// their account's name, under which the hospital vouches for them).
async fn set_my_name(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiJson(req): ApiJson<MyName>,
) -> ApiResult<Json<MemberView>> {
    let m = groups::set_member_name(&state.app, &ctx, &req.display_name).await?;
    Ok(Json(MemberView::new(m)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    message: Option<String>,
}

/// Asking to join needs the group's id, which only its members and invite links give out; the
/// group's content stays hidden until a moderator approves.
async fn request_join(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(gid): ApiPath<String>,
    body: Option<ApiJson<JoinRequest>>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let message = body.and_then(|b| b.0.message);
    let m = groups::request_join(&state.app, &auth.user, &gid, message).await?;
    Ok((StatusCode::ACCEPTED, Json(MemberView::new(m))))
}

async fn list_join_requests(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<MemberView>>> {
    ctx.moderate()?;
    let (after, limit) = q.decode()?;
    let members = groups::join_requests(&state.app, &ctx, after, limit + 1).await?;
    let items = members
        .into_iter()
        .map(|m| (m.id, MemberView::new(m)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

async fn decide(
    state: AppState,
    ctx: GroupCtx,
    mid: i64,
    approve: bool,
) -> ApiResult<Json<MemberView>> {
    let m = groups::decide_join(&state.app, &ctx, mid, approve).await?;
    Ok(Json(MemberView::new(m)))
}

async fn approve_join(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
) -> ApiResult<Json<MemberView>> {
    decide(state, ctx, mid, true).await
}

async fn reject_join(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
) -> ApiResult<Json<MemberView>> {
    decide(state, ctx, mid, false).await
}

// ---- invites ----

#[derive(Serialize)]
struct InviteView {
    id: i64,
    url: String,
    label: Option<String>,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    max_uses: Option<u32>,
    uses: u32,
    state: InviteState,
    qr_svg: String,
    qr_png: String,
}

impl InviteView {
    fn new(state: &AppState, group: &Group, i: GroupInvite) -> Self {
        let qr = format!("/api/v1/groups/{}/invites/{}/qr", group.public_id, i.id);
        Self {
            id: i.id,
            url: invites::url(&state.app, &i.token),
            state: i.state(state.app.now()),
            label: i.label,
            created_at: i.created_at,
            expires_at: i.expires_at,
            max_uses: i.max_uses,
            uses: i.uses,
            qr_svg: format!("{qr}?format=svg"),
            qr_png: format!("{qr}?format=png"),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateInvite {
    label: Option<String>,
    /// 1–2160 (90 days); without it the link does not expire.
    valid_hours: Option<i64>,
    /// 1–10000; without it the link has no use limit.
    max_uses: Option<u32>,
}

async fn create_invite(
    State(state): State<AppState>,
    ctx: GroupCtx,
    body: Option<ApiJson<CreateInvite>>,
) -> ApiResult<(StatusCode, Json<InviteView>)> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let new = invites::NewInvite {
        label: req.label,
        valid_hours: req.valid_hours,
        max_uses: req.max_uses,
    };
    let invite = invites::create(&state.app, &ctx, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteView::new(&state, &ctx.group, invite)),
    ))
}

async fn list_invites(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<InviteView>>> {
    ctx.moderate()?;
    let (before, limit) = q.decode()?;
    let found = invites::list(&state.app, &ctx, before, limit + 1).await?;
    let items = found
        .into_iter()
        .map(|i| (i.id, InviteView::new(&state, &ctx.group, i)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

async fn revoke_invite(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, iid)): ApiPath<(String, i64)>,
) -> ApiResult<Json<InviteView>> {
    let invite = invites::revoke(&state.app, &ctx, iid).await?;
    Ok(Json(InviteView::new(&state, &ctx.group, invite)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QrQuery {
    /// `svg` (default) or `png`.
    format: Option<String>,
}

/// The invite's link as a QR code, rendered on the server: WeChat opens a long-pressed QR code
/// reliably only from a real image.
async fn invite_qr(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, iid)): ApiPath<(String, i64)>,
    ApiQuery(q): ApiQuery<QrQuery>,
) -> ApiResult<Response> {
    let invite = invites::get(&state.app, &ctx, iid).await?;
    let url = invites::url(&state.app, &invite.token);
    let (body, content_type) = match q.format.as_deref().unwrap_or("svg") {
        "svg" => (crate::qr::svg(&url)?.into_bytes(), "image/svg+xml"),
        "png" => (crate::qr::png(&url)?, "image/png"),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "format must be svg or png",
            ));
        }
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

#[derive(Serialize)]
struct InvitePreview {
    group: GroupView,
    state: InviteState,
    expires_at: Option<Timestamp>,
    /// Uses left, when the link has a limit.
    uses_left: Option<u32>,
}

/// What an invite link leads to, for a logged-in account deciding whether to join.
async fn invite_preview(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<InvitePreview>> {
    let p = invites::preview(&state.app, &auth.user, &token).await?;
    Ok(Json(InvitePreview {
        state: p.state,
        expires_at: p.invite.expires_at,
        uses_left: p.invite.max_uses.map(|m| m.saturating_sub(p.invite.uses)),
        group: GroupView::new(p.group, p.role),
    }))
}

async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let (group, member) = invites::accept(&state.app, &auth.user, &token).await?;
    Ok((
        StatusCode::CREATED,
        Json(GroupView::new(group, Some(member.role))),
    ))
}

/// A request sent to the host of a group hosted elsewhere, as the API shows it.
#[derive(Serialize)]
pub struct RequestView {
    pub id: i64,
    /// `pin`, `unpin`, `accept_answer`, `clear_answer`, `remove_post`, `remove_member`,
    /// `ban_member`, `unban_member`, `create_folder`, `delete_folder`, `save_to_library`,
    /// `remove_from_library`.
    pub action: String,
    pub object: Option<String>,
    /// `pending`, `accepted` or `refused`.
    pub state: String,
    /// Why the host refused: a stable code and its explanation.
    pub code: Option<String>,
    pub reason: Option<String>,
    pub created_at: Timestamp,
    pub answered_at: Option<Timestamp>,
}

impl RequestView {
    pub fn new(r: caremesh_app::model::GroupRequest) -> Self {
        Self {
            id: r.id,
            action: r.action,
            object: r.object,
            state: r.state,
            code: r.code,
            reason: r.reason,
            created_at: r.created_at,
            answered_at: r.answered_at,
        }
    }
}

/// What a use-case did, as the API answers it: done here (`done`'s answer), or asked of the
/// group's host (202, `{"status": "sent_to_host", "request": …}`; the host's decision reaches
/// every node, and the request's state says whether it was refused and why).
pub fn respond<T>(
    outcome: caremesh_app::actions::Outcome<T>,
    done: impl FnOnce(T) -> Response,
) -> Response {
    match outcome {
        caremesh_app::actions::Outcome::Done(t) => done(t),
        caremesh_app::actions::Outcome::SentToHost(r) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "status": "sent_to_host",
                "request": RequestView::new(r),
            })),
        )
            .into_response(),
    }
}

/// The requests the asker sent to the group's host, newest first, with the host's answers.
async fn list_requests(
    State(state): State<AppState>,
    ctx: GroupCtx,
) -> ApiResult<Json<Page<RequestView>>> {
    let requests = caremesh_app::actions::requests(&state.app, &ctx, 100).await?;
    Ok(Json(Page {
        items: requests.into_iter().map(RequestView::new).collect(),
        next_cursor: None,
    }))
}
