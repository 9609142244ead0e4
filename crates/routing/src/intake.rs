//! A conversation entering routing (new, or reopened from Waiting): classification rulesets,
//! route-to-queue, the pre-queue overflow checks (operating hours first, then the work item
//! limit) and their actions, then an assignment cycle for its queue (Dynamics §3.2–3.4).

use std::collections::{BTreeMap, HashMap};

use switchboard_bus::events::ConversationOpenedV1;
use switchboard_domain::ids::{AgentId, NumberId, WorkstreamId};
use switchboard_domain::routing::classify::classify;
use switchboard_domain::routing::config::{Kind, QueueDef, WorkstreamDef};
use switchboard_domain::routing::hours::{Openness, OperatingHours};
use switchboard_domain::routing::offer::ItemState;
use switchboard_domain::routing::report::{Cause, Place, Stage};
use switchboard_domain::routing::route::route;
use switchboard_domain::routing::{DistributionMode, OverflowAction};
use switchboard_proto::session::v1::{SendAutomatedMessageRequest, TransitionRequest};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Routing;
use crate::error::RoutingError;
use crate::report::place;
use crate::store::items::{self, NewItem, Placement};

/// What a queue looks like right now, for the pre-queue checks.
struct QueueNow {
    def: QueueDef,
    name: String,
    openness: Openness,
    open_items: i64,
    members: i64,
}

impl QueueNow {
    fn over_limit(&self) -> bool {
        self.def
            .overflow
            .work_item_limit
            .is_some_and(|l| self.open_items >= i64::from(l.limit))
    }

    fn closed(&self) -> bool {
        self.openness != Openness::Open
    }

    /// Overflowing for route-to-queue purposes: a check fails and its action is not "assign anyway".
    fn overflowing(&self) -> bool {
        (self.closed() && self.def.overflow.out_of_hours != OverflowAction::AssignAnyway)
            || self
                .def
                .overflow
                .work_item_limit
                .is_some_and(|l| self.over_limit() && l.action != OverflowAction::AssignAnyway)
    }
}

/// What routing takes from a conversation entering Open: `conversation.opened.v1`, or a bot's
/// escalation, which brings the item's facts and the bot's context instead.
pub(crate) struct Arrival {
    /// What classification and route-to-queue rules see.
    pub facts: BTreeMap<String, String>,
    pub number_id: Option<NumberId>,
    pub reopened: bool,
    /// The agent it had, when reopened (affinity may give it back).
    pub previous_agent: Option<AgentId>,
    pub last_customer_message_at: OffsetDateTime,
}

impl Arrival {
    pub(crate) fn of(e: &ConversationOpenedV1) -> Self {
        Self {
            facts: facts(e),
            number_id: Some(e.number_id),
            reopened: e.reopened,
            previous_agent: e.previous_agent_id,
            last_customer_message_at: e.last_customer_message_at,
        }
    }
}

/// Facts classification and route-to-queue rules see.
pub fn facts(e: &ConversationOpenedV1) -> BTreeMap<String, String> {
    let mut facts = e.attributes.clone();
    facts.insert("channel_id".into(), e.channel_id.to_string());
    facts.insert("number_id".into(), e.number_id.to_string());
    facts.insert("language".into(), e.language.clone());
    facts.insert("first_message".into(), e.first_message.clone());
    facts.insert("reopened".into(), e.reopened.to_string());
    if let Some(phone) = &e.customer_phone {
        facts.insert("customer.phone".into(), phone.clone());
    }
    if let Some(payload) = &e.button_payload {
        facts.insert("button.payload".into(), payload.clone());
    }
    if let Some(bsuid) = &e.customer_bsuid {
        facts.insert("customer.bsuid".into(), bsuid.clone());
    }
    if let Some(name) = &e.profile_name {
        facts.insert("customer.profile_name".into(), name.clone());
    }
    facts
}

impl Routing {
    async fn queues_now(&self, conn: &mut sqlx::PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, QueueNow>, RoutingError> {
        let defs = self.config.definitions::<QueueDef>(conn, Kind::Queue, ids).await?;
        let hours_ids: Vec<Uuid> = defs.values().filter_map(|(_, d)| d.operating_hours_id).collect();
        let hours = self
            .config
            .definitions::<OperatingHours>(conn, Kind::OperatingHours, &hours_ids)
            .await?;
        let counts: HashMap<Uuid, i64> = items::waiting_per_queue(&mut *conn, ids).await?.into_iter().collect();
        let now = self.now();
        Ok(defs
            .into_iter()
            .map(|(id, (name, def))| {
                let openness = def
                    .operating_hours_id
                    .and_then(|h| hours.get(&h))
                    .map_or(Openness::Open, |(_, h)| h.openness(now));
                (
                    id,
                    QueueNow {
                        open_items: counts.get(&id).copied().unwrap_or(0),
                        // The definition's members are the queue's `routing.queue_members` rows:
                        // the catalog writes both in one transaction.
                        members: i64::try_from(def.members.iter().collect::<std::collections::HashSet<_>>().len()).unwrap_or(i64::MAX),
                        name,
                        openness,
                        def,
                    },
                )
            })
            .collect())
    }

    /// Routes a conversation that entered Open.
    pub async fn on_opened(&self, e: &ConversationOpenedV1) -> Result<(), RoutingError> {
        let conversation_id = e.conversation_id.uuid();
        let arrival = Arrival::of(e);
        let mut tx = self.pool.begin().await?;
        let existing = self.lock_item(&mut tx, conversation_id).await?;
        if existing.as_ref().is_some_and(|i| {
            matches!(
                i.state,
                ItemState::Queued | ItemState::Offered | ItemState::Assigned | ItemState::PickOnly | ItemState::Bot
            )
        }) {
            return Ok(()); // already routed: a redelivered event
        }
        let was_unrouted = existing.as_ref().is_some_and(|i| i.state == ItemState::Unrouted);
        let workstream = match e.workstream_id.map(WorkstreamId::uuid) {
            Some(id) => self
                .config
                .definition::<WorkstreamDef>(&mut tx, Kind::Workstream, id)
                .await?
                .map(|(_, def)| (id, def)),
            None => None,
        };
        let Some((ws_id, ws)) = workstream else {
            // A set-up fault, not a lack of agents: the customer is told (Dynamics' "agent
            // couldn't be assigned"), the item waits for a workstream, and the
            // switchboard.routing.unrouted gauge raises the alert.
            tracing::warn!(%conversation_id, workstream_id = ?e.workstream_id, "conversation's number has no workstream; it waits unrouted");
            self.upsert_item(
                &mut tx,
                conversation_id,
                &arrival,
                &NewItem::new(ItemState::Unrouted, None, &BTreeMap::new()),
            )
            .await?;
            tx.commit().await?;
            if !was_unrouted {
                self.notify(conversation_id, "agent_unavailable", "").await;
            }
            return Ok(());
        };
        // A bot answers new conversations first (Dynamics §3.1); a reopened one goes to people.
        if let (Some(bot), false) = (ws.bot_id, e.reopened) {
            return self.hand_to_bot(tx, conversation_id, &arrival, ws_id, bot).await;
        }
        self.route_opened(tx, conversation_id, &arrival, (ws_id, &ws), None, Vec::new())
            .await
    }

    /// Classifies, routes to a queue (or `queue_hint`), applies overflow and queues the item.
    pub(crate) async fn route_opened(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        conversation_id: Uuid,
        arrival: &Arrival,
        (ws_id, ws): (Uuid, &WorkstreamDef),
        queue_hint: Option<Uuid>,
        extra_skills: Vec<switchboard_domain::routing::SkillRequirement>,
    ) -> Result<(), RoutingError> {
        let mut classification = classify(&ws.classification, arrival.facts.clone());
        classification.skills.extend(extra_skills);
        let mut profiles = classification.profiles.clone();
        if let Some(p) = ws.capacity_profile_id
            && !profiles.contains(&p)
        {
            profiles.push(p);
        }
        let queues = self.queues_now(&mut tx, &ws.queues()).await?;
        let outcome = route(
            &ws.route_to_queue,
            &classification.facts,
            &conversation_id.to_string(),
            ws.fallback_queue_id,
            |q| queues.get(&q).is_some_and(QueueNow::overflowing),
        );
        let mut queue_id = queue_hint.unwrap_or(outcome.queue_id);
        let matched = queue_id;
        let mut notices = Vec::new();
        let mut action = OverflowAction::AssignAnyway;
        if let Some(q) = queues.get(&queue_id) {
            // Overflow settings do not apply to the fallback queue.
            if outcome.rule.is_some() {
                if q.closed() {
                    notices.push(match &q.openness {
                        Openness::Holiday(_) => "holiday",
                        _ => "out_of_operating_hours",
                    });
                    action = q.def.overflow.out_of_hours;
                }
                if action == OverflowAction::AssignAnyway
                    && let Some(limit) = q.def.overflow.work_item_limit.filter(|_| q.over_limit())
                {
                    action = limit.action;
                }
            }
            if let OverflowAction::TransferToQueue { queue_id: target } = action {
                queue_id = target;
            }
        }
        let target = self.queues_now(&mut tx, &[queue_id]).await?;
        let (queue_name, members) = target.get(&queue_id).map_or((String::new(), 0), |q| (q.name.clone(), q.members));
        let ending = match action {
            OverflowAction::EndConversation => Some("overflow_end"),
            _ if members == 0 && ws.mode == DistributionMode::Push => Some("no_agents"),
            _ => None,
        };
        // Reporting: a wait in the matched queue, overflowed at once when an overflow rule moved
        // the conversation on.
        let mut at = self.lock_item(&mut tx, conversation_id).await?.as_ref().map(place);
        let mut cause = Cause::Routed;
        if queue_id != matched {
            let first = waiting_in(matched);
            self.track_to(&mut tx, conversation_id, at, Some(first), Cause::Routed).await?;
            (at, cause) = (Some(first), Cause::Overflow);
        }
        for trigger in &notices {
            self.notify(conversation_id, trigger, &queue_name).await;
        }
        if let Some(transition) = ending {
            // Close through session first; a redelivery after a failure closes it again harmlessly.
            let request = TransitionRequest {
                conversation_id: conversation_id.to_string(),
                transition: transition.into(),
                queue_id: queue_id.to_string(),
                workstream_id: ws_id.to_string(),
                queue_name,
                ..Default::default()
            };
            match self.session.clone().transition_conversation(request).await {
                Ok(_) => {}
                Err(status)
                    if switchboard_service_kit::ErrorCode::of(&status) == switchboard_service_kit::ErrorCode::FailedPrecondition => {}
                Err(status) => return Err(RoutingError::from_session(status)),
            }
            items::delete(&mut *tx, conversation_id).await?;
            // It waited in the queue for no time: ended by the overflow rule or for lack of agents.
            let last = waiting_in(queue_id);
            self.track_to(&mut tx, conversation_id, at, Some(last), cause).await?;
            self.track_to(&mut tx, conversation_id, Some(last), None, Cause::Overflow).await?;
            tx.commit().await?;
            tracing::info!(%conversation_id, transition, "conversation closed by routing");
            return Ok(());
        }
        let affinity = arrival
            .previous_agent
            .filter(|_| arrival.reopened && ws.agent_affinity)
            .map(AgentId::uuid);
        let queued = NewItem {
            queue_id: Some(queue_id),
            priority: classification.priority,
            skills: &classification.skills,
            profiles: &profiles,
            placement: Some(Placement {
                units: ws.capacity_units,
                affinity,
                queue_priority: target.get(&queue_id).map_or(1, |q| q.def.priority),
            }),
            ..NewItem::new(ItemState::Queued, Some(ws_id), &classification.facts)
        };
        self.upsert_item(&mut tx, conversation_id, arrival, &queued).await?;
        // The item is where the upsert put it: queued in `queue_id`, with no agent.
        let queued = Place {
            stage: Stage::Waiting,
            queue: Some(queue_id),
            agent: None,
        };
        self.track_to(&mut tx, conversation_id, at, Some(queued), cause).await?;
        tx.commit().await?;
        tracing::debug!(%conversation_id, %queue_id, rule = ?outcome.rule, fired = ?classification.fired, "conversation queued");
        self.request_cycle(Some(&[queue_id]));
        Ok(())
    }

    /// Writes the conversation's work item, new or again (a reopened or escalated conversation
    /// starts afresh: no agent, offer or declines). Where `item.placement` is absent the item
    /// keeps its units, affinity and queue priority (the defaults for a new one).
    pub(crate) async fn upsert_item(
        &self,
        tx: &mut sqlx::PgConnection,
        conversation_id: Uuid,
        arrival: &Arrival,
        item: &NewItem<'_>,
    ) -> Result<(), RoutingError> {
        let origin = items::Origin {
            number_id: arrival.number_id.map(NumberId::uuid),
            last_customer_message_at: arrival.last_customer_message_at,
            traceparent: switchboard_telemetry::propagation::traceparent(&tracing::Span::current()),
        };
        items::upsert(&mut *tx, conversation_id, &origin, item, self.now()).await?;
        Ok(())
    }

    /// Asks session to send an automated message; failures are logged (it is a courtesy).
    pub(crate) async fn notify(&self, conversation_id: Uuid, trigger: &str, queue_name: &str) {
        self.notify_as(conversation_id, trigger, "", queue_name).await;
    }

    /// Sends `trigger`'s automated message, naming the agent; failures are logged.
    pub(crate) async fn notify_as(&self, conversation_id: Uuid, trigger: &str, agent_name: &str, queue_name: &str) {
        let request = SendAutomatedMessageRequest {
            conversation_id: conversation_id.to_string(),
            trigger: trigger.into(),
            agent_name: agent_name.into(),
            queue_name: queue_name.into(),
        };
        if let Err(status) = self.session.clone().send_automated_message(request).await {
            tracing::warn!(%conversation_id, trigger, error = %status.message(), "automated message not sent");
        }
    }
}

/// A work item waiting in `queue`, for reporting.
fn waiting_in(queue: Uuid) -> Place {
    Place {
        stage: Stage::Waiting,
        queue: Some(queue),
        agent: None,
    }
}
