//! Session errors, mapped once to gRPC statuses. Internal failures are logged with their cause
//! and answered with a generic message; nothing secret ever reaches a status.

use switchboard_domain::policy::PolicyDenial;
use switchboard_service_kit::ErrorCode;
use switchboard_storage::StorageError;
use time::OffsetDateTime;

/// A session failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
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
    /// The outbound policy refused the message.
    #[error("{denial}")]
    Policy {
        /// The rule that refused it.
        denial: PolicyDenial,
        /// When the window closes (or closed).
        window_expires_at: Option<OffsetDateTime>,
    },
    /// The caller may not have it (a file URL whose signature is wrong or expired).
    #[error("{0}")]
    Forbidden(String),
    /// A dependency is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (logged, not returned).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl SessionError {
    /// Returns the error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::Precondition(_) | Self::Policy { .. } => ErrorCode::FailedPrecondition,
            Self::Forbidden(_) => ErrorCode::PermissionDenied,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Builds an invalid-argument error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

impl From<StorageError> for SessionError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound => Self::NotFound("record"),
            StorageError::AlreadyExists { constraint } => Self::AlreadyExists(match constraint.as_str() {
                "channels_account_sid_live" => "a channel for this Twilio account already exists".into(),
                "numbers_phone_live" => "this WhatsApp number is already configured".into(),
                "templates_number_id_name_key" => "a template with this name already exists on this number".into(),
                other => format!("already exists ({other})"),
            }),
            StorageError::Check { constraint } => Self::Invalid(format!("a value breaks rule {constraint}")),
            StorageError::Unstorable(reason) => Self::Invalid(format!("a value cannot be stored: {reason}")),
            StorageError::ForeignKey { .. } => Self::Precondition("a referenced record is missing or still in use".into()),
            StorageError::Conflict | StorageError::Unavailable(_) => Self::Unavailable(error.to_string()),
            StorageError::Database(e) => Self::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for SessionError {
    fn from(error: sqlx::Error) -> Self {
        StorageError::from(error).into()
    }
}

pub use switchboard_service_kit::parse_id;

impl From<switchboard_service_kit::InvalidId> for SessionError {
    fn from(e: switchboard_service_kit::InvalidId) -> Self {
        Self::Invalid(e.to_string())
    }
}
