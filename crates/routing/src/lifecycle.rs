//! The conversation lifecycle as session reports it (Waiting and close release capacity, wrap-up
//! follows the workstream's block rule), agent presence, and time-driven rules: wrap-up release
//! and waiting-time overflow.

use switchboard_bus::events::{AgentPresenceV1, ConversationStatusChangedV1, OfferClosedV1};
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::ids::AgentId;
use switchboard_domain::routing::config::{AgentDef, Kind, QueueDef, ResetFrequency, WorkstreamDef};
use switchboard_domain::routing::offer::{ItemState, OfferState};
use switchboard_domain::routing::presence::recompute;
use switchboard_domain::routing::report::{Cause, Place, Stage};
use switchboard_domain::routing::{Presence, WrapUpCapacity};
use switchboard_storage::outbox::EventBatch;
use uuid::Uuid;

use crate::app::{Routing, Touch};
use crate::error::RoutingError;
use crate::report::place;
use crate::store::{items, offers};

impl Routing {
    /// An agent sets their presence.
    pub async fn set_presence(&self, agent_id: AgentId, presence: Presence) -> Result<(), RoutingError> {
        let mut tx = self.pool.begin().await?;
        // A choice made by hand (through the API, without a stream) ends a disconnect.
        if !crate::store::agents::chose(&mut *tx, agent_id, presence, self.now()).await? {
            return Err(RoutingError::NotFound("agent"));
        }
        let mut events = EventBatch::default();
        events.push(
            AgentPresenceV1 {
                agent_id,
                presence,
                chosen: presence,
            },
            self.now(),
        );
        self.emit(&mut tx, &events).await?;
        let queues = self.agent_queues(&mut tx, Some(agent_id.uuid())).await?;
        tx.commit().await?;
        if !queues.is_empty() {
            self.request_cycle(Some(&queues));
        }
        Ok(())
    }

    /// Follows a conversation's lifecycle as session reports it.
    pub async fn on_status_changed(&self, e: &ConversationStatusChangedV1) -> Result<(), RoutingError> {
        let conversation_id = e.conversation_id.uuid();
        let mut tx = self.pool.begin().await?;
        let Some(item) = self.lock_item(&mut tx, conversation_id).await? else {
            if e.to == ConversationStatus::WrapUp {
                self.late_wrap_up(conversation_id, e.at).await?;
            }
            return Ok(());
        };
        let mut events = EventBatch::default();
        let now = self.now();
        let mut cycle_queues: Vec<Uuid> = Vec::new();
        // Whether the agent gets back the capacity the item holds: done last, just before the
        // commit, so the agent's row (which the assignment cycle and the agent's other
        // conversations also write) is locked as briefly as possible.
        let holds = item.holds_capacity();
        let mut give_back = false;
        // Where the item is after this move, when this function wrote it (None: read it back,
        // because a helper below decides).
        let to = |state: ItemState, agent: Option<Uuid>| {
            Some(Some(Place {
                stage: Stage::of(state.as_str()),
                queue: item.queue(),
                agent,
            }))
        };
        let after: Option<Option<Place>> = match (e.to.as_str(), e.transition.as_str()) {
            ("closed", _) => {
                // The item is deleted below: only the agent's capacity needs giving back.
                give_back = holds;
                if let Some(offer) = item.offer_id {
                    offers::end_if_pending(&mut *tx, offer, OfferState::Cancelled).await?;
                    if let Some(agent) = item.agent_id {
                        events.push(
                            OfferClosedV1 {
                                offer_id: offer,
                                conversation_id: e.conversation_id,
                                agent_id: agent,
                                state: OfferState::Cancelled,
                            },
                            now,
                        );
                    }
                }
                items::delete(&mut *tx, conversation_id).await?;
                cycle_queues.extend(self.agent_queues(&mut tx, item.agent()).await?);
                Some(None)
            }
            ("waiting", _) => {
                // Async channels: closing the session without ending releases capacity at once.
                give_back = holds;
                items::waiting(&mut *tx, conversation_id, give_back, now).await?;
                cycle_queues.extend(self.agent_queues(&mut tx, item.agent()).await?);
                to(ItemState::Waiting, item.agent())
            }
            ("wrap_up", _) => {
                let block = match item.workstream() {
                    Some(w) => self
                        .config
                        .definition::<WorkstreamDef>(&mut tx, Kind::Workstream, w)
                        .await?
                        .map(|(_, d)| d.wrap_up)
                        .unwrap_or_default(),
                    None => WrapUpCapacity::Always,
                };
                // One write of the item: its state, and what becomes of the capacity it holds.
                let (free, release_at) = match block {
                    WrapUpCapacity::Always => (false, None),
                    WrapUpCapacity::Never => (holds, None),
                    WrapUpCapacity::Minutes { minutes } => (false, Some(now + time::Duration::minutes(i64::from(minutes)))),
                };
                give_back = free;
                if free {
                    cycle_queues.extend(self.agent_queues(&mut tx, item.agent()).await?);
                }
                items::wrap_up(&mut *tx, conversation_id, free, release_at, now).await?;
                to(ItemState::WrapUp, item.agent())
            }
            ("open", "release_to_queue") => {
                // The agent released it to its queue, or a transfer's routing write was lost (a
                // transfer that committed has already re-queued the item, and this changes nothing).
                if let Some(queue) = self.adopt_release(&mut tx, &item, &mut events).await? {
                    cycle_queues.push(queue);
                }
                None
            }
            ("active", "accept" | "pick" | "supervisor_assign") => {
                match e.agent_id.map(AgentId::uuid) {
                    Some(agent) if crate::converge::awaits_assignment(&item) => {
                        let freed = self.adopt_assignment(&mut tx, &item, agent, &e.transition, &mut events).await?;
                        cycle_queues.extend(self.agent_queues(&mut tx, freed).await?);
                        None
                    }
                    // Routing's own assignment is already there (the usual case): nothing moves.
                    _ => Some(Some(place(&item))),
                }
            }
            ("active", "revive") if item.state == ItemState::Waiting => {
                let agent = e.agent_id.map(AgentId::uuid).or(item.agent());
                if let Some(agent) = agent {
                    self.change_capacity(&mut tx, agent.into(), item.units, &item.profiles, 1, Touch::Assigned, &mut events)
                        .await?;
                    items::revived(&mut *tx, conversation_id, agent, now).await?;
                    to(ItemState::Assigned, Some(agent))
                } else {
                    Some(Some(place(&item)))
                }
            }
            // Nothing written: the item is where it was.
            _ => Some(Some(place(&item))),
        };
        // Whatever the move was (closed, waiting, wrap-up, released, adopted, revived), book it.
        let cause = if e.transition == "release_to_queue" {
            Cause::Released
        } else {
            Cause::Routed
        };
        match after {
            Some(after) => {
                self.book(&mut tx, conversation_id, (Some(place(&item)), after), cause, e.at)
                    .await?;
            }
            None => self.track_at(&mut tx, conversation_id, Some(place(&item)), cause, e.at).await?,
        }
        if give_back {
            self.free_capacity(&mut tx, &item, &mut events).await?;
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        if !cycle_queues.is_empty() {
            self.request_cycle(Some(&cycle_queues));
        }
        Ok(())
    }

    /// The queues `agent` is a member of (none for `None`).
    pub(crate) async fn agent_queues(&self, conn: &mut sqlx::PgConnection, agent: Option<Uuid>) -> Result<Vec<Uuid>, RoutingError> {
        let Some(agent) = agent else { return Ok(Vec::new()) };
        Ok(self.config.agent_queues(conn, agent).await?.to_vec())
    }

    /// Gives back the use of end-of-day (`reset: daily`) capacity profiles once the day (UTC, by
    /// the service clock) has changed since an agent's last reset; returns how many agents.
    pub async fn reset_daily_capacity(&self) -> Result<usize, RoutingError> {
        let today = self.now().date();
        let mut tx = self.pool.begin().await?;
        let due = crate::store::agents::lock_past_day(&mut *tx, today, 500).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let profiles = self.config.profiles(&mut tx).await?;
        let mut events = EventBatch::default();
        let mut queues = Vec::new();
        for state in &due {
            let mut next = state.clone();
            let mut used = state.profile_used();
            used.retain(|p, _| profiles.get(p).is_none_or(|d| d.reset != ResetFrequency::Daily));
            next.profile_used = serde_json::json!(used);
            let presence = match self.config.definition::<AgentDef>(&mut tx, Kind::Agent, state.agent_id).await? {
                Some((_, def)) => recompute(state.chosen(), &crate::app::load(&def, &next, &profiles)),
                None => state.presence(),
            };
            crate::store::agents::new_day(&mut *tx, &next, today, presence).await?;
            if next.profile_used != state.profile_used {
                queues.extend(self.agent_queues(&mut tx, Some(state.agent_id.uuid())).await?);
            }
            crate::app::push_presence_change(&mut events, state, presence, self.now());
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        if !queues.is_empty() {
            self.request_cycle(Some(&queues));
        }
        Ok(due.len())
    }

    /// Releases wrap-up capacity whose block time is over; returns how many.
    pub async fn release_due_wrap_ups(&self) -> Result<usize, RoutingError> {
        let mut tx = self.pool.begin().await?;
        let due = items::lock_due_releases(&mut *tx, self.now(), 200).await?;
        let mut events = EventBatch::default();
        let mut queues = Vec::new();
        let profiles = self.config.profiles(&mut tx).await?;
        for item in &due {
            self.release(&mut tx, item, &mut events).await?;
            queues.extend(self.agent_queues(&mut tx, item.agent()).await?);
            // Dynamics resets presence when a timed wrap-up block ends (not for end-of-day
            // profiles): a Busy or Do-not-disturb chosen for the wrap-up no longer holds, and
            // presence follows capacity again. Away and Offline mean the agent has left; they stay.
            let daily = item
                .profiles
                .iter()
                .any(|p| profiles.get(p).is_some_and(|d| d.reset == ResetFrequency::Daily));
            if let (false, Some(agent)) = (daily, item.agent())
                && let Some(state) = crate::app::lock_agent(&mut tx, agent.into()).await?
                && matches!(state.chosen(), Presence::Busy | Presence::BusyDnd)
            {
                self.choose_presence(&mut tx, &state, Presence::Available, &mut events).await?;
            }
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        if !queues.is_empty() {
            self.request_cycle(Some(&queues));
        }
        Ok(due.len())
    }

    /// Applies "waiting time in queue exceeds" overflow rules; returns how many items moved.
    pub async fn waiting_overflow(&self) -> Result<usize, RoutingError> {
        let queues: Vec<(Uuid, String, serde_json::Value)> =
            sqlx::query_as("SELECT id, name, definition FROM routing.config WHERE kind = 'queue' AND definition->'overflow'->'wait_time' IS NOT NULL AND definition->'overflow'->'wait_time' <> 'null'::jsonb")
                .fetch_all(&self.pool)
                .await?;
        let mut moved = 0;
        for (queue_id, queue_name, def) in queues {
            let Ok(def) = serde_json::from_value::<QueueDef>(def) else {
                continue;
            };
            let Some(rule) = def.overflow.wait_time else { continue };
            let deadline = self.now() - time::Duration::seconds(i64::try_from(rule.seconds).unwrap_or(i64::MAX));
            let due = items::queued_since(&self.pool, queue_id, deadline, 100).await?;
            for conversation_id in due {
                let mut tx = self.pool.begin().await?;
                let Some(item) = self
                    .lock_item(&mut tx, conversation_id)
                    .await?
                    .filter(|i| i.state == ItemState::Queued)
                else {
                    continue;
                };
                match rule.action {
                    switchboard_domain::routing::OverflowAction::EndConversation => {
                        match self
                            .session_transition(&item, "overflow_end", None, (String::new(), queue_name.clone()), "")
                            .await
                        {
                            Ok(()) | Err(RoutingError::Precondition(_)) => {}
                            Err(error) => return Err(error),
                        }
                        items::delete(&mut *tx, conversation_id).await?;
                        self.track(&mut tx, conversation_id, Some(place(&item)), Cause::Overflow).await?;
                    }
                    switchboard_domain::routing::OverflowAction::TransferToQueue { queue_id: target } => {
                        items::overflowed_to(&mut *tx, conversation_id, target, self.now()).await?;
                        self.track(&mut tx, conversation_id, Some(place(&item)), Cause::Overflow).await?;
                    }
                    switchboard_domain::routing::OverflowAction::AssignAnyway => {}
                }
                tx.commit().await?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Reads the figures behind the queue and presence gauges.
    pub async fn gauge_snapshot(&self) -> Result<crate::metrics::Snapshot, RoutingError> {
        let queues: Vec<(Uuid, String, i64, i64, i64, Option<time::OffsetDateTime>)> = sqlx::query_as(
            "SELECT c.id, c.name, count(w.conversation_id) FILTER (WHERE w.state IN ('queued', 'pick_only')), \
             count(w.conversation_id) FILTER (WHERE w.state = 'offered'), count(w.conversation_id) FILTER (WHERE w.state = 'assigned'), \
             min(w.enqueued_at) FILTER (WHERE w.state IN ('queued', 'pick_only', 'offered')) \
             FROM routing.config c LEFT JOIN routing.work_items w ON w.queue_id = c.id WHERE c.kind = 'queue' GROUP BY c.id, c.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let presence: Vec<(String, i64)> = sqlx::query_as("SELECT presence, count(*) FROM routing.agent_state GROUP BY presence")
            .fetch_all(&self.pool)
            .await?;
        let unrouted: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.work_items WHERE state = 'unrouted'")
            .fetch_one(&self.pool)
            .await?;
        let now = self.now();
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(crate::metrics::Snapshot {
            queues: queues
                .into_iter()
                .map(|(id, name, queued, offered, assigned, oldest)| crate::metrics::QueueFigures {
                    queue_id: id.into(),
                    name,
                    queued: n(queued),
                    offered: n(offered),
                    assigned: n(assigned),
                    longest_wait_secs: oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0)),
                })
                .collect(),
            presence: presence.into_iter().map(|(p, c)| (p, n(c))).collect(),
            unrouted: n(unrouted),
        })
    }
}
