//! Joining a group of a partner hospital from the pages. A group's invite link (or its QR code)
//! leads to the group's host; a visitor with no account there picks their own hospital among the
//! host's partners and lands on their own node's `/remote-join` page, which asks for the name to
//! show in that group and sends the request (as a per-group pseudonym for patients). Everything
//! else about the patient stays with their own hospital.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use caremesh_domain::Role;
use caremesh_federation::urls::authority_of_str;
use caremesh_store::{GroupInvite, Partner};
use serde::Deserialize;

use super::{Form, PageResult, Viewer, esc, field_error, seg};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/remote-join", get(remote_join_page).post(remote_join))
}

#[derive(Deserialize, Default)]
struct RemoteJoinQuery {
    /// The group's actor URL on its host.
    group: Option<String>,
    /// The host's invite token, if the link carried one.
    invite: Option<String>,
}

/// The partner a group URL belongs to, or a page explaining that it is not one.
async fn partner_of(state: &AppState, group_url: &str) -> Result<Partner, ApiError> {
    let authority = authority_of_str(group_url)
        .ok_or_else(|| ApiError::unprocessable("invalid_field", "group: not a group's address"))?;
    state
        .federation
        .partners
        .get(&authority)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::forbidden(format!(
                "{authority} is not a partner hospital of this one; ask your hospital's administrator"
            ))
        })
}

/// A partner hospital's name, as its node actor says: from what this node knows, or (with
/// `fetch`) asked of the partner; its address when neither tells.
async fn hospital_name(state: &AppState, p: &Partner, fetch: bool) -> String {
    let actor = format!("{}actor", p.base_url);
    let doc = match state.store.remote_actor(&actor).await {
        Ok(Some(a)) => Some(a.document),
        _ if fetch => state
            .federation
            .resolver
            .fetch_actor(&actor)
            .await
            .ok()
            .map(|a| a.document),
        _ => None,
    };
    doc.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
        .and_then(|d| d["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| p.authority.clone())
}

fn join_form(
    v: &Viewer,
    group: &str,
    invite: &str,
    patient: bool,
    name: &str,
    error: Option<&str>,
) -> String {
    let err = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let name_field = if patient {
        format!(
            r#"<label for="display_name">{l}</label><input id="display_name" name="display_name" maxlength="64" required value="{v}"><p class="hint">{h}</p>"#,
            l = esc(v.t("my-name-label")),
            v = esc(name),
            h = esc(v.t("remote-join-hint")),
        )
    } else {
        String::new()
    };
    format!(
        r#"{err}<form method="post" action="/remote-join" class="stack">{csrf}<input type="hidden" name="group" value="{group}"><input type="hidden" name="invite" value="{invite}">{name_field}<p class="notice">{notice}</p><button type="submit" class="primary">{b}</button></form>"#,
        csrf = v.csrf_field(),
        group = esc(group),
        invite = esc(invite),
        notice = esc(v.t("disclaimer")),
        b = esc(v.t("remote-join-submit")),
    )
}

async fn remote_join_page(
    v: Viewer,
    State(state): State<AppState>,
    Query(q): Query<RemoteJoinQuery>,
) -> PageResult {
    let auth = v.require()?;
    let group = q.group.unwrap_or_default();
    let partner = partner_of(&state, &group).await?;
    let host = hospital_name(&state, &partner, true).await;
    let mut h = format!(
        r#"<p class="lead">{}</p>"#,
        esc(&v.tf("remote-join-lead", &[("host", &host)]))
    );
    h.push_str(&join_form(
        &v,
        &group,
        q.invite.as_deref().unwrap_or(""),
        auth.user.role == Role::Patient,
        "",
        None,
    ));
    Ok(v.page(v.t("remote-join-title"), &h))
}

async fn remote_join(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let auth = v.require()?;
    let group = form.text("group");
    let invite = form.text("invite");
    let partner = partner_of(&state, group.trim()).await?;
    let patient = auth.user.role == Role::Patient;
    let typed = form.text("display_name");
    if let Err(e) = caremesh_app::remote::join_name(&auth.user, Some(&typed)) {
        let message = field_error(&v, v.t("my-name-label"), &e);
        let h = join_form(&v, &group, &invite, patient, &typed, Some(&message));
        return Ok(v.page_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            v.t("remote-join-title"),
            &h,
        ));
    }
    caremesh_app::remote::join(&state.app, &auth.user, &group, Some(&typed), Some(&invite)).await?;
    let host = hospital_name(&state, &partner, true).await;
    Ok(v.page(
        v.t("remote-join-title"),
        &format!(
            r#"<p role="status">{}</p><p><a class="button" href="/">{}</a></p>"#,
            esc(&v.tf("remote-join-sent", &[("host", &host)])),
            esc(v.t("my-groups"))
        ),
    ))
}

/// What the group's invite page shows a visitor who is not logged in here: log in with an
/// account of this hospital, or open the invitation at one's own hospital among the partners.
pub(super) async fn invite_for_visitors(
    v: &Viewer,
    state: &AppState,
    token: &str,
    invite: &GroupInvite,
) -> PageResult {
    let group = state.store.group_by_id(invite.group_id).await?;
    let group_url = state.federation.urls.group(&group.public_id);
    let mut h = format!(
        r#"<p class="lead">{cond} · {city}</p><p><a class="button primary" href="/login?next={next}">{login}</a></p>"#,
        cond = esc(&group.settings.condition),
        city = esc(&group.settings.city),
        next = seg(&format!("/group-invite/{token}")),
        login = esc(v.t("invite-own-account")),
    );
    let partners = state
        .federation
        .partners
        .all()
        .await
        .map_err(ApiError::from)?;
    if !partners.is_empty() {
        h.push_str(&format!(
            r#"<h2>{}</h2><ul class="list">"#,
            esc(v.t("invite-partner-patients"))
        ));
        for p in &partners {
            let link = format!(
                "{}remote-join?group={}&invite={}",
                p.base_url,
                seg(&group_url),
                seg(token)
            );
            h.push_str(&format!(
                r#"<li><a href="{}">{}</a></li>"#,
                esc(&link),
                esc(&hospital_name(state, p, false).await)
            ));
        }
        h.push_str("</ul>");
    }
    Ok(v.page(&group.settings.name, &h))
}
