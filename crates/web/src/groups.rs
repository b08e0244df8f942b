//! Groups and membership: creating and changing groups, members and their roles, join requests,
//! invite links with their QR codes, leaving, removing and banning.
//!
//! Access policy (every group route): anonymous requests get 401. An account that is not an
//! active member gets `404 not_found`, exactly as for a group that does not exist, so group ids
//! reveal nothing to outsiders. Hospital administrators are the exception: they may see every
//! group's settings, reports and moderation log and act as moderators, but they read no group
//! content unless they are members, and get `403 forbidden` (not 404) where they may not act.
//! Members whose role does not allow an action get `403 forbidden`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use caremesh_domain::{
    GroupRole, Language, MemberListVisibility, MemberState, Role, Timestamp, ValidationError,
    clean_line, clean_text, group::limits, validate_condition_code, validate_display_name,
};
use caremesh_store::{Group, GroupInvite, GroupSettings, InviteState, Member, NewGroup, User};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use crate::auth::hash_token;
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
        let (_, user, found) = match state
            .store
            .session_group_access(&hash_token(&token), &gid, state.clock.now())
            .await
        {
            Ok(found) => found,
            Err(e) if e.is_not_found() => return Err(ApiError::unauthorized()),
            Err(e) => return Err(e.into()),
        };
        let (group, member) = found.ok_or_else(group_not_found)?;
        Ok(caremesh_app::GroupAccess::check(group, member, user)?)
    }
}

/// The same checks as the extractor, for callers that already hold the session (web pages).
pub async fn load_ctx(state: &AppState, auth: &AuthUser, public_id: &str) -> ApiResult<GroupCtx> {
    Ok(caremesh_app::GroupAccess::load(&state.app, &auth.user, public_id).await?)
}

pub fn group_not_found() -> ApiError {
    ApiError::not_found("group")
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
            let rows = state
                .store
                .groups_of_user(auth.user.id, after, limit + 1)
                .await?;
            let items = rows
                .into_iter()
                .map(|(g, m)| (g.id, GroupView::new(g, Some(m.role))))
                .collect();
            Ok(Json(Page::from_overfetch(items, limit)))
        }
        Some("all") => {
            if !auth.user.role.is_admin() {
                return Err(ApiError::forbidden(
                    "only hospital administrators list every group",
                ));
            }
            let groups = state.store.list_groups(after, limit + 1).await?;
            let mut items = Vec::with_capacity(groups.len());
            for g in groups {
                let role = state
                    .store
                    .membership(g.id, auth.user.id)
                    .await?
                    .filter(Member::is_active)
                    .map(|m| m.role);
                items.push((g.id, GroupView::new(g, role)));
            }
            Ok(Json(Page::from_overfetch(items, limit)))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "scope must be mine or all",
        )),
    }
}

/// What a group's creator fills in: the JSON API's body, and the fields of the page's form.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct NewGroupFields {
    pub name: String,
    pub condition: String,
    pub condition_code: Option<String>,
    pub city: String,
    pub language: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rules: String,
    /// `moderators` (default) or `members`.
    pub member_list: Option<String>,
}

impl NewGroupFields {
    /// The group's settings, cleaned; the first rule broken names its field.
    pub fn settings(&self) -> Result<GroupSettings, ValidationError> {
        Ok(GroupSettings {
            name: clean_line("name", &self.name, limits::GROUP_NAME)?,
            condition: clean_line("condition", &self.condition, limits::CONDITION)?,
            condition_code: clean_code(self.condition_code.clone())?,
            city: clean_line("city", &self.city, limits::CITY)?,
            language: self.language.parse()?,
            description: clean_text("description", &self.description, limits::DESCRIPTION, true)?,
            rules: clean_text("rules", &self.rules, limits::RULES, true)?,
            member_list: self
                .member_list
                .as_deref()
                .unwrap_or("moderators")
                .parse()?,
        })
    }
}

fn clean_code(code: Option<String>) -> Result<Option<String>, ValidationError> {
    match code.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => {
            validate_condition_code(&c)?;
            Ok(Some(c))
        }
    }
}

/// Who may create groups: doctors and hospital administrators.
pub fn may_create_groups(user: &User) -> ApiResult<()> {
    if matches!(user.role, Role::Doctor | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only doctors and hospital administrators create groups",
        ))
    }
}

/// Creates a group with `user` as its owner; shared with the web pages.
pub async fn create_group_as(
    state: &AppState,
    user: &User,
    settings: GroupSettings,
) -> ApiResult<Group> {
    may_create_groups(user)?;
    let group = state
        .store
        .create_group(
            NewGroup {
                public_id: new_public_id()?,
                settings,
                owner: user.id,
            },
            state.clock.now(),
        )
        .await?;
    tracing::info!(user = %user.id, group = %group.public_id, "group created");
    Ok(group)
}

async fn create_group(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<NewGroupFields>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    may_create_groups(&auth.user)?;
    let group = create_group_as(&state, &auth.user, req.settings()?).await?;
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
    ctx.govern()?;
    let mut s = ctx.group.settings.clone();
    if let Some(v) = req.name {
        s.name = clean_line("name", &v, limits::GROUP_NAME)?;
    }
    if let Some(v) = req.condition {
        s.condition = clean_line("condition", &v, limits::CONDITION)?;
    }
    if let Some(v) = req.condition_code {
        s.condition_code = clean_code(v)?;
    }
    if let Some(v) = req.city {
        s.city = clean_line("city", &v, limits::CITY)?;
    }
    if let Some(v) = req.language {
        s.language = v.parse()?;
    }
    if let Some(v) = req.description {
        s.description = clean_text("description", &v, limits::DESCRIPTION, true)?;
    }
    if let Some(v) = req.rules {
        s.rules = clean_text("rules", &v, limits::RULES, true)?;
    }
    if let Some(v) = req.member_list {
        s.member_list = v.parse()?;
    }
    let group = state
        .store
        .update_group(ctx.group.id, s, ctx.user.id, state.clock.now())
        .await?;
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
    may_list_members(&ctx, wanted)?;
    let (after, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let members = state
        .store
        .list_members(ctx.group.id, wanted, after, limit + 1)
        .await?;
    let items = members
        .into_iter()
        .map(|m| (m.id, MemberView::new(m)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

/// Who may list the group's members in a state: moderators any, members the active ones when
/// the owner opened the list to them.
pub fn may_list_members(ctx: &GroupCtx, wanted: MemberState) -> ApiResult<()> {
    Ok(ctx.may_list_members(wanted)?)
}

/// The member `mid` of the group, or 404.
async fn target(state: &AppState, ctx: &GroupCtx, mid: i64) -> ApiResult<Member> {
    Ok(state.store.member_by_id(ctx.group.id, mid).await?)
}

/// Moderators act only on members ranked below them.
pub fn check_outranks(ctx: &GroupCtx, target: &Member) -> ApiResult<()> {
    Ok(ctx.check_outranks(target)?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

pub fn clean_reason(r: Option<String>) -> ApiResult<Option<String>> {
    Ok(match r {
        None => None,
        Some(r) => {
            Some(clean_text("reason", &r, limits::BAN_REASON, true)?).filter(|r| !r.is_empty())
        }
    })
}

/// Removes (or bans) the member `mid`, a moderator's action logged with its reason; shared with
/// the web pages.
pub async fn remove_or_ban(
    state: &AppState,
    ctx: &GroupCtx,
    mid: i64,
    ban: bool,
    reason: Option<String>,
) -> ApiResult<Member> {
    ctx.moderate()?;
    let t = target(state, ctx, mid).await?;
    check_outranks(ctx, &t)?;
    let reason = clean_reason(reason)?;
    let m = state
        .store
        .remove_member(
            ctx.group.id,
            t.id,
            ban,
            reason,
            ctx.user.id,
            state.clock.now(),
        )
        .await?;
    member_changed(state, &ctx.group, &m).await;
    Ok(m)
}

/// Lifts the ban of the member `mid` (moderators); shared with the web pages.
pub async fn unban(state: &AppState, ctx: &GroupCtx, mid: i64) -> ApiResult<Member> {
    ctx.moderate()?;
    let m = state
        .store
        .unban_member(ctx.group.id, mid, ctx.user.id, state.clock.now())
        .await?;
    member_changed(state, &ctx.group, &m).await;
    Ok(m)
}

async fn remove_member(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
    body: Option<ApiJson<Reason>>,
) -> ApiResult<Json<MemberView>> {
    let reason = body.and_then(|b| b.0.reason);
    let m = remove_or_ban(&state, &ctx, mid, false, reason).await?;
    Ok(Json(MemberView::new(m)))
}

async fn ban_member(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
    body: Option<ApiJson<Reason>>,
) -> ApiResult<Json<MemberView>> {
    let reason = body.and_then(|b| b.0.reason);
    let m = remove_or_ban(&state, &ctx, mid, true, reason).await?;
    Ok(Json(MemberView::new(m)))
}

async fn unban_member(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(MemberView::new(unban(&state, &ctx, mid).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRole {
    role: GroupRole,
}

/// Appoints or dismisses a doctor or moderator (the owner); shared with the web pages.
pub async fn change_role(
    state: &AppState,
    ctx: &GroupCtx,
    mid: i64,
    role: GroupRole,
) -> ApiResult<Member> {
    ctx.govern()?;
    if role == GroupRole::Owner {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "role: must be doctor, moderator or member",
        ));
    }
    check_remote_role(state, &ctx.group, mid, role).await?;
    let m = state
        .store
        .set_member_role(ctx.group.id, mid, role, ctx.user.id, state.clock.now())
        .await?;
    member_changed(state, &ctx.group, &m).await;
    Ok(m)
}

async fn set_role(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, mid)): ApiPath<(String, i64)>,
    ApiJson(req): ApiJson<SetRole>,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(MemberView::new(
        change_role(&state, &ctx, mid, req.role).await?,
    )))
}

/// A member of another node teaches in a group hosted here only with a credential that their
/// own hospital signed and that is valid now.
pub(crate) async fn check_remote_role(
    state: &AppState,
    group: &Group,
    member_id: i64,
    role: GroupRole,
) -> ApiResult<()> {
    if !role.can_teach() {
        return Ok(());
    }
    let m = state.store.member_by_id(group.id, member_id).await?;
    let Some(actor) = &m.actor_id else {
        return Ok(());
    };
    let badge = state
        .federation
        .fresh_remote_badge(actor)
        .await
        .map_err(|e| {
            ApiError::conflict(
                "credential_unverified",
                format!("the member's node did not answer: {e}"),
            )
        })?;
    if badge.status != caremesh_federation::credentials::BadgeStatus::Verified {
        return Err(ApiError::conflict(
            "credential_unverified",
            format!(
                "only a doctor with a valid credential signed by their own hospital may teach here ({})",
                badge
                    .reason
                    .unwrap_or_else(|| format!("{:?}", badge.status).to_lowercase())
            ),
        ));
    }
    Ok(())
}

/// After a moderator changed a membership: a member of another node hears it from the group.
pub(crate) async fn member_changed(state: &AppState, group: &Group, m: &Member) {
    if m.actor_id.is_some() {
        crate::posts::federate(
            "a membership change",
            state.federation.remote_member_changed(group, m),
        )
        .await;
    }
}

async fn leave(State(state): State<AppState>, ctx: GroupCtx) -> ApiResult<StatusCode> {
    leave_as(&state, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member leaves the group; the host of a group hosted elsewhere is told. Shared with the
/// pages.
pub async fn leave_as(state: &AppState, ctx: &GroupCtx) -> ApiResult<()> {
    ctx.read()?;
    state
        .store
        .leave_group(ctx.group.id, ctx.user.id, state.clock.now())
        .await?;
    if ctx.group.remote_actor_id.is_some() {
        crate::posts::federate(
            "leaving",
            state.federation.leave_remote_group(&ctx.group, &ctx.user),
        )
        .await;
    }
    Ok(())
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
    let m = set_member_name(&state, &ctx, &req.display_name).await?;
    Ok(Json(MemberView::new(m)))
}

/// Whether the asker may choose a name in this group: active members who are patients.
pub fn may_choose_name(ctx: &GroupCtx) -> ApiResult<()> {
    ctx.read()?;
    if ctx.user.role != Role::Patient {
        return Err(ApiError::forbidden(
            "doctors and staff are shown by their account's name in every group",
        ));
    }
    Ok(())
}

/// A name for one group, by the rules of account display names, with control characters and
/// direction overrides removed.
pub fn clean_member_name(name: &str) -> Result<String, ValidationError> {
    let name = clean_line(
        "display_name",
        name,
        caremesh_domain::account::DISPLAY_NAME_MAX,
    )?;
    validate_display_name(&name)?;
    Ok(name)
}

/// Checks and stores a member's name for one group; shared with the web pages. In a group
/// mirrored from another node the name is the member's pseudonym there, changed together.
pub async fn set_member_name(state: &AppState, ctx: &GroupCtx, name: &str) -> ApiResult<Member> {
    may_choose_name(ctx)?;
    let name = clean_member_name(name)?;
    let m = state
        .store
        .set_member_name(ctx.group.id, ctx.user.id, name)
        .await?;
    if ctx.group.remote_actor_id.is_some() {
        crate::posts::federate(
            "a new name",
            state.federation.pseudonym_renamed(&ctx.group, &ctx.user),
        )
        .await;
    }
    Ok(m)
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
    let group = state.store.group_by_public_id(&gid).await.map_err(|e| {
        if e.is_not_found() {
            group_not_found()
        } else {
            e.into()
        }
    })?;
    let message = match body.and_then(|b| b.0.message) {
        None => None,
        Some(m) => {
            Some(clean_text("message", &m, limits::JOIN_MESSAGE, true)?).filter(|m| !m.is_empty())
        }
    };
    let m = state
        .store
        .request_join(group.id, auth.user.id, message, state.clock.now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(MemberView::new(m))))
}

async fn list_join_requests(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<MemberView>>> {
    ctx.moderate()?;
    let (after, limit) = q.decode()?;
    let members = state
        .store
        .list_members(ctx.group.id, MemberState::Pending, after, limit + 1)
        .await?;
    let items = members
        .into_iter()
        .map(|m| (m.id, MemberView::new(m)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

/// Approves or rejects the join request of the member `mid` (moderators); a remote member's node
/// is told the answer. Shared with the web pages.
pub async fn decide_join(
    state: &AppState,
    ctx: &GroupCtx,
    mid: i64,
    approve: bool,
) -> ApiResult<Member> {
    ctx.moderate()?;
    let m = state
        .store
        .decide_join(
            ctx.group.id,
            mid,
            approve,
            ctx.user.id,
            state.settings.max_members,
            state.clock.now(),
        )
        .await?;
    if let Some(actor) = &m.actor_id
        && let Err(e) = state
            .federation
            .answer_remote_member(&ctx.group, actor, approve)
            .await
    {
        tracing::error!(error = %e, %actor, "cannot send the answer to the member's node");
    }
    Ok(m)
}

async fn decide(
    state: AppState,
    ctx: GroupCtx,
    mid: i64,
    approve: bool,
) -> ApiResult<Json<MemberView>> {
    Ok(Json(MemberView::new(
        decide_join(&state, &ctx, mid, approve).await?,
    )))
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

fn invite_url(state: &AppState, token: &str) -> String {
    format!("{}group-invite/{token}", state.settings.base_url)
}

impl InviteView {
    fn new(state: &AppState, group: &Group, i: GroupInvite) -> Self {
        let qr = format!("/api/v1/groups/{}/invites/{}/qr", group.public_id, i.id);
        Self {
            id: i.id,
            url: invite_url(state, &i.token),
            state: i.state(state.clock.now()),
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
    ctx.moderate()?;
    let req = body.map(|b| b.0).unwrap_or_default();
    let label = match req.label {
        None => None,
        Some(l) => Some(clean_line("label", &l, limits::INVITE_LABEL)?),
    };
    if let Some(h) = req.valid_hours
        && !(1..=2160).contains(&h)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "valid_hours: must be between 1 and 2160 (90 days)",
        ));
    }
    if let Some(n) = req.max_uses
        && !(1..=10_000).contains(&n)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "max_uses: must be between 1 and 10000",
        ));
    }
    let now = state.clock.now();
    let invite = state
        .store
        .create_group_invite(caremesh_store::NewGroupInvite {
            group_id: ctx.group.id,
            token: crate::auth::new_token()?,
            label,
            created_by: ctx.user.id,
            created_at: now,
            expires_at: req.valid_hours.map(|h| now.plus_secs(h * 3600)),
            max_uses: req.max_uses,
        })
        .await?;
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
    let invites = state
        .store
        .list_group_invites(ctx.group.id, before, limit + 1)
        .await?;
    let items = invites
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
    ctx.moderate()?;
    let invite = state
        .store
        .revoke_group_invite(ctx.group.id, iid, state.clock.now())
        .await?;
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
    ctx.moderate()?;
    let invite = state.store.group_invite_by_id(ctx.group.id, iid).await?;
    let url = invite_url(&state, &invite.token);
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
    let invite = state.store.group_invite_by_token(&token).await?;
    let group = state.store.group_by_id(invite.group_id).await?;
    let role = state
        .store
        .membership(group.id, auth.user.id)
        .await?
        .filter(Member::is_active)
        .map(|m| m.role);
    Ok(Json(InvitePreview {
        state: invite.state(state.clock.now()),
        expires_at: invite.expires_at,
        uses_left: invite.max_uses.map(|m| m.saturating_sub(invite.uses)),
        group: GroupView::new(group, role),
    }))
}

async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let now = state.clock.now();
    let invite = state.store.group_invite_by_token(&token).await?;
    match invite.state(now) {
        InviteState::Usable => {}
        InviteState::Expired => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "invite_expired",
                "this invite link has expired; ask the group for a new one",
            ));
        }
        InviteState::UsedUp => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "invite_used",
                "this invite link has been used up; ask the group for a new one",
            ));
        }
        InviteState::Revoked => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "invite_revoked",
                "this invite link has been withdrawn",
            ));
        }
    }
    let (group, member) = state
        .store
        .join_by_invite(&token, auth.user.id, state.settings.max_members, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(GroupView::new(group, Some(member.role))),
    ))
}

/// A random, URL-safe public id for groups, posts and attachments (128 bits).
pub fn new_public_id() -> ApiResult<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
