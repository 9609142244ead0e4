//! Timestamps as the API writes them: RFC 3339 text.

/// Formats a protobuf timestamp as RFC 3339.
pub fn rfc3339(ts: &prost_types::Timestamp) -> Option<String> {
    switchboard_proto::time::datetime(ts)?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A protobuf timestamp, when present, as RFC 3339.
pub fn timestamp(value: Option<&prost_types::Timestamp>) -> Option<String> {
    value.and_then(rfc3339)
}
