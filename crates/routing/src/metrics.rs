//! Routing's metrics: offers made/accepted/declined/expired, time to assignment, cycle work.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

struct Instruments {
    offers: Counter<u64>,
    offer_outcomes: Counter<u64>,
    time_to_assignment: Histogram<f64>,
    cycle_duration: Histogram<f64>,
    cycle_considered: Histogram<u64>,
}

fn instruments() -> &'static Instruments {
    static I: OnceLock<Instruments> = OnceLock::new();
    I.get_or_init(|| {
        let meter = switchboard_telemetry::metrics::meter();
        Instruments {
            offers: meter
                .u64_counter("switchboard.routing.offers")
                .with_description("offers made")
                .build(),
            offer_outcomes: meter
                .u64_counter("switchboard.routing.offer_outcomes")
                .with_description("offers accepted, declined, expired, cancelled")
                .build(),
            time_to_assignment: meter
                .f64_histogram("switchboard.routing.time_to_assignment")
                .with_unit("s")
                .with_description("from entering the queue to an accepted offer or a pick")
                .build(),
            cycle_duration: meter.f64_histogram("switchboard.routing.cycle.duration").with_unit("s").build(),
            cycle_considered: meter
                .u64_histogram("switchboard.routing.cycle.items")
                .with_description("work items looked at per cycle")
                .build(),
        }
    })
}

/// Counts offers made.
pub fn offers_made(n: usize, attrs: &[KeyValue]) {
    instruments().offers.add(n as u64, attrs);
}

/// Counts an offer's outcome.
pub fn offer_outcome(outcome: &'static str) {
    instruments().offer_outcomes.add(1, &[KeyValue::new("outcome", outcome)]);
}

/// Records the wait from queueing to assignment.
pub fn assigned_after(wait: time::Duration) {
    instruments().time_to_assignment.record(wait.as_seconds_f64().max(0.0), &[]);
}

/// Records one cycle.
pub fn record_cycle(offers: usize, considered: usize, took: Duration) {
    let i = instruments();
    i.cycle_duration
        .record(took.as_secs_f64(), &[KeyValue::new("made_offers", offers > 0)]);
    i.cycle_considered.record(considered as u64, &[]);
}
