//! The API's errors: one JSON shape, `{"error":{"code","message","details"}}`, with the status
//! and code mapped from the one [`ErrorCode`]; gRPC errors from session and routing are carried
//! through (the 24-hour window denial keeps its rule and `window_expires_at`).

use axum::Json;
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;
use switchboard_proto::session::v1::PolicyViolation;
use switchboard_service_kit::ErrorCode;
use utoipa::ToSchema;

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A message a person can act on.
    pub message: String,
    /// Machine-readable specifics (the rule that refused a send, say).
    pub details: serde_json::Value,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorInner,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorInner {
    /// Stable snake_case code: `invalid_argument`, `unauthenticated`, `permission_denied`,
    /// `not_found`, `already_exists`, `failed_precondition`, `unavailable`, ….
    code: String,
    /// What went wrong, for people.
    message: String,
    /// Specifics, e.g. `{"rule": "window_closed", "window_expires_at": "…"}`.
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: serde_json::json!({}),
        }
    }

    /// `400`: the request is malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// `403`: the same answer whatever the reason, so nothing leaks.
    pub fn forbidden() -> Self {
        Self::new(ErrorCode::PermissionDenied, "this key may not do that")
    }

    /// `404`.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// `500`: logs the cause, returns nothing of it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = match ErrorCode::of(&status) {
            ErrorCode::Internal => return Self::internal(format!("upstream: {} {}", status.code(), status.message())),
            code => code,
        };
        let mut error = Self::new(code, status.message());
        if code == ErrorCode::FailedPrecondition
            && !status.details().is_empty()
            && let Ok(violation) = PolicyViolation::decode(status.details())
        {
            error.details = serde_json::json!({
                "rule": violation.rule,
                "window_expires_at": violation.window_expires_at.as_ref().and_then(crate::timefmt::rfc3339),
            });
        }
        if code == ErrorCode::Unavailable {
            tracing::warn!(message = status.message(), "a dependency is unavailable");
        }
        error
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match switchboard_storage::StorageError::from(error) {
            switchboard_storage::StorageError::Unavailable(e) => Self::new(ErrorCode::Unavailable, format!("database unavailable: {e}")),
            switchboard_storage::StorageError::Unstorable(e) => Self::invalid(format!("a value cannot be stored: {e}")),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInner {
                code: self.code.as_str().to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        (self.code.http_status(), Json(body)).into_response()
    }
}

pub use switchboard_service_kit::parse_id;

impl From<switchboard_service_kit::InvalidId> for ApiError {
    fn from(e: switchboard_service_kit::InvalidId) -> Self {
        Self::invalid(e.to_string())
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
