//! Storage integration tests against the local Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod migrations;
mod roles;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_bus::{Consumer, ConsumerOptions, HandleError, Handler, Incoming, QueueSpec};
use switchboard_storage::StorageError;
use switchboard_storage::outbox::{Outbox, OutboxRecord, OutboxRelay, PARTS, part_of};
use switchboard_test_support::{TestBus, TestDb, wait_until};
use tokio_util::sync::CancellationToken;

struct Collect(Mutex<Vec<String>>);

impl Handler for Collect {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let mut seen = self.0.lock().unwrap();
        for message in batch {
            seen.push(String::from_utf8_lossy(&message.payload).into_owned());
        }
        Ok(())
    }
}

fn record(key: &str, body: String) -> OutboxRecord {
    OutboxRecord {
        message_id: uuid::Uuid::now_v7(),
        routing_key: "it.outbox.v1".into(),
        payload: body.into_bytes(),
        headers: Default::default(),
        part: part_of(key),
    }
}

/// Starts an ordered consumer collecting what reaches `it.outbox`, once its queue exists.
async fn collector(bus: &TestBus, stop: &CancellationToken) -> (Arc<Collect>, tokio::task::JoinHandle<()>) {
    let spec = bus.track(QueueSpec::ordered("it.outbox", &["it.outbox.#"]));
    let collected = Arc::new(Collect(Mutex::new(Vec::new())));
    let consumer = tokio::spawn(
        Consumer::new(
            bus.broker("consumer"),
            bus.publisher(),
            ConsumerOptions::ordered(spec, 64),
            collected.clone(),
        )
        .run(stop.clone()),
    );
    let queue = bus.topology().queue("it.outbox");
    wait_until(Duration::from_secs(20), "queue declared", || async {
        bus.ready_count(&queue).await.is_some()
    })
    .await;
    (collected, consumer)
}

fn relay(db: &TestDb, bus: &TestBus, outbox: &Outbox, name: &str, batch: i64) -> OutboxRelay {
    OutboxRelay::new(
        db.pool.clone(),
        outbox.clone(),
        switchboard_bus::Publisher::new(bus.broker(name)),
        batch,
        Duration::from_millis(50),
    )
}

#[tokio::test]
async fn three_relays_publish_every_row_once_and_each_aggregate_in_commit_order() {
    let db = TestDb::new().await;
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let (collected, consumer) = collector(&bus, &stop).await;

    let outbox = Outbox::new("session");
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tx_no in 0..20 {
        let mut tx = db.pool.begin().await.unwrap();
        let records: Vec<OutboxRecord> = (0..50)
            .map(|i| {
                let key = format!("conversation-{}", (tx_no * 7 + i) % 40);
                let body = format!("{key}/{tx_no:02}-{i:02}");
                expected.entry(key.clone()).or_default().push(body.clone());
                record(&key, body)
            })
            .collect();
        outbox.enqueue(&mut tx, &records).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(outbox.pending(&db.pool).await.unwrap(), 1000);

    let relays: Vec<_> = (0..3)
        .map(|n| tokio::spawn(relay(&db, &bus, &outbox, &format!("relay-{n}"), 37).run(stop.clone())))
        .collect();
    wait_until(Duration::from_secs(30), "all rows consumed", || async {
        collected.0.lock().unwrap().len() >= 1000
    })
    .await;
    wait_until(Duration::from_secs(10), "outbox emptied", || async {
        outbox.pending(&db.pool).await.unwrap() == 0
    })
    .await;
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for body in collected.0.lock().unwrap().iter() {
        let key = body.split('/').next().unwrap().to_owned();
        seen.entry(key).or_default().push(body.clone());
    }
    assert_eq!(seen, expected, "each row once, each aggregate in commit order");
    let relays_seen: i64 = sqlx::query_scalar("SELECT count(*) FROM session.outbox_relays")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(relays_seen, 3, "every running relay heartbeats");

    // A row committed later is picked up by notification or poll.
    let mut tx = db.pool.begin().await.unwrap();
    outbox.enqueue(&mut tx, &[record("late", "late/0".into())]).await.unwrap();
    tx.commit().await.unwrap();
    wait_until(Duration::from_secs(10), "late row", || async {
        collected.0.lock().unwrap().last().map(String::as_str) == Some("late/0")
    })
    .await;
    assert_eq!(collected.0.lock().unwrap().len(), 1001);

    stop.cancel();
    for relay in relays {
        relay.await.unwrap();
    }
    consumer.await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM session.outbox_relays")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "stopped relays leave");
}

#[tokio::test]
async fn a_relay_skips_the_partitions_another_holds_and_takes_only_its_share() {
    let db = TestDb::new().await;
    let bus = TestBus::new();
    let stop = CancellationToken::new();
    let (collected, consumer) = collector(&bus, &stop).await;
    let outbox = Outbox::new("session");

    // One row in each of 64 partitions.
    let mut keys: BTreeMap<i16, String> = BTreeMap::new();
    for n in 0.. {
        let key = format!("agent-{n}");
        keys.entry(part_of(&key)).or_insert(key);
        if keys.len() == usize::from(PARTS) {
            break;
        }
    }
    let mut tx = db.pool.begin().await.unwrap();
    let records: Vec<OutboxRecord> = keys.values().map(|k| record(k, format!("{k}/0"))).collect();
    outbox.enqueue(&mut tx, &records).await.unwrap();
    tx.commit().await.unwrap();

    // Another relay is working on partitions 0..10: this one publishes the rest, not those.
    let mut other = db.pool.begin().await.unwrap();
    for part in 0..10 {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('session_outbox.part'), $1)")
            .bind(part)
            .execute(&mut *other)
            .await
            .unwrap();
    }
    let relay = relay(&db, &bus, &outbox, "relay", 500);
    assert_eq!(relay.drain().await.unwrap().published, 54);
    assert_eq!(outbox.pending(&db.pool).await.unwrap(), 10);
    other.commit().await.unwrap();
    assert_eq!(relay.drain().await.unwrap().published, 10);

    // With a second relay running, one batch takes half the partitions that have rows.
    let mut tx = db.pool.begin().await.unwrap();
    let records: Vec<OutboxRecord> = keys.values().map(|k| record(k, format!("{k}/1"))).collect();
    outbox.enqueue(&mut tx, &records).await.unwrap();
    tx.commit().await.unwrap();
    sqlx::query("INSERT INTO session.outbox_relays VALUES ('another replica', now())")
        .execute(&db.pool)
        .await
        .unwrap();
    relay.heartbeat().await.unwrap();
    assert_eq!(relay.publish_batch().await.unwrap(), Some(32));
    assert_eq!(relay.publish_batch().await.unwrap(), Some(16), "half of the 32 left");

    // A relay of the previous version holds the schema's lock: nothing is published meanwhile.
    let mut old = db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('session_outbox'))")
        .execute(&mut *old)
        .await
        .unwrap();
    let drained = relay.drain().await.unwrap();
    assert!(drained.busy && drained.published == 0, "{drained:?}");
    old.commit().await.unwrap();
    assert_eq!(relay.drain().await.unwrap().published, 16);
    wait_until(Duration::from_secs(10), "everything consumed", || async {
        collected.0.lock().unwrap().len() == 128
    })
    .await;
    stop.cancel();
    consumer.await.unwrap();
}

#[tokio::test]
async fn postgres_errors_map_to_typed_storage_errors() {
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE parent (id int PRIMARY KEY, n int CHECK (n > 0))")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES parent(id))")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO parent VALUES (1, 1)").execute(&db.pool).await.unwrap();

    let dup: StorageError = sqlx::query("INSERT INTO parent VALUES (1, 1)")
        .execute(&db.pool)
        .await
        .unwrap_err()
        .into();
    assert!(
        matches!(&dup, StorageError::AlreadyExists { constraint } if constraint == "parent_pkey"),
        "{dup:?}"
    );
    let fk: StorageError = sqlx::query("INSERT INTO child VALUES (1, 42)")
        .execute(&db.pool)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(fk, StorageError::ForeignKey { .. }), "{fk:?}");
    let check: StorageError = sqlx::query("INSERT INTO parent VALUES (2, 0)")
        .execute(&db.pool)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(check, StorageError::Check { .. }), "{check:?}");
    let missing: StorageError = sqlx::query("SELECT 1 FROM parent WHERE id = 9")
        .fetch_one(&db.pool)
        .await
        .unwrap_err()
        .into();
    assert!(matches!(missing, StorageError::NotFound));
    assert!(!missing.is_transient());
    // Text PostgreSQL cannot hold (a NUL byte) and a JSON NUL escape are permanent, not retried.
    for (sql, value) in [
        ("SELECT $1::text", serde_json::json!("a\u{0}b")),
        ("SELECT $1::jsonb", serde_json::json!({"body": "a\u{0}b"})),
    ] {
        let query = sqlx::query(sql);
        let query = match value {
            serde_json::Value::String(text) => query.bind(text),
            other => query.bind(other),
        };
        let unstorable: StorageError = query.fetch_one(&db.pool).await.unwrap_err().into();
        assert!(matches!(unstorable, StorageError::Unstorable(_)), "{sql}: {unstorable:?}");
        assert!(!unstorable.is_transient());
    }

    // Two serializable transactions that read and write the same rows: one must fail, as Conflict.
    let mut a = db.pool.begin().await.unwrap();
    let mut b = db.pool.begin().await.unwrap();
    for tx in [&mut a, &mut b] {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut **tx)
            .await
            .unwrap();
        let _: i64 = sqlx::query_scalar("SELECT sum(n)::bigint FROM parent")
            .fetch_one(&mut **tx)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO parent VALUES (10, 5)").execute(&mut *a).await.unwrap();
    sqlx::query("INSERT INTO parent VALUES (11, 5)").execute(&mut *b).await.unwrap();
    a.commit().await.unwrap();
    let conflict: StorageError = b.commit().await.unwrap_err().into();
    assert!(
        matches!(conflict, StorageError::Conflict) && conflict.is_transient(),
        "{conflict:?}"
    );
}

#[tokio::test]
async fn an_event_no_queue_receives_stays_in_the_outbox_and_the_relay_declares_what_it_publishes_to() {
    let db = TestDb::new().await;
    let bus = TestBus::new();
    let late = bus.track(QueueSpec::shared("it.late", &["it.late.v1"]));
    let outbox = Outbox::new("session");
    let mut tx = db.pool.begin().await.unwrap();
    let record = OutboxRecord {
        message_id: uuid::Uuid::now_v7(),
        routing_key: "it.late.v1".into(),
        payload: b"for a queue that does not exist yet".to_vec(),
        headers: Default::default(),
        part: part_of("late"),
    };
    outbox.enqueue(&mut tx, std::slice::from_ref(&record)).await.unwrap();
    tx.commit().await.unwrap();
    let relay = || {
        OutboxRelay::new(
            db.pool.clone(),
            outbox.clone(),
            switchboard_bus::Publisher::new(bus.broker("relay")),
            10,
            Duration::from_millis(50),
        )
    };

    // Routed to no queue: the broker returns it, and the row is kept, not confirmed and deleted.
    let channel = bus.broker("declare").channel().await.unwrap();
    bus.topology().declare_base(&channel).await.unwrap();
    let failed = relay().drain().await.unwrap_err();
    assert!(
        matches!(
            failed.downcast_ref::<switchboard_bus::PublishError>(),
            Some(switchboard_bus::PublishError::Unroutable(_))
        ),
        "{failed:#}"
    );
    assert_eq!(outbox.pending(&db.pool).await.unwrap(), 1, "kept");

    // Once a queue receives it, the same row is published.
    bus.topology().declare_queue(&channel, &late).await.unwrap();
    relay().drain().await.unwrap();
    assert_eq!(outbox.pending(&db.pool).await.unwrap(), 0);
    assert_eq!(bus.ready_count(&bus.topology().queue("it.late")).await, Some(1), "published once");

    // A running relay declares the system topology before it publishes anything.
    let stop = CancellationToken::new();
    let running = tokio::spawn(relay().run(stop.clone()));
    let work = bus.topology().queue("routing.work");
    wait_until(Duration::from_secs(20), "the system queues declared by the relay", || async {
        bus.ready_count(&work).await.is_some()
    })
    .await;
    stop.cancel();
    running.await.unwrap();
}
