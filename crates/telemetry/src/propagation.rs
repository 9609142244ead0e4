//! W3C `traceparent`/`tracestate` propagation across HTTP, gRPC and AMQP.
//!
//! The propagator is used directly (not through the global one) so propagation works the same
//! whether or not OTLP export is configured.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a BTreeMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Returns the remote parent context carried by HTTP (or gRPC metadata) headers.
pub fn extract_http(headers: &HeaderMap) -> Context {
    propagator().extract(&HeaderExtractor(headers))
}

/// Writes the current span's context into outgoing HTTP headers.
pub fn inject_current_http(headers: &mut HeaderMap) {
    let cx = Span::current().context();
    propagator().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Returns the current span's context as `traceparent`/`tracestate` entries (AMQP headers,
/// outbox rows).
pub fn current_context_map() -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let cx = Span::current().context();
    propagator().inject_context(&cx, &mut MapInjector(&mut map));
    map
}

/// Returns the remote parent context carried by a string map (AMQP headers, outbox rows).
pub fn extract_map(map: &BTreeMap<String, String>) -> Context {
    propagator().extract(&MapExtractor(map))
}

/// Makes `span` a child of the remote context `cx` when that context is valid.
pub fn set_parent(span: &Span, cx: Context) {
    use opentelemetry::trace::TraceContextExt as _;
    if cx.span().span_context().is_valid() {
        // An error here only means the span is disabled by the filter.
        let _ = span.set_parent(cx);
    }
}

/// Builds the server span for an incoming HTTP request, parented to the caller's trace. Named
/// `{method}` until routing knows the route template, then `{method} {route}` (OpenTelemetry's
/// HTTP server convention; see [`record_http_route`]). Use with
/// `tower_http::trace::TraceLayer::make_span_with`.
pub fn http_server_span<B>(request: &http::Request<B>) -> Span {
    let span = tracing::info_span!(
        "http.request",
        otel.name = %request.method(),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = tracing::field::Empty,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    set_parent(&span, extract_http(request.headers()));
    span
}

/// Names the current HTTP server span after its route template (`POST
/// /api/v1/conversations/{id}/messages`), once routing has matched one.
pub fn record_http_route(method: &http::Method, route: &str) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = Span::current();
    span.record("http.route", route);
    // The span has started by now (it was entered), so its OpenTelemetry name is updated
    // directly; `otel.name` is read only while a span is being built.
    span.context().span().update_name(format!("{method} {route}"));
}

/// Builds the server span for an incoming gRPC call, parented to the caller's trace, named
/// `{package.Service}/{Method}` (OpenTelemetry's RPC convention).
/// Use with `tonic::transport::Server::trace_fn`.
pub fn grpc_server_span(request: &http::Request<()>) -> Span {
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
    );
    set_parent(&span, extract_http(request.headers()));
    span
}

/// A tonic client interceptor that sends the current trace context with every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTraceInterceptor;

impl tonic::service::Interceptor for GrpcTraceInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut headers = HeaderMap::new();
        inject_current_http(&mut headers);
        for (name, value) in &headers {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_bytes()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState};

    use super::*;

    fn remote_context() -> Context {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id"),
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").expect("span id"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(sc)
    }

    #[test]
    fn map_round_trip_keeps_trace_and_span_ids() {
        let mut map = BTreeMap::new();
        propagator().inject_context(&remote_context(), &mut MapInjector(&mut map));
        assert_eq!(
            map.get("traceparent").map(String::as_str),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let back = extract_map(&map);
        assert_eq!(
            back.span().span_context().trace_id(),
            remote_context().span().span_context().trace_id()
        );
    }

    #[test]
    fn http_headers_round_trip() {
        let mut headers = HeaderMap::new();
        propagator().inject_context(&remote_context(), &mut HeaderInjector(&mut headers));
        let back = extract_http(&headers);
        assert!(back.span().span_context().is_remote());
        assert_eq!(
            back.span().span_context().span_id(),
            remote_context().span().span_context().span_id()
        );
    }

    #[test]
    fn missing_headers_give_an_invalid_context() {
        assert!(!extract_http(&HeaderMap::new()).span().span_context().is_valid());
    }
}
