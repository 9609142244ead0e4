//! Subscriber and OpenTelemetry provider setup, and their orderly shutdown.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter used when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,opentelemetry_sdk=warn,opentelemetry-otlp=warn,h2=warn,lapin=warn,sqlx=warn";

/// Keeps the OpenTelemetry providers alive; call [`TelemetryGuard::shutdown`] to flush them.
#[must_use = "dropping the guard without shutdown() may lose the last spans and metrics"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl TelemetryGuard {
    /// Flushes and shuts down the exporters (blocking work runs off the async runtime).
    pub async fn shutdown(self) {
        let Self {
            tracer_provider,
            meter_provider,
        } = self;
        let flushed = tokio::task::spawn_blocking(move || {
            if let Some(provider) = tracer_provider
                && let Err(error) = provider.shutdown()
            {
                eprintln!("telemetry: tracer provider shutdown failed: {error}");
            }
            if let Some(provider) = meter_provider
                && let Err(error) = provider.shutdown()
            {
                eprintln!("telemetry: meter provider shutdown failed: {error}");
            }
        })
        .await;
        if flushed.is_err() {
            eprintln!("telemetry: flush task panicked");
        }
    }
}

/// Returns whether OTLP export is configured by the standard environment variables.
pub fn otlp_enabled() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let endpoint = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    endpoint && !disabled
}

fn resource(service_name: &str) -> Resource {
    // The SDK's builder reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME itself; ours is the fallback.
    let mut builder = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        builder = builder.with_service_name(service_name.to_owned());
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// The layers every subscriber here is made of, in order: JSON (or pretty) log lines by
/// `RUST_LOG`; then, when `tracer` is given, the `switchboard.service` attribute, the spans
/// chosen by `SWITCHBOARD_TRACE_FILTER`, and a client span per SQL statement.
fn install<W>(provider: Option<&SdkTracerProvider>, service_name: &str, pretty: bool, writer: W) -> anyhow::Result<()>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // Log lines by RUST_LOG; exported spans by their own filter, so RUST_LOG=warn keeps traces.
    let slot = crate::logfmt::DispatchSlot::default();
    let (fmt_json, fmt_pretty) = if pretty {
        let layer = tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(writer)
            .with_filter(env_filter());
        (None, Some(layer))
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .event_format(crate::logfmt::json_with_trace_ids(slot.clone()))
            .with_writer(writer)
            .with_filter(env_filter());
        (Some(layer), None)
    };
    // The two helpers see the spans that are exported, as the OpenTelemetry layer does (a
    // filtered layer sees only the spans its own filter enables).
    let service = provider.map(|_| crate::service::ServiceAttribute::new(slot.clone()).with_filter(crate::logfmt::trace_filter()));
    let otel = provider.map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service_name.to_owned()))
            .with_filter(crate::logfmt::trace_filter())
    });
    let db = provider.map(|p| crate::dbspans::DbSpans::new(p.tracer("switchboard.db"), slot.clone()).with_filter(crate::dbspans::filter()));
    tracing_subscriber::registry()
        .with(fmt_json)
        .with(fmt_pretty)
        .with(service)
        .with(otel)
        .with(db)
        .with(crate::logfmt::RegisterDispatch(slot))
        .try_init()?;
    Ok(())
}

/// Installs the global subscriber for `service_name` and, when configured, the OTLP pipelines.
///
/// Logs are JSON on stdout; set `SWITCHBOARD_LOG_FORMAT=pretty` for human-readable lines.
pub fn init(service_name: &str) -> anyhow::Result<TelemetryGuard> {
    let pretty = std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v == "pretty");
    if !otlp_enabled() {
        install(None, service_name, pretty, std::io::stdout)?;
        return Ok(TelemetryGuard {
            tracer_provider: None,
            meter_provider: None,
        });
    }

    let resource = resource(service_name);
    let span_exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(span_exporter)
        .with_resource(resource.clone())
        .build();
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic().build()?;
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(metric_exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    install(Some(&tracer_provider), service_name, pretty, std::io::stdout)?;
    Ok(TelemetryGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider: Some(meter_provider),
    })
}

/// Installs the same global subscriber as [`init`], but sends spans to `exporter` synchronously
/// and JSON log lines to `logs` (tests use an in-memory exporter and buffer to assert on traces
/// and their log lines). Returns the provider so the test can flush it.
pub fn init_with_span_exporter<E, W>(service_name: &str, exporter: E, logs: W) -> anyhow::Result<SdkTracerProvider>
where
    E: SpanExporter + 'static,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource(service_name))
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    install(Some(&provider), service_name, false, logs)?;
    Ok(provider)
}
