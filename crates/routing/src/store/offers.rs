//! The offers' SQL (`routing.offers`). An offer is made pending by the assignment cycle and
//! ends once: accepted, declined, expired, withdrawn or cancelled
//! (`switchboard_domain::routing::offer` decides which end is allowed).

use sqlx::PgExecutor;
use switchboard_domain::ids::{AgentId, ConversationId, OfferId, QueueId, WorkstreamId};
use switchboard_domain::routing::offer::{OfferFacts, OfferState};
use time::OffsetDateTime;
use uuid::Uuid;

/// An offer row, its ids typed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OfferRow {
    pub id: OfferId,
    pub conversation_id: ConversationId,
    pub agent_id: AgentId,
    pub queue_id: Option<QueueId>,
    pub workstream_id: Option<WorkstreamId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub state: OfferState,
}

impl OfferRow {
    /// What the state machine needs to know of it.
    pub fn facts(&self) -> OfferFacts {
        OfferFacts {
            agent: self.agent_id,
            state: self.state,
            expires_at: self.expires_at,
        }
    }
}

/// New pending offers, one per conversation (the cycle's, all at once).
pub struct NewOffers<'a> {
    pub ids: &'a [Uuid],
    pub conversations: &'a [Uuid],
    pub agents: &'a [Uuid],
    pub queues: &'a [Option<Uuid>],
    pub workstreams: &'a [Option<Uuid>],
    pub expiries: &'a [OffsetDateTime],
}

/// Locks and returns offer `id`.
pub async fn lock<'c>(db: impl PgExecutor<'c>, id: impl Into<OfferId>) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.offers WHERE id = $1 FOR UPDATE")
        .bind(id.into())
        .fetch_optional(db)
        .await
}

/// Ends offer `id` in `state` (the caller holds its lock and checked the move).
pub async fn set_state<'c>(db: impl PgExecutor<'c>, id: impl Into<OfferId>, state: OfferState) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routing.offers SET state = $2 WHERE id = $1")
        .bind(id.into())
        .bind(state.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// Ends offer `id` in `state` if it is still pending; returns whether it was.
pub async fn end_if_pending<'c>(db: impl PgExecutor<'c>, id: impl Into<OfferId>, state: OfferState) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query("UPDATE routing.offers SET state = $2 WHERE id = $1 AND state = 'pending'")
        .bind(id.into())
        .bind(state.as_str())
        .execute(db)
        .await?;
    Ok(ended.rows_affected() > 0)
}

/// Pending offers past their deadline, oldest first.
pub async fn expired<'c>(db: impl PgExecutor<'c>, now: OffsetDateTime, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM routing.offers WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The ids of agent `agent`'s pending offers.
pub async fn pending_ids_of<'c>(db: impl PgExecutor<'c>, agent: impl Into<AgentId>) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM routing.offers WHERE agent_id = $1 AND state = 'pending'")
        .bind(agent.into())
        .fetch_all(db)
        .await
}

/// Agent `agent`'s pending offers still open at `now`, oldest first.
pub async fn open_for<'c>(db: impl PgExecutor<'c>, agent: Uuid, now: OffsetDateTime) -> Result<Vec<OfferRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.offers WHERE agent_id = $1 AND state = 'pending' AND expires_at > $2 ORDER BY created_at")
        .bind(agent)
        .bind(now)
        .fetch_all(db)
        .await
}

/// Inserts the cycle's offers, pending, made at `now`.
pub async fn insert_pending<'c>(db: impl PgExecutor<'c>, offers: &NewOffers<'_>, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO routing.offers (id, conversation_id, agent_id, queue_id, workstream_id, created_at, expires_at, state) \
         SELECT id, c, a, q, w, $6, e, 'pending' FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $7::timestamptz[]) AS t(id, c, a, q, w, e)",
    )
    .bind(offers.ids)
    .bind(offers.conversations)
    .bind(offers.agents)
    .bind(offers.queues)
    .bind(offers.workstreams)
    .bind(now)
    .bind(offers.expiries)
    .execute(db)
    .await?;
    Ok(())
}
