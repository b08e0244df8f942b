//! Hospital administrators' pages: patient sign-up invites (link and QR code), doctor and staff
//! accounts with doctors' credentials, partner hospitals, and the moderation overview.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use base64::Engine as _;
use caremesh_app::admin::{self, Administrator, CheckedCredential};
use caremesh_app::model::InviteState;
use caremesh_domain::{CredentialStatus, Role};

use super::{Form, PageError, PageResult, Viewer, esc, see_other, seg};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(admin_home))
        .route("/admin/invites", post(create_invite))
        .route("/admin/invites/{id}/revoke", post(revoke_invite))
        .route("/admin/accounts", get(accounts).post(create_account))
        .route("/admin/accounts/{username}", get(account))
        .route(
            "/admin/accounts/{username}/credential",
            post(set_credential),
        )
        .route(
            "/admin/accounts/{username}/credential/revoke",
            post(revoke_credential),
        )
        .route("/admin/partners", get(partners).post(add_partner))
        .route("/admin/partners/remove", post(remove_partner))
        .route("/admin/moderation", get(moderation))
}

/// The visitor as administrator: a redirect to the login page for anonymous visitors, 403 for
/// other roles.
fn administrator(v: &Viewer) -> Result<Administrator, PageError> {
    let auth = v.require_role(Role::is_admin)?;
    Ok(Administrator::account(&auth.user)?)
}

fn admin_nav(v: &Viewer) -> String {
    format!(
        r#"<nav class="subnav" aria-label="{}"><a href="/admin">{}</a><a href="/admin/accounts">{}</a><a href="/admin/partners">{}</a><a href="/admin/moderation">{}</a></nav>"#,
        esc(v.t("nav-admin")),
        esc(v.t("admin-invites")),
        esc(v.t("admin-accounts")),
        esc(v.t("admin-partners")),
        esc(v.t("moderation")),
    )
}

fn invite_state_text(v: &Viewer, s: InviteState) -> &'static str {
    match s {
        InviteState::Usable => v.t("invite-usable"),
        InviteState::Expired => v.t("invite-expired"),
        InviteState::UsedUp => v.t("invite-used-up"),
        InviteState::Revoked => v.t("invite-revoked"),
    }
}

async fn admin_home(v: Viewer, State(state): State<AppState>) -> PageResult {
    let by = administrator(&v)?;
    let invites = admin::invites(&state.app, &by, None, 50).await?;
    let now = state.app.now();
    let mut h = admin_nav(&v);
    h.push_str(&format!(
        r#"<section class="box"><h2>{t}</h2><p class="hint">{hint}</p><form method="post" action="/admin/invites" class="stack">{csrf}
<label for="label">{ll}</label><input id="label" name="label" maxlength="200">
<label for="valid_days">{dl}</label><input id="valid_days" name="valid_days" type="number" min="1" max="90" value="7">
<label for="max_uses">{ml}</label><input id="max_uses" name="max_uses" type="number" min="1" max="1000" value="1">
<button type="submit" class="primary">{b}</button></form></section>
<section><h2>{lt}</h2><table><thead><tr><th scope="col">{c1}</th><th scope="col">{c2}</th><th scope="col">{c3}</th><th scope="col">{c4}</th><th scope="col"><span class="sr">{c5}</span></th></tr></thead><tbody>"#,
        t = esc(v.t("new-patient-invite")),
        hint = esc(v.t("patient-invite-hint")),
        csrf = v.csrf_field(),
        ll = esc(v.t("invite-label")),
        dl = esc(v.t("valid-days")),
        ml = esc(v.t("max-uses")),
        b = esc(v.t("create")),
        lt = esc(v.t("admin-invites")),
        c1 = esc(v.t("invite-label")),
        c2 = esc(v.t("state")),
        c3 = esc(v.t("expires")),
        c4 = esc(v.t("used")),
        c5 = esc(v.t("action")),
    ));
    for i in invites {
        let st = i.state(now);
        let revoke = if st == InviteState::Usable {
            v.button_form(
                &format!("/admin/invites/{}/revoke", i.id),
                &[],
                v.t("revoke"),
                "link",
            )
        } else {
            String::new()
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(i.label.as_deref().unwrap_or(v.t("invite-no-label"))),
            esc(invite_state_text(&v, st)),
            esc(&v.time(i.expires_at)),
            esc(&format!(
                "{} / {}",
                v.num(u64::from(i.uses)),
                v.num(u64::from(i.max_uses))
            )),
            revoke
        ));
    }
    h.push_str("</tbody></table></section>");
    Ok(v.page(v.t("nav-admin"), &h))
}

async fn create_invite(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    let days: Option<i64> = form.get("valid_days").and_then(|d| d.trim().parse().ok());
    let max_uses: Option<u32> = form.get("max_uses").and_then(|d| d.trim().parse().ok());
    let label = form.get("label").map(str::to_owned);
    let admin::CreatedInvite { invite, url, .. } =
        admin::create_patient_invite(&state.app, &by, label, days.map(|d| d * 24), max_uses)
            .await?;
    // The token is shown once, so the QR code is drawn into this page rather than served from a
    // URL that would need it; a data: image is still a real <img> for WeChat's long-press.
    let png = crate::qr::png(&url)?;
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    let h = format!(
        r#"{nav}<p role="status">{done}</p><p class="qr"><img src="data:image/png;base64,{data}" width="280" height="280" alt="{alt}"></p>
<p><strong>{until}</strong></p><p>{uses}</p>
<p class="link"><label for="invite-url">{ll}</label><input id="invite-url" readonly value="{url}"></p><p class="hint">{once}</p>
{revoke}"#,
        nav = admin_nav(&v),
        done = esc(v.t("invite-created")),
        alt = esc(v.t("qr-alt")),
        until = esc(&v.tf("valid-until", &[("time", &v.time(invite.expires_at))])),
        uses = esc(&v.tf(
            "uses-of",
            &[("n", "0"), ("max", &v.num(u64::from(invite.max_uses)))]
        )),
        ll = esc(v.t("invite-link")),
        url = esc(&url),
        once = esc(v.t("invite-once")),
        revoke = v.button_form(
            &format!("/admin/invites/{}/revoke", invite.id),
            &[],
            v.t("revoke"),
            "danger"
        ),
    );
    Ok(v.page(v.t("new-patient-invite"), &h))
}

async fn revoke_invite(
    v: Viewer,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    admin::revoke_invite(&state.app, &by, id).await?;
    Ok(see_other("/admin"))
}

fn role_text(v: &Viewer, r: Role) -> &'static str {
    match r {
        Role::Admin => v.t("account-admin"),
        Role::Staff => v.t("account-staff"),
        Role::Doctor => v.t("account-doctor"),
        Role::Patient => v.t("account-patient"),
    }
}

fn credential_text(v: &Viewer, s: Option<CredentialStatus>) -> &'static str {
    match s {
        None => v.t("credential-none"),
        Some(CredentialStatus::Valid) => v.t("credential-valid"),
        Some(CredentialStatus::Expired) => v.t("credential-expired"),
        Some(CredentialStatus::Revoked) => v.t("credential-revoked"),
    }
}

async fn accounts(v: Viewer, State(state): State<AppState>) -> PageResult {
    let by = administrator(&v)?;
    let now = state.app.now();
    let mut h = admin_nav(&v);
    h.push_str(&format!(
        r#"<section class="box"><h2>{t}</h2><form method="post" action="/admin/accounts" class="stack">{csrf}
<label for="role">{rl}</label><select id="role" name="role"><option value="doctor">{rd}</option><option value="staff">{rs}</option><option value="admin">{ra}</option></select>
<label for="username">{ul}</label><input id="username" name="username" required autocapitalize="none">
<label for="display_name">{dl}</label><input id="display_name" name="display_name" required maxlength="64">
<p class="hint">{ph}</p><button type="submit" class="primary">{b}</button></form></section>
<section><h2>{lt}</h2><table><thead><tr><th scope="col">{c1}</th><th scope="col">{c2}</th><th scope="col">{c3}</th><th scope="col">{c4}</th></tr></thead><tbody>"#,
        t = esc(v.t("new-account")),
        csrf = v.csrf_field(),
        rl = esc(v.t("account-role")),
        rd = esc(v.t("account-doctor")),
        rs = esc(v.t("account-staff")),
        ra = esc(v.t("account-admin")),
        ul = esc(v.t("username")),
        dl = esc(v.t("display-name")),
        ph = esc(v.t("password-generated-hint")),
        b = esc(v.t("create")),
        lt = esc(v.t("admin-accounts")),
        c1 = esc(v.t("display-name")),
        c2 = esc(v.t("username")),
        c3 = esc(v.t("account-role")),
        c4 = esc(v.t("credential")),
    ));
    for role in [Role::Doctor, Role::Staff, Role::Admin] {
        for account in admin::accounts(&state.app, &by, Some(role), None, 200).await? {
            let cred = account.credential.map(|c| c.status(now));
            let u = account.user;
            h.push_str(&format!(
                r#"<tr><td><a href="/admin/accounts/{}">{}</a>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                seg(&u.username),
                esc(&u.display_name),
                if u.disabled {
                    format!(" ({})", esc(v.t("disabled")))
                } else {
                    String::new()
                },
                esc(&u.username),
                esc(role_text(&v, u.role)),
                if role == Role::Doctor {
                    esc(credential_text(&v, cred))
                } else {
                    "—".to_owned()
                },
            ));
        }
    }
    h.push_str("</tbody></table></section>");
    Ok(v.page(v.t("admin-accounts"), &h))
}

async fn create_account(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    let role = match form.get("role") {
        Some("doctor") => Role::Doctor,
        Some("staff") => Role::Staff,
        Some("admin") => Role::Admin,
        _ => {
            return Err(
                ApiError::unprocessable("invalid_field", "role: doctor, staff or admin").into(),
            );
        }
    };
    let (user, generated) = admin::create_staff_account(
        &state.app,
        &by,
        &form.text("username"),
        &form.text("display_name"),
        role,
        None,
    )
    .await?;
    let h = format!(
        r#"{nav}<p role="status">{done}</p><p>{u}: <strong>{name}</strong></p><p><label for="pw">{pl}</label> <input id="pw" readonly value="{pw}"></p><p class="hint">{once}</p><p><a href="/admin/accounts/{seg}">{next}</a></p>"#,
        nav = admin_nav(&v),
        done = esc(v.t("account-created")),
        u = esc(v.t("username")),
        name = esc(&user.username),
        pl = esc(v.t("password")),
        pw = esc(generated.as_deref().unwrap_or("")),
        once = esc(v.t("password-once")),
        seg = seg(&user.username),
        next = esc(if role == Role::Doctor {
            v.t("record-credential")
        } else {
            v.t("back")
        }),
    );
    Ok(v.page(v.t("new-account"), &h))
}

async fn account(
    v: Viewer,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> PageResult {
    let by = administrator(&v)?;
    let account = admin::account(&state.app, &by, &username).await?;
    let (user, cred) = (account.user, account.credential);
    let now = state.app.now();
    let mut h = admin_nav(&v);
    h.push_str(&format!(
        "<p>{}: {}</p><p>{}: {}</p>",
        esc(v.t("username")),
        esc(&user.username),
        esc(v.t("account-role")),
        esc(role_text(&v, user.role))
    ));
    if user.role == Role::Doctor {
        h.push_str(&format!("<h2>{}</h2>", esc(v.t("credential"))));
        match &cred {
            Some(c) => {
                h.push_str(&format!(
                    r#"<p class="badge {cls}">{status}</p><dl><dt>{tl}</dt><dd>{title}</dd><dt>{sl}</dt><dd>{spec}</dd><dt>{ll}</dt><dd>{lic}</dd><dt>{cl}</dt><dd>{checked}</dd></dl>"#,
                    cls = if c.status(now) == CredentialStatus::Valid { "ok" } else { "warn" },
                    status = esc(&v.tf(
                        "verified-by",
                        &[
                            ("status", credential_text(&v, Some(c.status(now)))),
                            ("hospital", &state.app.settings.hospital_name)
                        ]
                    )),
                    tl = esc(v.t("cred-title")),
                    title = esc(&c.title),
                    sl = esc(v.t("cred-specialty")),
                    spec = esc(&c.specialty),
                    ll = esc(v.t("cred-licence")),
                    lic = esc(&c.licence_number),
                    cl = esc(v.t("cred-checked-on")),
                    checked = esc(&c.checked_on.to_string()),
                ));
                if c.status(now) == CredentialStatus::Valid {
                    h.push_str(&v.button_form(
                        &format!("/admin/accounts/{}/credential/revoke", seg(&user.username)),
                        &[],
                        v.t("revoke-credential"),
                        "danger",
                    ));
                }
            }
            None => h.push_str(&format!("<p>{}</p>", esc(v.t("credential-none")))),
        }
        let today = now.to_datetime().date_naive().to_string();
        h.push_str(&format!(
            r#"<section class="box"><h2>{t}</h2><form method="post" action="/admin/accounts/{u}/credential" class="stack">{csrf}
<label for="title">{tl}</label><input id="title" name="title" required value="{title}">
<label for="specialty">{sl}</label><input id="specialty" name="specialty" required value="{spec}">
<label for="licence_number">{ll}</label><input id="licence_number" name="licence_number" required value="{lic}">
<label for="checked_on">{cl}</label><input id="checked_on" name="checked_on" type="date" required value="{today}">
<label for="valid_until">{vl}</label><input id="valid_until" name="valid_until" type="date">
<button type="submit" class="primary">{b}</button></form></section>"#,
            t = esc(v.t("record-credential")),
            u = seg(&user.username),
            csrf = v.csrf_field(),
            tl = esc(v.t("cred-title")),
            sl = esc(v.t("cred-specialty")),
            ll = esc(v.t("cred-licence")),
            cl = esc(v.t("cred-checked-on")),
            vl = esc(v.t("cred-valid-until")),
            b = esc(v.t("record-credential")),
            title = esc(cred.as_ref().map_or("", |c| c.title.as_str())),
            spec = esc(cred.as_ref().map_or("", |c| c.specialty.as_str())),
            lic = esc(cred.as_ref().map_or("", |c| c.licence_number.as_str())),
        ));
    }
    Ok(v.page(&user.display_name, &h))
}

fn parse_date(s: &str, field: &str) -> Result<chrono::NaiveDate, ApiError> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::unprocessable("invalid_field", format!("{field}: YYYY-MM-DD")))
}

async fn set_credential(
    v: Viewer,
    State(state): State<AppState>,
    Path(username): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    let checked_on = parse_date(&form.text("checked_on"), "checked_on")?;
    let valid_until = match form
        .get("valid_until")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        // The last day the credential is valid, as `caremesh credential set --valid-until`.
        Some(s) => admin::valid_through(parse_date(s, "valid_until")?),
    };
    admin::record_credential(
        &state.app,
        &by,
        &username,
        CheckedCredential {
            title: form.text("title"),
            specialty: form.text("specialty"),
            licence_number: form.text("licence_number"),
            checked_on,
            valid_until,
        },
    )
    .await?;
    Ok(see_other(&format!("/admin/accounts/{}", seg(&username))))
}

async fn revoke_credential(
    v: Viewer,
    State(state): State<AppState>,
    Path(username): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    admin::revoke_credential(&state.app, &by, &username).await?;
    Ok(see_other(&format!("/admin/accounts/{}", seg(&username))))
}

async fn partners(v: Viewer, State(state): State<AppState>) -> PageResult {
    let by = administrator(&v)?;
    let list = admin::partners(&state.app, &by).await?;
    let clocks = caremesh_app::node::partner_clocks(&state.app).await?;
    let mut h = admin_nav(&v);
    h.push_str(&format!(
        r#"<p class="hint">{}</p><section class="box"><h2>{}</h2><form method="post" action="/admin/partners" class="stack">{}<label for="partner">{}</label><input id="partner" name="partner" required placeholder="https://caremesh.hospital-b.example"><button type="submit" class="primary">{}</button></form></section><section><h2>{}</h2>"#,
        esc(v.t("partners-hint")),
        esc(v.t("add-partner")),
        v.csrf_field(),
        esc(v.t("partner-url")),
        esc(v.t("add")),
        esc(v.t("admin-partners")),
    ));
    if list.is_empty() {
        h.push_str(&format!("<p>{}</p>", esc(v.t("no-partners"))));
    }
    h.push_str(r#"<ul class="list">"#);
    for p in list {
        h.push_str(&format!(
            "<li><strong>{}</strong> · {} · {} ",
            esc(&p.authority),
            esc(&p.base_url),
            esc(&v.time(p.added_at))
        ));
        if let Some(c) = clocks
            .iter()
            .find(|c| c.partner == p.authority && c.is_off())
        {
            let key = if c.skew_secs > 0 {
                "partner-clock-ahead"
            } else {
                "partner-clock-behind"
            };
            h.push_str(&format!(
                "<span class=\"badge warn\" role=\"status\">{}</span> ",
                esc(&v.tf(
                    key,
                    &[
                        ("secs", &c.skew_secs.abs().to_string()),
                        ("time", &v.time(c.observed_at)),
                    ]
                ))
            ));
        }
        if p.source == "config" {
            h.push_str(&format!(
                "<span class=\"meta\">{}</span>",
                esc(v.t("partner-in-config"))
            ));
        } else {
            h.push_str(&v.button_form(
                "/admin/partners/remove",
                &[("partner", &p.authority)],
                v.t("remove"),
                "link",
            ));
        }
        h.push_str("</li>");
    }
    h.push_str("</ul></section>");
    Ok(v.page(v.t("admin-partners"), &h))
}

async fn add_partner(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    admin::add_partner(&state.app, &by, &form.text("partner")).await?;
    Ok(see_other("/admin/partners"))
}

async fn remove_partner(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let by = administrator(&v)?;
    admin::remove_partner(&state.app, &by, &form.text("partner")).await?;
    Ok(see_other("/admin/partners"))
}

async fn moderation(v: Viewer, State(state): State<AppState>) -> PageResult {
    let by = administrator(&v)?;
    let groups = admin::open_reports_by_group(&state.app, &by).await?;
    let mut h = admin_nav(&v);
    h.push_str(&format!(
        r#"<table><thead><tr><th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>"#,
        esc(v.t("group")),
        esc(v.t("open-reports"))
    ));
    for (g, open) in groups {
        h.push_str(&format!(
            r#"<tr><td><a href="/g/{}/moderation">{}</a></td><td>{}</td></tr>"#,
            seg(&g.public_id),
            esc(&g.settings.name),
            esc(&v.num(open))
        ));
    }
    h.push_str("</tbody></table>");
    Ok(v.page(v.t("moderation"), &h))
}
