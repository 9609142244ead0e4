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
    converged: Counter<u64>,
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
            converged: meter
                .u64_counter("switchboard.routing.converged")
                .with_description("work items repaired to match a session transition whose routing write was lost")
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

/// Counts a work item repaired to match session (`transition` is session's transition).
pub fn converged(transition: &str) {
    instruments()
        .converged
        .add(1, &[KeyValue::new("transition", transition.to_owned())]);
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

/// Live figures of one queue, for the gauges.
#[derive(Debug, Clone, Default)]
pub struct QueueFigures {
    pub queue_id: String,
    pub name: String,
    pub queued: u64,
    pub offered: u64,
    pub assigned: u64,
    pub longest_wait_secs: f64,
}

/// What the gauges report, refreshed by the scheduler.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub queues: Vec<QueueFigures>,
    /// Agents per presence.
    pub presence: Vec<(String, u64)>,
    /// Conversations that no workstream routes (their number has none, or it was deleted).
    pub unrouted: u64,
}

fn snapshot() -> &'static std::sync::Mutex<Snapshot> {
    static S: OnceLock<std::sync::Mutex<Snapshot>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn read_snapshot() -> Snapshot {
    snapshot().lock().map(|s| s.clone()).unwrap_or_default()
}

/// Registers the queue and presence gauges (once); they report the latest [`Snapshot`].
fn ensure_gauges() {
    use opentelemetry::metrics::ObservableGauge;
    type Gauges = (
        ObservableGauge<u64>,
        ObservableGauge<f64>,
        ObservableGauge<u64>,
        ObservableGauge<u64>,
    );
    static G: OnceLock<Gauges> = OnceLock::new();
    G.get_or_init(|| {
        let meter = switchboard_telemetry::metrics::meter();
        let items = meter
            .u64_observable_gauge("switchboard.routing.queue.items")
            .with_description("work items per queue and state (queued, offered, assigned)")
            .with_callback(|observer| {
                for q in read_snapshot().queues {
                    for (state, n) in [("queued", q.queued), ("offered", q.offered), ("assigned", q.assigned)] {
                        observer.observe(
                            n,
                            &[
                                KeyValue::new("queue", q.name.clone()),
                                KeyValue::new("queue_id", q.queue_id.clone()),
                                KeyValue::new("state", state),
                            ],
                        );
                    }
                }
            })
            .build();
        let wait = meter
            .f64_observable_gauge("switchboard.routing.queue.longest_wait")
            .with_unit("s")
            .with_description("how long the oldest waiting item of each queue has waited")
            .with_callback(|observer| {
                for q in read_snapshot().queues {
                    observer.observe(
                        q.longest_wait_secs,
                        &[
                            KeyValue::new("queue", q.name.clone()),
                            KeyValue::new("queue_id", q.queue_id.clone()),
                        ],
                    );
                }
            })
            .build();
        let agents = meter
            .u64_observable_gauge("switchboard.routing.agents")
            .with_description("agents per presence")
            .with_callback(|observer| {
                for (presence, n) in read_snapshot().presence {
                    observer.observe(n, &[KeyValue::new("presence", presence)]);
                }
            })
            .build();
        let unrouted = meter
            .u64_observable_gauge("switchboard.routing.unrouted")
            .with_description("conversations waiting with no workstream to route them (alert on any)")
            .with_callback(|observer| observer.observe(read_snapshot().unrouted, &[]))
            .build();
        (items, wait, agents, unrouted)
    });
}

/// Publishes fresh figures to the gauges.
pub fn publish(fresh: Snapshot) {
    ensure_gauges();
    if let Ok(mut s) = snapshot().lock() {
        *s = fresh;
    }
}
