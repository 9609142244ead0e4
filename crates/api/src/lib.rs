//! The api service: REST and WebSocket for admins, supervisors and agents, in front of session
//! and routing (gRPC), with API keys and roles, and an OpenAPI 3.1 document generated from the
//! handlers at `/api/v1/openapi.json`.

pub mod access;
pub mod auth;
pub mod callers;
pub mod clients;
pub mod config;
pub mod cookies;
pub mod desk;
pub mod error;
pub mod extract;
pub mod limits;
pub mod routes;
pub mod state;
pub mod stream;
pub mod timefmt;
pub mod users;
pub mod views;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use http::StatusCode;
use secrecy::ExposeSecret;
use switchboard_bus::{Broker, Consumer, ConsumerOptions, Publisher};
use switchboard_proto::ingress::v1::webhook_journal_client::WebhookJournalClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_service_kit::Runtime;
use switchboard_telemetry::propagation::TracedChannel;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::Config;
pub use state::AppState;

/// The REST and WebSocket routes with their OpenAPI document (paths under `/api/v1`).
pub fn api() -> (Router<AppState>, OpenApi) {
    let (router, mut doc) = OpenApiRouter::new()
        .nest("/api/v1", routes::router().routes(routes!(stream::ws::stream)))
        .split_for_parts();
    doc.info.title = "Switchboard API".into();
    doc.info.description = Some(
        "Contact-center API for the WhatsApp channel through Twilio: configuration (admins), queues and agents (supervisors), \
         conversations (agents). Authenticate with `Authorization: Bearer <API key>`. Errors are `{\"error\":{\"code\",\"message\",\"details\"}}`."
            .into(),
    );
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sb_…").build()),
    );
    doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "api_key",
        Vec::<String>::new(),
    )]);
    document_errors(&mut doc);
    (router, doc)
}

/// Every operation can answer with the error body: documents the statuses each kind of
/// operation can return, so clients (and schema checkers) know them.
fn document_errors(doc: &mut OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            (false, false, item.get.as_mut()),
            (false, true, item.delete.as_mut()),
            (true, false, item.post.as_mut()),
            (true, false, item.put.as_mut()),
            (true, false, item.patch.as_mut()),
        ];
        for (writes, deletes, operation) in operations {
            let Some(operation) = operation else { continue };
            let has_body = operation.request_body.is_some();
            let statuses = [
                ("400", true, "Bad request: a malformed parameter or body"),
                ("401", true, "No valid API key"),
                ("403", true, "This key's role may not do this"),
                ("404", true, "No such resource (or one the request refers to)"),
                (
                    "409",
                    writes,
                    "Conflicts with the current state (already exists, taken by another agent)",
                ),
                ("413", has_body, "Body too large"),
                ("415", has_body, "Body is not application/json"),
                ("422", writes || deletes, "A rule refused it (details name the rule)"),
                ("429", true, "Too many requests"),
                ("503", true, "A service behind the API is unavailable: retry"),
            ];
            for (status, applies, what) in statuses {
                if applies {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(what).into());
                }
            }
        }
    }
}

/// The whole HTTP application on `state`: API, OpenAPI document, limits and tracing.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api();
    let doc = Arc::new(doc);
    let timeout = Duration::from_millis(state.settings.request_timeout_ms);
    let limit = state.settings.body_limit_bytes;
    router
        .route("/api/v1/openapi.json", get(move || async move { axum::Json(doc.as_ref().clone()) }))
        .merge(desk::router())
        .route_layer(axum::middleware::from_fn(name_span_after_route))
        .route_layer(switchboard_telemetry::server_metrics::ServerMetricsLayer::http(|extensions| {
            extensions.get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned())
        }))
        .fallback(|| async { error::ApiError::not_found("route") })
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, timeout))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &http::Request<_>| {
            let span = switchboard_telemetry::propagation::http_server_span(request);
            span.record("switchboard.service", "api");
            span
        }))
}

/// Names the request's span after the route template that matched (`GET /api/v1/conversations/{id}`).
async fn name_span_after_route(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        switchboard_telemetry::propagation::record_http_route(request.method(), route.as_str());
    }
    next.run(request).await
}

fn grpc_channel(url: &str, tls: &GrpcTls, timeout: Duration) -> anyhow::Result<tonic::transport::Channel> {
    switchboard_service_kit::grpc::channel(url, tls, Timeouts::call(timeout)).with_context(|| format!("cannot reach {url}"))
}

/// Runs the api service on `listener` until `shutdown`, then drains.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut runtime = Runtime::new("api", &shutdown);
    let shutdown = runtime.token();
    let settings = config.api.clone();
    let pool = switchboard_storage::connect(config.database_url.expose_secret(), settings.db_max_connections)
        .await
        .context("cannot connect to Postgres")?;
    let keys = auth::Keys::new(pool.clone(), Duration::from_millis(settings.key_cache_ttl_ms));
    if let Some(key) = &config.admin_api_key {
        // A revoked bootstrap key is reported (a warning) and left revoked.
        let _usable = keys
            .ensure_bootstrap(key)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store the admin API key: {}", e.message))?;
    }
    let broker = Broker::new(config.amqp_url.clone(), "api", config.bus.clone());
    let publisher = Publisher::new(broker.clone());
    let grpc_timeout = Duration::from_millis(settings.grpc_timeout_ms);
    let hub = stream::Hub::new(settings.stream_buffer);
    let users = users::Users::new(
        pool.clone(),
        Duration::from_secs(settings.web.session_hours.saturating_mul(3600)),
        Duration::from_secs(settings.web.setup_hours.saturating_mul(3600)),
        Duration::from_millis(settings.key_cache_ttl_ms),
    );
    let routing = RoutingServiceClient::new(TracedChannel::new(grpc_channel(
        &settings.routing_url,
        &config.grpc_tls,
        grpc_timeout,
    )?));
    let connections = stream::presence::Connections::new(routing.clone());
    let state = AppState::new(state::Inner {
        keys,
        users,
        session: SessionServiceClient::new(TracedChannel::new(grpc_channel(
            &settings.session_url,
            &config.grpc_tls,
            grpc_timeout,
        )?)),
        routing,
        connections: connections.clone(),
        journal: WebhookJournalClient::new(TracedChannel::new(grpc_channel(
            &settings.ingress_url,
            &config.grpc_tls,
            grpc_timeout,
        )?)),
        publisher: publisher.clone(),
        pool: pool.clone(),
        hub: hub.clone(),
        limits: limits::Limits::new(&settings.limits),
        settings: settings.clone(),
        shutdown: shutdown.clone(),
    });

    let queue = broker.topology().system_queue("api.stream")?;
    runtime.spawn(
        Consumer::new(
            broker.clone(),
            publisher,
            ConsumerOptions::ordered(queue, 200),
            Arc::new(stream::ingest::StreamIngest::new(pool.clone())),
        )
        .run(shutdown.clone()),
    );
    runtime.spawn(hub.run(pool.clone(), shutdown.clone()));
    runtime.spawn(connections.run(shutdown.clone()));
    runtime.spawn(stream::janitor(
        pool.clone(),
        Duration::from_secs(settings.stream_retention_secs),
        shutdown.clone(),
    ));
    let app = app(state).merge(runtime.health().router());
    tracing::info!(addr = ?listener.local_addr().ok(), "api listening");
    // The client address feeds the failed-authentication limit.
    let server =
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(runtime.stopping());
    runtime.serve("HTTP", server.into_future());
    runtime.run(Duration::from_millis(settings.drain_timeout_ms)).await?;
    broker.close().await;
    pool.close().await;
    Ok(())
}
