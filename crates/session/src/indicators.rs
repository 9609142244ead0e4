//! An agent's activity in a conversation (opened it, is typing) turned into read receipts and
//! typing indicators by the workstream's policy ([`switchboard_domain::indicators`]). Session
//! decides and records; the sender makes Twilio's call from the event, so an agent's keystroke
//! never waits on Twilio.

use switchboard_bus::events::{ConversationReadV1, ConversationTypingV1};
use switchboard_domain::ServiceWindow;
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::ids::{AgentId, ConversationId};
use switchboard_domain::indicators::{ActivityFacts, AgentActivity, Indicator, ReadReceipts, TYPING_REFRESH, decide};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::error::SessionError;

/// What an activity caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityOutcome {
    /// Twilio's typing indicator was requested.
    pub indicator_sent: bool,
    /// The customer's messages were marked read.
    pub marked_read: bool,
    /// The policy applied.
    pub policy: ReadReceipts,
}

#[derive(sqlx::FromRow)]
struct Facts {
    /// An unknown stored status fails the read.
    status: ConversationStatus,
    agent_id: Option<Uuid>,
    channel_id: Uuid,
    queue_id: Option<Uuid>,
    last_customer_message_at: Option<OffsetDateTime>,
    read_receipts: String,
    typing_at: Option<OffsetDateTime>,
    latest_sid: Option<String>,
    unread: bool,
}

impl Session {
    /// Records that `agent` opened conversation `id` or is typing in it, and sends what the
    /// workstream's read-receipt policy calls for.
    pub async fn record_agent_activity(
        &self,
        id: ConversationId,
        agent: AgentId,
        activity: AgentActivity,
    ) -> Result<ActivityOutcome, SessionError> {
        let mut tx = self.pool.begin().await?;
        // No lock on the conversation row: the writes below are conditional, so two concurrent
        // calls cannot both send, and inbound batches never wait on an agent's typing.
        let f = sqlx::query_as::<_, Facts>(
            "SELECT c.status, c.agent_id, c.channel_id, c.queue_id, c.last_customer_message_at, \
                    coalesce(w.read_receipts, 'on_typing') AS read_receipts, t.indicated_at AS typing_at, \
                    (SELECT m.twilio_sid FROM session.messages m WHERE m.conversation_id = c.id AND m.direction = 'inbound' \
                      ORDER BY m.seq DESC LIMIT 1) AS latest_sid, \
                    EXISTS (SELECT 1 FROM session.messages m WHERE m.conversation_id = c.id AND m.direction = 'inbound' \
                      AND m.read_at IS NULL) AS unread \
             FROM session.conversations c JOIN session.numbers n ON n.id = c.number_id \
             LEFT JOIN session.workstreams w ON w.id = coalesce(c.workstream_id, n.workstream_id) \
             LEFT JOIN session.typing t ON t.conversation_id = c.id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(SessionError::NotFound("conversation"))?;
        let holds = f.agent_id == Some(agent.uuid()) && f.status.agent_may_work();
        if !holds {
            return Err(SessionError::Precondition(
                "only the agent working the conversation can do this".into(),
            ));
        }
        let now = self.now();
        let policy = ReadReceipts::parse(&f.read_receipts);
        let window_open = f
            .last_customer_message_at
            .is_some_and(|at| ServiceWindow::opened_at(at).is_open(now));
        let mut decision = decide(
            activity,
            ActivityFacts {
                policy,
                unread: f.unread,
                window_open,
                last_typing_at: f.typing_at,
                now,
            },
        );
        if decision.announce_typing && !self.claim_typing(&mut tx, id.uuid(), now).await? {
            // Another call announced it meanwhile.
            decision = Indicator::default();
        }
        if decision.mark_read {
            decision.mark_read = sqlx::query(
                "UPDATE session.messages SET read_at = $2 WHERE conversation_id = $1 AND direction = 'inbound' AND read_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            // Someone else marked them read first: their indicator covers this one.
            decision.send &= decision.mark_read || activity == AgentActivity::Typing;
        }
        let indicator = decision.send.then(|| f.latest_sid.clone()).flatten();
        let mut events = Events::default();
        if decision.announce_typing {
            events.push(
                ConversationTypingV1 {
                    conversation_id: id,
                    agent_id: agent,
                    queue_id: f.queue_id.map(Into::into),
                    channel_id: f.channel_id.into(),
                    indicator_message_sid: indicator.clone(),
                },
                now,
            );
        }
        if decision.mark_read {
            events.push(
                ConversationReadV1 {
                    conversation_id: id,
                    agent_id: agent,
                    queue_id: f.queue_id.map(Into::into),
                    channel_id: f.channel_id.into(),
                    // A typing event already carries the indicator: one Twilio call, not two.
                    indicator_message_sid: indicator.clone().filter(|_| !decision.announce_typing),
                    read_at: now,
                },
                now,
            );
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(ActivityOutcome {
            indicator_sent: indicator.is_some(),
            marked_read: decision.mark_read,
            policy,
        })
    }

    /// Records a typing announcement unless one went out less than [`TYPING_REFRESH`] ago.
    async fn claim_typing(&self, tx: &mut sqlx::PgConnection, id: Uuid, now: OffsetDateTime) -> Result<bool, SessionError> {
        let claimed = sqlx::query(
            "INSERT INTO session.typing (conversation_id, indicated_at) VALUES ($1, $2) ON CONFLICT (conversation_id) \
             DO UPDATE SET indicated_at = EXCLUDED.indicated_at WHERE session.typing.indicated_at <= $3",
        )
        .bind(id)
        .bind(now)
        .bind(now - TYPING_REFRESH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }
}
