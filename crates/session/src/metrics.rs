//! Session's metrics: outbound messages by kind and author, policy refusals by rule (the
//! 24-hour window among them), delivery status changes by status and Twilio error code,
//! conversations opened.

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;

struct Instruments {
    queued: Counter<u64>,
    denied: Counter<u64>,
    delivery: Counter<u64>,
    opened: Counter<u64>,
    unroutable: Counter<u64>,
    files: Counter<u64>,
}

fn instruments() -> &'static Instruments {
    static I: OnceLock<Instruments> = OnceLock::new();
    I.get_or_init(|| {
        let meter = switchboard_telemetry::metrics::meter();
        Instruments {
            queued: meter
                .u64_counter("switchboard.session.outbound.queued")
                .with_description("outbound messages accepted by the policy, by kind (text, media, template) and author")
                .build(),
            denied: meter
                .u64_counter("switchboard.session.outbound.denied")
                .with_description("outbound messages refused by the WhatsApp policy, by rule (outside_24h_window, …)")
                .build(),
            delivery: meter
                .u64_counter("switchboard.session.delivery.status")
                .with_description("outbound status changes, by status and Twilio error code")
                .build(),
            opened: meter
                .u64_counter("switchboard.session.conversations.opened")
                .with_description("conversations opened or reopened")
                .build(),
            unroutable: meter
                .u64_counter("switchboard.session.inbound.unroutable")
                .with_description("inbound messages to a number not configured on their channel, or inactive, by reason")
                .build(),
            files: meter
                .u64_counter("switchboard.session.files")
                .with_description(
                    "agents' files by operation (upload, serve, expire) and outcome (ok, refused, bad_signature, expired, missing)",
                )
                .build(),
        }
    })
}

/// Counts an outbound message the policy allowed.
pub fn queued(kind: &'static str, author: &str) {
    instruments()
        .queued
        .add(1, &[KeyValue::new("kind", kind), KeyValue::new("author", author.to_owned())]);
}

/// Counts a refusal.
pub fn denied(rule: &'static str) {
    instruments().denied.add(1, &[KeyValue::new("rule", rule)]);
}

/// Counts a status change.
pub fn delivery(status: &'static str, error_code: Option<u32>) {
    let code = error_code.map_or_else(String::new, |c| c.to_string());
    instruments()
        .delivery
        .add(1, &[KeyValue::new("status", status), KeyValue::new("twilio.error_code", code)]);
}

/// Counts an inbound message no number takes.
pub fn unroutable(reason: &'static str) {
    instruments().unroutable.add(1, &[KeyValue::new("reason", reason)]);
}

/// Counts a conversation entering Open.
pub fn opened(reopened: bool) {
    instruments().opened.add(1, &[KeyValue::new("reopened", reopened)]);
}

/// Counts `n` file operations with their outcome.
pub fn file(operation: &'static str, outcome: &'static str, n: u64) {
    instruments()
        .files
        .add(n, &[KeyValue::new("operation", operation), KeyValue::new("outcome", outcome)]);
}
