//! JSON log lines that name their trace: every line written inside a span that OpenTelemetry
//! traces carries `trace_id` and `span_id`, so a log line opens its trace and a trace finds its
//! logs. And the two filters: `RUST_LOG` chooses the log lines, `SWITCHBOARD_TRACE_FILTER` the
//! spans exported, independently (a production `RUST_LOG=warn` keeps its traces).

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Spans exported when `SWITCHBOARD_TRACE_FILTER` is not set: Switchboard's own at info, the
/// rest (libraries) only at warn.
pub const DEFAULT_TRACE_FILTER: &str = "warn,switchboard=info";

/// The filter of exported spans: `SWITCHBOARD_TRACE_FILTER`, else [`DEFAULT_TRACE_FILTER`].
pub fn trace_filter() -> EnvFilter {
    std::env::var("SWITCHBOARD_TRACE_FILTER")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_TRACE_FILTER))
}

/// Where [`RegisterDispatch`] leaves the subscriber for [`WithTraceIds`]: while an event is being
/// dispatched, `tracing`'s thread-local default is not available to the formatter (no
/// re-entrance), so it reads the span's OpenTelemetry context through this one.
#[derive(Clone, Default)]
pub struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

impl DispatchSlot {
    /// The OpenTelemetry context of the span `id` (starting it if it was still being built),
    /// read through the registered subscriber; none once that is gone or when the span is not
    /// traced.
    pub fn otel_context(&self, id: &tracing::span::Id) -> Option<opentelemetry::Context> {
        let dispatch = self.0.get().and_then(WeakDispatch::upgrade)?;
        tracing_opentelemetry::get_otel_context(id, &dispatch)
    }
}

/// A layer that only records the subscriber it was registered with into a [`DispatchSlot`].
pub struct RegisterDispatch(pub DispatchSlot);

impl<S: Subscriber> tracing_subscriber::Layer<S> for RegisterDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.0.set(subscriber.downgrade());
    }
}

/// Wraps a JSON event formatter: adds `"trace_id"` and `"span_id"` (W3C hex) of the current
/// span's OpenTelemetry context, when there is a valid one.
pub struct WithTraceIds<F> {
    /// The formatter whose line is extended.
    pub inner: F,
    /// The subscriber, once registered.
    pub dispatch: DispatchSlot,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx.lookup_current().and_then(|span| self.dispatch.otel_context(&span.id()));
        let ids = ids.and_then(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            sc.is_valid().then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
        });
        match (ids, line.strip_suffix("}\n")) {
            (Some((trace_id, span_id)), Some(body)) => {
                writeln!(writer, "{body},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}")
            }
            _ => writer.write_str(&line),
        }
    }
}

/// Switchboard's JSON line (the current span named, no span list) with the trace ids.
pub fn json_with_trace_ids(
    dispatch: DispatchSlot,
) -> WithTraceIds<tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>> {
    let inner = tracing_subscriber::fmt::format()
        .json()
        .with_current_span(true)
        .with_span_list(false);
    WithTraceIds { inner, dispatch }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::Layer;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn json_lines(lines: &Lines) -> Vec<serde_json::Value> {
        let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect()
    }

    /// The subscriber `init` builds, with the log filter `logs` and the trace filter `traces`.
    fn subscriber(logs: &str, traces: &str, lines: &Lines, provider: &SdkTracerProvider) -> impl Subscriber + Send + Sync {
        let slot = DispatchSlot::default();
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .event_format(json_with_trace_ids(slot.clone()))
            .with_writer(lines.clone())
            .with_filter(EnvFilter::new(logs));
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("test"))
            .with_filter(EnvFilter::new(traces));
        tracing_subscriber::registry().with(fmt).with(otel).with(RegisterDispatch(slot))
    }

    #[test]
    fn a_log_line_inside_a_span_names_the_exported_trace_and_span() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber("info", DEFAULT_TRACE_FILTER, &lines, &provider), || {
            tracing::info!(target: "switchboard_session::inbound", "outside any span");
            let span = tracing::info_span!(target: "switchboard_session::inbound", "process switchboard.session.inbound.3");
            let _entered = span.enter();
            tracing::info!(target: "switchboard_session::inbound", stored = 1, "stored");
        });
        provider.force_flush().expect("flush");
        let spans = exporter.get_finished_spans().expect("spans");
        assert_eq!(spans.len(), 1, "{spans:?}");
        let lines = json_lines(&lines);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].get("trace_id").is_none(), "no span, no trace: {}", lines[0]);
        assert_eq!(lines[1]["trace_id"], spans[0].span_context.trace_id().to_string(), "{}", lines[1]);
        assert_eq!(lines[1]["span_id"], spans[0].span_context.span_id().to_string());
        assert_eq!(lines[1]["fields"]["stored"], 1, "the line is otherwise unchanged: {}", lines[1]);
    }

    #[test]
    fn rust_log_at_warn_keeps_switchboards_spans_exported() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber("warn", DEFAULT_TRACE_FILTER, &lines, &provider), || {
            let ours = tracing::info_span!(target: "switchboard_api::routes", "POST /api/v1/conversations/{id}/messages");
            ours.in_scope(|| tracing::info!(target: "switchboard_api::routes", "not logged at warn"));
            let library = tracing::info_span!(target: "h2::proto", "a library's span");
            library.in_scope(|| {});
        });
        provider.force_flush().expect("flush");
        let names: Vec<String> = exporter
            .get_finished_spans()
            .expect("spans")
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["POST /api/v1/conversations/{id}/messages"]);
        assert!(json_lines(&lines).is_empty(), "RUST_LOG=warn logs no info line");
    }
}
