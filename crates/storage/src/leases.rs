//! Partitioned work with leases in PostgreSQL: the live replicas of a service divide a fixed set
//! of partitions (the inbound shards of session, say) among themselves, and hand them over when
//! one joins, leaves or dies. No coordination service beyond the database already in use.
//!
//! The protocol, one round ([`Leases::tick`]) per member every heartbeat, in one transaction:
//! 1. The member upserts its heartbeat in `{schema}.lease_members`; the live members are those
//!    whose heartbeat is younger than the lease time-to-live.
//! 2. It renews every lease it owns (`expires_at = now() + ttl`).
//! 3. Its quota is its share of the partitions among the live members, sorted by name: each
//!    gets `P / n`, the first `P % n` one more, so the quotas add up to `P` exactly.
//! 4. Over quota, it names the surplus (its highest partitions) to give up; under quota, it takes
//!    partitions nobody owns or whose lease expired (`FOR UPDATE SKIP LOCKED`, so two members
//!    never take the same one), raising each one's epoch.
//!
//! [`hold`] runs the work of the partitions held: it starts a partition's worker after the lease
//! is won, and on giving one up it stops the worker and waits for it to finish *before*
//! releasing the lease, so the next owner starts only after the old one stopped. A member that
//! dies stops renewing; its leases expire after the ttl and the others take them. Ordering does
//! not rest on the leases alone: the inbound queues are also single-active-consumer, so a member
//! that lost a lease while still consuming (a pause longer than the ttl) keeps the queue until
//! it stops, and the new owner's consumer waits as the standby. The leases divide the work; the
//! broker keeps one reader per queue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sqlx::{AssertSqlSafe, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::StorageError;

/// Lease timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LeaseSettings {
    /// A lease not renewed for this long is free to take (and a member is gone).
    pub ttl_ms: u64,
    /// How often a member renews its leases and rebalances.
    pub heartbeat_ms: u64,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            ttl_ms: 10_000,
            heartbeat_ms: 1_000,
        }
    }
}

/// The outcome of one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// Partitions this member holds and should work on.
    pub held: Vec<u16>,
    /// Partitions this member still owns but must give up: stop their work, then
    /// [`Leases::release`] them.
    pub surplus: Vec<u16>,
    /// Live members, this one included.
    pub members: usize,
}

/// One member's view of the leases of a group of partitions.
pub struct Leases {
    pool: PgPool,
    member: String,
    parts: u16,
    ttl: Duration,
    seeded: AtomicBool,
    sql: Sql,
}

struct Sql {
    seed: String,
    heartbeat: String,
    live: String,
    renew: String,
    acquire: String,
    release: String,
    leave: String,
    forget: String,
}

impl Sql {
    fn new(schema: &str) -> Self {
        let (leases, members) = (format!("{schema}.leases"), format!("{schema}.lease_members"));
        Self {
            seed: format!("INSERT INTO {leases} (part) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING"),
            heartbeat: format!(
                "INSERT INTO {members} (member, heartbeat_at) VALUES ($1, now()) ON CONFLICT (member) DO UPDATE SET heartbeat_at = now()"
            ),
            live: format!("SELECT member FROM {members} WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY member"),
            renew: format!(
                "UPDATE {leases} SET expires_at = now() + make_interval(secs => $2) WHERE owner = $1 AND part < $3 RETURNING part"
            ),
            acquire: format!(
                "UPDATE {leases} l SET owner = $1, epoch = l.epoch + 1, expires_at = now() + make_interval(secs => $2) \
                 FROM (SELECT part FROM {leases} WHERE part < $3 AND (owner IS NULL OR expires_at < now()) \
                       ORDER BY part LIMIT $4 FOR UPDATE SKIP LOCKED) free \
                 WHERE l.part = free.part RETURNING l.part"
            ),
            release: format!("UPDATE {leases} SET owner = NULL, expires_at = now() WHERE owner = $1 AND part = ANY($2)"),
            leave: format!("UPDATE {leases} SET owner = NULL, expires_at = now() WHERE owner = $1"),
            forget: format!("DELETE FROM {members} WHERE member = $1 OR heartbeat_at < now() - make_interval(secs => $2)"),
        }
    }
}

/// Returns the quota of the member at `index` of `members` live members for `parts` partitions.
pub fn quota(parts: u16, members: usize, index: usize) -> usize {
    let (parts, members) = (usize::from(parts), members.max(1));
    parts / members + usize::from(index < parts % members)
}

impl Leases {
    /// Leases of `parts` partitions in `schema` (which has the `leases` and `lease_members`
    /// tables), for the member named `member` (unique per running process).
    pub fn new(pool: PgPool, schema: &str, member: String, parts: u16, ttl: Duration) -> Self {
        Self {
            pool,
            member,
            parts,
            ttl,
            seeded: AtomicBool::new(false),
            sql: Sql::new(schema),
        }
    }

    /// This member's name.
    pub fn member(&self) -> &str {
        &self.member
    }

    fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// One round of the protocol (see the module documentation).
    pub async fn tick(&self) -> Result<Tick, StorageError> {
        let parts = i32::from(self.parts);
        let mut tx = self.pool.begin().await?;
        if !self.seeded.load(Ordering::Acquire) {
            sqlx::query(AssertSqlSafe(self.sql.seed.as_str()))
                .bind(parts)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(AssertSqlSafe(self.sql.heartbeat.as_str()))
            .bind(&self.member)
            .execute(&mut *tx)
            .await?;
        let live: Vec<String> = sqlx::query_scalar(AssertSqlSafe(self.sql.live.as_str()))
            .bind(self.ttl_secs())
            .fetch_all(&mut *tx)
            .await?;
        let mut mine: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(self.sql.renew.as_str()))
            .bind(&self.member)
            .bind(self.ttl_secs())
            .bind(parts)
            .fetch_all(&mut *tx)
            .await?;
        let index = live.iter().position(|m| *m == self.member).unwrap_or(live.len());
        let members = live.len().max(index + 1);
        let quota = quota(self.parts, members, index);
        mine.sort_unstable();
        let mut surplus = Vec::new();
        if mine.len() > quota {
            surplus = mine.split_off(quota);
        } else if mine.len() < quota {
            let want = i64::try_from(quota - mine.len()).unwrap_or(0);
            let won: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(self.sql.acquire.as_str()))
                .bind(&self.member)
                .bind(self.ttl_secs())
                .bind(parts)
                .bind(want)
                .fetch_all(&mut *tx)
                .await?;
            mine.extend(won);
            mine.sort_unstable();
        }
        tx.commit().await?;
        self.seeded.store(true, Ordering::Release);
        let to_u16 = |v: Vec<i32>| v.into_iter().filter_map(|p| u16::try_from(p).ok()).collect();
        Ok(Tick {
            held: to_u16(mine),
            surplus: to_u16(surplus),
            members,
        })
    }

    /// Gives up `parts` (their work must have stopped).
    pub async fn release(&self, parts: &[u16]) -> Result<(), StorageError> {
        let parts: Vec<i32> = parts.iter().map(|p| i32::from(*p)).collect();
        sqlx::query(AssertSqlSafe(self.sql.release.as_str()))
            .bind(&self.member)
            .bind(&parts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives up every lease and leaves the group (on shutdown, after all work stopped).
    pub async fn leave(&self) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(AssertSqlSafe(self.sql.leave.as_str()))
            .bind(&self.member)
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(self.sql.forget.as_str()))
            .bind(&self.member)
            .bind(self.ttl_secs() * 10.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Runs the work of the partitions this member holds until `shutdown`: `start(partition, stop)`
/// spawns a partition's worker, which must return soon after `stop` is cancelled. Workers of
/// partitions given up are stopped and awaited before their leases are released; on shutdown
/// every worker is, then the member leaves.
pub async fn hold<F>(leases: Leases, every: Duration, shutdown: CancellationToken, mut start: F)
where
    F: FnMut(u16, CancellationToken) -> JoinHandle<()>,
{
    let mut running: BTreeMap<u16, (CancellationToken, JoinHandle<()>)> = BTreeMap::new();
    let mut renewed = Instant::now();
    while !shutdown.is_cancelled() {
        match leases.tick().await {
            Ok(tick) => {
                renewed = Instant::now();
                let gone: Vec<u16> = running.keys().copied().filter(|p| !tick.held.contains(p)).collect();
                stop(&mut running, &gone).await;
                if !tick.surplus.is_empty()
                    && let Err(error) = leases.release(&tick.surplus).await
                {
                    tracing::warn!(member = leases.member(), error = %error, "cannot release leases; they will expire");
                }
                let new: Vec<u16> = tick.held.iter().copied().filter(|p| !running.contains_key(p)).collect();
                for part in &new {
                    let token = shutdown.child_token();
                    let worker = start(*part, token.clone());
                    running.insert(*part, (token, worker));
                }
                if !gone.is_empty() || !new.is_empty() {
                    tracing::info!(member = leases.member(), members = tick.members, held = ?tick.held, started = ?new, stopped = ?gone, "partitions rebalanced");
                }
            }
            Err(error) => {
                tracing::warn!(member = leases.member(), error = %error, "cannot renew leases");
                // Unrenewed leases expire and may be taken: stop before the new owner would start.
                if renewed.elapsed() >= leases.ttl && !running.is_empty() {
                    let all: Vec<u16> = running.keys().copied().collect();
                    tracing::warn!(member = leases.member(), stopped = ?all, "leases expired; stopping their work");
                    stop(&mut running, &all).await;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
    let all: Vec<u16> = running.keys().copied().collect();
    stop(&mut running, &all).await;
    if let Err(error) = leases.leave().await {
        tracing::warn!(member = leases.member(), error = %error, "cannot release leases on shutdown; they will expire");
    }
}

async fn stop(running: &mut BTreeMap<u16, (CancellationToken, JoinHandle<()>)>, parts: &[u16]) {
    let mut stopping = Vec::new();
    for part in parts {
        if let Some((token, worker)) = running.remove(part) {
            token.cancel();
            stopping.push(worker);
        }
    }
    for worker in stopping {
        let _ = worker.await;
    }
}

#[cfg(test)]
mod tests {
    use super::quota;

    #[test]
    fn quotas_add_up_to_the_partitions_and_differ_by_at_most_one() {
        for parts in [1u16, 2, 8, 63, 64] {
            for members in 1..=7 {
                let quotas: Vec<usize> = (0..members).map(|i| quota(parts, members, i)).collect();
                assert_eq!(quotas.iter().sum::<usize>(), usize::from(parts), "{parts} over {members}");
                let (min, max) = (quotas.iter().min().unwrap_or(&0), quotas.iter().max().unwrap_or(&0));
                assert!(max - min <= 1, "{parts} over {members}: {quotas:?}");
            }
        }
    }
}
