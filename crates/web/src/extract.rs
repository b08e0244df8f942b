//! Extractors for the checks every route shares: JSON bodies whose rejections are API errors, the
//! logged-in account (`AuthUser`), an administrator (`AdminUser`) and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use caremesh_app::admin::Administrator;
use caremesh_app::model::{Session, User};
use serde::de::DeserializeOwned;

use crate::auth::SESSION_COOKIE;
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body. Malformed JSON, wrong types, a missing content type and oversized bodies
/// are refused with the API's error body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection, state.settings.max_body_bytes)),
        }
    }
}

/// An optional JSON body: a request without a body (no `Content-Type`, no length) gives `None`;
/// a body that is there must be valid.
impl<T: DeserializeOwned> axum::extract::OptionalFromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        let h = req.headers();
        let declared_len = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let has_body = h.contains_key(header::CONTENT_TYPE)
            || h.contains_key(header::TRANSFER_ENCODING)
            || declared_len.is_some_and(|n| n > 0);
        if !has_body {
            return Ok(None);
        }
        <Self as FromRequest<AppState>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn json_rejection(r: JsonRejection, limit: usize) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::unprocessable(
            "invalid_body",
            format!(
                "the JSON body does not have the expected fields: {}",
                e.body_text()
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("the request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::payload_too_large(limit)
        }
        other => ApiError::bad_request("unreadable_body", other.body_text()),
    }
}

/// The account behind the request's session cookie or bearer token. 401 when there is none, it is
/// unknown, expired, or belongs to a disabled account.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user: User,
    pub session: Session,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(parts, state)?;
        let (session, user) = caremesh_app::accounts::session_user(&state.app, &token).await?;
        Ok(Self { user, session })
    }
}

/// A logged-in hospital administrator: 401 for anonymous requests, 403 for other roles.
#[derive(Clone, Debug)]
pub struct AdminUser(pub Administrator);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = AuthUser::from_request_parts(parts, state).await?;
        Ok(Self(Administrator::account(&auth.user)?))
    }
}

/// The request's session token (bearer first, then the cookie). Cookie-authenticated writes
/// from another site are refused here, before any lookup.
pub(crate) fn session_token(parts: &Parts, state: &AppState) -> Result<String, ApiError> {
    let (token, from_cookie) = match bearer_token(parts) {
        Some(t) => (t, false),
        None => (
            cookie_token(parts).ok_or_else(ApiError::unauthorized)?,
            true,
        ),
    };
    if from_cookie && !is_safe(&parts.method) {
        check_same_origin(parts, state)?;
    }
    Ok(token)
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Cookie-authenticated writes must come from the node's own pages. Browsers send `Origin` on
/// cross-site requests and `Sec-Fetch-Site`; either pointing elsewhere is refused.
pub(crate) fn check_same_origin(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin_refused",
            "cookie-authenticated changes must come from this node's own pages",
        )
    };
    if let Some(site) = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        && site == "cross-site"
    {
        return Err(refused());
    }
    if let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let ours = state.settings.base_url.origin().ascii_serialization();
        if origin != ours {
            return Err(refused());
        }
    }
    Ok(())
}

pub(crate) fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

pub(crate) fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most address
/// in `X-Forwarded-For` that is not itself a trusted proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let trusted = &state.settings.trusted_proxies;
        let Some(peer) = peer else {
            return Ok(Self(None));
        };
        if !trusted.contains(&peer) {
            return Ok(Self(Some(peer)));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        let client = forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .unwrap_or(peer);
        Ok(Self(Some(client)))
    }
}

/// A path parameter whose rejection (e.g. `abc` where a number is expected) is an API error.
pub struct ApiPath<T>(pub T);

impl<T> FromRequestParts<AppState> for ApiPath<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// A query string whose rejection is an API error.
pub struct ApiQuery<T>(pub T);

impl<T> FromRequestParts<AppState> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}
