//! One error vocabulary for every service, mapped once to gRPC codes and HTTP statuses.

use http::StatusCode;
use tonic::Code;

/// What went wrong, in words a caller can act on; transports map it to their own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller is authenticated but may not do this.
    PermissionDenied,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// The system is not in a state that allows the operation (a business rule refused it).
    FailedPrecondition,
    /// A concurrent change won; retrying may succeed.
    Aborted,
    /// A quota or rate limit was hit.
    ResourceExhausted,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The body has a content type the endpoint does not take.
    UnsupportedMediaType,
    /// A dependency is down; retry later.
    Unavailable,
    /// The operation did not finish in time.
    DeadlineExceeded,
    /// A bug or an unexpected failure; details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// Returns the gRPC status code for this error.
    pub fn grpc_code(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Aborted => Code::Aborted,
            Self::ResourceExhausted | Self::PayloadTooLarge => Code::ResourceExhausted,
            Self::UnsupportedMediaType => Code::InvalidArgument,
            Self::Unavailable => Code::Unavailable,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Internal => Code::Internal,
        }
    }

    /// Returns the HTTP status for this error.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => StatusCode::CONFLICT,
            Self::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the stable snake_case name used in JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::ResourceExhausted => "resource_exhausted",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable => "unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Internal => "internal",
        }
    }

    /// The code of a status another service answered with.
    pub fn of(status: &tonic::Status) -> Self {
        Self::from_grpc_code(status.code())
    }

    /// Maps a gRPC code received from another service back to an [`ErrorCode`].
    pub fn from_grpc_code(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::PermissionDenied,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists => Self::AlreadyExists,
            Code::FailedPrecondition => Self::FailedPrecondition,
            Code::Aborted => Self::Aborted,
            Code::ResourceExhausted => Self::ResourceExhausted,
            Code::Unavailable => Self::Unavailable,
            Code::DeadlineExceeded | Code::Cancelled => Self::DeadlineExceeded,
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => Self::Internal,
        }
    }

    /// Builds a `tonic::Status` carrying this code and a caller-safe message.
    pub fn to_status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), message)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 13] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Aborted,
        ErrorCode::ResourceExhausted,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    #[test]
    fn grpc_round_trip_is_lossless_except_for_http_only_codes() {
        for code in ALL {
            let back = ErrorCode::from_grpc_code(code.grpc_code());
            match code {
                // gRPC has no "too large" or "unsupported media type": they travel as their nearest code.
                ErrorCode::PayloadTooLarge => assert_eq!(back, ErrorCode::ResourceExhausted),
                ErrorCode::UnsupportedMediaType => assert_eq!(back, ErrorCode::InvalidArgument),
                _ => assert_eq!(back, code),
            }
        }
    }

    #[test]
    fn business_refusals_are_client_errors_and_failures_are_server_errors() {
        assert_eq!(ErrorCode::FailedPrecondition.http_status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ErrorCode::FailedPrecondition.grpc_code(), Code::FailedPrecondition);
        assert_eq!(ErrorCode::Unavailable.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ErrorCode::Internal.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ErrorCode::NotFound.grpc_code(), Code::NotFound);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
