//! The transactional outbox: events are written in the same transaction as the state change they
//! describe, and a relay publishes them with confirms, then deletes them.
//!
//! Every replica's relay publishes, in parallel, and the events of one aggregate (a
//! conversation, a message, an agent: [`Event::order_key`]) still leave once and in order:
//! - each row carries the partition of its aggregate ([`part_of`], one of [`PARTS`]);
//! - a relay's transaction first takes the transaction-scoped advisory lock of each partition it
//!   will publish (`pg_try_advisory_xact_lock`, skipping those another relay holds), then deletes
//!   and publishes the oldest rows of those partitions only, and commits after the broker's
//!   confirms. Two relays never hold one partition, and a partition's rows leave oldest first;
//! - a relay takes at most its share of the partitions that have rows (the live relays count
//!   themselves by heartbeat in `<schema>.outbox_relays`), so N relays divide the work;
//! - a relay of the previous version took one exclusive advisory lock per schema; every
//!   transaction here takes that lock shared, so the two never publish at the same time during a
//!   rolling upgrade.
//!
//! Writers wake the relay of their own process (an in-memory signal, not a Postgres `NOTIFY`:
//! `NOTIFY` takes a database-wide lock at commit, which serialised every writing transaction of
//! every service behind one another and cost a third of the end-to-end throughput). The writer
//! signals before its commit, so a woken relay that finds nothing looks again a few times over
//! the next ~100 ms; rows another replica wrote are found by that replica's relay or by the poll.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;

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
    /// The partition of its aggregate ([`part_of`]): rows of one partition leave in order.
    pub part: i16,
}

impl OutboxRecord {
    /// Builds a record from an envelope, carrying the current trace context.
    pub fn from_envelope<T: Event>(envelope: &Envelope<T>) -> Self {
        Self {
            message_id: envelope.message_id,
            routing_key: envelope.payload.routing_key(),
            payload: envelope.to_bytes(),
            headers: switchboard_telemetry::propagation::current_context_map(),
            part: part_of(&envelope.payload.order_key()),
        }
    }
}

/// How many partitions an outbox has. Fixed, not configurable: with another count, the later
/// events of an aggregate would land in another partition than its earlier ones still waiting.
pub const PARTS: u16 = 64;

/// Returns the outbox partition of an aggregate's `order_key` (the bus's stable shard hash).
pub fn part_of(order_key: &str) -> i16 {
    // Below PARTS (64), so it fits.
    i16::try_from(switchboard_bus::shard_for(order_key, PARTS)).unwrap_or(0)
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
    claim_and_take: String,
    heartbeat: String,
    leave: String,
    /// Names the advisory locks: the schema's (taken shared) and its partitions'.
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
                "INSERT INTO {schema}.outbox (message_id, routing_key, payload, headers, part) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[], $4::jsonb[], $5::int2[])"
            ),
            // One statement: the partitions among the oldest rows, in random order; lock at most
            // this relay's share of them (the lock calls are volatile, so nothing evaluates them
            // early, and the LIMIT stops at the share); then delete the oldest rows of the
            // partitions locked. Every row comes back with the number of partitions present
            // and those locked; one row of NULLs when none was taken. The statement's snapshot
            // predates the locks, so it may still show rows another relay deleted and committed
            // just before releasing a partition; `FOR UPDATE` skips those (a row deleted by a
            // committed transaction is not returned), and the LIMIT fills with the next ones.
            claim_and_take: format!(
                "WITH head AS MATERIALIZED (\
                   SELECT DISTINCT part FROM (SELECT part FROM {schema}.outbox ORDER BY id LIMIT $1) h), \
                 shuffled AS MATERIALIZED (SELECT part FROM head ORDER BY random()), \
                 claim AS MATERIALIZED (SELECT (SELECT count(*) FROM head) AS present, \
                   ARRAY(SELECT part FROM shuffled \
                         WHERE pg_try_advisory_xact_lock_shared(hashtext($2)::int8) \
                           AND pg_try_advisory_xact_lock(hashtext($2 || '.part'), part::int4) \
                         LIMIT greatest(1, ceil((SELECT count(*) FROM head)::float8 / $3)::int8)) AS locked), \
                 taken AS (DELETE FROM {schema}.outbox WHERE id IN (\
                   SELECT id FROM {schema}.outbox WHERE part IN (SELECT unnest(locked) FROM claim) ORDER BY id LIMIT $4 FOR UPDATE) \
                   RETURNING id, message_id, routing_key, payload, headers) \
                 SELECT claim.present, claim.locked, taken.* FROM claim LEFT JOIN taken ON true"
            ),
            heartbeat: format!(
                "WITH beat AS (INSERT INTO {schema}.outbox_relays (member, heartbeat_at) VALUES ($1, now()) \
                   ON CONFLICT (member) DO UPDATE SET heartbeat_at = now()) \
                 SELECT count(*) FILTER (WHERE member <> $1) + 1 FROM {schema}.outbox_relays \
                 WHERE heartbeat_at > now() - make_interval(secs => $2)"
            ),
            leave: format!("DELETE FROM {schema}.outbox_relays WHERE member = $1 OR heartbeat_at < now() - make_interval(secs => $2)"),
            lock_key: format!("{schema}_outbox"),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The schema whose `outbox` table this relays (one per service).
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
        let parts: Vec<i16> = records.iter().map(|r| r.part).collect();
        sqlx::query(AssertSqlSafe(self.insert.clone()))
            .bind(ids)
            .bind(keys)
            .bind(payloads)
            .bind(headers)
            .bind(parts)
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
    /// Other relays held the lock of every partition that had rows.
    pub busy: bool,
}

/// A relay counts as running while its heartbeat is younger than this.
const RELAY_TTL: Duration = Duration::from_secs(10);
/// How often a relay heartbeats (and recounts the running relays).
const RELAY_HEARTBEAT: Duration = Duration::from_secs(2);

/// Publishes an [`Outbox`] until shutdown.
pub struct OutboxRelay {
    pool: PgPool,
    outbox: Outbox,
    publisher: Publisher,
    batch: i64,
    poll: Duration,
    member: String,
    /// Running relays of this outbox, this one included (from the last heartbeat).
    relays: AtomicI64,
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
            member: Uuid::now_v7().to_string(),
            relays: AtomicI64::new(1),
        }
    }

    /// Heartbeats and recounts the running relays ([`OutboxRelay::run`] does it every 2 s).
    pub async fn heartbeat(&self) -> Result<(), StorageError> {
        let relays: i64 = sqlx::query_scalar(AssertSqlSafe(self.outbox.heartbeat.as_str()))
            .bind(&self.member)
            .bind(RELAY_TTL.as_secs_f64())
            .fetch_one(&self.pool)
            .await?;
        self.relays.store(relays.max(1), Ordering::Relaxed);
        Ok(())
    }

    async fn leave(&self) {
        let left = sqlx::query(AssertSqlSafe(self.outbox.leave.as_str()))
            .bind(&self.member)
            .bind(RELAY_TTL.as_secs_f64() * 10.0)
            .execute(&self.pool)
            .await;
        if let Err(error) = left {
            tracing::warn!(schema = self.outbox.schema, error = %error, "cannot leave the outbox relays; the heartbeat will expire");
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
        let mut beat: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if beat.is_none_or(|at| at.elapsed() >= RELAY_HEARTBEAT) {
                match self.heartbeat().await {
                    Ok(()) => beat = Some(Instant::now()),
                    Err(error) => tracing::warn!(schema = self.outbox.schema, error = %error, "outbox relay heartbeat failed"),
                }
            }
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
        self.leave().await;
    }

    /// Publishes batches until the outbox is empty (or other relays hold every partition).
    pub async fn drain(&self) -> anyhow::Result<Drained> {
        let mut drained = Drained::default();
        loop {
            let Some((n, more)) = self.one_batch().await? else {
                drained.busy = true;
                return Ok(drained);
            };
            drained.published += n;
            if !more {
                return Ok(drained);
            }
        }
    }

    /// Publishes one batch of the partitions this relay could lock, at most its share of those
    /// among the oldest rows; `None` when other relays hold every one of them.
    pub async fn publish_batch(&self) -> anyhow::Result<Option<u64>> {
        Ok(self.one_batch().await?.map(|(n, _)| n))
    }

    /// One batch: how many rows it published, and whether rows may be left (a full batch, or
    /// partitions left to others or beyond this relay's share).
    async fn one_batch(&self) -> anyhow::Result<Option<(u64, bool)>> {
        let mut tx = self.pool.begin().await?;
        let mut rows = sqlx::query(AssertSqlSafe(self.outbox.claim_and_take.as_str()))
            .bind(self.batch.saturating_mul(4))
            .bind(&self.outbox.lock_key)
            .bind(self.relays.load(Ordering::Relaxed) as f64)
            .bind(self.batch)
            .fetch_all(&mut *tx)
            .await?;
        let Some(first) = rows.first() else {
            return Ok(Some((0, false)));
        };
        let present: i64 = first.try_get("present")?;
        let locked: Vec<i16> = first.try_get("locked")?;
        if present == 0 {
            return Ok(Some((0, false)));
        }
        if locked.is_empty() {
            return Ok(None);
        }
        // The row of NULLs when the partitions locked had nothing left.
        rows.retain(|row| row.try_get::<Option<i64>, _>("id").ok().flatten().is_some());
        // RETURNING follows no order: publish oldest first.
        rows.sort_by_key(|row| row.try_get::<i64, _>("id").unwrap_or(i64::MAX));
        let mut owned = Vec::with_capacity(rows.len());
        for row in &rows {
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
        tx.commit().await?;
        let more =
            i64::try_from(owned.len()).unwrap_or(i64::MAX) >= self.batch || i64::try_from(locked.len()).unwrap_or(i64::MAX) < present;
        Ok(Some((owned.len() as u64, more)))
    }
}
