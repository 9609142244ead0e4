//! The one way an id arrives as text and becomes a `Uuid`: every service's requests (gRPC
//! fields, REST paths and bodies) go through [`parse_id`], so a bad id gets the same message and
//! the same `InvalidArgument` everywhere.

use crate::ErrorCode;

/// A value that should have been a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be a UUID")]
pub struct InvalidId {
    /// What the value was (`conversation_id`, …).
    pub what: String,
}

impl InvalidId {
    /// Its code: always [`ErrorCode::InvalidArgument`].
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

impl From<InvalidId> for tonic::Status {
    fn from(e: InvalidId) -> Self {
        e.code().to_status(e.to_string())
    }
}

/// Parses `raw` as a UUID; `what` names it in the error.
pub fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, InvalidId> {
    uuid::Uuid::parse_str(raw).map_err(|_| InvalidId { what: what.to_owned() })
}

/// Parses an optional UUID (`""` means none).
pub fn optional_id(raw: &str, what: &str) -> Result<Option<uuid::Uuid>, InvalidId> {
    if raw.is_empty() { Ok(None) } else { parse_id(raw, what).map(Some) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_id_names_itself_and_is_an_invalid_argument() {
        let e = parse_id("nope", "conversation_id").unwrap_err();
        assert_eq!(e.to_string(), "conversation_id must be a UUID");
        assert_eq!(tonic::Status::from(e).code(), tonic::Code::InvalidArgument);
        assert_eq!(optional_id("", "x"), Ok(None));
        assert!(optional_id("0192f000-0000-7000-8000-000000000001", "x").unwrap().is_some());
    }
}
