//! The node's face to partners and to its operators: its actor and its people's actors,
//! WebFinger, NodeInfo, the signed-GET check of requests from partner nodes, and readiness.

use caremesh_domain::Role;
use caremesh_federation::{InboundRequest, actors};
use serde_json::{Value, json};

use crate::{App, AppError, AppResult};

/// `"sqlite"` or `"postgres"`.
pub fn backend(app: &App) -> &'static str {
    app.store.backend()
}

/// Whether the node can serve: the database answers, every migration is applied, writes work.
pub async fn ready(app: &App) -> AppResult<()> {
    Ok(app.store.ready().await?)
}

/// How far each partner's clock is from this node's, as their signed requests last showed it;
/// only partners still listed (one entry each), by authority. For the metrics and the admin.
pub async fn partner_clocks(app: &App) -> AppResult<Vec<crate::model::PartnerSkew>> {
    let partners = app.federation.partners.all().await?;
    Ok(app
        .federation
        .clock_skews
        .all()
        .into_iter()
        .filter(|s| partners.iter().any(|p| p.authority == s.partner))
        .collect())
}

/// Largest activity the inbox accepts, in bytes.
pub fn max_activity_bytes(app: &App) -> usize {
    app.federation.settings.max_activity_bytes
}

/// Checks a signed request from a partner node (a GET of an actor or a file); answers the
/// signer's node by origin (`scheme://authority`).
pub async fn verify_signed(app: &App, req: &InboundRequest<'_>) -> AppResult<String> {
    Ok(app.federation.inbox.verify_request(req).await?.origin)
}

/// The node's own actor: public, since other nodes need its key to check this node's
/// signatures before they can sign a request for it.
pub async fn instance_actor(app: &App) -> AppResult<Value> {
    let fed = &app.federation;
    let keys = fed.keys.published(&fed.urls.instance_actor()).await?;
    Ok(actors::instance_actor(
        &fed.urls,
        &fed.settings.hospital_name,
        &keys,
    )?)
}

/// A doctor's or staff member's actor, with the credential the hospital signed, for a partner
/// node's signed GET. Patients have none (they act as per-group pseudonyms).
pub async fn person_actor(app: &App, req: &InboundRequest<'_>, username: &str) -> AppResult<Value> {
    verify_signed(app, req).await?;
    // A patient, a disabled account and a name nobody has get the same answer, so that a partner
    // cannot tell which names are patients of this hospital.
    let user = match app.store.user_by_username(username).await {
        Ok(u) if u.role != Role::Patient && !u.disabled => u,
        Ok(_) => return Err(AppError::NotFound("actor")),
        Err(e) if e.is_not_found() => return Err(AppError::NotFound("actor")),
        Err(e) => return Err(e.into()),
    };
    let credential = if user.role == Role::Doctor {
        app.store.credential(user.id).await?
    } else {
        None
    };
    Ok(app
        .federation
        .person_document(&user, credential.as_ref())
        .await?)
}

/// RFC 7033 for `acct:` URIs of the node and of doctors and staff: the actor's URL. Patients
/// are never found.
pub async fn webfinger(app: &App, resource: &str) -> AppResult<String> {
    let urls = &app.federation.urls;
    let authority = urls.authority();
    let Some((name, host)) = resource
        .strip_prefix("acct:")
        .and_then(|r| r.rsplit_once('@'))
    else {
        return Err(AppError::bad_request(
            "invalid_query",
            "resource must be an acct: URI such as acct:dr.wang@example.org",
        ));
    };
    if !host.eq_ignore_ascii_case(&authority) {
        return Err(AppError::NotFound("account"));
    }
    if name.eq_ignore_ascii_case(&authority) {
        return Ok(urls.instance_actor());
    }
    match app.store.user_by_username(&name.to_lowercase()).await {
        Ok(u) if u.role != Role::Patient && !u.disabled => Ok(urls.person(&u.username)),
        Ok(_) => Err(AppError::NotFound("account")),
        Err(e) if e.is_not_found() => Err(AppError::NotFound("account")),
        Err(e) => Err(e.into()),
    }
}

/// Where NodeInfo is served.
pub fn nodeinfo_url(app: &App) -> String {
    app.federation.urls.nodeinfo()
}

/// NodeInfo 2.1. Usage counts are left out: they say nothing a partner needs and could reveal
/// small patient populations.
pub fn nodeinfo(app: &App) -> Value {
    json!({
        "version": "2.1",
        "software": {
            "name": "caremesh",
            "version": env!("CARGO_PKG_VERSION"),
            "repository": "https://example.invalid/caremesh",
        },
        "protocols": ["activitypub"],
        "services": { "inbound": [], "outbound": [] },
        "openRegistrations": false,
        "usage": { "users": {} },
        "metadata": { "hospitalName": app.federation.settings.hospital_name },
    })
}
