//! The work items' SQL (`routing.work_items`): one row per conversation routing looks after,
//! from intake to close. Each function is one statement and names the move it writes; which
//! move is allowed, and what it leads to (requeue after a decline, pick-only after too many), is
//! decided in `switchboard_domain::routing` before it is called.

use std::collections::BTreeMap;

use sqlx::{FromRow, PgExecutor};
use switchboard_domain::ids::{AgentId, ConversationId, NumberId, OfferId, QueueId, WorkstreamId};
use switchboard_domain::routing::SkillRequirement;
use switchboard_domain::routing::offer::{ItemState, Requeue};
use time::OffsetDateTime;
use uuid::Uuid;

/// A work item row.
#[derive(Debug, Clone, FromRow)]
pub struct ItemRow {
    pub conversation_id: ConversationId,
    pub workstream_id: Option<WorkstreamId>,
    pub number_id: Option<NumberId>,
    pub queue_id: Option<QueueId>,
    pub state: ItemState,
    pub priority: i32,
    pub units: i32,
    pub profiles: Vec<Uuid>,
    pub skills: serde_json::Value,
    pub facts: serde_json::Value,
    pub affinity_agent_id: Option<AgentId>,
    pub pinned_agent_id: Option<AgentId>,
    pub agent_id: Option<AgentId>,
    pub offer_id: Option<OfferId>,
    pub capacity_held: bool,
    pub release_at: Option<OffsetDateTime>,
    pub enqueued_at: OffsetDateTime,
    pub last_customer_message_at: OffsetDateTime,
    pub declines: serde_json::Value,
    pub total_declines: i32,
    pub updated_at: OffsetDateTime,
    pub queue_priority: i32,
    /// The trace the item was queued in (W3C `traceparent`), when it was traced.
    pub traceparent: Option<String>,
    /// When each agent last declined or missed it.
    pub declined_at: serde_json::Value,
}

impl ItemRow {
    /// Skills the item needs.
    pub fn skills(&self) -> Vec<SkillRequirement> {
        serde_json::from_value(self.skills.clone()).unwrap_or_default()
    }

    /// The item's agent, as a raw id.
    pub fn agent(&self) -> Option<Uuid> {
        self.agent_id.map(AgentId::uuid)
    }

    /// The item's queue, as a raw id.
    pub fn queue(&self) -> Option<Uuid> {
        self.queue_id.map(QueueId::uuid)
    }

    /// The item's workstream, as a raw id.
    pub fn workstream(&self) -> Option<Uuid> {
        self.workstream_id.map(WorkstreamId::uuid)
    }

    /// Whether the item holds capacity of an agent (what `Routing::free_capacity` gives back).
    pub fn holds_capacity(&self) -> bool {
        self.capacity_held && self.agent_id.is_some()
    }

    /// Declines per agent.
    pub fn declines(&self) -> BTreeMap<AgentId, u32> {
        serde_json::from_value(self.declines.clone()).unwrap_or_default()
    }

    /// The agents still in the cool-down of `cooldown_secs` after declining or missing it.
    pub fn cooling(&self, now: OffsetDateTime, cooldown_secs: u32) -> Vec<AgentId> {
        if cooldown_secs == 0 {
            return Vec::new();
        }
        let at: BTreeMap<AgentId, i64> = serde_json::from_value(self.declined_at.clone()).unwrap_or_default();
        let since = now.unix_timestamp() - i64::from(cooldown_secs);
        at.into_iter().filter(|(_, t)| *t > since).map(|(a, _)| a).collect()
    }

    /// Facts (for automated messages and classification on reroute).
    pub fn facts(&self) -> BTreeMap<String, String> {
        serde_json::from_value(self.facts.clone()).unwrap_or_default()
    }
}

/// A work item to write at intake (new, or a reopened or escalated conversation's again).
pub(crate) struct NewItem<'a> {
    pub state: ItemState,
    pub workstream_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
    pub priority: i32,
    pub skills: &'a [SkillRequirement],
    pub profiles: &'a [Uuid],
    pub facts: &'a BTreeMap<String, String>,
    /// Set when the item is queued for people.
    pub placement: Option<Placement>,
}

/// How a queued item weighs on agents and in its queue.
pub(crate) struct Placement {
    pub units: i32,
    /// The agent a reopened conversation goes back to first.
    pub affinity: Option<Uuid>,
    pub queue_priority: i32,
}

impl<'a> NewItem<'a> {
    /// An item in `state` with no queue, skills or placement.
    pub fn new(state: ItemState, workstream_id: Option<Uuid>, facts: &'a BTreeMap<String, String>) -> Self {
        Self {
            state,
            workstream_id,
            queue_id: None,
            priority: 0,
            skills: &[],
            profiles: &[],
            facts,
            placement: None,
        }
    }
}

/// What the conversation the item is written for says of itself.
pub(crate) struct Origin {
    pub number_id: Option<Uuid>,
    pub last_customer_message_at: OffsetDateTime,
    pub traceparent: Option<String>,
}

/// Writes a conversation's item, new or again: a rewritten item starts afresh (no agent, offer
/// or declines); where `item.placement` is absent it keeps its units, affinity and queue
/// priority (the defaults for a new one).
pub(crate) async fn upsert<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    origin: &Origin,
    item: &NewItem<'_>,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let placement = item.placement.as_ref();
    sqlx::query(
        "INSERT INTO routing.work_items (conversation_id, workstream_id, number_id, queue_id, state, priority, profiles, skills, facts, \
         enqueued_at, last_customer_message_at, traceparent, units, affinity_agent_id, queue_priority) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, COALESCE($13, 1), $14, COALESCE($15, 1)) \
         ON CONFLICT (conversation_id) DO UPDATE SET workstream_id = $2, queue_id = $4, state = $5, priority = $6, profiles = $7, skills = $8, \
         facts = $9, enqueued_at = $10, last_customer_message_at = $11, traceparent = $12, agent_id = NULL, offer_id = NULL, pinned_agent_id = NULL, \
         declines = '{}'::jsonb, total_declines = 0, release_at = NULL, updated_at = $10, \
         escalated_from_bot = routing.work_items.escalated_from_bot AND $5 <> 'bot', \
         units = COALESCE($13, routing.work_items.units), \
         affinity_agent_id = CASE WHEN $16 THEN $14 ELSE routing.work_items.affinity_agent_id END, \
         queue_priority = COALESCE($15, routing.work_items.queue_priority)",
    )
    .bind(conversation.into())
    .bind(item.workstream_id)
    .bind(origin.number_id)
    .bind(item.queue_id)
    .bind(item.state.as_str())
    .bind(item.priority)
    .bind(item.profiles)
    .bind(serde_json::json!(item.skills))
    .bind(serde_json::json!(item.facts))
    .bind(now)
    .bind(origin.last_customer_message_at)
    .bind(&origin.traceparent)
    .bind(placement.map(|p| p.units))
    .bind(placement.and_then(|p| p.affinity))
    .bind(placement.map(|p| p.queue_priority))
    .bind(placement.is_some())
    .execute(db)
    .await?;
    Ok(())
}

/// The item of `conversation`.
pub async fn get<'c>(db: impl PgExecutor<'c>, conversation: impl Into<Uuid>) -> Result<Option<ItemRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.work_items WHERE conversation_id = $1")
        .bind(conversation.into())
        .fetch_optional(db)
        .await
}

/// Locks and returns the item of `conversation`.
pub async fn lock<'c>(db: impl PgExecutor<'c>, conversation: impl Into<Uuid>) -> Result<Option<ItemRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.work_items WHERE conversation_id = $1 FOR UPDATE")
        .bind(conversation.into())
        .fetch_optional(db)
        .await
}

/// Deletes the item of `conversation` (closed, or ended by routing).
pub async fn delete<'c>(db: impl PgExecutor<'c>, conversation: impl Into<Uuid>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM routing.work_items WHERE conversation_id = $1")
        .bind(conversation.into())
        .execute(db)
        .await?;
    Ok(())
}

/// The offered item's agent accepted: assigned to them.
pub async fn accepted<'c>(db: impl PgExecutor<'c>, conversation: impl Into<Uuid>, now: OffsetDateTime) -> Result<ItemRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE routing.work_items SET state = 'assigned', offer_id = NULL, updated_at = $2 WHERE conversation_id = $1 RETURNING *",
    )
    .bind(conversation.into())
    .bind(now)
    .fetch_one(db)
    .await
}

/// Given to `agent` directly (a pick, a supervisor), holding their capacity.
pub async fn taken_by<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    agent: Uuid,
    now: OffsetDateTime,
) -> Result<ItemRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE routing.work_items SET state = 'assigned', agent_id = $2, offer_id = NULL, capacity_held = true, updated_at = $3 \
         WHERE conversation_id = $1 RETURNING *",
    )
    .bind(conversation.into())
    .bind(agent)
    .bind(now)
    .fetch_one(db)
    .await
}

/// An offer to `agent` ended without an accept: the item is where `next` says, with the
/// agent's decline counted (and its time kept for the cool-down) when it counts; `freed`: the
/// capacity the offer held is given back in the same transaction.
pub async fn offer_ended<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    agent: Uuid,
    next: &Requeue,
    freed: bool,
    now: OffsetDateTime,
) -> Result<ItemRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE routing.work_items SET state = $2, agent_id = NULL, offer_id = NULL, declines = $3, total_declines = $4, updated_at = $5, \
         declined_at = CASE WHEN $8 THEN declined_at || jsonb_build_object($6::text, $7::bigint) ELSE declined_at END, \
         capacity_held = capacity_held AND NOT $9, release_at = CASE WHEN $9 THEN NULL ELSE release_at END \
         WHERE conversation_id = $1 RETURNING *",
    )
    .bind(conversation.into())
    .bind(next.state.as_str())
    .bind(serde_json::json!(next.declines))
    .bind(next.total_declines)
    .bind(now)
    .bind(agent.to_string())
    .bind(now.unix_timestamp())
    .bind(next.counted)
    .bind(freed)
    .fetch_one(db)
    .await
}

/// Transferred: queued afresh in `queue` (at its priority), for `pinned` if given.
pub async fn transferred<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    queue: Uuid,
    queue_priority: i32,
    pinned: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<ItemRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE routing.work_items SET state = 'queued', queue_id = $2, agent_id = NULL, offer_id = NULL, pinned_agent_id = $3, \
         affinity_agent_id = NULL, declines = '{}'::jsonb, total_declines = 0, enqueued_at = $4, updated_at = $4, queue_priority = $5 \
         WHERE conversation_id = $1 RETURNING *",
    )
    .bind(conversation.into())
    .bind(queue)
    .bind(pinned)
    .bind(now)
    .bind(queue_priority)
    .fetch_one(db)
    .await
}

/// The capacity the item held was given back.
pub async fn capacity_released<'c>(db: impl PgExecutor<'c>, conversation: impl Into<Uuid>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routing.work_items SET capacity_held = false, release_at = NULL, updated_at = now() WHERE conversation_id = $1")
        .bind(conversation.into())
        .execute(db)
        .await?;
    Ok(())
}

/// Waiting on the customer; `freed`: its capacity is given back now.
pub async fn waiting<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    freed: bool,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items SET state = 'waiting', updated_at = $2, capacity_held = capacity_held AND NOT $3, \
         release_at = CASE WHEN $3 THEN NULL ELSE release_at END WHERE conversation_id = $1",
    )
    .bind(conversation.into())
    .bind(now)
    .bind(freed)
    .execute(db)
    .await?;
    Ok(())
}

/// In wrap-up; `freed`: its capacity is given back now; `release_at`: when a capacity it still
/// holds is to be given back.
pub async fn wrap_up<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    freed: bool,
    release_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items SET state = 'wrap_up', updated_at = $2, capacity_held = capacity_held AND NOT $3, \
         release_at = CASE WHEN $3 THEN NULL WHEN $4::timestamptz IS NOT NULL AND capacity_held THEN $4 ELSE release_at END \
         WHERE conversation_id = $1",
    )
    .bind(conversation.into())
    .bind(now)
    .bind(freed)
    .bind(release_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Assigned to `agent` again, holding their capacity (a waiting conversation revived).
pub async fn revived<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    agent: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items SET state = 'assigned', agent_id = $2, capacity_held = true, updated_at = $3 WHERE conversation_id = $1",
    )
    .bind(conversation.into())
    .bind(agent)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Assigned to `agent` as session has it (routing's own write was lost), holding their capacity.
pub async fn adopted_assignment<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    agent: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items SET state = 'assigned', agent_id = $2, offer_id = NULL, capacity_held = true, release_at = NULL, \
         updated_at = $3 WHERE conversation_id = $1",
    )
    .bind(conversation.into())
    .bind(agent)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Queued again in `queue` as session has it (a release whose routing write was lost); keeps
/// its queue priority when the queue has none.
pub async fn adopted_release<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    queue: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items SET state = 'queued', agent_id = NULL, offer_id = NULL, queue_id = $3, enqueued_at = $2, updated_at = $2, \
         queue_priority = COALESCE((SELECT (definition->>'priority')::int FROM routing.config WHERE kind = 'queue' AND id = $3), queue_priority) \
         WHERE conversation_id = $1",
    )
    .bind(conversation.into())
    .bind(now)
    .bind(queue)
    .execute(db)
    .await?;
    Ok(())
}

/// Moved to `queue` by an overflow rule, keeping its state, at that queue's priority.
pub async fn overflowed_to<'c>(
    db: impl PgExecutor<'c>,
    conversation: impl Into<Uuid>,
    queue: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items SET queue_id = $2, enqueued_at = $3, updated_at = $3, \
         queue_priority = COALESCE((SELECT (definition->>'priority')::int FROM routing.config WHERE kind = 'queue' AND id = $2), 1) \
         WHERE conversation_id = $1",
    )
    .bind(conversation.into())
    .bind(queue)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// A bot handed the conversation over.
pub async fn escalated_from_bot<'c>(db: impl PgExecutor<'c>, conversation: impl Into<Uuid>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routing.work_items SET escalated_from_bot = true WHERE conversation_id = $1")
        .bind(conversation.into())
        .execute(db)
        .await?;
    Ok(())
}

/// Queue `queue`'s priority changed: its items take it.
pub async fn set_queue_priority<'c>(db: impl PgExecutor<'c>, queue: Uuid, priority: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routing.work_items SET queue_priority = $2 WHERE queue_id = $1 AND queue_priority <> $2")
        .bind(queue)
        .bind(priority)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks up to `limit` items whose timed wrap-up block is over (skipping locked ones).
pub async fn lock_due_releases<'c>(db: impl PgExecutor<'c>, now: OffsetDateTime, limit: i64) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.work_items WHERE release_at <= $1 AND capacity_held FOR UPDATE SKIP LOCKED LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// Up to `limit` conversations queued in `queue` since `before` or earlier.
pub async fn queued_since<'c>(db: impl PgExecutor<'c>, queue: Uuid, before: OffsetDateTime, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT conversation_id FROM routing.work_items WHERE queue_id = $1 AND state = 'queued' AND enqueued_at <= $2 LIMIT $3",
    )
    .bind(queue)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The queues with queued items.
pub async fn queues_with_queued<'c>(db: impl PgExecutor<'c>) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT queue_id FROM routing.work_items WHERE state = 'queued' AND queue_id IS NOT NULL")
        .fetch_all(db)
        .await
}

/// Items queued or offered, per queue of `queues` (what overflow rules count).
pub async fn waiting_per_queue<'c>(db: impl PgExecutor<'c>, queues: &[Uuid]) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT queue_id, count(*) FROM routing.work_items WHERE queue_id = ANY($1) AND state IN ('queued', 'offered') GROUP BY queue_id",
    )
    .bind(queues)
    .fetch_all(db)
    .await
}

/// Where the assignment cycle is in its ordered walk of the queued items.
pub type CycleCursor = (bool, i32, i32, OffsetDateTime, Uuid);

/// The cycle's next page of queued items in `queues` (all when `None`), after `cursor`, locked
/// (skipping items another cycle holds). Items kept for an agent (affinity, a transfer to them)
/// go first, as Dynamics orders them; then queue priority, item priority, age.
pub async fn lock_queued_page<'c>(
    db: impl PgExecutor<'c>,
    queues: Option<&[Uuid]>,
    cursor: Option<CycleCursor>,
    limit: i64,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM routing.work_items w WHERE state = 'queued' AND ($1::uuid[] IS NULL OR queue_id = ANY($1)) \
         AND ($2::bool IS NULL OR ((affinity_agent_id IS NULL AND pinned_agent_id IS NULL), queue_priority, priority, last_customer_message_at, conversation_id) \
              > ($2, $3, $4, $5, $6)) \
         ORDER BY (affinity_agent_id IS NULL AND pinned_agent_id IS NULL), queue_priority, priority, last_customer_message_at, conversation_id \
         LIMIT $7 FOR UPDATE SKIP LOCKED",
    )
    .bind(queues)
    .bind(cursor.map(|c| c.0))
    .bind(cursor.map(|c| c.1))
    .bind(cursor.map(|c| c.2))
    .bind(cursor.map(|c| c.3))
    .bind(cursor.map(|c| c.4))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The cycle's offers are made: each item offered to its agent, holding their capacity.
pub async fn offered<'c>(
    db: impl PgExecutor<'c>,
    conversations: &[Uuid],
    agents: &[Uuid],
    offers: &[Uuid],
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.work_items w SET state = 'offered', agent_id = d.a, offer_id = d.o, capacity_held = true, updated_at = $4 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS d(c, a, o) WHERE w.conversation_id = d.c",
    )
    .bind(conversations)
    .bind(agents)
    .bind(offers)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Agent `agent`'s assigned items.
pub async fn assigned_to<'c>(db: impl PgExecutor<'c>, agent: Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.work_items WHERE agent_id = $1 AND state = 'assigned'")
        .bind(agent)
        .fetch_all(db)
        .await
}

/// Items agent `agent` may pick: queued in a pick-mode workstream, or pick-only, in their queues.
pub async fn pickable_by<'c>(db: impl PgExecutor<'c>, agent: Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT w.* FROM routing.work_items w JOIN routing.queue_members m ON m.queue_id = w.queue_id AND m.agent_id = $1 \
         JOIN routing.config ws ON ws.kind = 'workstream' AND ws.id = w.workstream_id \
         WHERE (w.state = 'queued' AND ws.definition->>'mode' = 'pick') OR w.state = 'pick_only' \
         ORDER BY w.priority, w.last_customer_message_at LIMIT 200",
    )
    .bind(agent)
    .fetch_all(db)
    .await
}

/// A page of items, by conversation, filtered by queue and states (none: every state).
pub async fn page<'c>(
    db: impl PgExecutor<'c>,
    queue: Option<Uuid>,
    states: &[String],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM routing.work_items WHERE ($1::uuid IS NULL OR queue_id = $1) AND (cardinality($2::text[]) = 0 OR state = ANY($2)) \
         AND ($3::uuid IS NULL OR conversation_id > $3) ORDER BY conversation_id LIMIT $4",
    )
    .bind(queue)
    .bind(states)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// What a configuration object's deletion must wait for: the items in workstream or queue
/// `id`, or with agent `id`.
pub async fn count_referencing<'c>(db: impl PgExecutor<'c>, column: Reference, id: Uuid) -> Result<i64, sqlx::Error> {
    let sql = match column {
        Reference::Workstream => "SELECT count(*) FROM routing.work_items WHERE workstream_id = $1",
        Reference::Queue => "SELECT count(*) FROM routing.work_items WHERE queue_id = $1",
        Reference::Agent => "SELECT count(*) FROM routing.work_items WHERE agent_id = $1",
    };
    sqlx::query_scalar(sql).bind(id).fetch_one(db).await
}

/// What an item names, for [`count_referencing`].
#[derive(Debug, Clone, Copy)]
pub enum Reference {
    Workstream,
    Queue,
    Agent,
}
