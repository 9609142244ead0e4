//! gRPC clients of session and routing, built once with deadlines and trace propagation.

use std::time::Duration;

use anyhow::Context;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};
use switchboard_telemetry::propagation::TracedChannel;
use tonic::transport::Channel;

type Traced = TracedChannel;

/// The services a turn talks to.
#[derive(Clone)]
pub struct Clients {
    pub session: SessionServiceClient<Traced>,
    pub directory: ChannelDirectoryClient<Traced>,
    pub routing: RoutingServiceClient<Traced>,
}

fn channel(url: &str, tls: &GrpcTls) -> anyhow::Result<Channel> {
    switchboard_service_kit::grpc::channel(url, tls, Timeouts::call(Duration::from_secs(10))).with_context(|| format!("cannot reach {url}"))
}

impl Clients {
    /// Clients of session at `session_url` (its `ChannelDirectory` at `directory_url`) and
    /// routing at `routing_url` (connected lazily).
    pub fn connect(session_url: &str, directory_url: &str, routing_url: &str, tls: &GrpcTls) -> anyhow::Result<Self> {
        Ok(Self {
            session: SessionServiceClient::new(TracedChannel::new(channel(session_url, tls)?)),
            directory: ChannelDirectoryClient::new(TracedChannel::new(channel(directory_url, tls)?)),
            routing: RoutingServiceClient::new(TracedChannel::new(channel(routing_url, tls)?)),
        })
    }
}
