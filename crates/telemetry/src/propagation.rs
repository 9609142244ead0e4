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
    inject_http(&Span::current(), headers);
}

/// Writes `span`'s context into outgoing HTTP headers.
pub fn inject_http(span: &Span, headers: &mut HeaderMap) {
    propagator().inject_context(&span.context(), &mut HeaderInjector(headers));
}

/// Returns the current span's context as `traceparent`/`tracestate` entries (AMQP headers,
/// outbox rows).
pub fn current_context_map() -> BTreeMap<String, String> {
    context_map(&Span::current())
}

/// Returns `span`'s context as `traceparent`/`tracestate` entries.
pub fn context_map(span: &Span) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    propagator().inject_context(&span.context(), &mut MapInjector(&mut map));
    map
}

/// Writes `span`'s context over the `traceparent`/`tracestate` entries of `map`.
pub fn inject_map(span: &Span, map: &mut BTreeMap<String, String>) {
    propagator().inject_context(&span.context(), &mut MapInjector(map));
}

/// The `traceparent` of `span`, when it is traced (for clients that continue a trace by hand).
pub fn traceparent(span: &Span) -> Option<String> {
    context_map(span).remove("traceparent")
}

/// Returns the remote parent context carried by a string map (AMQP headers, outbox rows).
pub fn extract_map(map: &BTreeMap<String, String>) -> Context {
    propagator().extract(&MapExtractor(map))
}

/// Returns the remote context of a stored W3C `traceparent` (a message's, a work item's).
pub fn extract_traceparent(traceparent: &str) -> Context {
    extract_map(&BTreeMap::from([("traceparent".to_owned(), traceparent.to_owned())]))
}

/// Makes `span` a child of the remote context `cx` when that context is valid.
pub fn set_parent(span: &Span, cx: Context) {
    use opentelemetry::trace::TraceContextExt as _;
    if cx.span().span_context().is_valid() {
        // An error here only means the span is disabled by the filter.
        let _ = span.set_parent(cx);
    }
}

/// Records a finished span, from `start` until now, in the trace of a stored `traceparent` (a
/// message's), linked to the current span: for work that a later, separate request does to
/// something an earlier trace made (a status callback about a message sent long before). The
/// span is recorded only when that trace was sampled.
pub fn record_in_stored_trace(traceparent: &str, name: String, start: std::time::SystemTime, attributes: Vec<opentelemetry::KeyValue>) {
    use opentelemetry::trace::{Link, Span as _, TraceContextExt as _, Tracer as _};
    let parent = extract_traceparent(traceparent);
    if !parent.span().span_context().is_sampled() {
        return;
    }
    let current = Span::current().context().span().span_context().clone();
    let links = if current.is_valid() {
        vec![Link::with_context(current)]
    } else {
        Vec::new()
    };
    let tracer = opentelemetry::global::tracer("switchboard");
    let mut span = tracer
        .span_builder(name)
        .with_start_time(start)
        .with_attributes(attributes)
        .with_links(links)
        .start_with_context(&tracer, &parent);
    span.end();
}

/// Records how an HTTP client call ended on its span: the response's status (an error unless
/// 2xx: our callers treat anything else as a failure), or `Err(kind)` when no response came
/// (`timeout`, `connect`, `transport`). The span declares `http.response.status_code`,
/// `otel.status_code` and `error.type`.
pub fn record_http_client_outcome(span: &Span, outcome: Result<u16, &'static str>) {
    match outcome {
        Ok(status) => {
            span.record("http.response.status_code", status);
            if !(200..300).contains(&status) {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", tracing::field::display(status));
            }
        }
        Err(kind) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", kind);
        }
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
        switchboard.service = tracing::field::Empty,
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

/// A gRPC call's path without its slash, and its service and method
/// (`switchboard.session.v1.SessionService`, `SendMessage`).
fn rpc_parts(path: &str) -> (&str, &str, &str) {
    let path = path.trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    (path, service, method)
}

/// Builds the server span for an incoming gRPC call, parented to the caller's trace, named
/// `{package.Service}/{Method}` (OpenTelemetry's RPC convention).
/// Use with `tonic::transport::Server::trace_fn`.
pub fn grpc_server_span(request: &http::Request<()>) -> Span {
    let (path, service, method) = rpc_parts(request.uri().path());
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        switchboard.service = crate::service::of_rpc_service(service),
    );
    set_parent(&span, extract_http(request.headers()));
    span
}

/// A gRPC channel that makes each call a client span (`{package.Service}/{Method}`, kind client,
/// OpenTelemetry's RPC convention) and sends that span's context in the call's metadata, so the
/// server's span is its child. A call made outside any span is passed through untraced.
#[derive(Clone, Debug)]
pub struct TracedChannel<S = tonic::transport::Channel> {
    inner: S,
}

impl<S> TracedChannel<S> {
    /// Wraps `inner` (a tonic `Channel`).
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for TracedChannel<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        use tracing::Instrument as _;
        if Span::current().is_none() {
            return Box::pin(self.inner.call(request));
        }
        let (path, service, method) = rpc_parts(request.uri().path());
        let span = tracing::info_span!(
            "grpc.call",
            otel.name = path,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        inject_http(&span, request.headers_mut());
        let call = self.inner.call(request);
        let recorder = span.clone();
        Box::pin(
            async move {
                let result = call.await;
                match &result {
                    // A failed call answers at once, its status in the headers; a good one sends
                    // it in the trailers, after the body.
                    Ok(response) => {
                        if let Some(code) = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                        {
                            recorder.record("rpc.grpc.status_code", code);
                            if code != 0 {
                                recorder.record("otel.status_code", "ERROR");
                            }
                        }
                    }
                    Err(_) => {
                        recorder.record("otel.status_code", "ERROR");
                    }
                }
                result
            }
            .instrument(span),
        )
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
