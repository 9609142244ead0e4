//! Ingests the `api.stream` queue into `api.stream_events`, naming each event's audience: the
//! agent it concerns and the queue of its conversation (learnt from routing's events, since
//! message events name no queue).

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

/// Writes stream events; one transaction per batch, serialized so ids become visible in order.
pub struct StreamIngest {
    pool: PgPool,
}

impl StreamIngest {
    /// An ingester writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Handler for StreamIngest {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let retry = |e: sqlx::Error| HandleError::Retry(e.into());
        let mut tx = self.pool.begin().await.map_err(retry)?;
        // One writer at a time: a row's id is then never smaller than one already visible, so
        // readers that follow "id > last seen" miss nothing.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('api.stream'))")
            .execute(&mut *tx)
            .await
            .map_err(retry)?;
        for incoming in batch {
            let raw: Raw = incoming.json()?;
            let kind = incoming.routing_key.as_str();
            let event = &raw.event;
            let conversation = id(event, "conversation_id");
            let agent = id(event, "agent_id");
            let queue = id(event, "queue_id");
            let routes_conversation = matches!(
                kind,
                "offer.created.v1" | "conversation.assigned.v1" | "conversation.status_changed.v1"
            );
            if routes_conversation && let Some(conversation) = conversation {
                sqlx::query(
                    "INSERT INTO api.conversation_routes (conversation_id, queue_id, agent_id, updated_at) VALUES ($1, $2, $3, now()) \
                     ON CONFLICT (conversation_id) DO UPDATE SET queue_id = COALESCE($2, api.conversation_routes.queue_id), \
                     agent_id = COALESCE($3, api.conversation_routes.agent_id), updated_at = now()",
                )
                .bind(conversation)
                .bind(queue)
                .bind(if kind == "offer.created.v1" { None } else { agent })
                .execute(&mut *tx)
                .await
                .map_err(retry)?;
            }
            sqlx::query(
                "INSERT INTO api.stream_events (message_id, type, agent_id, queue_id, conversation_id, occurred_at, data) \
                 VALUES ($1, $2, $3, COALESCE($4, (SELECT queue_id FROM api.conversation_routes WHERE conversation_id = $5)), $5, $6, $7) \
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(raw.message_id)
            .bind(kind)
            .bind(agent)
            .bind(queue)
            .bind(conversation)
            .bind(raw.occurred_at)
            .bind(event)
            .execute(&mut *tx)
            .await
            .map_err(retry)?;
        }
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(retry)?;
        tx.commit().await.map_err(retry)
    }
}
