use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use switchboard_bus::{Consumer, ConsumerOptions, HandleError, Handler, Incoming, Outgoing, PublishError, QueueSpec};
use switchboard_test_support::{TcpProxy, TestBus, TestDb, wait_until};
use tokio_util::sync::CancellationToken;

use crate::support::{Recorder, publish};

const WAIT: Duration = Duration::from_secs(20);

async fn ready_count(bus: &TestBus, queue: &str) -> u32 {
    let channel = bus.broker("probe").channel().await.unwrap();
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    q.message_count()
}

/// Inserts each message into Postgres and commits before returning; can be told to hang
/// (simulating a consumer that dies mid-message).
struct DbHandler {
    pool: sqlx::PgPool,
    hang: AtomicBool,
}

impl Handler for DbHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        if self.hang.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
        let mut tx = self.pool.begin().await.map_err(|e| HandleError::Retry(e.into()))?;
        for message in batch {
            sqlx::query("INSERT INTO handled (body) VALUES ($1)")
                .bind(String::from_utf8_lossy(&message.payload).into_owned())
                .execute(&mut *tx)
                .await
                .map_err(|e| HandleError::Retry(e.into()))?;
        }
        tx.commit().await.map_err(|e| HandleError::Retry(e.into()))
    }
}

#[tokio::test]
async fn a_confirmed_message_is_handled_once_and_acked_only_after_the_handler_commits() {
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE handled (body text NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let bus = TestBus::new();
    let spec = bus.track(QueueSpec::shared("it.once", &["it.once.v1"]));
    let publisher = bus.publisher();

    // First consumer hangs inside the handler: the message must stay unacknowledged.
    let hanging = Arc::new(DbHandler {
        pool: db.pool.clone(),
        hang: AtomicBool::new(true),
    });
    let first_broker = bus.broker("hanging");
    let stop_first = CancellationToken::new();
    let first = tokio::spawn(
        Consumer::new(
            first_broker.clone(),
            publisher.clone(),
            ConsumerOptions::concurrent(spec.clone(), 4),
            hanging,
        )
        .run(stop_first.clone()),
    );
    wait_until(WAIT, "queue declared", || async { bus.broker("p").channel().await.is_ok() }).await;
    // Wait for the consumer to declare the queue before publishing.
    let queue = bus.topology().queue("it.once");
    wait_until(WAIT, "queue exists", || async {
        let channel = bus.broker("probe").channel().await.unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok()
    })
    .await;
    publish(&publisher, "it.once.v1", "m-1").await;
    wait_until(WAIT, "delivery to the hanging consumer", || async {
        ready_count(&bus, &queue).await == 0
    })
    .await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM handled")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing committed yet");

    // It dies (connection gone): the unacked message goes back and a healthy consumer commits it.
    first.abort();
    first_broker.close().await;
    let healthy = Arc::new(DbHandler {
        pool: db.pool.clone(),
        hang: AtomicBool::new(false),
    });
    let stop = CancellationToken::new();
    let second = tokio::spawn(
        Consumer::new(
            bus.broker("healthy"),
            publisher.clone(),
            ConsumerOptions::concurrent(spec, 4),
            healthy,
        )
        .run(stop.clone()),
    );
    wait_until(WAIT, "the message committed", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM handled")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    stop.cancel();
    second.await.unwrap();
    stop_first.cancel();
    // With every consumer gone, an unacked message would be ready again: none is.
    assert_eq!(ready_count(&bus, &queue).await, 0, "acked");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM handled")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "handled exactly once");
}

#[tokio::test]
async fn a_failing_message_is_retried_with_backoff_then_dead_lettered_with_its_reason() {
    let bus = TestBus::new();
    let spec = bus.track(QueueSpec::shared("it.retry", &["it.retry.v1"]));
    let publisher = bus.publisher();
    let recorder = Recorder::failing(|_| Some(HandleError::Retry(anyhow::anyhow!("database is down"))));
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
    let queue = bus.topology().queue("it.retry");
    wait_until(WAIT, "queue exists", || async {
        let channel = bus.broker("probe").channel().await.unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok()
    })
    .await;
    publish(&publisher, "it.retry.v1", "poison").await;

    let dlq = bus.topology().dead_letter_queue("it.retry");
    let channel = bus.broker("probe").channel().await.unwrap();
    let dead = Arc::new(std::sync::Mutex::new(None));
    wait_until(WAIT, "dead letter", || {
        let (channel, dlq, dead) = (channel.clone(), dlq.clone(), dead.clone());
        async move {
            if let Some(message) = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                *dead.lock().unwrap() = Some(message);
                return true;
            }
            false
        }
    })
    .await;
    let dead = dead.lock().unwrap().take().unwrap();
    let headers = switchboard_bus::headers_to_map(dead.delivery.properties.headers().as_ref());
    assert!(headers.get("x-sb-error").unwrap().contains("database is down"));
    assert_eq!(String::from_utf8_lossy(&dead.delivery.data), "poison");
    assert_eq!(
        headers.get(switchboard_bus::ROUTING_KEY_HEADER).map(String::as_str),
        Some("it.retry.v1"),
        "the dead letter names the key it was published with"
    );
    // Parked retries come back through the retry exchange under the queue's name; handlers
    // dispatch on the routing key, so every attempt must still see the original one.
    assert_eq!(
        *recorder.keys.lock().unwrap(),
        vec!["it.retry.v1"; 3],
        "every attempt sees the original routing key"
    );

    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "three attempts, counted"
    );
    // Backoff: the 50 ms tier, then the 100 ms tier (TTL queues are exact, no jitter).
    assert!(seen[1].2 - seen[0].2 >= Duration::from_millis(50), "first retry waited");
    assert!(seen[2].2 - seen[1].2 >= Duration::from_millis(100), "second retry waited longer");
    stop.cancel();
    consumer.await.unwrap();
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_at_once_and_in_place_retries_keep_going() {
    let bus = TestBus::new();
    let publisher = bus.publisher();
    // Ordered queue: "flaky" fails twice then succeeds in place; "bad" is rejected.
    let spec = bus.track(QueueSpec::ordered("it.inplace", &["it.inplace.v1"]));
    let recorder = Recorder::failing(|m| match (String::from_utf8_lossy(&m.payload).as_ref(), m.attempt) {
        ("flaky", 1 | 2) => Some(HandleError::Retry(anyhow::anyhow!("blip"))),
        ("bad", _) => Some(HandleError::Reject(anyhow::anyhow!("malformed"))),
        _ => None,
    });
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker("c"),
            publisher.clone(),
            ConsumerOptions::ordered(spec, 16),
            recorder.clone(),
        )
        .run(stop.clone()),
    );
    let queue = bus.topology().queue("it.inplace");
    wait_until(WAIT, "queue exists", || async {
        let channel = bus.broker("probe").channel().await.unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok()
    })
    .await;
    for body in ["a", "flaky", "bad", "b"] {
        publish(&publisher, "it.inplace.v1", body).await;
    }
    wait_until(WAIT, "b handled", || async {
        recorder.singles.lock().unwrap().iter().any(|(b, _)| b == "b") || recorder.bodies().last().map(String::as_str) == Some("b")
    })
    .await;
    let mut first_seen: Vec<String> = Vec::new();
    for body in recorder.bodies() {
        if !first_seen.contains(&body) {
            first_seen.push(body);
        }
    }
    assert_eq!(first_seen, vec!["a", "flaky", "bad", "b"], "order kept across in-place retries");
    let singles = recorder.singles.lock().unwrap().clone();
    let flaky: Vec<u32> = singles.iter().filter(|(b, _)| b == "flaky").map(|(_, a)| *a).collect();
    assert_eq!(flaky, vec![1, 2, 3], "retried in place with counted attempts");
    assert_eq!(singles.iter().filter(|(b, _)| b == "bad").count(), 1, "a rejection is not retried");
    let dlq = bus.topology().dead_letter_queue("it.inplace");
    wait_until(WAIT, "bad dead-lettered", || async { ready_count(&bus, &dlq).await == 1 }).await;
    stop.cancel();
    consumer.await.unwrap();
}

/// Logs (body, consumer name) into a shared list.
struct Tagged {
    name: &'static str,
    log: Arc<std::sync::Mutex<Vec<(String, &'static str)>>>,
}

impl Handler for Tagged {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let mut log = self.log.lock().unwrap();
        for message in batch {
            log.push((String::from_utf8_lossy(&message.payload).into_owned(), self.name));
        }
        Ok(())
    }
}

#[tokio::test]
async fn one_shard_is_handled_in_publish_order_with_two_consumers_and_a_handover() {
    let bus = TestBus::new();
    let publisher = bus.publisher();
    let spec = bus.track(QueueSpec::ordered("it.shard", &["it.shard.v1"]));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let queue = bus.topology().queue("it.shard");
    // A registers first, so it is the active consumer; B waits as standby.
    let stop_a = CancellationToken::new();
    let a = tokio::spawn(
        Consumer::new(
            bus.broker("a"),
            publisher.clone(),
            ConsumerOptions::ordered(spec.clone(), 8),
            Arc::new(Tagged {
                name: "a",
                log: log.clone(),
            }),
        )
        .run(stop_a.clone()),
    );
    wait_until(WAIT, "a attached", || async {
        let channel = bus.broker("probe").channel().await.unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.consumer_count() >= 1)
            .unwrap_or(false)
    })
    .await;
    let stop_b = CancellationToken::new();
    let b = tokio::spawn(
        Consumer::new(
            bus.broker("b"),
            publisher.clone(),
            ConsumerOptions::ordered(spec, 8),
            Arc::new(Tagged {
                name: "b",
                log: log.clone(),
            }),
        )
        .run(stop_b.clone()),
    );

    let bodies: Vec<String> = (0..400).map(|i| format!("{i:04}")).collect();
    let messages: Vec<Outgoing<'_>> = bodies
        .iter()
        .map(|b| Outgoing {
            exchange: None,
            routing_key: "it.shard.v1",
            payload: b.as_bytes(),
            message_id: b,
            headers: Default::default(),
            mandatory: true,
        })
        .collect();
    publisher.publish_batch(&messages[..200]).await.unwrap();
    wait_until(WAIT, "some handled by a", || async { log.lock().unwrap().len() >= 50 }).await;
    // The active consumer stops mid-stream (its unprocessed prefetch goes back); B takes over.
    stop_a.cancel();
    a.await.unwrap();
    publisher.publish_batch(&messages[200..]).await.unwrap();
    wait_until(WAIT, "all handled", || async { log.lock().unwrap().len() >= 400 }).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(),
        bodies,
        "publish order, no duplicates"
    );
    assert!(
        log.iter().any(|(_, c)| *c == "a") && log.iter().any(|(_, c)| *c == "b"),
        "both consumers took part"
    );
    let first_b = log.iter().position(|(_, c)| *c == "b").unwrap();
    assert!(log[first_b..].iter().all(|(_, c)| *c == "b"), "a clean handover, no interleaving");
    stop_b.cancel();
    b.await.unwrap();
}

#[tokio::test]
async fn a_consumer_survives_its_connection_being_cut_and_the_publisher_recovers() {
    let proxy = TcpProxy::start("127.0.0.1:5672").await;
    let url = proxy.rewrite_url(&switchboard_test_support::amqp_url(), "127.0.0.1:5672");
    let bus = TestBus::new();
    let spec = bus.track(QueueSpec::shared("it.cut", &["it.cut.v1"]));
    let via_proxy = switchboard_bus::Publisher::new(bus.broker_at(&url, "proxied-publisher"));
    let recorder = Recorder::ok();
    let stop = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker_at(&url, "proxied-consumer"),
            via_proxy.clone(),
            ConsumerOptions::concurrent(spec, 4),
            recorder.clone(),
        )
        .run(stop.clone()),
    );
    wait_until(WAIT, "consumer attached", || async {
        let channel = bus.broker("probe").channel().await.unwrap();
        let queue = bus.topology().queue("it.cut");
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.consumer_count() == 1)
            .unwrap_or(false)
    })
    .await;
    publish(&via_proxy, "it.cut.v1", "before").await;
    wait_until(WAIT, "before handled", || async { recorder.count() == 1 }).await;

    proxy.block();
    let refused = via_proxy
        .publish(Outgoing {
            exchange: None,
            routing_key: "it.cut.v1",
            payload: b"lost",
            message_id: "x",
            headers: Default::default(),
            mandatory: true,
        })
        .await;
    assert!(matches!(refused, Err(PublishError::Unavailable(_))), "{refused:?}");
    proxy.unblock();

    wait_until(WAIT, "publisher back", || async {
        via_proxy
            .publish(Outgoing {
                exchange: None,
                routing_key: "it.cut.v1",
                payload: b"after",
                message_id: "after",
                headers: Default::default(),
                mandatory: true,
            })
            .await
            .is_ok()
    })
    .await;
    wait_until(WAIT, "after handled by the reconnected consumer", || async {
        recorder.bodies().contains(&"after".to_owned())
    })
    .await;
    assert!(!recorder.bodies().contains(&"lost".to_owned()));
    stop.cancel();
    consumer.await.unwrap();
}

#[tokio::test]
async fn an_unroutable_mandatory_message_is_an_error() {
    let bus = TestBus::new();
    bus.declare().await;
    let publisher = bus.publisher();
    let result = publisher
        .publish(Outgoing {
            exchange: None,
            routing_key: "nobody.listens.v1",
            payload: b"x",
            message_id: "x",
            headers: Default::default(),
            mandatory: true,
        })
        .await;
    assert!(matches!(result, Err(PublishError::Unroutable(_))), "{result:?}");
    // Not mandatory: the broker accepts and drops it.
    publisher
        .publish(Outgoing {
            exchange: None,
            routing_key: "nobody.listens.v1",
            payload: b"x",
            message_id: "x",
            headers: Default::default(),
            mandatory: false,
        })
        .await
        .unwrap();
}
