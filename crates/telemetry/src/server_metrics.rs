//! Server-side request duration for HTTP (`http.server.request.duration`) and gRPC
//! (`rpc.server.duration`), as tower layers, named and labelled per the OpenTelemetry semantic
//! conventions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;

use crate::semconv;

/// How to name the route of a request (e.g. axum's `MatchedPath`).
pub type RouteOf = fn(&http::Extensions) -> Option<String>;

#[derive(Clone, Copy)]
enum Kind {
    Http(RouteOf),
    Rpc,
}

/// Records the duration of every request the wrapped service answers.
#[derive(Clone)]
pub struct ServerMetricsLayer {
    kind: Kind,
    histogram: Arc<Histogram<f64>>,
}

impl ServerMetricsLayer {
    /// HTTP: `http.server.request.duration` by method, route and status code. Add it with
    /// axum's `route_layer` so the matched route is known.
    pub fn http(route_of: RouteOf) -> Self {
        let histogram = crate::metrics::meter()
            .f64_histogram(semconv::HTTP_SERVER_REQUEST_DURATION)
            .with_unit("s")
            .with_description("duration of HTTP server requests")
            .build();
        Self {
            kind: Kind::Http(route_of),
            histogram: Arc::new(histogram),
        }
    }

    /// gRPC: `rpc.server.duration` by service, method and gRPC status code (from the headers of
    /// a trailers-only answer; an answer with a body is counted as OK).
    pub fn grpc() -> Self {
        let histogram = crate::metrics::meter()
            .f64_histogram(semconv::RPC_SERVER_DURATION)
            .with_unit("s")
            .with_description("duration of gRPC server calls")
            .build();
        Self {
            kind: Kind::Rpc,
            histogram: Arc::new(histogram),
        }
    }
}

impl<S> tower::Layer<S> for ServerMetricsLayer {
    type Service = ServerMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ServerMetricsLayer`] wraps.
#[derive(Clone)]
pub struct ServerMetrics<S> {
    inner: S,
    layer: ServerMetricsLayer,
}

impl<S, B, RB> tower::Service<http::Request<B>> for ServerMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let mut attrs = match self.layer.kind {
            Kind::Http(route_of) => vec![
                KeyValue::new("http.request.method", request.method().as_str().to_owned()),
                KeyValue::new("http.route", route_of(request.extensions()).unwrap_or_else(|| "unmatched".into())),
            ],
            Kind::Rpc => {
                let path = request.uri().path().trim_start_matches('/');
                let (service, method) = path.split_once('/').unwrap_or((path, ""));
                vec![
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service.to_owned()),
                    KeyValue::new("rpc.method", method.to_owned()),
                ]
            }
        };
        let kind = self.layer.kind;
        let histogram = self.layer.histogram.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                match kind {
                    Kind::Http(_) => attrs.push(KeyValue::new("http.response.status_code", i64::from(response.status().as_u16()))),
                    Kind::Rpc => {
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(0);
                        attrs.push(KeyValue::new("rpc.grpc.status_code", code));
                    }
                }
            }
            histogram.record(started.elapsed().as_secs_f64(), &attrs);
            result
        })
    }
}
