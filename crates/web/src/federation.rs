//! Federation endpoints: the node's actor, people's actors, WebFinger, NodeInfo and the inboxes.
//! The checks themselves live in `caremesh-federation`; this module turns HTTP into its inputs and
//! its errors into answers.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caremesh_app::model::{ACTIVITY_JSON, FederationError, InboundRequest};
use caremesh_app::node;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, ClientIp};
use crate::state::AppState;

pub fn router(max_activity_bytes: usize) -> Router<AppState> {
    let inbox = post(inbox).layer(DefaultBodyLimit::max(max_activity_bytes));
    Router::new()
        .route("/actor", get(instance_actor))
        .route("/users/{username}", get(person_actor))
        .route("/.well-known/webfinger", get(webfinger))
        .route("/.well-known/nodeinfo", get(nodeinfo_links))
        .route("/nodeinfo/2.1", get(nodeinfo))
        .route("/inbox", inbox.clone())
        .route("/actor/inbox", inbox.clone())
        .route("/users/{username}/inbox", inbox.clone())
        .route("/groups/{pid}", get(group_actor))
        .route("/groups/{pid}/inbox", inbox.clone())
        .route("/pseudonyms/{pid}", get(pseudonym_actor))
        .route("/pseudonyms/{pid}/inbox", inbox)
        .route("/media/{sha256}", get(group_file))
        .route("/api/v1/remote-groups", post(join_remote_group))
}

/// A group hosted here, for partner nodes (signed GET). Mirrors of other nodes' groups are not
/// served.
async fn group_actor(
    State(state): State<AppState>,
    ip: ClientIp,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiPath(pid): ApiPath<String>,
) -> Result<Response, ApiError> {
    node::verify_signed(&state.app, &inbound(&method, &uri, &headers, b"", ip)).await?;
    Ok(activity_json(
        caremesh_app::groups::actor_document(&state.app, &pid).await?,
    ))
}

/// A patient's per-group pseudonym, for partner nodes (signed GET).
async fn pseudonym_actor(
    State(state): State<AppState>,
    ip: ClientIp,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiPath(pid): ApiPath<String>,
) -> Result<Response, ApiError> {
    node::verify_signed(&state.app, &inbound(&method, &uri, &headers, b"", ip)).await?;
    Ok(activity_json(
        caremesh_app::groups::pseudonym_document(&state.app, &pid).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    /// The group's actor URL.
    group: String,
}

/// A file of a group's post, for the other nodes its content goes to (signed GET): for a group
/// hosted here, nodes with an active member; for a mirrored group, its host. Anyone else: 404.
async fn group_file(
    State(state): State<AppState>,
    ip: ClientIp,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiPath(sha256): ApiPath<String>,
    axum::extract::Query(q): axum::extract::Query<FileQuery>,
) -> Result<Response, ApiError> {
    let sender =
        node::verify_signed(&state.app, &inbound(&method, &uri, &headers, b"", ip)).await?;
    let (file, bytes) =
        caremesh_app::media::file_for_node(&state.app, &q.group, &sha256, &sender).await?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type).map_err(ApiError::internal)?,
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRemote {
    /// The group's actor URL on its host node.
    group: String,
    /// For patients: the name to show in that group (only this crosses to other nodes about
    /// them). Doctors and staff appear under their own name.
    display_name: Option<String>,
    /// A group invite token from the host, if the patient has one.
    invite: Option<String>,
}

/// Asks to join a group hosted by a partner hospital, as a per-group pseudonym. The membership is
/// pending until the host answers (at once with a valid invite).
async fn join_remote_group(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<JoinRemote>,
) -> Result<Response, ApiError> {
    let (group, member) = caremesh_app::remote::join(
        &state.app,
        &auth.user,
        &req.group,
        req.display_name.as_deref(),
        req.invite.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "group": group.public_id,
            "name": group.settings.name,
            "state": member.state,
        })),
    )
        .into_response())
}

impl From<FederationError> for ApiError {
    fn from(e: FederationError) -> Self {
        if let FederationError::Store(store) = e {
            // What the store refused (a conflict, something missing) keeps its own answer.
            return store.into();
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        if status.is_server_error() {
            return ApiError::internal(e);
        }
        tracing::info!(code = e.code(), error = %e, "federated request refused");
        ApiError::new(status, e.code(), e.to_string())
    }
}

fn activity_json(body: Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ACTIVITY_JSON),
    );
    resp
}

/// The node's actor is public: other nodes need its key to check this node's signatures, and
/// they cannot sign a request for it before they know it.
async fn instance_actor(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(activity_json(node::instance_actor(&state.app).await?))
}

fn inbound<'a>(
    method: &'a Method,
    uri: &'a OriginalUri,
    headers: &HeaderMap,
    body: &'a [u8],
    ClientIp(client_ip): ClientIp,
) -> InboundRequest<'a> {
    InboundRequest {
        method: method.as_str(),
        path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
        client_ip,
    }
}

/// People's actors are served only to partner nodes, on a signed GET. Patients have none.
async fn person_actor(
    State(state): State<AppState>,
    ip: ClientIp,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    ApiPath(username): ApiPath<String>,
) -> Result<Response, ApiError> {
    let request = inbound(&method, &uri, &headers, b"", ip);
    let doc = node::person_actor(&state.app, &request, &username).await?;
    Ok(activity_json(doc))
}

#[derive(Deserialize)]
struct WebfingerQuery {
    resource: Option<String>,
}

/// RFC 7033 for `acct:` URIs of the node and of doctors and staff. Patients are never found.
async fn webfinger(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WebfingerQuery>,
) -> Result<Response, ApiError> {
    let resource = q.resource.ok_or_else(|| {
        ApiError::bad_request("invalid_query", "the `resource` parameter is required")
    })?;
    let href = node::webfinger(&state.app, &resource).await?;
    let body = json!({
        "subject": resource,
        "links": [{ "rel": "self", "type": ACTIVITY_JSON, "href": href }],
    });
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jrd+json"),
    );
    Ok(resp)
}

async fn nodeinfo_links(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
            "href": node::nodeinfo_url(&state.app),
        }]
    }))
}

/// NodeInfo 2.1. Usage counts are left out: they say nothing a partner needs and could reveal
/// small patient populations.
async fn nodeinfo(State(state): State<AppState>) -> Response {
    let body = node::nodeinfo(&state.app);
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"",
        ),
    );
    resp
}

/// Every inbox (the shared one, the node's, people's) takes the same path: verify, check, store
/// once. 202 for a new activity and for a duplicate alike.
async fn inbox(
    State(state): State<AppState>,
    ip: ClientIp,
    uri: OriginalUri,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(
        media,
        "application/activity+json" | "application/ld+json" | "application/json"
    ) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "activities are sent as application/activity+json",
        ));
    }
    let limit = node::max_activity_bytes(&state.app);
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit))?;
    // Receiving runs to its end even when the sender hangs up (a partner's process may be
    // killed mid-request): what was recorded is applied now rather than by a later replay, and
    // no database transaction is abandoned half-way.
    let app = state.app.clone();
    let received = tokio::spawn(async move {
        let request = inbound(&parts.method, &uri, &parts.headers, &bytes, ip);
        caremesh_app::inbound::receive(&app, &request).await
    })
    .await
    .map_err(ApiError::internal)??;
    let status = match received {
        caremesh_app::inbound::Received::Stored => "stored",
        caremesh_app::inbound::Received::Duplicate => "duplicate",
    };
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": status }))).into_response())
}
