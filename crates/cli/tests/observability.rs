//! Telemetry end to end: one trace follows a customer message from Twilio's webhook through
//! RabbitMQ, session, routing and the outbound send; and every metric and label the Grafana
//! dashboards and Prometheus alert rules use is one the code really emits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::collections::BTreeSet;

use harness::*;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use serde_json::json;
use switchboard_test_support::{wait_for, wait_until};

/// The names Prometheus sees for an OpenTelemetry metric (the Collector's translation).
fn prometheus_names(name: &str, unit: &str, kind: &str) -> Vec<String> {
    let mut base = name.replace(['.', '-'], "_");
    let suffix = match unit {
        "s" => "_seconds",
        "ms" => "_milliseconds",
        "By" => "_bytes",
        _ => "",
    };
    if !suffix.is_empty() && !base.ends_with(suffix) {
        base.push_str(suffix);
    }
    match kind {
        "counter" => vec![format!("{base}_total")],
        "histogram" => vec![format!("{base}_bucket"), format!("{base}_sum"), format!("{base}_count")],
        _ => vec![base],
    }
}

fn kind_and_labels<T>(data: &MetricData<T>, labels: &mut BTreeSet<String>) -> &'static str {
    let mut keys = |attrs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
        for kv in attrs {
            labels.insert(kv.key.as_str().replace('.', "_"));
        }
    };
    match data {
        MetricData::Gauge(g) => {
            g.data_points().for_each(|p| keys(&mut p.attributes()));
            "gauge"
        }
        MetricData::Sum(s) => {
            s.data_points().for_each(|p| keys(&mut p.attributes()));
            if s.is_monotonic() { "counter" } else { "gauge" }
        }
        MetricData::Histogram(h) => {
            h.data_points().for_each(|p| keys(&mut p.attributes()));
            "histogram"
        }
        MetricData::ExponentialHistogram(_) => "histogram",
    }
}

#[tokio::test]
async fn a_message_is_one_trace_and_dashboards_use_only_emitted_metrics() {
    let spans = InMemorySpanExporter::default();
    let logs = switchboard_test_support::LogCapture::default();
    let tracer = switchboard_telemetry::init_with_span_exporter("switchboard-test", spans.clone(), logs.clone()).unwrap();
    let metrics = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder().with_periodic_exporter(metrics.clone()).build();
    opentelemetry::global::set_meter_provider(meters.clone());

    let w = World::start().await;
    // A dead letter, so its counter exists: an event no consumer can decode.
    w._bus
        .publisher()
        .publish(switchboard_bus::Outgoing {
            exchange: None,
            routing_key: "conversation.opened.v1",
            payload: b"not json",
            message_id: "garbage-1",
            headers: Default::default(),
            mandatory: true,
        })
        .await
        .unwrap();
    // A conversation: offered, accepted, answered, delivered and read; then a refused reply.
    w.customer_writes("+5511966665555", json!({ "body": "trace me" })).await;
    let offer = wait_for(WAIT, "an offer", || async {
        w.ana.api.get("/me/offers").await.ok()?.as_array()?.first().cloned()
    })
    .await;
    let conversation = offer["conversation_id"].as_str().unwrap().to_owned();
    w.ana
        .api
        .post(&format!("/offers/{}/accept", offer["id"].as_str().unwrap()), &json!({}))
        .await
        .unwrap();
    // The agent answers as the desk does: continuing the trace of the message it answers.
    let messages = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
    let inbound = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "inbound")
        .unwrap()
        .clone();
    let traceparent = inbound["traceparent"]
        .as_str()
        .expect("an inbound message names its trace")
        .to_owned();
    let api = w.stack.urls.api.clone();
    let reply = |text: &'static str| {
        reqwest::Client::new()
            .post(format!("{api}/api/v1/conversations/{conversation}/messages"))
            .bearer_auth(&w.ana.key)
            .header("traceparent", &traceparent)
            .json(&json!({ "text": text }))
            .send()
    };
    assert_eq!(reply("traced reply").await.unwrap().status(), 201);
    wait_until(WAIT, "the reply is read", || async {
        let messages = w.ana.api.get(&format!("/conversations/{conversation}/messages")).await.unwrap();
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "traced reply" && m["status"] == "read")
    })
    .await;
    w.clock.advance(time::Duration::hours(25));
    assert_eq!(reply("late").await.unwrap().status(), 422, "outside the window");
    // Ana ends and closes it, so its handle and wrap-up times are recorded.
    for step in ["end", "close"] {
        w.ana
            .api
            .post(&format!("/conversations/{conversation}/{step}"), &json!({}))
            .await
            .unwrap();
    }
    // Routing's gauges appear once its scheduler has read the queues, and the wrap-up time once
    // routing has followed the close.
    wait_until(WAIT, "routing's gauges and reporting figures", || async {
        meters.force_flush().unwrap();
        metrics
            .get_finished_metrics()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.scope_metrics()
                    .flat_map(|s| s.metrics().map(|m| m.name().to_owned()))
                    .collect::<Vec<_>>()
            })
            .filter(|n| n == "switchboard.routing.queue.longest_wait" || n == "switchboard.routing.wrap_up_time")
            .collect::<BTreeSet<_>>()
            .len()
            == 2
    })
    .await;

    // One trace for the turn: the webhook, session's store, the offer, the agent's API call, the
    // sender's Twilio call and the status callbacks of the reply.
    let finished = wait_for(WAIT, "the reply's read status in its trace", || async {
        tracer.force_flush().unwrap();
        let finished = spans.get_finished_spans().unwrap();
        finished.iter().any(|s| s.name == "message read").then_some(finished)
    })
    .await;
    let webhook = finished
        .iter()
        .find(|s| {
            s.name == "POST /v1/twilio/{channel_id}/inbound"
                && s.attributes
                    .iter()
                    .any(|a| a.key.as_str() == "url.path" && a.value.as_str().contains("/inbound"))
        })
        .expect("the webhook's span");
    let trace_id = webhook.span_context.trace_id();
    assert!(traceparent.contains(&trace_id.to_string()), "the message names its webhook's trace");
    let trace: Vec<_> = finished.iter().filter(|s| s.span_context.trace_id() == trace_id).collect();
    let attr = |s: &opentelemetry_sdk::trace::SpanData, key: &str| {
        s.attributes
            .iter()
            .find(|a| a.key.as_str() == key)
            .map(|a| a.value.as_str().into_owned())
    };
    let named = |name: &str| -> Vec<&opentelemetry_sdk::trace::SpanData> { trace.iter().copied().filter(|s| s.name == name).collect() };
    let kind_of = |name: &str| named(name).first().copied().map(|s| s.span_kind.clone());
    let names: BTreeSet<String> = trace.iter().map(|s| s.name.to_string()).collect();
    let service_of = |name: &str| named(name).first().copied().and_then(|s| attr(s, "switchboard.service"));
    use opentelemetry::trace::SpanKind;
    assert_eq!(
        kind_of("POST /v1/twilio/{channel_id}/inbound"),
        Some(SpanKind::Server),
        "{names:#?}"
    );
    assert_eq!(service_of("POST /v1/twilio/{channel_id}/inbound").as_deref(), Some("ingress"));
    assert_eq!(service_of("store inbound message").as_deref(), Some("session"), "{names:#?}");
    let events = format!("publish {}.events", w._bus.config.namespace);
    assert_eq!(kind_of(&events), Some(SpanKind::Producer), "{names:#?}");
    // Database work, named by the conventions, with no parameter values.
    let insert = *named("INSERT session.messages").first().expect("the store's INSERT");
    assert_eq!(insert.span_kind, SpanKind::Client);
    assert_eq!(attr(insert, "db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(attr(insert, "db.operation.name").as_deref(), Some("INSERT"));
    assert_eq!(attr(insert, "db.collection.name").as_deref(), Some("session.messages"));
    assert_eq!(attr(insert, "switchboard.service").as_deref(), Some("session"));
    assert!(
        trace
            .iter()
            .all(|s| !attr(s, "db.query.text").unwrap_or_default().contains("trace me")),
        "no bound value in a query's text"
    );
    assert_eq!(service_of("offer").as_deref(), Some("routing"), "{names:#?}");
    for name in [
        "POST /api/v1/conversations/{id}/messages",
        "switchboard.session.v1.SessionService/SendMessage",
        "POST /2010-04-01/Accounts/{AccountSid}/Messages.json",
        "message sent",
        "message delivered",
        "message read",
    ] {
        assert!(names.contains(name), "no span {name} in the trace: {names:#?}");
    }
    let send_calls = named("switchboard.session.v1.SessionService/SendMessage");
    assert!(
        send_calls.iter().any(|s| s.span_kind == SpanKind::Client),
        "the API's call is a client span"
    );
    assert!(
        send_calls.iter().any(|s| s.span_kind == SpanKind::Server),
        "session's is a server span"
    );
    assert_eq!(
        kind_of("POST /2010-04-01/Accounts/{AccountSid}/Messages.json"),
        Some(SpanKind::Client)
    );
    assert_eq!(
        service_of("POST /2010-04-01/Accounts/{AccountSid}/Messages.json").as_deref(),
        Some("sender")
    );
    let read = named("message read")[0];
    assert_eq!(read.links.len(), 1, "the read status links the callback's own trace");
    let hops: BTreeSet<String> = trace
        .iter()
        .filter(|s| s.name.starts_with("process "))
        .filter_map(|s| attr(s, "messaging.destination.name"))
        .map(|q| q.split('.').skip(1).take(2).collect::<Vec<_>>().join("."))
        .collect();
    for hop in ["session.inbound", "routing.work", "sender.outbound", "api.stream"] {
        assert!(hops.contains(hop), "the trace reaches {hop}: {hops:?}");
    }
    // The refused late reply was in the same trace, and its log line names it.
    let refusal = logs
        .contents()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "send refused by policy")
        .expect("the refusal is logged");
    assert_eq!(refusal["trace_id"], trace_id.to_string(), "{refusal}");

    // The latency panels' exemplar series select spans by kind and name: each selects spans
    // that really are exported.
    let selector = regex::Regex::new(r#"span_kind="SPAN_KIND_([A-Z]+)"(?:,span_name=~"([^"]+)")?"#).unwrap();
    let mut selected = 0;
    for entry in
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/observability/grafana/dashboards")).unwrap()
    {
        let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for target in dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["targets"].as_array().unwrap())
        {
            let Some(expr) = target["expr"].as_str() else { continue };
            for found in selector.captures_iter(expr) {
                selected += 1;
                let kind = match &found[1] {
                    "SERVER" => SpanKind::Server,
                    "CLIENT" => SpanKind::Client,
                    "PRODUCER" => SpanKind::Producer,
                    "CONSUMER" => SpanKind::Consumer,
                    _ => SpanKind::Internal,
                };
                let name = regex::Regex::new(&format!(
                    "^(?:{})$",
                    found.get(2).map_or(".*".to_owned(), |m| m.as_str().replace(r"\\", r"\"))
                ))
                .unwrap();
                assert!(
                    finished.iter().any(|s| s.span_kind == kind && name.is_match(&s.name)),
                    "no exported span matches {expr}"
                );
            }
        }
    }
    assert!(selected >= 7, "the latency panels plot span metrics ({selected})");

    // Metric names and labels the code emits, as Prometheus will see them.
    meters.force_flush().unwrap();
    let mut names = BTreeSet::new();
    let mut labels: BTreeSet<String> = ["le", "job", "instance", "quantile"].into_iter().map(String::from).collect();
    for resource in metrics.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                let kind = match metric.data() {
                    AggregatedMetrics::F64(d) => kind_and_labels(d, &mut labels),
                    AggregatedMetrics::U64(d) => kind_and_labels(d, &mut labels),
                    AggregatedMetrics::I64(d) => kind_and_labels(d, &mut labels),
                };
                names.extend(prometheus_names(metric.name(), metric.unit(), kind));
            }
        }
    }
    let identifier = regex::Regex::new(r"\b(?:switchboard|http_server|rpc_server|messaging|rpc|http|twilio)_[a-z0-9_]+\b").unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/observability");
    let mut files: Vec<_> = std::fs::read_dir(root.join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root.join("prometheus/alerts.yml"));
    let mut unknown = Vec::new();
    let mut referenced = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for m in identifier.find_iter(&text) {
            referenced += 1;
            let id = m.as_str();
            if !names.contains(id) && !labels.contains(id) {
                unknown.push(format!("{}: {id}", file.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(referenced > 50, "the dashboards reference metrics ({referenced})");
    assert!(
        unknown.is_empty(),
        "referenced but never emitted: {unknown:#?}\nemitted: {names:#?}"
    );
    for required in [
        "switchboard_routing_queue_items",
        "switchboard_routing_queue_longest_wait_seconds",
        "switchboard_routing_agents",
        "switchboard_session_outbound_denied_total",
        "http_server_request_duration_seconds_bucket",
        "rpc_server_duration_seconds_bucket",
        "switchboard_bus_dead_lettered_total",
    ] {
        assert!(names.contains(required), "{required} is emitted");
    }
    w.stop().await;
}
