//! The clients of the other services, carrying trace context.

use switchboard_proto::ingress::v1::webhook_journal_client::WebhookJournalClient;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_telemetry::propagation::TracedChannel;

/// session's gRPC client, traced (each call carries the caller's trace context).
pub type SessionClient = SessionServiceClient<TracedChannel>;
/// The ingress webhook-journal client.
pub type JournalClient = WebhookJournalClient<TracedChannel>;
/// routing's gRPC client, traced (each call carries the caller's trace context).
pub type RoutingClient = RoutingServiceClient<TracedChannel>;
