//! Telemetry for every Switchboard service: JSON logs filtered by `RUST_LOG` (each line inside a
//! traced span names its `trace_id` and `span_id`), and OTLP traces and metrics over gRPC when the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`), the
//! spans chosen by their own filter (`SWITCHBOARD_TRACE_FILTER`) and sampled as
//! `OTEL_TRACES_SAMPLER` says. [`propagation`] carries W3C trace context across HTTP,
//! gRPC and AMQP so one trace follows a message through every hop.

pub mod dbspans;
mod init;
pub mod logfmt;
pub mod metrics;
pub mod propagation;
pub mod semconv;
pub mod server_metrics;
pub mod service;

pub use init::{TelemetryGuard, init, init_with_span_exporter, otlp_enabled};
