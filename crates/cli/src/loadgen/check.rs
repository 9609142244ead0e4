//! What the database and the emulator say after a run: every accepted MessageSid stored exactly
//! once, every agent reply sent to Twilio exactly once, and the latencies measured from the
//! messages' own timestamps (ingress's arrival time, session's store time, routing's offer time).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::setup::Setup;
use crate::client::ApiClient;

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Check {
    pub inbound_accepted: u64,
    pub inbound_stored: u64,
    pub inbound_lost: u64,
    pub inbound_duplicated: u64,
    pub replies_accepted: u64,
    pub replies_sent_to_twilio: u64,
    pub replies_lost: u64,
    pub replies_duplicated: u64,
    pub inbound_to_stored: Percentiles,
    pub inbound_to_offered: Percentiles,
    /// Per Unix second: inbound messages stored and first offers made for the run's conversations.
    pub stored_per_second: Vec<(i64, i64)>,
    pub offered_per_second: Vec<(i64, i64)>,
}

async fn per_second(pool: &PgPool, sql: &str, channel: Uuid, since: time::OffsetDateTime) -> anyhow::Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT floor(extract(epoch FROM t))::int8 AS s, count(*) FROM ({sql}) d GROUP BY 1 ORDER BY 1"
    )))
    .bind(channel)
    .bind(since)
    .fetch_all(pool)
    .await?)
}

async fn percentiles(pool: &PgPool, sql: &str, channel: Uuid, since: time::OffsetDateTime) -> anyhow::Result<Percentiles> {
    let row: (i64, Option<f64>, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), \
         percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms) FROM ({sql}) d"
    )))
    .bind(channel)
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok(Percentiles {
        count: u64::try_from(row.0).unwrap_or(0),
        p50_ms: row.1.unwrap_or(0.0),
        p95_ms: row.2.unwrap_or(0.0),
        p99_ms: row.3.unwrap_or(0.0),
        max_ms: row.4.unwrap_or(0.0),
    })
}

/// Waits (up to `patience`) until every accepted message is stored, then checks.
pub async fn verify(
    pool: &PgPool,
    emulator: &ApiClient,
    setup: &Setup,
    accepted: &[String],
    replies: &[String],
    since: time::OffsetDateTime,
    patience: Duration,
) -> anyhow::Result<Check> {
    let channel = setup.channel_id.uuid();
    let deadline = tokio::time::Instant::now() + patience;
    let stored: Vec<(String, i64)> = loop {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT twilio_sid, count(*) FROM session.messages WHERE channel_id = $1 AND direction = 'inbound' GROUP BY twilio_sid",
        )
        .bind(channel)
        .fetch_all(pool)
        .await?;
        if rows.len() >= accepted.len() || tokio::time::Instant::now() >= deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let stored_set: HashMap<&str, i64> = stored.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    let inbound_lost = accepted.iter().filter(|s| !stored_set.contains_key(s.as_str())).count();
    let inbound_duplicated: i64 = stored.iter().map(|(_, n)| n - 1).sum();

    // Replies: the emulator (Twilio) must have received each exactly once.
    let wanted: HashSet<&str> = replies.iter().map(String::as_str).collect();
    let counts = loop {
        let sent = emulator.get("/emulator/messages").await?;
        let mut counts: HashMap<String, u64> = HashMap::new();
        for m in sent.as_array().into_iter().flatten() {
            if let Some(body) = m["body"].as_str().filter(|b| wanted.contains(b)) {
                *counts.entry(body.to_owned()).or_insert(0) += 1;
            }
        }
        if counts.len() >= wanted.len() || tokio::time::Instant::now() >= deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let replies_lost = wanted.iter().filter(|r| !counts.contains_key(**r)).count();
    let replies_duplicated: u64 = counts.values().map(|n| n - 1).sum();

    let inbound_to_stored = percentiles(
        pool,
        "SELECT (extract(epoch FROM (stored_at - created_at)) * 1000)::float8 AS ms FROM session.messages \
         WHERE channel_id = $1 AND direction = 'inbound' AND created_at >= $2",
        channel,
        since,
    )
    .await?;
    // From the message that opened a conversation to its first offer.
    let inbound_to_offered = percentiles(
        pool,
        "SELECT (extract(epoch FROM (o.first_offer - m.first_message)) * 1000)::float8 AS ms FROM \
         (SELECT conversation_id, min(created_at) AS first_message FROM session.messages \
          WHERE channel_id = $1 AND direction = 'inbound' AND created_at >= $2 GROUP BY conversation_id) m \
         JOIN (SELECT conversation_id, min(created_at) AS first_offer FROM routing.offers GROUP BY conversation_id) o \
         ON o.conversation_id = m.conversation_id",
        channel,
        since,
    )
    .await?;
    let stored_per_second = per_second(
        pool,
        "SELECT stored_at AS t FROM session.messages WHERE channel_id = $1 AND direction = 'inbound' AND created_at >= $2",
        channel,
        since,
    )
    .await?;
    let offered_per_second = per_second(
        pool,
        "SELECT o.created_at AS t FROM routing.offers o WHERE o.conversation_id IN \
         (SELECT conversation_id FROM session.messages WHERE channel_id = $1 AND created_at >= $2)",
        channel,
        since,
    )
    .await?;
    Ok(Check {
        stored_per_second,
        offered_per_second,
        inbound_accepted: accepted.len() as u64,
        inbound_stored: stored.len() as u64,
        inbound_lost: inbound_lost as u64,
        inbound_duplicated: u64::try_from(inbound_duplicated).unwrap_or(0),
        replies_accepted: replies.len() as u64,
        replies_sent_to_twilio: counts.len() as u64,
        replies_lost: replies_lost as u64,
        replies_duplicated,
        inbound_to_stored,
        inbound_to_offered,
    })
}
