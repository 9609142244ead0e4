//! The delay-tier retry path keeps what handlers dispatch on: a message parked for a retry or
//! deferred comes back with the routing key it was published with.

use std::sync::Arc;
use std::time::Duration;

use switchboard_bus::{Consumer, ConsumerOptions, HandleError, QueueSpec};
use switchboard_test_support::{TestBus, wait_until};
use tokio_util::sync::CancellationToken;

use crate::support::{Recorder, publish};

const WAIT: Duration = Duration::from_secs(20);

/// A handler that dispatches on the routing key as the services do: an unknown key is rejected.
fn dispatching(first: impl Fn(&str) -> Option<HandleError> + Send + Sync + 'static) -> Arc<Recorder> {
    let tried = Arc::new(std::sync::Mutex::new(std::collections::HashSet::<String>::new()));
    Recorder::failing(move |m| {
        if !matches!(m.routing_key.as_str(), "it.kind.a.v1" | "it.kind.b.v1") {
            return Some(HandleError::Reject(anyhow::anyhow!("unexpected routing key {}", m.routing_key)));
        }
        let body = String::from_utf8_lossy(&m.payload).into_owned();
        if tried.lock().unwrap().insert(body.clone()) {
            return first(&body);
        }
        None
    })
}

async fn run_until_handled(bus: &TestBus, recorder: &Arc<Recorder>, spec: QueueSpec, bodies: &[(&str, &str)]) {
    let publisher = bus.publisher();
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker("c"),
            publisher.clone(),
            ConsumerOptions::concurrent(spec, 2),
            recorder.clone(),
        )
        .run(stop.clone()),
    );
    // The consumer declares its queue on connecting; publish once it is there.
    let queue = bus.topology().queue("it.kinds");
    wait_until(WAIT, "queue declared", || async { bus.ready_count(&queue).await.is_some() }).await;
    for (key, body) in bodies {
        publish(&publisher, key, body).await;
    }
    let want = bodies.len();
    wait_until(WAIT, "every message handled", || async { recorder.count() >= want * 2 }).await;
    stop.cancel();
    consumer.await.unwrap();
}

#[tokio::test]
async fn a_message_parked_for_a_retry_comes_back_under_its_original_routing_key() {
    let bus = TestBus::new();
    let spec = bus.track(QueueSpec::shared("it.kinds", &["it.kind.*.v1"]));
    let recorder = dispatching(|_| Some(HandleError::Retry(anyhow::anyhow!("twilio answered 500"))));
    run_until_handled(&bus, &recorder, spec, &[("it.kind.a.v1", "a-1"), ("it.kind.b.v1", "b-1")]).await;

    let seen = recorder.seen.lock().unwrap().clone();
    let keys = recorder.keys.lock().unwrap().clone();
    for (body, key) in [("a-1", "it.kind.a.v1"), ("b-1", "it.kind.b.v1")] {
        let attempts: Vec<(u32, &str)> = seen
            .iter()
            .zip(&keys)
            .filter(|((b, _, _), _)| b == body)
            .map(|((_, attempt, _), k)| (*attempt, k.as_str()))
            .collect();
        assert_eq!(attempts, vec![(1, key), (2, key)], "{body}: failed once, retried once under {key}");
    }
    let dlq = bus.topology().dead_letter_queue("it.kinds");
    assert_eq!(bus.ready_count(&dlq).await, Some(0), "nothing dead-lettered");
}

#[tokio::test]
async fn a_deferred_message_comes_back_under_its_original_routing_key_without_counting_an_attempt() {
    let bus = TestBus::new();
    let spec = bus.track(QueueSpec::shared("it.kinds", &["it.kind.*.v1"]));
    let recorder = dispatching(|_| Some(HandleError::Defer(Duration::from_millis(40))));
    run_until_handled(&bus, &recorder, spec, &[("it.kind.a.v1", "a-1")]).await;

    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![1, 1],
        "a deferral is not an attempt"
    );
    assert!(
        seen[1].2 - seen[0].2 >= Duration::from_millis(40),
        "it waited at least the deferral"
    );
    assert_eq!(*recorder.keys.lock().unwrap(), vec!["it.kind.a.v1"; 2]);
    let dlq = bus.topology().dead_letter_queue("it.kinds");
    assert_eq!(bus.ready_count(&dlq).await, Some(0), "nothing dead-lettered");
}

#[tokio::test]
async fn an_ordered_shard_sets_an_unexplained_failure_aside_quickly_but_waits_out_an_outage() {
    let mut bus = TestBus::new();
    bus.config.max_attempts = 6;
    let spec = bus.track(QueueSpec::ordered("it.shard", &["it.shard.v1"]));
    // "poison" fails for no known reason on every attempt; "outage" sees its dependency down
    // four times, then succeeds.
    let recorder = Recorder::failing(|m| match (String::from_utf8_lossy(&m.payload).as_ref(), m.attempt) {
        ("poison", _) => Some(HandleError::Suspect(anyhow::anyhow!("invalid byte sequence"))),
        ("outage", 1..=4) => Some(HandleError::Retry(anyhow::anyhow!("database unavailable"))),
        _ => None,
    });
    let publisher = bus.publisher();
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker("c"),
            publisher.clone(),
            ConsumerOptions::ordered(spec, 8),
            recorder.clone(),
        )
        .run(stop.clone()),
    );
    let queue = bus.topology().queue("it.shard");
    wait_until(WAIT, "queue declared", || async { bus.ready_count(&queue).await.is_some() }).await;
    for body in ["a", "poison", "b", "outage", "c"] {
        publish(&publisher, "it.shard.v1", body).await;
    }
    wait_until(WAIT, "c handled", || async {
        recorder.bodies().last().map(String::as_str) == Some("c")
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();

    let mut order: Vec<String> = Vec::new();
    for body in recorder.bodies() {
        if !order.contains(&body) {
            order.push(body);
        }
    }
    assert_eq!(order, vec!["a", "poison", "b", "outage", "c"], "order kept");
    let singles = recorder.singles.lock().unwrap().clone();
    let attempts = |name: &str| singles.iter().filter(|(b, _)| b == name).map(|(_, a)| *a).collect::<Vec<_>>();
    assert_eq!(
        attempts("poison"),
        vec![1, 2, 3],
        "set aside after {} attempts, not the full six",
        switchboard_bus::SUSPECT_IN_PLACE_ATTEMPTS
    );
    assert_eq!(attempts("outage"), vec![1, 2, 3, 4, 5], "an outage is waited out in place");
    let dlq = bus.topology().dead_letter_queue("it.shard");
    wait_until(WAIT, "poison dead-lettered", || async { bus.ready_count(&dlq).await == Some(1) }).await;
}
