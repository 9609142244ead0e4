//! Storage integration tests against the local Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod migrations;
mod roles;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_bus::{Consumer, ConsumerOptions, HandleError, Handler, Incoming, QueueSpec};
use switchboard_storage::StorageError;
use switchboard_storage::outbox::{Outbox, OutboxRecord, OutboxRelay};
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

#[tokio::test]
async fn two_relays_publish_every_row_once_and_in_commit_order() {
    let db = TestDb::new().await;
    let bus = TestBus::new();
    let spec = bus.track(QueueSpec::ordered("it.outbox", &["it.outbox.#"]));
    let collected = Arc::new(Collect(Mutex::new(Vec::new())));
    let stop = CancellationToken::new();
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
        let ch = bus.broker("probe").channel().await.unwrap();
        ch.queue_declare(
            queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .is_ok()
    })
    .await;

    let outbox = Outbox::new("session");
    let mut expected = Vec::new();
    for tx_no in 0..20 {
        let mut tx = db.pool.begin().await.unwrap();
        let records: Vec<OutboxRecord> = (0..50)
            .map(|i| {
                let body = format!("{tx_no:02}-{i:02}");
                expected.push(body.clone());
                OutboxRecord {
                    message_id: uuid::Uuid::now_v7(),
                    routing_key: "it.outbox.v1".into(),
                    payload: body.into_bytes(),
                    headers: Default::default(),
                }
            })
            .collect();
        outbox.enqueue(&mut tx, &records).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(outbox.pending(&db.pool).await.unwrap(), 1000);

    let relays: Vec<_> = (0..2)
        .map(|n| {
            let relay = OutboxRelay::new(
                db.pool.clone(),
                outbox.clone(),
                switchboard_bus::Publisher::new(bus.broker(&format!("relay-{n}"))),
                37,
                Duration::from_millis(50),
            );
            tokio::spawn(relay.run(stop.clone()))
        })
        .collect();
    wait_until(Duration::from_secs(30), "all rows consumed", || async {
        collected.0.lock().unwrap().len() >= 1000
    })
    .await;
    wait_until(Duration::from_secs(10), "outbox emptied", || async {
        outbox.pending(&db.pool).await.unwrap() == 0
    })
    .await;
    assert_eq!(*collected.0.lock().unwrap(), expected, "each row once, in commit order");

    // A row committed later is picked up by notification or poll.
    let mut tx = db.pool.begin().await.unwrap();
    let late = OutboxRecord {
        message_id: uuid::Uuid::now_v7(),
        routing_key: "it.outbox.v1".into(),
        payload: b"late".to_vec(),
        headers: Default::default(),
    };
    outbox.enqueue(&mut tx, &[late]).await.unwrap();
    tx.commit().await.unwrap();
    wait_until(Duration::from_secs(10), "late row", || async {
        collected.0.lock().unwrap().last().map(String::as_str) == Some("late")
    })
    .await;
    assert_eq!(collected.0.lock().unwrap().len(), 1001);

    stop.cancel();
    for relay in relays {
        relay.await.unwrap();
    }
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
