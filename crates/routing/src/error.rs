//! Routing errors, mapped once to gRPC statuses.

use switchboard_service_kit::ErrorCode;
use switchboard_storage::StorageError;

/// A routing failure.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Not found.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A rule refused it.
    #[error("{0}")]
    Precondition(String),
    /// The caller may not do this.
    #[error("{0}")]
    Denied(String),
    /// A dependency is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (logged, not returned).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RoutingError {
    /// Returns the error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::Precondition(_) => ErrorCode::FailedPrecondition,
            Self::Denied(_) => ErrorCode::PermissionDenied,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Maps a session gRPC error on a lifecycle call.
    pub fn from_session(status: tonic::Status) -> Self {
        match ErrorCode::of(&status) {
            ErrorCode::FailedPrecondition => Self::Precondition(status.message().to_owned()),
            ErrorCode::NotFound => Self::NotFound("conversation"),
            ErrorCode::InvalidArgument => Self::Invalid(status.message().to_owned()),
            _ => Self::Unavailable(format!("session: {}", status.message())),
        }
    }
}

impl From<StorageError> for RoutingError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound => Self::NotFound("record"),
            StorageError::AlreadyExists { .. } => Self::AlreadyExists("an object with this name already exists".into()),
            StorageError::Check { constraint } => Self::Invalid(format!("a value breaks rule {constraint}")),
            StorageError::Unstorable(reason) => Self::Invalid(format!("a value cannot be stored: {reason}")),
            StorageError::ForeignKey { .. } => Self::Precondition("a referenced record is missing or still in use".into()),
            StorageError::Conflict | StorageError::Unavailable(_) => Self::Unavailable(error.to_string()),
            StorageError::Database(e) => Self::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for RoutingError {
    fn from(error: sqlx::Error) -> Self {
        StorageError::from(error).into()
    }
}

impl From<RoutingError> for tonic::Status {
    fn from(error: RoutingError) -> Self {
        let code = error.code();
        match error {
            RoutingError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                code.to_status("internal error")
            }
            other => code.to_status(other.to_string()),
        }
    }
}

pub use switchboard_service_kit::{optional_id, parse_id};

impl From<switchboard_service_kit::InvalidId> for RoutingError {
    fn from(e: switchboard_service_kit::InvalidId) -> Self {
        Self::Invalid(e.to_string())
    }
}
