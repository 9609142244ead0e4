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
    cycle_restarts: Counter<u64>,
    queue_legs: Counter<u64>,
    answered_within: Counter<u64>,
    answer_time: Histogram<f64>,
    handle_time: Histogram<f64>,
    wrap_up_time: Histogram<f64>,
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
            cycle_restarts: meter
                .u64_counter("switchboard.routing.cycle.restarts")
                .with_description("assignment cycles started again because an agent's load changed while they ran")
                .build(),
            queue_legs: meter
                .u64_counter("switchboard.routing.queue.waits")
                .with_description("waits in a queue that ended, by outcome: answered, abandoned, transferred, overflowed, left")
                .build(),
            answered_within: meter
                .u64_counter("switchboard.routing.queue.answered_within_threshold")
                .with_description("waits answered within the queue's service-level threshold (service_level_secs)")
                .build(),
            answer_time: meter
                .f64_histogram("switchboard.routing.queue.answer_time")
                .with_unit("s")
                .with_description("speed of answer: from entering a queue to an agent taking the conversation")
                .build(),
            handle_time: meter
                .f64_histogram("switchboard.routing.handle_time")
                .with_unit("s")
                .with_description("an agent's handling of a conversation, from accept to wrap-up (or its end)")
                .build(),
            wrap_up_time: meter
                .f64_histogram("switchboard.routing.wrap_up_time")
                .with_unit("s")
                .with_description("an agent's wrap-up of a conversation")
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

/// Records the end of a wait in `queue` (its name), `waited` seconds long.
pub fn queue_leg_ended(queue: &str, end: switchboard_domain::routing::report::LegEnd, waited: f64, within_threshold: bool) {
    let i = instruments();
    let q = KeyValue::new("queue", queue.to_owned());
    i.queue_legs.add(1, &[q.clone(), KeyValue::new("outcome", end.as_str())]);
    if end == switchboard_domain::routing::report::LegEnd::Answered {
        i.answer_time.record(waited, std::slice::from_ref(&q));
        if within_threshold {
            i.answered_within.add(1, &[q]);
        }
    }
}

/// Records the end of an agent's handling of a conversation from `queue` (its name).
pub fn agent_leg_ended(queue: &str, handle: f64, wrap_up: Option<f64>) {
    let i = instruments();
    let q = [KeyValue::new("queue", queue.to_owned())];
    i.handle_time.record(handle, &q);
    if let Some(w) = wrap_up {
        i.wrap_up_time.record(w, &q);
    }
}

/// Counts a cycle started again.
pub fn cycle_restarted() {
    instruments().cycle_restarts.add(1, &[]);
}

/// Records one cycle.
pub fn record_cycle(offers: usize, considered: usize, took: Duration) {
    let i = instruments();
    i.cycle_duration
        .record(took.as_secs_f64(), &[KeyValue::new("made_offers", offers > 0)]);
    i.cycle_considered.record(considered as u64, &[]);
}

/// Live figures of one queue, for the gauges.
#[derive(Debug, Clone)]
pub struct QueueFigures {
    pub queue_id: switchboard_domain::ids::QueueId,
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
                                KeyValue::new("queue_id", q.queue_id.to_string()),
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
                            KeyValue::new("queue_id", q.queue_id.to_string()),
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
