//! `GET /v1/files/{file_id}/{name}?expires=…&key=…&signature=…`: the files agents upload, served
//! to Twilio (which fetches a media message's file when it takes the send). Ingress is the one
//! public service, so it serves them; it holds no key: session checks the signature and the
//! expiry (`ChannelDirectory.ReadFile`) and streams the bytes. A wrong or expired signature is a
//! 403, a file that is gone a 404, both without a hint of which files exist.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;
use serde::Deserialize;
use switchboard_proto::session::v1::ReadFileRequest;
use switchboard_service_kit::ErrorCode;

use crate::channels::ChannelDirectory;

/// The routes.
pub fn router(directory: ChannelDirectory) -> Router {
    Router::new().route("/v1/files/{file_id}/{name}", get(serve)).with_state(directory)
}

/// The signed URL's query.
#[derive(Debug, Deserialize)]
struct Signed {
    #[serde(default)]
    expires: i64,
    #[serde(default)]
    key: String,
    #[serde(default)]
    signature: String,
}

fn served() -> &'static Counter<u64> {
    static C: OnceLock<Counter<u64>> = OnceLock::new();
    C.get_or_init(|| {
        switchboard_telemetry::metrics::meter()
            .u64_counter("switchboard.ingress.files")
            .with_description("agents' files requested at their signed URLs, by outcome (ok, forbidden, not_found, unavailable)")
            .build()
    })
}

async fn serve(
    State(directory): State<ChannelDirectory>,
    Path((file_id, _name)): Path<(String, String)>,
    Query(q): Query<Signed>,
) -> Response {
    let request = ReadFileRequest {
        file_id,
        expires: q.expires,
        key_id: q.key,
        signature: q.signature,
    };
    let mut chunks = match directory.read_file(request).await {
        Ok(chunks) => chunks,
        Err(status) => return refusal(&status),
    };
    let first = match chunks.message().await {
        Ok(first) => first.unwrap_or_default(),
        Err(status) => return refusal(&status),
    };
    served().add(1, &[KeyValue::new("outcome", "ok")]);
    let content_type = HeaderValue::from_str(&first.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // The name is ours (session keeps only safe names); quotes are gone already.
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", first.file_name)).unwrap_or(HeaderValue::from_static("attachment"));
    let size = first.size_bytes;
    let body = futures_util::stream::once(async move { Ok::<_, tonic::Status>(first.data) })
        .chain(chunks.map(|chunk| chunk.map(|c| c.data)))
        .map(|r| r.map(axum::body::Bytes::from).map_err(std::io::Error::other));
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
        ],
        Body::from_stream(body),
    )
        .into_response();
    if size > 0 {
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    response
}

fn refusal(status: &tonic::Status) -> Response {
    let (code, outcome, text) = match ErrorCode::of(status) {
        ErrorCode::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden", "this file link is not valid or has expired"),
        ErrorCode::NotFound | ErrorCode::InvalidArgument => (StatusCode::NOT_FOUND, "not_found", "no such file"),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the file cannot be served right now",
        ),
    };
    served().add(1, &[KeyValue::new("outcome", outcome)]);
    tracing::info!(status = code.as_u16(), reason = status.message(), "file request refused");
    (code, text).into_response()
}
