//! The transactional outbox: events are written in the same transaction as the state change they
//! describe, and a relay publishes them with confirms, then deletes them.
//!
//! One relay per schema works at a time (a transaction-scoped advisory lock), so rows are
//! published once and in commit order even with several replicas running; the others stand by.
//! A `NOTIFY` on commit wakes the relay at once; a poll interval covers lost notifications.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::KeyValue;
use sqlx::postgres::PgListener;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use switchboard_bus::{Envelope, Event, Outgoing, Publisher};
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
    channel: String,
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
            channel: format!("{schema}_outbox"),
        }
    }

    /// Returns the schema.
    pub fn schema(&self) -> &'static str {
        self.schema
    }

    /// Writes `records` inside the caller's transaction and notifies the relay on commit.
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
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.channel)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Returns how many rows wait to be published.
    pub async fn pending(&self, pool: &PgPool) -> Result<i64, StorageError> {
        let sql = format!("SELECT count(*) FROM {}.outbox", self.schema);
        Ok(sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(pool).await?)
    }
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
        let mut listener = None;
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            if listener.is_none() {
                listener = self.listen().await;
            }
            match self.drain().await {
                Ok(n) => {
                    failures = 0;
                    if n > 0 {
                        published.add(n, &attrs);
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(schema = self.outbox.schema, error = %format!("{error:#}"), "outbox relay failed, retrying");
                }
            }
            let pause = if failures == 0 {
                self.poll
            } else {
                Duration::from_millis(100 * u64::from(failures.min(50)))
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                notified = wait_notification(&mut listener), if failures == 0 => {
                    if !notified {
                        listener = None;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(&self.outbox.channel).await.ok()?;
        Some(listener)
    }

    /// Publishes batches until the outbox is empty (or another relay holds the lock).
    /// Returns how many rows this relay published.
    pub async fn drain(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let n = self.relay_batch().await?;
            total += n;
            if n < u64::try_from(self.batch).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }

    async fn relay_batch(&self) -> anyhow::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
            .bind(&self.outbox.channel)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0);
        }
        let rows = sqlx::query(AssertSqlSafe(self.outbox.select.clone()))
            .bind(self.batch)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            return Ok(0);
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
                mandatory: false,
            })
            .collect();
        self.publisher.publish_batch(&messages).await?;
        sqlx::query(AssertSqlSafe(self.outbox.delete.clone()))
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
    }
}

/// Waits for a notification, then swallows any others already buffered (one drain serves them
/// all); returns false when the listener is broken (or absent).
async fn wait_notification(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(l) => {
            let ok = l.recv().await.is_ok();
            while l.next_buffered().is_some() {}
            ok
        }
        None => std::future::pending().await,
    }
}
