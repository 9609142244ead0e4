//! The live stream: routing and session events, relayed to WebSocket clients.
//!
//! The `api.stream` queue is ingested into `api.stream_events` in batches, and each batch
//! notifies; every replica's [`Hub`] reads new rows once and fans them out to its sockets, each
//! of which keeps what its caller may see. Rows are kept for `stream_retention_secs`, so a
//! client that reconnects (to any replica) resumes after the last id it saw.
//!
//! Ids are positions, not a sequence, so writers need no lock between them: a row's id is its
//! writing transaction's id shifted left by [`POSITION_BITS`], plus its place in the batch. Readers
//! read only below the horizon, the oldest transaction still running in this database
//! (from `pg_current_snapshot()`, shifted the same way; see [`HORIZON`]): every row below it is
//! committed or never will be, and every row still to come lands above it. So a reader that
//! follows "id > last seen" never skips a row that commits late, which a sequence cannot promise
//! (an id taken by a transaction that commits after a larger id became visible).

pub mod ingest;
pub mod presence;
pub mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::auth::{Caller, Role};

/// The notification channel new rows are announced on.
pub const CHANNEL: &str = "api_stream";

/// Bits of a position for the place in its batch (batches are far smaller than 2^19).
pub const POSITION_BITS: u32 = 19;
/// The SQL of the position of the current transaction's first row (add its place, from 1).
pub const POSITION: &str = "(pg_current_xact_id()::text::int8 << 19)";
/// The SQL of the horizon: positions below it are final. It is the oldest transaction still
/// running *in this database* (or the snapshot's xmax when there is none): transaction ids are
/// shared by the whole cluster, so a plain `pg_snapshot_xmin` held every stream back behind any
/// long write in another database of the cluster (another application's, or another test's).
/// An id counts as another database's only when `pg_stat_activity` shows its backend there
/// (matched on the low 32 bits, as `backend_xid` is an `xid`); one it cannot place (the backend
/// just ended, a subtransaction, a role whose activity is hidden) still holds the horizon.
const HORIZON: &str = "((SELECT least(max(snap.xmax), coalesce(min(x::text::int8) FILTER (WHERE (x::text::int8 % 4294967296) NOT IN \
       (SELECT a.backend_xid::text::int8 FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL \
        AND a.datname IS DISTINCT FROM current_database())), max(snap.xmax))) \
     FROM (SELECT pg_current_snapshot() AS s, pg_snapshot_xmax(pg_current_snapshot())::text::int8 AS xmax) snap \
     LEFT JOIN LATERAL pg_snapshot_xip(snap.s) AS x ON true) << 19)";

/// One event as clients receive it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StreamEvent {
    /// Increasing; pass the last one seen as `after` to resume.
    pub id: i64,
    /// The event type, e.g. `offer.created.v1`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: time::OffsetDateTime,
    /// The event's fields.
    pub data: serde_json::Value,
    #[serde(skip)]
    pub agent_id: Option<Uuid>,
    #[serde(skip)]
    pub queue_id: Option<Uuid>,
}

/// Whether `caller` may see `event`.
pub fn visible(caller: &Caller, event: &StreamEvent) -> bool {
    match caller.role {
        Role::Admin => true,
        Role::Supervisor => caller.queue_ids.is_empty() || event.queue_id.is_some_and(|q| caller.queue_ids.contains(&q)),
        Role::Agent => caller.agent_id.is_some() && event.agent_id == caller.agent_id,
    }
}

/// Reads events after `after` that `caller` may see, oldest first, at most `limit`.
pub async fn replay(pool: &PgPool, caller: &Caller, after: i64, limit: i64) -> sqlx::Result<Vec<StreamEvent>> {
    let scope = match caller.role {
        Role::Admin => "",
        Role::Supervisor if caller.queue_ids.is_empty() => "",
        Role::Supervisor => "AND queue_id = ANY($3)",
        Role::Agent => "AND agent_id = $4",
    };
    let sql = format!(
        "SELECT id, type AS kind, occurred_at, data, agent_id, queue_id FROM api.stream_events \
         WHERE id > $1 AND id < {HORIZON} {scope} ORDER BY id LIMIT $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .bind(&caller.queue_ids)
        .bind(caller.agent_id)
        .fetch_all(pool)
        .await
}

/// The oldest id still kept (0 when empty).
pub async fn oldest_id(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(min(id), 0) FROM api.stream_events")
        .fetch_one(pool)
        .await
}

/// Fans new stream rows out to this replica's sockets.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<Arc<StreamEvent>>,
    last: Arc<AtomicI64>,
    sockets: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, usize>>>,
}

/// One open stream of a key, counted until dropped.
pub struct Admitted {
    sockets: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, usize>>>,
    key_id: Uuid,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = sockets.get_mut(&self.key_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sockets.remove(&self.key_id);
            }
        }
    }
}

impl Hub {
    /// A hub buffering `capacity` events for slow sockets.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
            last: Arc::new(AtomicI64::new(0)),
            sockets: Arc::default(),
        }
    }

    /// Counts one more stream of `key_id` on this replica, or `None` when it already has `max`.
    pub fn admit(&self, key_id: Uuid, max: usize) -> Option<Admitted> {
        let mut sockets = self.sockets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = sockets.entry(key_id).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(Admitted {
            sockets: self.sockets.clone(),
            key_id,
        })
    }

    /// Subscribes to new events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamEvent>> {
        self.sender.subscribe()
    }

    /// The newest id fanned out.
    pub fn last_id(&self) -> i64 {
        self.last.load(Ordering::Acquire)
    }

    /// Follows the table until `shutdown`: on every notification, and every second in case one
    /// was missed (the listener reconnecting, say), reads rows after the last one fanned out.
    pub async fn run(self, pool: PgPool, shutdown: CancellationToken) {
        let start = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(max(id), 0) FROM api.stream_events WHERE id < {HORIZON}"
        )))
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
        self.last.store(start, Ordering::Release);
        let mut listener = None;
        let (mut pause, mut held) = (POLL, 0usize);
        loop {
            if listener.is_none() {
                match PgListener::connect_with(&pool).await {
                    Ok(mut l) => match l.listen(CHANNEL).await {
                        Ok(()) => listener = Some(l),
                        Err(error) => tracing::warn!(%error, "cannot listen for stream events; polling"),
                    },
                    Err(error) => tracing::warn!(%error, "cannot listen for stream events; polling"),
                }
            }
            let woke = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = woke => if result.is_err() { listener = None; },
                () = tokio::time::sleep(pause) => {}
            }
            pause = match self.fan_out(&pool).await {
                // Rows above the horizon wait for an older transaction (of any writer) to end,
                // which sends no notification: look again soon.
                Ok(true) => HELD_BACK.get(held).map_or(POLL, |ms| {
                    held += 1;
                    Duration::from_millis(*ms)
                }),
                Ok(false) => {
                    held = 0;
                    POLL
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read stream events");
                    POLL
                }
            };
        }
    }

    /// Fans out the rows after the last one, below the horizon; returns whether newer rows are
    /// held back above it.
    async fn fan_out(&self, pool: &PgPool) -> sqlx::Result<bool> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            event: StreamEvent,
            horizon: i64,
        }
        loop {
            let after = self.last_id();
            // The rows after the last one with the horizon beside them, in one statement: the
            // rows below it go out in order, and any at or above it (newer ones held back
            // behind a transaction still open) come after all of those. Ordered with a limit,
            // so it is planned on the primary key whatever the statistics say.
            let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, type AS kind, occurred_at, data, agent_id, queue_id, {HORIZON} AS horizon FROM api.stream_events \
                 WHERE id > $1 ORDER BY id LIMIT {FAN_OUT_BATCH}"
            )))
            .bind(after)
            .fetch_all(pool)
            .await?;
            let mut sent = 0;
            for Row { event, horizon } in rows {
                if event.id >= horizon {
                    return Ok(true);
                }
                self.last.store(event.id, Ordering::Release);
                // No receivers is fine: nobody is connected to this replica.
                let _ = self.sender.send(Arc::new(event));
                sent += 1;
            }
            if sent < FAN_OUT_BATCH {
                return Ok(false);
            }
        }
    }
}

/// Rows the hub reads at a time.
const FAN_OUT_BATCH: usize = 1000;

/// The hub reads at least this often.
const POLL: Duration = Duration::from_secs(1);
/// While rows are held back above the horizon, the hub looks again this many ms apart.
const HELD_BACK: [u64; 8] = [2, 5, 10, 20, 50, 100, 200, 500];

/// Deletes stream rows older than the retention, every minute, until `shutdown`.
pub async fn janitor(pool: PgPool, retention: Duration, shutdown: CancellationToken) {
    let secs = f64::from(u32::try_from(retention.as_secs()).unwrap_or(u32::MAX));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        let deleted = sqlx::query("DELETE FROM api.stream_events WHERE created_at < now() - make_interval(secs => $1)")
            .bind(secs)
            .execute(&pool)
            .await;
        let routes = sqlx::query("DELETE FROM api.conversation_routes WHERE updated_at < now() - interval '30 days'")
            .execute(&pool)
            .await;
        if let Err(error) = deleted.and(routes) {
            tracing::warn!(%error, "stream cleanup failed");
        }
    }
}
