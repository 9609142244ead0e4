//! Ingests the `api.stream` queue into `api.stream_events`, naming each event's audience: the
//! agent it concerns and the queue of its conversation (learnt from routing's events, since
//! message events name no queue).

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::PgPool;
use switchboard_bus::{HandleError, Handler, Incoming};
use uuid::Uuid;

/// The envelope fields the stream needs; the event itself stays JSON.
#[derive(Debug, Deserialize)]
struct Raw {
    message_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: time::OffsetDateTime,
    event: serde_json::Value,
}

fn id(event: &serde_json::Value, field: &str) -> Option<Uuid> {
    event.get(field).and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok())
}

/// Where a conversation's events are seen: its queue and its agent.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
struct Route {
    queue_id: Option<Uuid>,
    agent_id: Option<Uuid>,
}

/// Writes stream events in two statements per batch, whatever its size: read the routes of the
/// batch's conversations, apply the events to them in order in memory, then one statement
/// upserts the routes that changed, inserts every event and announces them. No lock: each
/// row's id is its position ([`super::POSITION`]), so readers below the horizon miss nothing
/// whatever order concurrent writers commit in.
pub struct StreamIngest {
    pool: PgPool,
}

impl StreamIngest {
    /// An ingester writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// One event of a batch, ready to insert.
struct Row<'a> {
    message_id: Uuid,
    kind: &'a str,
    agent: Option<Uuid>,
    queue: Option<Uuid>,
    conversation: Option<Uuid>,
    occurred_at: time::OffsetDateTime,
    data: serde_json::Value,
}

impl Handler for StreamIngest {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let retry = |e: sqlx::Error| HandleError::Retry(e.into());
        let mut rows = Vec::with_capacity(batch.len());
        for incoming in batch {
            let raw: Raw = incoming.json()?;
            rows.push(Row {
                message_id: raw.message_id,
                kind: incoming.routing_key.as_str(),
                agent: id(&raw.event, "agent_id"),
                queue: id(&raw.event, "queue_id"),
                conversation: id(&raw.event, "conversation_id"),
                occurred_at: raw.occurred_at,
                data: raw.event,
            });
        }
        if rows.len() >= (1 << super::POSITION_BITS) {
            return Err(HandleError::Reject(anyhow::anyhow!(
                "a stream batch of {} events is too large",
                rows.len()
            )));
        }
        let mut conversations: Vec<Uuid> = rows.iter().filter_map(|r| r.conversation).collect();
        conversations.sort_unstable();
        conversations.dedup();
        // No transaction: one read of the routes, then one statement writes the changed routes
        // and the events and announces them (only when something new was written).
        let known: Vec<(Uuid, Option<Uuid>, Option<Uuid>)> =
            sqlx::query_as("SELECT conversation_id, queue_id, agent_id FROM api.conversation_routes WHERE conversation_id = ANY($1)")
                .bind(&conversations)
                .fetch_all(&self.pool)
                .await
                .map_err(retry)?;
        let mut routes: HashMap<Uuid, Route> = known
            .into_iter()
            .map(|(c, queue_id, agent_id)| (c, Route { queue_id, agent_id }))
            .collect();
        let mut changed: Vec<Uuid> = Vec::new();
        for row in &mut rows {
            let Some(conversation) = row.conversation else {
                continue;
            };
            let routes_conversation = matches!(
                row.kind,
                "offer.created.v1" | "conversation.assigned.v1" | "conversation.status_changed.v1"
            );
            let route = routes.entry(conversation).or_default();
            if routes_conversation {
                route.queue_id = row.queue.or(route.queue_id);
                // An offer names an agent who does not have the conversation yet.
                if row.kind != "offer.created.v1" {
                    route.agent_id = row.agent.or(route.agent_id);
                }
                if !changed.contains(&conversation) {
                    changed.push(conversation);
                }
            }
            row.queue = row.queue.or(route.queue_id);
        }
        let queues: Vec<Option<Uuid>> = changed.iter().map(|c| routes.get(c).and_then(|r| r.queue_id)).collect();
        let agents: Vec<Option<Uuid>> = changed.iter().map(|c| routes.get(c).and_then(|r| r.agent_id)).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH routed AS ( \
               INSERT INTO api.conversation_routes (conversation_id, queue_id, agent_id, updated_at) \
               SELECT *, now() FROM unnest($8::uuid[], $9::uuid[], $10::uuid[]) \
               ON CONFLICT (conversation_id) DO UPDATE SET queue_id = EXCLUDED.queue_id, agent_id = EXCLUDED.agent_id, updated_at = now()), \
             stored AS ( \
               INSERT INTO api.stream_events (id, message_id, type, agent_id, queue_id, conversation_id, occurred_at, data) \
               SELECT {} + u.n, u.message_id, u.type, u.agent, u.queue, u.conversation, u.at, u.data \
               FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::timestamptz[], $7::jsonb[]) \
                 WITH ORDINALITY AS u(message_id, type, agent, queue, conversation, at, data, n) \
               ON CONFLICT (message_id) DO NOTHING RETURNING 1) \
             SELECT pg_notify($11, '') WHERE EXISTS (SELECT 1 FROM stored)",
            super::POSITION
        )))
        .bind(rows.iter().map(|r| r.message_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.agent).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.queue).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.conversation).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.data).collect::<Vec<_>>())
        .bind(&changed)
        .bind(&queues)
        .bind(&agents)
        .bind(super::CHANNEL)
        .execute(&self.pool)
        .await
        .map_err(retry)?;
        Ok(())
    }
}
