//! The `switchboard.service` attribute on every exported span.
//!
//! A service's entry spans (its HTTP and gRPC server spans, its consumers' `process` spans) name
//! the service in a `switchboard.service` field. [`ServiceAttribute`] hands that name down to
//! every span opened inside them (database, publish, client calls, the service's own), and
//! writes it on their exported spans when they close, so in the all-in-one `switchboard dev`,
//! where every span has the same `service.name`, each still says whose it is.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Subscriber, span};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::logfmt::DispatchSlot;
use crate::semconv::SWITCHBOARD_SERVICE;

/// The service a span belongs to, kept in the span's extensions.
#[derive(Clone, Debug)]
pub struct ServiceName {
    /// The service.
    pub name: Arc<str>,
    /// Taken from a parent: the span has no field of its own, so the attribute is written when
    /// it closes.
    pub inherited: bool,
}

#[derive(Default)]
struct Find(Option<Arc<str>>);

impl Visit for Find {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == SWITCHBOARD_SERVICE {
            self.0 = Some(value.into());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == SWITCHBOARD_SERVICE {
            self.0 = Some(format!("{value:?}").trim_matches('"').into());
        }
    }
}

/// The layer. Install it before (inside) the OpenTelemetry layer, so it writes the attribute
/// before that layer ends the span.
pub struct ServiceAttribute {
    dispatch: DispatchSlot,
}

impl ServiceAttribute {
    /// Reads spans' OpenTelemetry context through the subscriber in `dispatch`.
    pub fn new(dispatch: DispatchSlot) -> Self {
        Self { dispatch }
    }
}

impl<S> tracing_subscriber::Layer<S> for ServiceAttribute
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut own = Find::default();
        attrs.record(&mut own);
        let Some(span) = ctx.span(id) else { return };
        let service = match own.0 {
            Some(name) => Some(ServiceName { name, inherited: false }),
            None => span.parent().and_then(|p| {
                let name = p.extensions().get::<ServiceName>()?.name.clone();
                Some(ServiceName { name, inherited: true })
            }),
        };
        if let Some(service) = service {
            span.extensions_mut().insert(service);
        }
    }

    fn on_record(&self, id: &Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let mut own = Find::default();
        values.record(&mut own);
        if let (Some(name), Some(span)) = (own.0, ctx.span(id)) {
            span.extensions_mut().insert(ServiceName { name, inherited: false });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // The extensions are released before the context is read, which locks them again.
        let Some(name) = ctx.span(&id).and_then(|span| {
            span.extensions()
                .get::<ServiceName>()
                .filter(|s| s.inherited)
                .map(|s| s.name.clone())
        }) else {
            return;
        };
        if let Some(cx) = self.dispatch.otel_context(&id) {
            cx.span().set_attribute(KeyValue::new(SWITCHBOARD_SERVICE, name.to_string()));
        }
    }
}

/// The service that serves a gRPC service (`switchboard.session.v1.SessionService` is `session`'s).
pub fn of_rpc_service(service: &str) -> Option<&str> {
    service.strip_prefix("switchboard.")?.split('.').next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::logfmt::RegisterDispatch;

    #[test]
    fn names_are_read_from_rpc_services() {
        assert_eq!(of_rpc_service("switchboard.routing.v1.RoutingService"), Some("routing"));
        assert_eq!(of_rpc_service("grpc.health.v1.Health"), None);
    }

    #[test]
    fn spans_inside_a_service_span_carry_its_name() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let slot = DispatchSlot::default();
        let subscriber = tracing_subscriber::registry()
            .with(ServiceAttribute::new(slot.clone()))
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("test"))
                    .with_filter(tracing_subscriber::EnvFilter::new("info")),
            )
            .with(RegisterDispatch(slot));
        tracing::subscriber::with_default(subscriber, || {
            let entry = tracing::info_span!("process q", switchboard.service = "session");
            entry.in_scope(|| {
                let child = tracing::info_span!("child");
                child.in_scope(|| tracing::info_span!("grandchild").in_scope(|| {}));
            });
            tracing::info_span!("outside").in_scope(|| {});
        });
        provider.force_flush().expect("flush");
        let spans = exporter.get_finished_spans().expect("spans");
        let service = |name: &str| {
            let span = spans.iter().find(|s| s.name == name).expect(name);
            span.attributes
                .iter()
                .find(|a| a.key.as_str() == SWITCHBOARD_SERVICE)
                .map(|a| a.value.as_str().to_string())
        };
        assert_eq!(service("process q").as_deref(), Some("session"));
        assert_eq!(service("child").as_deref(), Some("session"));
        assert_eq!(service("grandchild").as_deref(), Some("session"));
        assert_eq!(service("outside"), None);
    }
}
