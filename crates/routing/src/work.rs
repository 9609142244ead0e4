//! What happens to work items after they are queued: offers accepted, declined or expired;
//! picks; supervisor assignments; transfers.

use std::collections::BTreeMap;

use switchboard_bus::events::{ConversationAssignedV1, OfferClosedV1, OfferExpiredV1};
use switchboard_domain::ids::{AgentId, ConversationId, OfferId};
use switchboard_domain::routing::DistributionMode;
use switchboard_domain::routing::config::{AgentDef, Kind, QueueDef, WorkstreamDef};
pub use switchboard_domain::routing::offer::OfferEnd;
use switchboard_domain::routing::offer::{ItemState, OfferRefusal, OfferState, check_accept, check_end, requeue};
use switchboard_domain::routing::report::Cause;
use switchboard_proto::session::v1::TransitionRequest;
use switchboard_storage::outbox::EventBatch;
use uuid::Uuid;

use crate::app::{ItemRow, Routing, Touch};
use crate::error::RoutingError;
use crate::report::place;

pub use crate::store::offers::OfferRow;
use crate::store::{items, offers};

/// A refusal of the state machine, as routing reports it: someone else's offer is a
/// permission matter, the rest are the offer's state.
fn refused(refusal: OfferRefusal) -> RoutingError {
    match refusal {
        OfferRefusal::OtherAgent => RoutingError::Denied(refusal.to_string()),
        _ => RoutingError::Precondition(refusal.to_string()),
    }
}

impl Routing {
    /// An agent's and a queue's names, for the messages that name them (empty where the id is
    /// absent or names nothing).
    async fn names_in(
        &self,
        conn: &mut sqlx::PgConnection,
        agent: Option<Uuid>,
        queue: Option<Uuid>,
    ) -> Result<(String, String), RoutingError> {
        let mut name = async |kind, id: Option<Uuid>| match id {
            Some(id) => Ok::<_, RoutingError>(self.config.name(conn, kind, id).await?.unwrap_or_default()),
            None => Ok(String::new()),
        };
        Ok((name(Kind::Agent, agent).await?, name(Kind::Queue, queue).await?))
    }

    /// [`Self::names_in`] from the configuration cache; a connection is taken only on a miss
    /// (sqlx checks a pooled connection before handing it out).
    pub async fn names(&self, agent: Option<Uuid>, queue: Option<Uuid>) -> Result<(String, String), RoutingError> {
        let cached = |kind, id: Option<Uuid>| id.map_or(Some(None), |id| self.config.cached_name(kind, id));
        if let (Some(agent), Some(queue)) = (cached(Kind::Agent, agent), cached(Kind::Queue, queue)) {
            return Ok((agent.unwrap_or_default(), queue.unwrap_or_default()));
        }
        let mut conn = self.pool.acquire().await?;
        self.names_in(&mut conn, agent, queue).await
    }

    /// Asks session to move the conversation; "already there" (FAILED_PRECONDITION) is an error too.
    pub(crate) async fn session_transition(
        &self,
        item: &ItemRow,
        transition: &str,
        agent: Option<Uuid>,
        names: (String, String),
        note: &str,
    ) -> Result<(), RoutingError> {
        self.session_transition_request(TransitionRequest {
            conversation_id: item.conversation_id.to_string(),
            transition: transition.into(),
            agent_id: agent.map(|a| a.to_string()).unwrap_or_default(),
            queue_id: item.queue().map(|q| q.to_string()).unwrap_or_default(),
            workstream_id: item.workstream().map(|w| w.to_string()).unwrap_or_default(),
            agent_name: names.0,
            queue_name: names.1,
            note: note.into(),
            ..Default::default()
        })
        .await
    }

    async fn session_transition_request(&self, request: TransitionRequest) -> Result<(), RoutingError> {
        self.session
            .clone()
            .transition_conversation(request)
            .await
            .map(|_| ())
            .map_err(RoutingError::from_session)
    }

    async fn lock_offer(&self, tx: &mut sqlx::PgConnection, offer_id: OfferId) -> Result<OfferRow, RoutingError> {
        offers::lock(&mut *tx, offer_id).await?.ok_or(RoutingError::NotFound("offer"))
    }

    /// An agent accepts an offer: the conversation becomes Active with them.
    pub async fn accept_offer(&self, offer_id: OfferId, agent_id: AgentId) -> Result<ItemRow, RoutingError> {
        let mut tx = self.pool.begin().await?;
        let offer = self.lock_offer(&mut tx, offer_id).await?;
        check_accept(&offer.facts(), agent_id, self.now()).map_err(refused)?;
        let item = self
            .lock_item(&mut tx, offer.conversation_id.uuid())
            .await?
            .ok_or(RoutingError::NotFound("work item"))?;
        let names = self.names_in(&mut tx, Some(agent_id.uuid()), item.queue()).await?;
        let mut events = EventBatch::default();
        let now = self.now();
        if let Err(error) = self.session_transition(&item, "accept", Some(agent_id.uuid()), names, "").await {
            if matches!(error, RoutingError::Precondition(_) | RoutingError::NotFound(_)) {
                // The conversation moved on (closed by the customer's inactivity, a supervisor, …).
                offers::set_state(&mut *tx, offer_id, OfferState::Cancelled).await?;
                self.release(&mut tx, &item, &mut events).await?;
                events.push(
                    OfferClosedV1 {
                        offer_id,
                        conversation_id: item.conversation_id,
                        agent_id,
                        state: OfferState::Cancelled,
                    },
                    now,
                );
                self.emit(&mut tx, &events).await?;
                tx.commit().await?;
            }
            return Err(error);
        }
        offers::set_state(&mut *tx, offer_id, OfferState::Accepted).await?;
        let before = place(&item);
        let item = items::accepted(&mut *tx, item.conversation_id, now).await?;
        self.track_to(
            &mut tx,
            item.conversation_id.uuid(),
            Some(before),
            Some(place(&item)),
            Cause::Routed,
        )
        .await?;
        events.push(
            OfferClosedV1 {
                offer_id,
                conversation_id: item.conversation_id,
                agent_id,
                state: OfferState::Accepted,
            },
            now,
        );
        events.push(
            ConversationAssignedV1 {
                conversation_id: item.conversation_id,
                agent_id,
                queue_id: item.queue().map(Into::into),
                how: "accept".into(),
            },
            now,
        );
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        crate::metrics::offer_outcome("accepted");
        crate::metrics::assigned_after(now - item.enqueued_at);
        Ok(item)
    }

    /// An agent declines an offer.
    pub async fn decline_offer(&self, offer_id: OfferId, agent_id: AgentId) -> Result<ItemRow, RoutingError> {
        self.end_offer(offer_id, OfferEnd::Declined(agent_id)).await
    }

    /// Ends a pending offer without an accept: the item goes back to its queue. A decline or an
    /// expiry counts against the agent; a withdrawal (they disconnected) does not.
    pub async fn end_offer(&self, offer_id: OfferId, end: OfferEnd) -> Result<ItemRow, RoutingError> {
        let mut tx = self.pool.begin().await?;
        let offer = self.lock_offer(&mut tx, offer_id).await?;
        check_end(&offer.facts(), end).map_err(refused)?;
        let outcome = end.outcome();
        let agent = offer.agent_id.uuid();
        let item = self
            .lock_item(&mut tx, offer.conversation_id.uuid())
            .await?
            .ok_or(RoutingError::NotFound("work item"))?;
        let mut events = EventBatch::default();
        let now = self.now();
        offers::set_state(&mut *tx, offer_id, end.state()).await?;
        // The capacity the offer held goes back last, just before the commit (see
        // `on_status_changed`); the item is marked here, in its one write.
        let holds = item.holds_capacity();
        let offered = item.clone();
        let next = requeue(end, agent.into(), item.declines(), item.total_declines);
        let item = items::offer_ended(&mut *tx, item.conversation_id, agent, &next, holds, now).await?;
        // The workstream may put an agent who missed or declined an offer in another presence.
        let after = match item.workstream() {
            Some(ws) => self
                .config
                .definition::<WorkstreamDef>(&mut tx, Kind::Workstream, ws)
                .await?
                .and_then(|(_, d)| match end {
                    OfferEnd::Declined(_) => d.presence_after_declined,
                    OfferEnd::Expired => d.presence_after_missed,
                    OfferEnd::Withdrawn => None,
                }),
            None => None,
        };
        let (offer_id, conversation_id, agent_id) = (offer_id, item.conversation_id, offer.agent_id);
        if end == OfferEnd::Expired {
            events.push(
                OfferExpiredV1 {
                    offer_id,
                    conversation_id,
                    agent_id,
                },
                now,
            );
        } else {
            events.push(
                OfferClosedV1 {
                    offer_id,
                    conversation_id,
                    agent_id,
                    state: end.state(),
                },
                now,
            );
        }
        if holds {
            self.free_capacity(&mut tx, &offered, &mut events).await?;
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        if let Some(presence) = after {
            self.set_presence(agent.into(), presence).await?;
        }
        crate::metrics::offer_outcome(outcome);
        if let Some(queue) = item.queue() {
            self.request_cycle(Some(&[queue]));
        }
        Ok(item)
    }

    /// Withdraws pending `offers` (their agent disconnected or was deleted); the items go back
    /// to their queues. One accepted or ended meanwhile is left as it is.
    pub(crate) async fn withdraw_offers(&self, offers: Vec<Uuid>) -> Result<(), RoutingError> {
        for offer in offers {
            match self.end_offer(offer.into(), OfferEnd::Withdrawn).await {
                Ok(_) | Err(RoutingError::Precondition(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Expires offers past their deadline; returns how many.
    pub async fn expire_offers(&self) -> Result<usize, RoutingError> {
        let due = offers::expired(&self.pool, self.now(), 200).await?;
        let mut expired = 0;
        for id in due {
            match self.end_offer(id.into(), OfferEnd::Expired).await {
                Ok(_) => expired += 1,
                Err(RoutingError::Precondition(_)) => {} // accepted or declined meanwhile
                Err(error) => return Err(error),
            }
        }
        Ok(expired)
    }

    async fn member(&self, conn: &mut sqlx::PgConnection, queue: Option<Uuid>, agent: Uuid) -> Result<bool, RoutingError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM routing.queue_members WHERE queue_id = $1 AND agent_id = $2)")
                .bind(queue)
                .bind(agent)
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    /// Gives a queued item to an agent directly (pick or supervisor assignment): capacity is taken
    /// even beyond the agent's limit.
    async fn take(&self, conversation_id: ConversationId, agent_id: AgentId, how: &'static str) -> Result<ItemRow, RoutingError> {
        // Typed where it is called; the body speaks the store's plain UUIDs.
        let (conversation_id, agent_id) = (conversation_id.uuid(), agent_id.uuid());
        let mut tx = self.pool.begin().await?;
        let item = self
            .lock_item(&mut tx, conversation_id)
            .await?
            .ok_or(RoutingError::NotFound("work item"))?;
        let ws = match item.workstream() {
            Some(w) => self
                .config
                .definition::<WorkstreamDef>(&mut tx, Kind::Workstream, w)
                .await?
                .map(|(_, d)| d),
            None => None,
        };
        if self.config.definition::<AgentDef>(&mut tx, Kind::Agent, agent_id).await?.is_none() {
            return Err(RoutingError::NotFound("agent"));
        }
        let mut events = EventBatch::default();
        let now = self.now();
        match (how, item.state) {
            ("pick", ItemState::Queued) if ws.as_ref().is_some_and(|w| w.mode == DistributionMode::Pick) => {}
            ("pick", ItemState::PickOnly) => {}
            ("pick", ItemState::Queued) => {
                return Err(RoutingError::Precondition(
                    "this workstream offers its conversations to agents; they cannot be picked".into(),
                ));
            }
            ("supervisor_assign", ItemState::Queued | ItemState::PickOnly | ItemState::Unrouted) => {}
            ("supervisor_assign", ItemState::Offered) => {
                if let Some(offer) = item.offer_id {
                    offers::set_state(&mut *tx, offer, OfferState::Cancelled).await?;
                    if let Some(agent) = item.agent_id {
                        events.push(
                            OfferClosedV1 {
                                offer_id: offer,
                                conversation_id: conversation_id.into(),
                                agent_id: agent,
                                state: OfferState::Cancelled,
                            },
                            now,
                        );
                    }
                }
                self.release(&mut tx, &item, &mut events).await?;
            }
            (_, state) => {
                return Err(RoutingError::Precondition(format!(
                    "the conversation is {state}, not waiting in a queue"
                )));
            }
        }
        if how == "pick" && !self.member(&mut tx, item.queue(), agent_id).await? {
            return Err(RoutingError::Denied("only members of the conversation's queue can pick it".into()));
        }
        let names = self.names_in(&mut tx, Some(agent_id), item.queue()).await?;
        self.session_transition(&item, how, Some(agent_id), names, "").await?;
        self.change_capacity(
            &mut tx,
            agent_id.into(),
            item.units,
            &item.profiles,
            1,
            Touch::Assigned,
            &mut events,
        )
        .await?;
        let before = place(&item);
        let item = items::taken_by(&mut *tx, conversation_id, agent_id, now).await?;
        self.track_to(&mut tx, conversation_id, Some(before), Some(place(&item)), Cause::Routed)
            .await?;
        events.push(
            ConversationAssignedV1 {
                conversation_id: conversation_id.into(),
                agent_id: agent_id.into(),
                queue_id: item.queue().map(Into::into),
                how: how.into(),
            },
            now,
        );
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        crate::metrics::assigned_after(now - item.enqueued_at);
        Ok(item)
    }

    /// An agent picks a conversation from the open list.
    pub async fn pick(&self, conversation_id: ConversationId, agent_id: AgentId) -> Result<ItemRow, RoutingError> {
        self.take(conversation_id, agent_id, "pick").await
    }

    /// A supervisor assigns a waiting conversation to an agent (capacity and presence overridden).
    pub async fn assign_by_supervisor(&self, conversation_id: ConversationId, agent_id: AgentId) -> Result<ItemRow, RoutingError> {
        self.take(conversation_id, agent_id, "supervisor_assign").await
    }

    /// Moves an active conversation to another queue (or back to its own, for another agent).
    pub async fn transfer(
        &self,
        conversation_id: Uuid,
        queue_id: Option<Uuid>,
        to_agent: Option<Uuid>,
        note: &str,
    ) -> Result<ItemRow, RoutingError> {
        let mut tx = self.pool.begin().await?;
        let item = self
            .lock_item(&mut tx, conversation_id)
            .await?
            .ok_or(RoutingError::NotFound("work item"))?;
        if !matches!(item.state, ItemState::Assigned | ItemState::Waiting) {
            return Err(RoutingError::Precondition(format!(
                "only an active or waiting conversation can be transferred (it is {})",
                item.state
            )));
        }
        let before = place(&item);
        let target_queue = queue_id
            .or(item.queue())
            .ok_or(RoutingError::Invalid("queue_id is required".into()))?;
        let queue = self
            .config
            .definition::<QueueDef>(&mut tx, Kind::Queue, target_queue)
            .await?
            .ok_or(RoutingError::NotFound("queue"))?;
        if let Some(agent) = to_agent
            && self.config.definition::<AgentDef>(&mut tx, Kind::Agent, agent).await?.is_none()
        {
            return Err(RoutingError::NotFound("agent"));
        }
        let names = (String::new(), queue.0.clone());
        let text = if note.is_empty() {
            format!("Transferred to {}.", queue.0)
        } else {
            note.to_owned()
        };
        // Session records the target queue, so that if this transaction is lost after session
        // commits, its status event re-queues the item there (`converge`).
        let moved = ItemRow {
            queue_id: Some(target_queue.into()),
            ..item.clone()
        };
        // Active and Waiting conversations both belong to an agent in session: both go back to
        // the queue there too, or the next agent's accept would be refused.
        self.session_transition_request(TransitionRequest {
            conversation_id: moved.conversation_id.to_string(),
            transition: "release_to_queue".into(),
            queue_id: target_queue.to_string(),
            workstream_id: moved.workstream().map(|w| w.to_string()).unwrap_or_default(),
            queue_name: names.1.clone(),
            note: text,
            transfer: true,
            ..Default::default()
        })
        .await?;
        let mut events = EventBatch::default();
        self.release(&mut tx, &item, &mut events).await?;
        if queue.1.members.is_empty() && to_agent.is_none() {
            // Dynamics: a transfer to a queue with no agents closes the conversation.
            self.session_transition(&moved, "no_agents", None, names, "").await?;
            items::delete(&mut *tx, conversation_id).await?;
            self.track(&mut tx, conversation_id, Some(place(&item)), Cause::Transfer).await?;
            self.emit(&mut tx, &events).await?;
            tx.commit().await?;
            return Err(RoutingError::Precondition(
                "the queue has no agents; the conversation was closed".into(),
            ));
        }
        let now = self.now();
        let item = items::transferred(&mut *tx, conversation_id, target_queue, queue.1.priority, to_agent, now).await?;
        self.track_to(&mut tx, conversation_id, Some(before), Some(place(&item)), Cause::Transfer)
            .await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        self.request_cycle(Some(&[target_queue]));
        Ok(item)
    }

    /// Returns the declines of an item per agent (for tests and supervisors).
    pub async fn declines(&self, conversation_id: Uuid) -> Result<BTreeMap<Uuid, u32>, RoutingError> {
        Ok(items::get(&self.pool, conversation_id)
            .await?
            .map(|i| i.declines().into_iter().map(|(agent, n)| (agent.uuid(), n)).collect())
            .unwrap_or_default())
    }
}
