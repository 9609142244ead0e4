//! The webhook journal: every webhook whose signature verified, with the answer it got, in
//! `ingress.webhook_journal` for a retention period.
//!
//! Writing it must not slow the answer to Twilio or make PostgreSQL a condition of accepting a
//! webhook: the broker confirm is what makes a webhook safe. So a handler hands its entry to one
//! writer task per process and answers; the writer inserts whatever has gathered in one statement
//! (group commit) and retries a failed batch until the database is back. What is lost on a crash
//! is at most what was queued in memory; every one of those webhooks was either confirmed on the
//! bus or answered 503 (and is retried by Twilio). A queue that is full (the database has been
//! down a long while) drops new entries, counted in `switchboard.ingress.journal.dropped`.

use std::time::Duration;

use opentelemetry::metrics::Counter;
use sqlx::PgPool;
use switchboard_storage::StorageError;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Most entries one insert carries.
const BATCH: usize = 500;

/// One journaled webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub id: Uuid,
    pub channel_id: String,
    pub kind: String,
    pub message_sid: String,
    pub from_address: String,
    pub to_address: String,
    pub answer: i16,
    pub outcome: String,
    pub params: sqlx::types::Json<Vec<(String, String)>>,
    pub headers: sqlx::types::Json<Vec<(String, String)>>,
    pub received_at: OffsetDateTime,
    pub replays: i32,
    pub last_replayed_at: Option<OffsetDateTime>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub channel_id: Option<String>,
    pub kind: Option<String>,
    pub message_sid: Option<String>,
    /// Matches From or To (a customer is From on inbound webhooks and To on status callbacks).
    pub customer: Option<String>,
    pub answer: Option<i16>,
    pub since: Option<OffsetDateTime>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

/// Where handlers hand their entries.
#[derive(Clone)]
pub struct Journal {
    queue: mpsc::Sender<Entry>,
    dropped: Counter<u64>,
}

impl Journal {
    /// Starts the writer on `pool`, with room for `capacity` entries waiting, and the pruning of
    /// entries older than `retention`.
    pub fn start(pool: PgPool, capacity: usize, retention: Duration, shutdown: CancellationToken) -> Self {
        let (queue, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(write(pool.clone(), rx, shutdown.clone()));
        tokio::spawn(prune(pool, retention, shutdown));
        let dropped = switchboard_telemetry::metrics::meter()
            .u64_counter("switchboard.ingress.journal.dropped")
            .with_description("webhooks not journaled because the journal's queue was full")
            .build();
        Self { queue, dropped }
    }

    /// Queues `entry` for the writer; never waits.
    pub fn record(&self, entry: Entry) {
        if self.queue.try_send(entry).is_err() {
            self.dropped.add(1, &[]);
            tracing::warn!("webhook journal queue is full; this webhook is not journaled");
        }
    }
}

async fn write(pool: PgPool, mut rx: mpsc::Receiver<Entry>, shutdown: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // On shutdown, the entries already queued are still written (the channel closes once
        // every handler has finished and dropped its sender).
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let mut delay = Duration::from_millis(100);
        while let Err(error) = insert(&pool, &batch).await {
            if shutdown.is_cancelled() {
                tracing::warn!(error = %error, entries = batch.len(), "webhook journal entries not written at shutdown");
                break;
            }
            tracing::warn!(error = %error, entries = batch.len(), "cannot write the webhook journal; retrying");
            tokio::select! {
                () = tokio::time::sleep(delay) => delay = (delay * 2).min(Duration::from_secs(5)),
                () = shutdown.cancelled() => {}
            }
        }
        batch.clear();
    }
}

async fn insert(pool: &PgPool, batch: &[Entry]) -> Result<(), StorageError> {
    let column = |f: fn(&Entry) -> String| batch.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO ingress.webhook_journal (id, channel_id, kind, message_sid, from_address, to_address, answer, outcome, params, headers, received_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::smallint[], $8::text[], $9::jsonb[], \
         $10::jsonb[], $11::timestamptz[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(batch.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(column(|e| e.channel_id.clone()))
    .bind(column(|e| e.kind.clone()))
    .bind(column(|e| e.message_sid.clone()))
    .bind(column(|e| e.from_address.clone()))
    .bind(column(|e| e.to_address.clone()))
    .bind(batch.iter().map(|e| e.answer).collect::<Vec<_>>())
    .bind(column(|e| e.outcome.clone()))
    .bind(batch.iter().map(|e| e.params.clone()).collect::<Vec<_>>())
    .bind(batch.iter().map(|e| e.headers.clone()).collect::<Vec<_>>())
    .bind(batch.iter().map(|e| e.received_at).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

async fn prune(pool: PgPool, retention: Duration, shutdown: CancellationToken) {
    let retention = time::Duration::try_from(retention).unwrap_or(time::Duration::days(7));
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            () = shutdown.cancelled() => return,
        }
        match prune_once(&pool, OffsetDateTime::now_utc() - retention).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "webhook journal pruned"),
            Err(error) => tracing::warn!(error = %error, "cannot prune the webhook journal"),
        }
    }
}

/// Deletes entries received before `cutoff`, a bounded batch at a time; returns how many.
pub async fn prune_once(pool: &PgPool, cutoff: OffsetDateTime) -> Result<u64, StorageError> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM ingress.webhook_journal WHERE id IN \
             (SELECT id FROM ingress.webhook_journal WHERE received_at < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < 5000 {
            return Ok(total);
        }
    }
}

/// Lists entries, newest first.
pub async fn list(pool: &PgPool, f: &Filter) -> Result<Vec<Entry>, StorageError> {
    let mut q = sqlx::QueryBuilder::new("SELECT * FROM ingress.webhook_journal WHERE true");
    if let Some(v) = &f.channel_id {
        q.push(" AND channel_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.kind {
        q.push(" AND kind = ").push_bind(v.clone());
    }
    if let Some(v) = &f.message_sid {
        q.push(" AND message_sid = ").push_bind(v.clone());
    }
    if let Some(v) = &f.customer {
        q.push(" AND (from_address = ")
            .push_bind(v.clone())
            .push(" OR to_address = ")
            .push_bind(v.clone())
            .push(")");
    }
    if let Some(v) = f.answer {
        q.push(" AND answer = ").push_bind(v);
    }
    if let Some(v) = f.since {
        q.push(" AND received_at >= ").push_bind(v);
    }
    if let Some(v) = f.before {
        q.push(" AND id < ").push_bind(v);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
    Ok(q.build_query_as::<Entry>().fetch_all(pool).await?)
}

/// Returns one entry.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Entry, StorageError> {
    sqlx::query_as::<_, Entry>("SELECT * FROM ingress.webhook_journal WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(StorageError::NotFound)
}

/// Counts a replay of `id` and returns the entry as it is now.
pub async fn mark_replayed(pool: &PgPool, id: Uuid, at: OffsetDateTime) -> Result<Entry, StorageError> {
    sqlx::query_as::<_, Entry>("UPDATE ingress.webhook_journal SET replays = replays + 1, last_replayed_at = $2 WHERE id = $1 RETURNING *")
        .bind(id)
        .bind(at)
        .fetch_optional(pool)
        .await?
        .ok_or(StorageError::NotFound)
}
