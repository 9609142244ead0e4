//! Conversations: reading them, moving them through the lifecycle (`domain::conversation`),
//! and auto-closing idle ones. Every change writes `conversation.status_changed.v1` to the
//! outbox in the same transaction.

use std::collections::BTreeMap;
use switchboard_domain::ids::ConversationId;

use sqlx::PgConnection;
use switchboard_bus::events::ConversationStatusChangedV1;
use switchboard_domain::automated::{self, RenderContext};
use switchboard_domain::conversation::{self, ConversationStatus, StatusReason, Transition};
use switchboard_domain::routing::config::{ContextVariable, VariableKind, check_variable};
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::error::SessionError;
use crate::store::conversations as store;

pub use crate::store::conversations::{ConversationFilter, ConversationRow, ConversationView};

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
    pub async fn conversation(&self, id: ConversationId) -> Result<ConversationView, SessionError> {
        store::view(&self.pool, id).await?.ok_or(SessionError::NotFound("conversation"))
    }

    /// Lists conversations, newest first.
    pub async fn list_conversations(&self, filter: &ConversationFilter) -> Result<Vec<ConversationView>, SessionError> {
        Ok(store::list(&self.pool, filter).await?)
    }

    /// Applies a lifecycle transition.
    pub async fn transition(&self, id: ConversationId, input: TransitionInput) -> Result<ConversationView, SessionError> {
        if matches!(
            input.transition,
            Transition::CustomerMessage | Transition::AutoClose | Transition::ChannelDeleted
        ) {
            return Err(SessionError::invalid("that transition is the system's own"));
        }
        let mut tx = self.pool.begin().await?;
        // Locked with its customer and window read alongside: a transition changes neither, so
        // the answer is the updated row with them, without reading it all again.
        let view = store::lock_view(&mut *tx, id)
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
            Transition::Revive => (input.agent_id.or(c.agent_id.map(Into::into)), None),
            Transition::ReleaseToQueue => (None, None),
            _ => (c.agent_id.map(Into::into), c.bot_id.map(Into::into)),
        };
        let moved = store::Moved {
            to,
            reason_code: reason.code(),
            agent_id,
            bot_id,
            queue_id: input.queue_id,
            workstream_id: input.workstream_id,
            transfer: input.transfer && input.transition == Transition::ReleaseToQueue,
        };
        let updated = store::moved(&mut *tx, c.id, &moved, now).await?;
        if let (Transition::Accept, Some(bot)) = (input.transition, updated.bot_id) {
            self.push_bot_turn(tx, &updated, bot.into(), None, events).await?;
        }
        if let Some(note) = input.note.as_deref().filter(|n| !n.trim().is_empty()) {
            self.insert_note(tx, &updated, note, events).await?;
        }
        events.push(
            ConversationStatusChangedV1 {
                conversation_id: c.id,
                number_id: c.number_id,
                workstream_id: updated.workstream_id,
                from,
                to,
                transition: input.transition.name().into(),
                reason: reason_name(reason.code()),
                agent_id: updated.agent_id.or(c.agent_id),
                queue_id: updated.queue_id,
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
    pub async fn set_attributes(
        &self,
        id: ConversationId,
        attributes: &BTreeMap<String, String>,
    ) -> Result<ConversationView, SessionError> {
        for (k, v) in attributes {
            if !switchboard_domain::automated::is_variable_name(k) || v.chars().count() > 4_000 {
                return Err(SessionError::invalid(format!(
                    "attribute {k:?}: names are letters, digits and _ (at most 100), values at most 4,000 characters"
                )));
            }
        }
        // The workstream's declared variables type-check the values (a number must be one).
        let declared = store::declared_variables(&self.pool, id).await?;
        let declared: Vec<ContextVariable> = declared
            .and_then(|d| serde_json::from_value::<BTreeMap<String, String>>(d).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, kind)| VariableKind::parse(&kind).map(|kind| ContextVariable { name, kind }))
            .collect();
        for (k, v) in attributes {
            check_variable(&declared, k, v).map_err(SessionError::invalid)?;
        }
        if !store::merge_attributes(&self.pool, id, attributes).await? {
            return Err(SessionError::NotFound("conversation"));
        }
        self.conversation(id).await
    }

    /// Closes conversations idle longer than their status allows; safe with several replicas
    /// (rows are taken with `SKIP LOCKED`). Returns how many were closed.
    pub async fn auto_close_due(&self, limit: i64) -> Result<u32, SessionError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        let due = store::lock_idle(&mut *tx, now, self.settings.default_waiting_auto_close_secs, limit).await?;
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
