//! Joining a group of a partner hospital from the pages. A group's invite link (or its QR code)
//! leads to the group's host; a visitor with no account there picks their own hospital among the
//! host's partners and lands on their own node's `/remote-join` page, which asks for the name to
//! show in that group and sends the request (as a per-group pseudonym for patients). Everything
//! else about the patient stays with their own hospital.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use caremesh_app::model::GroupInvite;
use caremesh_app::remote::{self, InviteElsewhere, hospital_name, partner_of};
use caremesh_domain::Role;
use serde::Deserialize;

use super::{Form, PageResult, Viewer, esc, field_error, seg};
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
    let partner = partner_of(&state.app, &group).await?;
    let host = hospital_name(&state.app, &partner, true).await;
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
    let partner = partner_of(&state.app, group.trim()).await?;
    let patient = auth.user.role == Role::Patient;
    let typed = form.text("display_name");
    if let Err(e) = remote::join_name(&auth.user, Some(&typed)) {
        let message = field_error(&v, v.t("my-name-label"), &e);
        let h = join_form(&v, &group, &invite, patient, &typed, Some(&message));
        return Ok(v.page_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            v.t("remote-join-title"),
            &h,
        ));
    }
    remote::join(&state.app, &auth.user, &group, Some(&typed), Some(&invite)).await?;
    let host = hospital_name(&state.app, &partner, true).await;
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
    let InviteElsewhere {
        group,
        group_url,
        partners,
    } = remote::invite_elsewhere(&state.app, invite).await?;
    let mut h = format!(
        r#"<p class="lead">{cond} · {city}</p><p><a class="button primary" href="/login?next={next}">{login}</a></p>"#,
        cond = esc(&group.settings.condition),
        city = esc(&group.settings.city),
        next = seg(&format!("/group-invite/{token}")),
        login = esc(v.t("invite-own-account")),
    );
    if !partners.is_empty() {
        h.push_str(&format!(
            r#"<h2>{}</h2><ul class="list">"#,
            esc(v.t("invite-partner-patients"))
        ));
        for (p, name) in &partners {
            let link = format!(
                "{}remote-join?group={}&invite={}",
                p.base_url,
                seg(&group_url),
                seg(token)
            );
            h.push_str(&format!(
                r#"<li><a href="{}">{}</a></li>"#,
                esc(&link),
                esc(name)
            ));
        }
        h.push_str("</ul>");
    }
    Ok(v.page(&group.settings.name, &h))
}
