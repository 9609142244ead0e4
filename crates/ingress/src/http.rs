//! The HTTP routes. Handlers only extract the request and map the outcome to a status.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::IngressSettings;
use crate::webhooks::{Kind, Received, Refusal, Webhooks};

/// The empty TwiML answer: "received, no reply" (replies go through the REST API).
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

#[derive(Clone)]
struct AppState {
    webhooks: Arc<Webhooks>,
    body_limit: usize,
}

/// Builds the webhook routes with tracing, a request deadline and a body limit.
pub fn router(webhooks: Arc<Webhooks>, settings: &IngressSettings) -> Router {
    let state = AppState {
        webhooks,
        body_limit: settings.body_limit_bytes,
    };
    Router::new()
        .route("/v1/twilio/{channel_id}/inbound", post(inbound))
        .route("/v1/twilio/{channel_id}/status", post(status))
        .route_layer(switchboard_telemetry::server_metrics::ServerMetricsLayer::http(matched_route))
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(settings.request_timeout_ms),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(webhook_span))
}

fn matched_route(extensions: &http::Extensions) -> Option<String> {
    extensions.get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned())
}

fn webhook_span<B>(request: &http::Request<B>) -> tracing::Span {
    let kind = if request.uri().path().ends_with("/status") {
        "status"
    } else {
        "inbound"
    };
    let span = tracing::info_span!(
        "twilio.webhook",
        otel.name = %format_args!("{} /v1/twilio/{{channel_id}}/{kind}", request.method()),
        otel.kind = "server",
        http.route = %format_args!("/v1/twilio/{{channel_id}}/{kind}"),
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        idempotency_token = request.headers().get("i-twilio-idempotency-token").and_then(|v| v.to_str().ok()).unwrap_or(""),
        channel_id = tracing::field::Empty,
        message_sid = tracing::field::Empty,
        outcome = tracing::field::Empty,
        switchboard.service = "ingress",
    );
    switchboard_telemetry::propagation::set_parent(&span, switchboard_telemetry::propagation::extract_http(request.headers()));
    span
}

async fn inbound(state: State<AppState>, path: Path<String>, uri: OriginalUri, headers: HeaderMap, body: Body) -> Response {
    handle(Kind::Inbound, state, path, uri, headers, body).await
}

async fn status(state: State<AppState>, path: Path<String>, uri: OriginalUri, headers: HeaderMap, body: Body) -> Response {
    handle(Kind::Status, state, path, uri, headers, body).await
}

async fn handle(
    kind: Kind,
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    tracing::Span::current().record("channel_id", channel_id.as_str());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.body_limit) {
        return too_large();
    }
    let body: Bytes = match axum::body::to_bytes(body, state.body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => return too_large(),
    };
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let received = Received {
        kind,
        channel_id: &channel_id,
        path_and_query,
        content_type: header_str("content-type"),
        signature: header_str("x-twilio-signature"),
        signature_settings: header_str(switchboard_twilio::shared_key::SETTINGS_HEADER),
        idempotency_token: header_str("i-twilio-idempotency-token"),
        user_agent: header_str("user-agent"),
        body: &body,
    };
    match state.webhooks.handle(received).await {
        Ok(()) => match kind {
            Kind::Inbound => ([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response(),
            Kind::Status => StatusCode::NO_CONTENT.into_response(),
        },
        Err(refusal) => refused(&refusal),
    }
}

fn too_large() -> Response {
    tracing::info!(outcome = "too_large", "webhook refused");
    (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response()
}

fn refused(refusal: &Refusal) -> Response {
    (refusal.status(), format!("{refusal}\n")).into_response()
}
