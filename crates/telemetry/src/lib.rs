//! Telemetry for every Switchboard service: JSON logs filtered by `RUST_LOG`, and OTLP traces and
//! metrics over gRPC when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and
//! `OTEL_SDK_DISABLED` is not `true`). [`propagation`] carries W3C trace context across HTTP,
//! gRPC and AMQP so one trace follows a message through every hop.

mod init;
pub mod metrics;
pub mod propagation;
pub mod semconv;
pub mod server_metrics;

pub use init::{TelemetryGuard, init, init_with_span_exporter, otlp_enabled};
