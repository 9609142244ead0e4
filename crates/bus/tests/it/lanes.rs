//! The keyed consumer: deliveries sharing a key are never handled at once, different keys are,
//! and every delivery is handled once and acknowledged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use switchboard_bus::{Consumer, ConsumerOptions, HandleError, Handler, Incoming, QueueSpec, key_hash};
use switchboard_test_support::{TestBus, wait_until};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::support::publish;

const WAIT: Duration = Duration::from_secs(20);
const LANES: usize = 4;

fn key_of(body: &str) -> &str {
    body.split(':').next().unwrap_or_default()
}

fn lane(incoming: &Incoming) -> u64 {
    key_hash(key_of(&String::from_utf8_lossy(&incoming.payload)))
}

/// Records what it handles and any key handled twice at once. The batch holding the blocker's
/// first message waits until every delivery outside the blocker's lane is handled: only lanes
/// running side by side get there, and meanwhile a consumer without lanes would start the
/// blocker's later messages in other batches, which shows as an overlap.
struct Watcher {
    in_flight: Mutex<HashMap<String, usize>>,
    overlaps: Mutex<Vec<String>>,
    handled: Mutex<Vec<String>>,
    /// Woken whenever a batch has been handled.
    progress: Notify,
    blocker: String,
    /// How many deliveries fall outside the blocker's lane.
    elsewhere: usize,
}

impl Watcher {
    fn handled_elsewhere(&self) -> usize {
        let lane = key_hash(&self.blocker) % LANES as u64;
        self.handled
            .lock()
            .unwrap()
            .iter()
            .filter(|b| key_hash(key_of(b)) % LANES as u64 != lane)
            .count()
    }
}

impl Handler for Watcher {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let bodies: Vec<String> = batch.iter().map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
        // One batch may hold several deliveries of a key: the handler takes them in turn.
        let mut keys: Vec<&str> = bodies.iter().map(|b| key_of(b)).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in &keys {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry((*key).to_owned()).or_default();
            if *n > 0 {
                self.overlaps.lock().unwrap().push((*key).to_owned());
            }
            *n += 1;
        }
        if bodies.contains(&format!("{}:0", self.blocker)) {
            let others_done = async {
                loop {
                    // Registered before the check, so a batch finishing in between still wakes it.
                    let mut progressed = std::pin::pin!(self.progress.notified());
                    progressed.as_mut().enable();
                    if self.handled_elsewhere() >= self.elsewhere {
                        return;
                    }
                    progressed.await;
                }
            };
            if tokio::time::timeout(WAIT, others_done).await.is_err() {
                return Err(HandleError::Reject(anyhow::anyhow!(
                    "the other lanes did not run while this one was busy"
                )));
            }
        }
        tokio::task::yield_now().await;
        for key in &keys {
            *self.in_flight.lock().unwrap().entry((*key).to_owned()).or_default() -= 1;
        }
        self.handled.lock().unwrap().extend(bodies.iter().cloned());
        self.progress.notify_waiters();
        Ok(())
    }
}

#[tokio::test]
async fn one_key_is_never_handled_twice_at_once_while_other_keys_run_alongside() {
    let mut bus = TestBus::new();
    // Room for every delivery at once: the blocked lane holds its share unacknowledged, and
    // with a smaller window it would hold all of it and starve the other lanes (lanes.rs).
    bus.config.prefetch = 512;
    let spec = bus.track(QueueSpec::shared("it.lanes", &["it.lanes.v1"]));
    let channel = bus.broker("declare").channel().await.unwrap();
    bus.topology().declare_base(&channel).await.unwrap();
    bus.topology().declare_queue(&channel, &spec).await.unwrap();
    let keys: Vec<String> = (0..6).map(|i| format!("sid{i}")).collect();
    const EACH: usize = 40;
    let blocker = keys[0].clone();
    let lane_of = |k: &str| key_hash(k) % LANES as u64;
    let elsewhere = keys.iter().filter(|k| lane_of(k) != lane_of(&blocker)).count() * EACH;
    assert!(elsewhere > 0, "six keys fill more than one of four lanes (the hash is fixed)");
    let watcher = std::sync::Arc::new(Watcher {
        in_flight: Mutex::default(),
        overlaps: Mutex::default(),
        handled: Mutex::default(),
        progress: Notify::new(),
        blocker,
        elsewhere,
    });
    let publisher = bus.publisher();
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker("lanes"),
            publisher.clone(),
            ConsumerOptions::keyed(spec, LANES, lane).batched(3),
            watcher.clone(),
        )
        .run(stop.clone()),
    );
    let mut sent = Vec::new();
    for n in 0..EACH {
        for key in &keys {
            let body = format!("{key}:{n}");
            publish(&publisher, "it.lanes.v1", &body).await;
            sent.push(body);
        }
    }
    wait_until(WAIT, "every delivery handled", || async {
        watcher.handled.lock().unwrap().len() >= sent.len()
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();

    assert_eq!(
        *watcher.overlaps.lock().unwrap(),
        Vec::<String>::new(),
        "a key handled twice at once"
    );
    let mut handled = watcher.handled.lock().unwrap().clone();
    handled.sort();
    sent.sort();
    assert_eq!(handled, sent, "each delivery handled exactly once");
}
