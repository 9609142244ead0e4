//! The conversations' SQL (`session.conversations`, read with their customer and 24-hour
//! window as views). Each function is one statement named for what it does; the lifecycle's
//! rules (`switchboard_domain::conversation::apply`, the auto-close limits) decide before the
//! transition is written.

use std::collections::BTreeMap;

use sqlx::{FromRow, PgExecutor, QueryBuilder};
use switchboard_domain::conversation::{self, ConversationStatus};
use switchboard_domain::ids::{AgentId, BotId, ChannelId, ConversationId, CustomerId, NumberId, QueueId, WorkstreamId};
use switchboard_domain::window::ServiceWindow;
use time::OffsetDateTime;
use uuid::Uuid;

/// A conversation row.
#[derive(Debug, Clone, FromRow)]
pub struct ConversationRow {
    pub id: ConversationId,
    pub channel_id: ChannelId,
    pub number_id: NumberId,
    pub customer_id: CustomerId,
    pub workstream_id: Option<WorkstreamId>,
    /// A stored value that is none of the five statuses (the column's CHECK keeps them out)
    /// fails the read, rather than passing for another status.
    pub status: ConversationStatus,
    pub status_reason: i32,
    pub agent_id: Option<AgentId>,
    pub queue_id: Option<QueueId>,
    pub bot_id: Option<BotId>,
    pub first_message: String,
    pub attributes: serde_json::Value,
    pub opened_at: OffsetDateTime,
    pub status_changed_at: OffsetDateTime,
    pub last_customer_message_at: Option<OffsetDateTime>,
    pub last_activity_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    pub survey_sent: bool,
    /// Transfers so far.
    pub transfer_count: i32,
    /// A transfer waits for its accept.
    pub transfer_pending: bool,
}

impl ConversationRow {
    /// Returns the status.
    pub fn status(&self) -> ConversationStatus {
        self.status
    }

    /// Returns the attributes as a string map.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        self.attributes
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A conversation with its customer and window, as shown to callers.
#[derive(Debug, Clone, FromRow)]
pub struct ConversationView {
    #[sqlx(flatten)]
    pub row: ConversationRow,
    pub customer_phone: Option<String>,
    pub customer_bsuid: Option<String>,
    pub customer_profile_name: Option<String>,
    pub last_inbound_at: Option<OffsetDateTime>,
}

impl ConversationView {
    /// Returns the customer's 24-hour window on this number.
    pub fn window(&self) -> ServiceWindow {
        ServiceWindow {
            last_inbound_at: self.last_inbound_at,
        }
    }
}

macro_rules! view {
    () => {
        "SELECT c.*, cu.phone AS customer_phone, cu.bsuid AS customer_bsuid, cu.profile_name AS customer_profile_name, w.last_inbound_at \
         FROM session.conversations c JOIN session.customers cu ON cu.id = c.customer_id \
         LEFT JOIN session.windows w ON w.number_id = c.number_id AND w.customer_id = c.customer_id"
    };
}
const VIEW_ONE: &str = concat!(view!(), " WHERE c.id = $1");
/// One conversation's view, its row locked.
const VIEW_LOCKED: &str = concat!(view!(), " WHERE c.id = $1 FOR UPDATE OF c");

/// Filters for listing conversations.
#[derive(Debug, Default, Clone)]
pub struct ConversationFilter {
    pub statuses: Vec<String>,
    pub number_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

/// One conversation's view.
pub async fn view<'c>(db: impl PgExecutor<'c>, id: ConversationId) -> Result<Option<ConversationView>, sqlx::Error> {
    sqlx::query_as(VIEW_ONE).bind(id).fetch_optional(db).await
}

/// One conversation's view, its row locked.
pub async fn lock_view<'c>(db: impl PgExecutor<'c>, id: ConversationId) -> Result<Option<ConversationView>, sqlx::Error> {
    sqlx::query_as(VIEW_LOCKED).bind(id).fetch_optional(db).await
}

/// Conversations as `filter` asks, newest first.
pub async fn list<'c>(db: impl PgExecutor<'c>, filter: &ConversationFilter) -> Result<Vec<ConversationView>, sqlx::Error> {
    let mut q = QueryBuilder::new(concat!(view!(), " WHERE true"));
    if !filter.statuses.is_empty() {
        q.push(" AND c.status = ANY(").push_bind(filter.statuses.clone()).push(")");
    }
    if let Some(v) = filter.number_id {
        q.push(" AND c.number_id = ").push_bind(v);
    }
    if let Some(v) = filter.agent_id {
        q.push(" AND c.agent_id = ").push_bind(v);
    }
    if let Some(v) = filter.queue_id {
        q.push(" AND c.queue_id = ").push_bind(v);
    }
    if let Some(v) = filter.customer_id {
        q.push(" AND c.customer_id = ").push_bind(v);
    }
    if let Some(v) = filter.before {
        q.push(" AND c.id < ").push_bind(v);
    }
    q.push(" ORDER BY c.id DESC LIMIT ").push_bind(filter.limit);
    q.build_query_as::<ConversationView>().fetch_all(db).await
}

/// A conversation's row.
pub async fn get<'c>(db: impl PgExecutor<'c>, id: Uuid) -> Result<Option<ConversationRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM session.conversations WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A conversation's row, locked.
pub async fn lock<'c>(db: impl PgExecutor<'c>, id: Uuid) -> Result<Option<ConversationRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM session.conversations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Marks the conversation active at `now`, which locks its row (sends to one conversation go
/// one at a time).
pub async fn touch<'c>(db: impl PgExecutor<'c>, id: Uuid, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session.conversations SET last_activity_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// A lifecycle move to write, as `domain::conversation::apply` allowed it.
pub struct Moved {
    pub to: ConversationStatus,
    pub reason_code: i32,
    pub agent_id: Option<Uuid>,
    pub bot_id: Option<Uuid>,
    /// Kept when none.
    pub queue_id: Option<Uuid>,
    /// Kept when none.
    pub workstream_id: Option<Uuid>,
    /// A release to a queue that is a transfer (counted, and pending until accepted).
    pub transfer: bool,
}

/// Writes a lifecycle move; returns the row as it is now.
pub async fn moved<'c>(
    db: impl PgExecutor<'c>,
    id: ConversationId,
    m: &Moved,
    now: OffsetDateTime,
) -> Result<ConversationRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE session.conversations SET status = $2, status_reason = $3, agent_id = $4, bot_id = $5, \
         queue_id = COALESCE($6, queue_id), workstream_id = COALESCE($7, workstream_id), status_changed_at = $8, \
         last_activity_at = $8, closed_at = CASE WHEN $2 = 'closed' THEN $8 ELSE NULL END, \
         transfer_count = transfer_count + CASE WHEN $9 THEN 1 ELSE 0 END, \
         transfer_pending = CASE WHEN $9 THEN true WHEN $2 = 'active' THEN false ELSE transfer_pending END \
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(m.to.as_str())
    .bind(m.reason_code)
    .bind(m.agent_id)
    .bind(m.bot_id)
    .bind(m.queue_id)
    .bind(m.workstream_id)
    .bind(now)
    .bind(m.transfer)
    .fetch_one(db)
    .await
}

/// The context variables the conversation's workstream declares (name → kind), if it has one.
pub async fn declared_variables<'c>(db: impl PgExecutor<'c>, id: ConversationId) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT w.context_variables FROM session.conversations c JOIN session.workstreams w ON w.id = c.workstream_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Merges `attributes` into the conversation's; false: no such conversation.
pub async fn merge_attributes<'c>(
    db: impl PgExecutor<'c>,
    id: ConversationId,
    attributes: &BTreeMap<String, String>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query("UPDATE session.conversations SET attributes = attributes || $2::jsonb WHERE id = $1")
        .bind(id)
        .bind(serde_json::json!(attributes))
        .execute(db)
        .await?;
    Ok(updated.rows_affected() > 0)
}

/// Locks up to `limit` conversations idle longer than their status allows (their workstream's
/// limits, else the domain's defaults and `waiting_default_secs`), skipping locked ones.
pub async fn lock_idle<'c>(
    db: impl PgExecutor<'c>,
    now: OffsetDateTime,
    waiting_default_secs: i64,
    limit: i64,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.* FROM session.conversations c LEFT JOIN session.workstreams w ON w.id = c.workstream_id \
         WHERE c.status <> 'closed' AND EXTRACT(EPOCH FROM ($1 - c.last_activity_at)) >= CASE c.status \
           WHEN 'open' THEN COALESCE(w.open_auto_close_secs, $2) \
           WHEN 'active' THEN CASE WHEN c.bot_id IS NOT NULL THEN COALESCE(w.bot_inactivity_secs, $5) ELSE COALESCE(w.active_auto_close_secs, $3) END \
           WHEN 'wrap_up' THEN COALESCE(w.wrap_up_auto_close_secs, $4) \
           ELSE COALESCE(w.waiting_auto_close_secs, $6) END \
         ORDER BY c.last_activity_at LIMIT $7 FOR UPDATE OF c SKIP LOCKED",
    )
    .bind(now)
    .bind(conversation::AUTO_CLOSE_OPEN.whole_seconds())
    .bind(conversation::AUTO_CLOSE_ACTIVE.whole_seconds())
    .bind(conversation::AUTO_CLOSE_WRAP_UP.whole_seconds())
    .bind(conversation::AUTO_CLOSE_BOT.whole_seconds())
    .bind(waiting_default_secs)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The post-conversation survey went (or was explained in a note).
pub async fn survey_sent<'c>(db: impl PgExecutor<'c>, id: ConversationId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session.conversations SET survey_sent = true WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks up to `limit` conversations with an agent whose customer's last message fell between
/// `from` (excluded) and `to`, not yet warned for it (skipping locked ones).
pub async fn lock_window_closing<'c>(
    db: impl PgExecutor<'c>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    limit: i64,
) -> Result<Vec<ConversationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM session.conversations WHERE status IN ('active', 'wrap_up', 'waiting') AND agent_id IS NOT NULL \
         AND last_customer_message_at > $1 AND last_customer_message_at <= $2 \
         AND window_warned_for IS DISTINCT FROM last_customer_message_at \
         ORDER BY last_customer_message_at LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The agent was warned that the window of the customer's last message closes.
pub async fn window_warned<'c>(db: impl PgExecutor<'c>, id: ConversationId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session.conversations SET window_warned_for = last_customer_message_at WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records that the window template goes for the window of the customer message at `last`;
/// false when it already went for that one.
pub async fn window_template_first<'c>(db: impl PgExecutor<'c>, id: ConversationId, last: OffsetDateTime) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "UPDATE session.conversations SET window_template_sent_for = $2 WHERE id = $1 \
         AND window_template_sent_for IS DISTINCT FROM $2",
    )
    .bind(id)
    .bind(last)
    .execute(db)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Moves the customer's 24-hour window on the number to `received_at` (never back), and touches
/// and locks their live conversation there, if any; one statement.
pub async fn customer_wrote<'c>(
    db: impl PgExecutor<'c>,
    number: Uuid,
    customer: Uuid,
    received_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH window_moved AS (INSERT INTO session.windows (number_id, customer_id, last_inbound_at) VALUES ($1, $2, $3) \
           ON CONFLICT (number_id, customer_id) DO UPDATE SET last_inbound_at = GREATEST(session.windows.last_inbound_at, EXCLUDED.last_inbound_at)) \
         UPDATE session.conversations SET last_customer_message_at = GREATEST(last_customer_message_at, $3), last_activity_at = $4 \
         WHERE number_id = $1 AND customer_id = $2 AND status <> 'closed' RETURNING *",
    )
    .bind(number)
    .bind(customer)
    .bind(received_at)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// A conversation to open.
pub struct Opened<'a> {
    pub channel_id: Uuid,
    pub number_id: Uuid,
    pub customer_id: Uuid,
    pub workstream_id: Option<Uuid>,
    pub reason_code: i32,
    pub first_message: &'a str,
    pub last_customer_message_at: OffsetDateTime,
}

/// Opens a conversation at `now`.
pub async fn open<'c>(db: impl PgExecutor<'c>, o: &Opened<'_>, now: OffsetDateTime) -> Result<ConversationRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO session.conversations (id, channel_id, number_id, customer_id, workstream_id, status, status_reason, first_message, \
         opened_at, status_changed_at, last_customer_message_at, last_activity_at) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $8, $9, $8) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(o.channel_id)
    .bind(o.number_id)
    .bind(o.customer_id)
    .bind(o.workstream_id)
    .bind(o.reason_code)
    .bind(o.first_message)
    .bind(now)
    .bind(o.last_customer_message_at)
    .fetch_one(db)
    .await
}

/// The message that (re)opened the conversation, as its summary.
pub async fn set_first_message<'c>(db: impl PgExecutor<'c>, id: ConversationId, text: &str) -> Result<ConversationRow, sqlx::Error> {
    sqlx::query_as("UPDATE session.conversations SET first_message = $2 WHERE id = $1 RETURNING *")
        .bind(id)
        .bind(text)
        .fetch_one(db)
        .await
}
