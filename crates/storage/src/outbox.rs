//! The transactional outbox: events are written in the same transaction as the state change they
//! describe, and a relay publishes them with confirms, then deletes them.
//!
//! One relay per schema works at a time (a transaction-scoped advisory lock), so rows are
//! published once and in commit order even with several replicas running; the others stand by.
//!
//! Writers wake the relay of their own process (an in-memory signal, not a Postgres `NOTIFY`:
//! `NOTIFY` takes a database-wide lock at commit, which serialised every writing transaction of
//! every service behind one another and cost a third of the end-to-end throughput). The writer
//! signals before its commit, so a woken relay that finds nothing looks again a few times over
//! the next ~100 ms; rows another replica wrote are found by that replica's relay or by the poll.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::KeyValue;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use switchboard_bus::{Envelope, Event, Outgoing, PublishError, Publisher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::StorageError;

/// An event to be published by the relay.
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    /// The event's unique id (AMQP message id; consumers dedupe on it).
    pub message_id: Uuid,
    /// Routing key on the events exchange.
    pub routing_key: String,
    /// JSON body.
    pub payload: Vec<u8>,
    /// Headers, usually the trace context of the transaction that wrote it.
    pub headers: BTreeMap<String, String>,
}

impl OutboxRecord {
    /// Builds a record from an envelope, carrying the current trace context.
    pub fn from_envelope<T: Event>(envelope: &Envelope<T>) -> Self {
        Self {
            message_id: envelope.message_id,
            routing_key: envelope.payload.routing_key(),
            payload: envelope.to_bytes(),
            headers: switchboard_telemetry::propagation::current_context_map(),
        }
    }
}

/// Events collected during one transaction, written to the outbox before it commits.
#[derive(Debug, Default)]
pub struct EventBatch {
    records: Vec<OutboxRecord>,
}

impl EventBatch {
    /// Adds an event that happened at `at`.
    pub fn push<T: Event>(&mut self, event: T, at: time::OffsetDateTime) {
        self.records.push(OutboxRecord::from_envelope(&Envelope::at(event, at)));
    }

    /// Returns the collected records.
    pub fn records(&self) -> &[OutboxRecord] {
        &self.records
    }

    /// Returns whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The outbox of one schema.
#[derive(Debug, Clone)]
pub struct Outbox {
    schema: &'static str,
    insert: String,
    select: String,
    delete: String,
    /// Names the advisory lock only one relay holds.
    lock_key: String,
    wake: Arc<Notify>,
}

impl Outbox {
    /// The outbox table `<schema>.outbox`. `schema` is one of ours (a fixed identifier).
    pub fn new(schema: &'static str) -> Self {
        assert!(
            schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "schema must be a plain identifier"
        );
        Self {
            schema,
            insert: format!(
                "INSERT INTO {schema}.outbox (message_id, routing_key, payload, headers) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[], $4::jsonb[])"
            ),
            select: format!(
                "SELECT id, message_id, routing_key, payload, headers FROM {schema}.outbox \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            ),
            delete: format!("DELETE FROM {schema}.outbox WHERE id = ANY($1)"),
            lock_key: format!("{schema}_outbox"),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Returns the schema.
    pub fn schema(&self) -> &'static str {
        self.schema
    }

    /// Wakes this process's relay: call it when rows were (or are about to be) committed by other
    /// means than [`Outbox::enqueue`].
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Writes `records` inside the caller's transaction and wakes this process's relay.
    pub async fn enqueue(&self, conn: &mut PgConnection, records: &[OutboxRecord]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = records.iter().map(|r| r.message_id).collect();
        let keys: Vec<&str> = records.iter().map(|r| r.routing_key.as_str()).collect();
        let payloads: Vec<&[u8]> = records.iter().map(|r| r.payload.as_slice()).collect();
        let headers: Vec<serde_json::Value> = records.iter().map(|r| serde_json::json!(r.headers)).collect();
        sqlx::query(AssertSqlSafe(self.insert.clone()))
            .bind(ids)
            .bind(keys)
            .bind(payloads)
            .bind(headers)
            .execute(&mut *conn)
            .await?;
        self.wake();
        Ok(())
    }

    /// Returns how many rows wait to be published.
    pub async fn pending(&self, pool: &PgPool) -> Result<i64, StorageError> {
        let sql = format!("SELECT count(*) FROM {}.outbox", self.schema);
        Ok(sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(pool).await?)
    }
}

/// After a wake-up, the relay looks again this many ms apart when it found nothing (the writer
/// signals before it commits), then falls back to its poll interval.
const LOOK_AGAIN_MS: [u64; 5] = [1, 5, 20, 50, 100];

/// What one drain did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Drained {
    /// Rows published.
    pub published: u64,
    /// Another relay held the lock.
    pub busy: bool,
}

/// Publishes an [`Outbox`] until shutdown.
pub struct OutboxRelay {
    pool: PgPool,
    outbox: Outbox,
    publisher: Publisher,
    batch: i64,
    poll: Duration,
}

impl OutboxRelay {
    /// A relay publishing up to `batch` rows per transaction, polling every `poll` at least.
    pub fn new(pool: PgPool, outbox: Outbox, publisher: Publisher, batch: i64, poll: Duration) -> Self {
        Self {
            pool,
            outbox,
            publisher,
            batch: batch.max(1),
            poll,
        }
    }

    /// Runs until `shutdown`; transient failures are logged and retried.
    pub async fn run(self, shutdown: CancellationToken) {
        let published = switchboard_telemetry::metrics::meter()
            .u64_counter(switchboard_telemetry::semconv::SWITCHBOARD_OUTBOX_PUBLISHED)
            .build();
        let attrs = [KeyValue::new("schema", self.outbox.schema)];
        let mut failures: u32 = 0;
        // After a wake-up, how many of the follow-up looks have been taken.
        let mut looks = 0usize;
        // Events are published as mandatory: every queue they are routed to is declared first,
        // whichever service starts first, and again after a return.
        let mut declared = false;
        while !shutdown.is_cancelled() {
            if !declared {
                match self.publisher.broker().declare_topology().await {
                    Ok(()) => declared = true,
                    Err(error) => {
                        tracing::warn!(schema = self.outbox.schema, error = %format!("{error:#}"), "cannot declare the topology yet")
                    }
                }
            }
            let pause = match self.drain().await {
                Ok(drained) => {
                    failures = 0;
                    if drained.published > 0 {
                        published.add(drained.published, &attrs);
                    }
                    if drained.busy {
                        // Another replica is publishing: take over soon after it finishes.
                        Duration::from_millis(25)
                    } else if let Some(ms) = LOOK_AGAIN_MS.get(looks) {
                        looks += 1;
                        Duration::from_millis(*ms)
                    } else {
                        self.poll
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if matches!(error.downcast_ref::<PublishError>(), Some(PublishError::Unroutable(_))) {
                        // Nothing would receive it: it stays in the outbox, and the relay says so.
                        declared = false;
                        tracing::error!(schema = self.outbox.schema, error = %format!("{error:#}"), "an event is routed to no queue; it stays in the outbox");
                    } else {
                        tracing::warn!(schema = self.outbox.schema, error = %format!("{error:#}"), "outbox relay failed, retrying");
                    }
                    Duration::from_millis(100 * u64::from(failures.min(50)))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                () = self.outbox.wake.notified(), if failures == 0 => looks = 0,
            }
        }
    }

    /// Publishes batches until the outbox is empty (or another relay holds the lock).
    pub async fn drain(&self) -> anyhow::Result<Drained> {
        let mut drained = Drained::default();
        loop {
            let Some(n) = self.relay_batch().await? else {
                drained.busy = true;
                return Ok(drained);
            };
            drained.published += n;
            if n < u64::try_from(self.batch).unwrap_or(u64::MAX) {
                return Ok(drained);
            }
        }
    }

    /// Publishes one batch; `None` when another relay holds the lock.
    async fn relay_batch(&self) -> anyhow::Result<Option<u64>> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
            .bind(&self.outbox.lock_key)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let rows = sqlx::query(AssertSqlSafe(self.outbox.select.clone()))
            .bind(self.batch)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            return Ok(Some(0));
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut owned = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<i64, _>("id")?);
            let headers: serde_json::Value = row.try_get("headers")?;
            let headers: BTreeMap<String, String> = serde_json::from_value(headers).unwrap_or_default();
            owned.push((
                row.try_get::<Uuid, _>("message_id")?.to_string(),
                row.try_get::<String, _>("routing_key")?,
                row.try_get::<Vec<u8>, _>("payload")?,
                headers,
            ));
        }
        let messages: Vec<Outgoing<'_>> = owned
            .iter()
            .map(|(id, key, payload, headers)| Outgoing {
                exchange: None,
                routing_key: key,
                payload,
                message_id: id,
                headers: headers.clone(),
                // A return is a failure: an event no queue receives is never confirmed and deleted.
                mandatory: true,
            })
            .collect();
        self.publisher.publish_batch(&messages).await?;
        sqlx::query(AssertSqlSafe(self.outbox.delete.clone()))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(ids.len() as u64))
    }
}
