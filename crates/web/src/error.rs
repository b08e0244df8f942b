//! The one error type of the HTTP layer. Every failure becomes `{"error": "snake_code", "message":
//! "..."}` with the right status; details of 5xx errors are logged here, once, and never returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use caremesh_app::model::StoreError;
use caremesh_domain::ValidationError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in first: send a session cookie or an `Authorization: Bearer` token",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn too_many(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
        }
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// The store failed (database down, disk full): logged with its cause; the client is told to
    /// try again (503 with `Retry-After`), since nothing was changed and it was not its fault.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "store unavailable");
        Self {
            retry_after_secs: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the node's database is unavailable; nothing was changed, try again shortly",
            )
        }
    }

    /// A server-side failure: logged with its cause, shown to the client without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on the server; it has been logged",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict { code, message } => Self::conflict(code, message),
            // Not the client's fault, and nothing was changed: try again.
            StoreError::NotReady(cause) => Self::unavailable(cause),
            StoreError::Other(cause) => Self::unavailable(cause),
        }
    }
}

impl From<caremesh_app::AppError> for ApiError {
    fn from(e: caremesh_app::AppError) -> Self {
        use caremesh_app::AppError as A;
        let code = e.code();
        match e {
            A::Unauthenticated => Self::unauthorized(),
            A::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, code, e.to_string()),
            A::Forbidden { message, .. } => Self::new(StatusCode::FORBIDDEN, code, message),
            A::NotFound(what) => Self::not_found(what),
            A::Conflict { message, .. } => Self::conflict(code, message),
            A::Gone { message, .. } => Self::new(StatusCode::GONE, code, message),
            A::Invalid { message, .. } => Self::unprocessable(code, message),
            A::BadRequest { message, .. } => Self::bad_request(code, message),
            A::TooMany {
                message,
                retry_after_secs,
            } => Self::too_many(message, retry_after_secs),
            A::TooLarge { limit } => Self::payload_too_large(limit),
            A::FileTooLarge { message, .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
            }
            A::UnsupportedType { message, .. } => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message)
            }
            A::Busy {
                retry_after_secs, ..
            } => Self {
                retry_after_secs: Some(retry_after_secs.max(1)),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    format!("{e}; nothing was changed"),
                )
            },
            A::Unavailable(cause) => Self::unavailable(cause),
            A::Upstream(cause) => {
                tracing::warn!(error = %cause, "a partner node did not answer");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    code,
                    format!("a partner hospital's node did not answer: {cause}"),
                )
            }
            A::Federation {
                status, message, ..
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                if status.is_server_error() {
                    return Self::internal(message);
                }
                tracing::info!(code, error = %message, "federated request refused");
                Self::new(status, code, message)
            }
            A::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::unprocessable("invalid_field", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
