//! Conversations: reading them, moving them through the lifecycle (`domain::conversation`),
//! and auto-closing idle ones. Every change writes `conversation.status_changed.v1` to the
//! outbox in the same transaction.

use std::collections::BTreeMap;

use sqlx::{FromRow, PgConnection, QueryBuilder};
use switchboard_bus::events::ConversationStatusChangedV1;
use switchboard_domain::automated::{self, RenderContext};
use switchboard_domain::conversation::{self, ConversationStatus, StatusReason, Transition};
use switchboard_domain::routing::config::{ContextVariable, VariableKind, check_variable};
use switchboard_domain::window::ServiceWindow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::error::SessionError;

/// A conversation row.
#[derive(Debug, Clone, FromRow)]
pub struct ConversationRow {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub number_id: Uuid,
    pub customer_id: Uuid,
    pub workstream_id: Option<Uuid>,
    pub status: String,
    pub status_reason: i32,
    pub agent_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
    pub bot_id: Option<Uuid>,
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
    /// Returns the typed status. The column's CHECK admits only the five statuses, so the
    /// fallback cannot be reached from a stored row; were it ever, the row is logged and treated
    /// as closed, the state in which nothing more can be sent or assigned.
    pub fn status(&self) -> ConversationStatus {
        ConversationStatus::parse(&self.status).unwrap_or_else(|| {
            tracing::error!(conversation_id = %self.id, status = %self.status, "conversation with an unknown status, treated as closed");
            ConversationStatus::Closed
        })
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
const VIEW: &str = view!();
/// One conversation's view, its row locked.
const VIEW_LOCKED: &str = concat!(view!(), " WHERE c.id = $1 FOR UPDATE OF c");

/// A lifecycle request.
#[derive(Debug, Clone)]
pub struct TransitionInput {
    pub transition: Transition,
    pub agent_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
    pub workstream_id: Option<Uuid>,
    pub bot_id: Option<Uuid>,
    pub note: Option<String>,
    pub agent_name: Option<String>,
    pub queue_name: Option<String>,
    /// A release to a queue that is a transfer.
    pub transfer: bool,
}

impl TransitionInput {
    /// A bare transition.
    pub fn new(transition: Transition) -> Self {
        Self {
            transition,
            agent_id: None,
            queue_id: None,
            workstream_id: None,
            bot_id: None,
            note: None,
            agent_name: None,
            queue_name: None,
            transfer: false,
        }
    }
}

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

/// Parses a transition a caller may request by name.
pub fn parse_transition(raw: &str) -> Result<Transition, SessionError> {
    Transition::requested(raw).ok_or_else(|| SessionError::invalid(format!("unknown transition {raw:?}")))
}

/// Returns the snake_case name of a status-change reason (its code when unknown).
pub fn reason_name(code: i32) -> String {
    StatusReason::from_code(code).map_or_else(|| code.to_string(), StatusReason::name)
}

impl Session {
    /// Returns a conversation view.
    pub async fn conversation(&self, id: Uuid) -> Result<ConversationView, SessionError> {
        sqlx::query_as::<_, ConversationView>(sqlx::AssertSqlSafe(format!("{VIEW} WHERE c.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(SessionError::NotFound("conversation"))
    }

    /// Lists conversations, newest first.
    pub async fn list_conversations(&self, filter: &ConversationFilter) -> Result<Vec<ConversationView>, SessionError> {
        let mut q = QueryBuilder::new(format!("{VIEW} WHERE true"));
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
        Ok(q.build_query_as::<ConversationView>().fetch_all(&self.pool).await?)
    }

    /// Applies a lifecycle transition.
    pub async fn transition(&self, id: Uuid, input: TransitionInput) -> Result<ConversationView, SessionError> {
        if matches!(
            input.transition,
            Transition::CustomerMessage | Transition::AutoClose | Transition::ChannelDeleted
        ) {
            return Err(SessionError::invalid("that transition is the system's own"));
        }
        let mut tx = self.pool.begin().await?;
        // Locked with its customer and window read alongside: a transition changes neither, so
        // the answer is the updated row with them, without reading it all again.
        let view = sqlx::query_as::<_, ConversationView>(VIEW_LOCKED)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(SessionError::NotFound("conversation"))?;
        let mut events = Events::default();
        let row = self.transition_locked(&mut tx, &view.row, &input, &mut events).await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(ConversationView { row, ..view })
    }

    /// Applies a transition to a row locked by the caller's transaction.
    pub(crate) async fn transition_locked(
        &self,
        tx: &mut PgConnection,
        c: &ConversationRow,
        input: &TransitionInput,
        events: &mut Events,
    ) -> Result<ConversationRow, SessionError> {
        let from = c.status();
        let (to, reason) = conversation::apply(from, input.transition).map_err(|e| SessionError::Precondition(e.to_string()))?;
        let now = self.now();
        let (agent_id, bot_id) = match input.transition {
            Transition::Accept | Transition::Pick | Transition::SupervisorAssign => match (input.agent_id, input.bot_id) {
                (Some(agent), _) => (Some(agent), None),
                (None, Some(bot)) => (None, Some(bot)),
                (None, None) => {
                    return Err(SessionError::invalid("agent_id (or bot_id) is required to accept, pick or assign"));
                }
            },
            Transition::Revive => (input.agent_id.or(c.agent_id), None),
            Transition::ReleaseToQueue => (None, None),
            _ => (c.agent_id, c.bot_id),
        };
        let updated = sqlx::query_as::<_, ConversationRow>(
            "UPDATE session.conversations SET status = $2, status_reason = $3, agent_id = $4, bot_id = $5, \
             queue_id = COALESCE($6, queue_id), workstream_id = COALESCE($7, workstream_id), status_changed_at = $8, \
             last_activity_at = $8, closed_at = CASE WHEN $2 = 'closed' THEN $8 ELSE NULL END, \
             transfer_count = transfer_count + CASE WHEN $9 THEN 1 ELSE 0 END, \
             transfer_pending = CASE WHEN $9 THEN true WHEN $2 = 'active' THEN false ELSE transfer_pending END \
             WHERE id = $1 RETURNING *",
        )
        .bind(c.id)
        .bind(to.as_str())
        .bind(reason.code())
        .bind(agent_id)
        .bind(bot_id)
        .bind(input.queue_id)
        .bind(input.workstream_id)
        .bind(now)
        .bind(input.transfer && input.transition == Transition::ReleaseToQueue)
        .fetch_one(&mut *tx)
        .await?;
        if let (Transition::Accept, Some(bot)) = (input.transition, updated.bot_id) {
            self.push_bot_turn(tx, &updated, bot, None, events).await?;
        }
        if let Some(note) = input.note.as_deref().filter(|n| !n.trim().is_empty()) {
            self.insert_note(tx, &updated, note, events).await?;
        }
        events.push(
            ConversationStatusChangedV1 {
                conversation_id: c.id.to_string(),
                number_id: c.number_id.to_string(),
                workstream_id: updated.workstream_id.map(|w| w.to_string()),
                from: from.as_str().into(),
                to: to.as_str().into(),
                transition: input.transition.name().into(),
                reason: reason_name(reason.code()),
                agent_id: updated.agent_id.or(c.agent_id).map(|a| a.to_string()),
                queue_id: updated.queue_id.map(|q| q.to_string()),
                at: now,
            },
            now,
        );
        let trigger = automated::trigger_for(input.transition, to, agent_id.is_some(), c.transfer_pending);
        if let Some(trigger) = trigger {
            let ctx = RenderContext {
                agent_name: input.agent_name.clone(),
                queue_name: input.queue_name.clone(),
                variables: updated.attributes(),
            };
            self.send_automated_locked(tx, &updated, trigger, &ctx, events).await?;
        }
        if to == ConversationStatus::Closed && !matches!(input.transition, Transition::ChannelDeleted | Transition::Failure) {
            self.send_survey_locked(tx, &updated, events).await?;
        }
        Ok(updated)
    }

    /// Merges attributes into a conversation (context variables: name ≤ 100, value ≤ 4,000).
    pub async fn set_attributes(&self, id: Uuid, attributes: &BTreeMap<String, String>) -> Result<ConversationView, SessionError> {
        for (k, v) in attributes {
            if !switchboard_domain::automated::is_variable_name(k) || v.chars().count() > 4_000 {
                return Err(SessionError::invalid(format!(
                    "attribute {k:?}: names are letters, digits and _ (at most 100), values at most 4,000 characters"
                )));
            }
        }
        // The workstream's declared variables type-check the values (a number must be one).
        let declared: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT w.context_variables FROM session.conversations c JOIN session.workstreams w ON w.id = c.workstream_id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let declared: Vec<ContextVariable> = declared
            .and_then(|d| serde_json::from_value::<BTreeMap<String, String>>(d).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, kind)| VariableKind::parse(&kind).map(|kind| ContextVariable { name, kind }))
            .collect();
        for (k, v) in attributes {
            check_variable(&declared, k, v).map_err(SessionError::invalid)?;
        }
        let updated = sqlx::query("UPDATE session.conversations SET attributes = attributes || $2::jsonb WHERE id = $1")
            .bind(id)
            .bind(serde_json::json!(attributes))
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(SessionError::NotFound("conversation"));
        }
        self.conversation(id).await
    }

    /// Closes conversations idle longer than their status allows; safe with several replicas
    /// (rows are taken with `SKIP LOCKED`). Returns how many were closed.
    pub async fn auto_close_due(&self, limit: i64) -> Result<u32, SessionError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let due = sqlx::query_as::<_, ConversationRow>(
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
        .bind(self.settings.default_waiting_auto_close_secs)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Events::default();
        for row in &due {
            self.transition_locked(&mut tx, row, &TransitionInput::new(Transition::AutoClose), &mut events)
                .await?;
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(u32::try_from(due.len()).unwrap_or(u32::MAX))
    }
}
