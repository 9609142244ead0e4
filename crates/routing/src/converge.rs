//! Routing converging on session's word.
//!
//! Routing asks session to move a conversation (accept, pick, supervisor assignment, transfer)
//! while it holds the work item's row lock, then commits its own side. When that commit is lost
//! (the process is killed, the connection drops, the call timed out after session had committed),
//! session has moved and routing has not. Session's `conversation.status_changed.v1`, published
//! from its outbox, still reaches routing; when it finds the work item in a state that disagrees,
//! routing asks session for the conversation as it is now (events are consumed concurrently and
//! can be late) and, if session confirms, repairs the item to match. Under the item's lock no other
//! routing transition can move the conversation meanwhile, so the answer cannot go stale.

use switchboard_bus::events::{ConversationAssignedV1, OfferClosedV1};
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::routing::offer::{ItemState, OfferState};
use switchboard_proto::session::v1::GetByIdRequest;
use switchboard_storage::outbox::EventBatch;
use uuid::Uuid;

use crate::app::{ItemRow, Routing, Touch};
use crate::error::RoutingError;
use crate::store::{items, offers};

/// Work-item states from which session's Active-with-an-agent is routing's own write lost.
const BEFORE_ASSIGNMENT: [ItemState; 4] = [ItemState::Queued, ItemState::Offered, ItemState::PickOnly, ItemState::Unrouted];

/// Whether session's Active-with-an-agent would be adopted: the item still waits, so routing's
/// own write of the assignment was lost.
pub(crate) fn awaits_assignment(item: &ItemRow) -> bool {
    BEFORE_ASSIGNMENT.contains(&item.state)
}

/// How session has the conversation now.
pub(crate) struct SessionView {
    pub status: Option<ConversationStatus>,
    pub agent_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
}

impl Routing {
    /// Reads the conversation from session; `None` when session no longer has it.
    pub(crate) async fn session_view(&self, conversation_id: Uuid) -> Result<Option<SessionView>, RoutingError> {
        let request = GetByIdRequest {
            id: conversation_id.to_string(),
        };
        match self.session.clone().get_conversation(request).await {
            Ok(c) => {
                let c = c.into_inner();
                Ok(Some(SessionView {
                    status: ConversationStatus::parse(&c.status),
                    agent_id: c.agent_id.parse().ok(),
                    queue_id: c.queue_id.parse().ok(),
                }))
            }
            Err(status) if switchboard_service_kit::ErrorCode::of(&status) == switchboard_service_kit::ErrorCode::NotFound => Ok(None),
            Err(status) => Err(RoutingError::from_session(status)),
        }
    }

    /// Session made the conversation Active with `agent` (an accept, pick or supervisor
    /// assignment) while the work item still waits: adopts session's assignment. Returns the
    /// agent whose capacity was freed, if another agent held it.
    pub(crate) async fn adopt_assignment(
        &self,
        tx: &mut sqlx::PgConnection,
        item: &ItemRow,
        agent: Uuid,
        transition: &str,
        events: &mut EventBatch,
    ) -> Result<Option<Uuid>, RoutingError> {
        if !awaits_assignment(item) {
            return Ok(None);
        }
        let Some(now_in_session) = self.session_view(item.conversation_id.uuid()).await? else {
            return Ok(None);
        };
        if now_in_session.status != Some(ConversationStatus::Active) || now_in_session.agent_id != Some(agent) {
            return Ok(None); // a late event: session has moved on since
        }
        let now = self.now();
        if let Some(offer) = item.offer_id {
            let state = if item.agent() == Some(agent) {
                OfferState::Accepted
            } else {
                OfferState::Cancelled
            };
            if offers::end_if_pending(&mut *tx, offer, state).await? {
                if let Some(agent) = item.agent_id {
                    events.push(
                        OfferClosedV1 {
                            offer_id: offer,
                            conversation_id: item.conversation_id,
                            agent_id: agent,
                            state,
                        },
                        now,
                    );
                }
                crate::metrics::offer_outcome(state.as_str());
            }
        }
        let mut freed = None;
        if !(item.capacity_held && item.agent() == Some(agent)) {
            if item.capacity_held {
                freed = item.agent();
            }
            self.release(tx, item, events).await?;
            self.change_capacity(tx, agent.into(), item.units, &item.profiles, 1, Touch::Assigned, events)
                .await?;
        }
        items::adopted_assignment(&mut *tx, item.conversation_id, agent, now).await?;
        events.push(
            ConversationAssignedV1 {
                conversation_id: item.conversation_id,
                agent_id: agent.into(),
                queue_id: item.queue().map(Into::into),
                how: transition.to_owned(),
            },
            now,
        );
        crate::metrics::converged(transition);
        crate::metrics::assigned_after(now - item.enqueued_at);
        tracing::warn!(
            conversation_id = %item.conversation_id,
            %agent,
            transition,
            was = %item.state,
            "routing's write after a session transition was lost; the work item now follows session"
        );
        Ok(freed)
    }

    /// Session released the conversation to a queue while the work item is still assigned (an
    /// agent's own release, or a transfer whose routing write was lost): re-queues the item in the
    /// queue session names. Returns that queue when it did.
    pub(crate) async fn adopt_release(
        &self,
        tx: &mut sqlx::PgConnection,
        item: &ItemRow,
        events: &mut EventBatch,
    ) -> Result<Option<Uuid>, RoutingError> {
        if item.state != ItemState::Assigned {
            return Ok(None);
        }
        let Some(now_in_session) = self.session_view(item.conversation_id.uuid()).await? else {
            return Ok(None);
        };
        if now_in_session.status != Some(ConversationStatus::Open) {
            return Ok(None); // a late event: the conversation was taken again since
        }
        let queue = now_in_session.queue_id.or(item.queue());
        self.release(tx, item, events).await?;
        let now = self.now();
        items::adopted_release(&mut *tx, item.conversation_id, queue, now).await?;
        Ok(queue)
    }
}
