//! One trace id flows HTTP → gRPC → AMQP → consumer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use serde::{Deserialize, Serialize};
use switchboard_bus::{Consumer, ConsumerOptions, Envelope, Event, HandleError, Handler, Incoming, Publisher, QueueSpec};
use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;
use switchboard_proto::session::v1::channel_directory_server::{ChannelDirectory, ChannelDirectoryServer};
use switchboard_proto::session::v1::{ResolveChannelRequest, ResolveChannelResponse};
use switchboard_telemetry::propagation::{TracedChannel, grpc_server_span, http_server_span};
use switchboard_test_support::{TestBus, bind_local, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Probe {
    #[serde(rename = "it.trace.v1")]
    Traced { channel_id: String },
}

impl Event for Probe {
    fn routing_key(&self) -> String {
        "it.trace.v1".into()
    }

    fn order_key(&self) -> String {
        let Self::Traced { channel_id } = self;
        channel_id.clone()
    }
}

struct Grpc {
    publisher: Publisher,
}

#[tonic::async_trait]
impl ChannelDirectory for Grpc {
    async fn resolve_channel(
        &self,
        request: tonic::Request<ResolveChannelRequest>,
    ) -> Result<tonic::Response<ResolveChannelResponse>, tonic::Status> {
        let channel_id = request.into_inner().channel_id;
        self.publisher
            .publish_event(
                &Envelope::new(Probe::Traced {
                    channel_id: channel_id.clone(),
                }),
                true,
            )
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        Ok(tonic::Response::new(ResolveChannelResponse {
            channel_id,
            ..Default::default()
        }))
    }

    async fn resolve_bot(
        &self,
        _: tonic::Request<switchboard_proto::session::v1::ResolveBotRequest>,
    ) -> Result<tonic::Response<switchboard_proto::session::v1::ResolveBotResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this fake"))
    }
}

struct Sink;

impl Handler for Sink {
    async fn handle(&self, _batch: &[Incoming]) -> Result<(), HandleError> {
        tracing::info!("consumed");
        Ok(())
    }
}

type Client = ChannelDirectoryClient<TracedChannel>;

async fn hook(State(client): State<Arc<tokio::sync::Mutex<Client>>>) -> &'static str {
    let mut client = client.lock().await.clone();
    client
        .resolve_channel(ResolveChannelRequest { channel_id: "ch-1".into() })
        .await
        .expect("grpc call");
    "ok"
}

#[tokio::test]
async fn one_trace_follows_http_then_grpc_then_amqp_then_the_consumer() {
    let exporter = InMemorySpanExporter::default();
    let _provider =
        switchboard_telemetry::init_with_span_exporter("trace-test", exporter.clone(), tracing_subscriber::fmt::TestWriter::new())
            .expect("subscriber");
    let bus = TestBus::new();
    let publisher = bus.publisher();
    let spec = bus.track(QueueSpec::shared("it.trace", &["it.trace.v1"]));
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker("c"),
            publisher.clone(),
            ConsumerOptions::concurrent(spec, 2),
            Arc::new(Sink),
        )
        .run(stop.clone()),
    );
    wait_until(Duration::from_secs(20), "queue declared", || async {
        let channel = bus.broker("probe").channel().await.unwrap();
        channel
            .queue_declare(
                bus.topology().queue("it.trace").as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .is_ok()
    })
    .await;

    let grpc_listener = bind_local().await;
    let grpc_addr = grpc_listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .trace_fn(grpc_server_span)
            .add_service(ChannelDirectoryServer::new(Grpc { publisher }))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc_listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect_lazy();
    let client = ChannelDirectoryClient::new(TracedChannel::new(channel));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(Arc::new(tokio::sync::Mutex::new(client)))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(http_server_span));
    let http_listener = bind_local().await;
    let http_addr = http_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(http_listener, app).await });

    let mut stream = tokio::net::TcpStream::connect(http_addr).await.unwrap();
    let request = format!(
        "POST /hook HTTP/1.1\r\nhost: test\r\ntraceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    wait_until(Duration::from_secs(20), "consumer span exported", || async {
        exporter
            .get_finished_spans()
            .unwrap()
            .iter()
            .any(|s| s.name.starts_with("process "))
    })
    .await;
    let spans = exporter.get_finished_spans().unwrap();
    // Named as OpenTelemetry's conventions say: HTTP `{method}` (no route template here: the
    // layer that records it is the api's), RPC `{service}/{method}`, messaging `process {queue}`.
    let queue = format!("process {}", bus.topology().queue("it.trace"));
    for name in ["POST", "switchboard.session.v1.ChannelDirectory/ResolveChannel", queue.as_str()] {
        let span = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()));
        assert_eq!(
            span.span_context.trace_id().to_string(),
            TRACE_ID,
            "{name} is on the caller's trace"
        );
    }
    stop.cancel();
    consumer.await.unwrap();
}
