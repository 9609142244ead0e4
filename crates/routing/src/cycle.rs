//! The assignment cycle (Dynamics §3.5): work items in order of queue priority, item priority and
//! then FIFO on the customer's last message; each offered to the agent `domain::routing::assign`
//! chooses. Queues fall into [`CYCLE_GROUPS`] groups by id: cycles of different groups run at
//! the same time, on any replicas, and one group's cycles one at a time (a transaction-scoped
//! advisory lock per group). Items are taken with `SKIP LOCKED`, so no item is offered twice.
//! The candidates' state rows are read without a lock and written back only if they are still
//! what the cycle read (a conditional update, in agent order): an accept, a release or another
//! group's cycle that changed one meanwhile makes the cycle start again from what committed, so
//! no agent is over-filled, and nothing that changes an agent's load waits on a whole cycle
//! (only on its final writes). Offers, item states and agent loads are written in bulk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use switchboard_bus::events::{AgentPresenceV1, OfferCreatedV1};
use switchboard_domain::ids::{AgentId, ConversationId, OfferId, QueueId, WorkstreamId};
use switchboard_domain::routing::assign::{Candidate, Needs, choose};
use switchboard_domain::routing::config::{AgentDef, CapacityProfileDef, Kind, QueueDef, WorkstreamDef};
use switchboard_domain::routing::presence::recompute;
use switchboard_domain::routing::{DistributionMode, Presence};
use switchboard_storage::outbox::EventBatch;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::app::{AgentStateRow, ItemRow, Routing, load};
use crate::error::RoutingError;

/// Queue groups whose cycles may run at the same time. Fixed: replicas must agree on it.
pub const CYCLE_GROUPS: u16 = 16;

/// Returns the cycle group of a queue (the bus's stable shard hash of its id).
pub fn group_of(queue: Uuid) -> i32 {
    i32::from(switchboard_bus::shard_for(&queue.to_string(), CYCLE_GROUPS))
}

/// Most items looked at in one cycle (so a long head of unassignable items cannot starve the rest).
const MAX_CONSIDERED: usize = 2_000;

struct AgentCtx {
    def: AgentDef,
    /// The row as read: the cycle's writes apply only if it is still so.
    read: AgentStateRow,
    state: AgentStateRow,
    candidate: Candidate,
    changed: bool,
}

/// Cycles started again in a row because agents changed under them, before the cycle is left to
/// the next request.
const MAX_RESTARTS: usize = 20;

struct Offer {
    id: OfferId,
    conversation_id: ConversationId,
    agent_id: AgentId,
    queue_id: Option<QueueId>,
    workstream_id: Option<WorkstreamId>,
    expires_at: OffsetDateTime,
    /// The span the offer is recorded in, in its item's trace; it ends when the cycle commits.
    span: tracing::Span,
    /// The workstream accepts offers on the agent's behalf.
    auto_accept: bool,
}

/// The span of one offer, a child of the trace its work item was queued in: the cycle runs on
/// its own, and this puts each offer (and the events it sends) in its conversation's trace.
fn offer_span(item: &ItemRow, agent_id: AgentId, waited: time::Duration) -> tracing::Span {
    use switchboard_telemetry::propagation::{extract_traceparent, set_parent};
    let Some(traceparent) = &item.traceparent else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        parent: None,
        "routing.offer",
        otel.name = "offer",
        conversation_id = %item.conversation_id,
        agent_id = %agent_id,
        queue_id = ?item.queue(),
        routing.wait_ms = waited.whole_milliseconds(),
        switchboard.service = "routing",
    );
    set_parent(&span, extract_traceparent(traceparent));
    span
}

fn nanos(t: Option<OffsetDateTime>) -> i64 {
    t.map_or(i64::MIN, |t| i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX))
}

fn candidate(def: &AgentDef, state: &AgentStateRow, profiles: &HashMap<Uuid, CapacityProfileDef>) -> Candidate {
    let used = state.profile_used();
    Candidate {
        agent_id: state.agent_id,
        presence: state.presence(),
        free_units: def.capacity_units - state.used_units,
        profile_free: def
            .capacity_profiles
            .iter()
            .filter_map(|(id, personal)| {
                let profile = profiles.get(id)?;
                // A profile without "assignment blocking" never stops assignment; it only
                // counts towards presence (Do not disturb when every such profile is full).
                let free = if profile.blocking {
                    personal.unwrap_or(profile.max_items) - used.get(id).copied().unwrap_or(0)
                } else {
                    i32::MAX
                };
                Some((*id, free))
            })
            .collect(),
        skills: def.skills.clone(),
        last_assigned: nanos(state.last_assigned_at),
        queue_turn: i64::MIN,
        last_released: nanos(state.last_released_at),
    }
}

impl Routing {
    /// Asks this replica's assigner for a cycle of `queues` (every queue when `None`) and
    /// returns at once: callers never wait on the cycle lock.
    pub fn request_cycle(&self, queues: Option<&[Uuid]>) {
        self.cycles.request(queues);
    }

    /// Runs the cycles of each group of `queues` (every queue with waiting items when `None`)
    /// until one makes no offer. Returns the offers made.
    pub async fn assign(&self, queues: Option<&[Uuid]>) -> Result<usize, RoutingError> {
        let queues: Vec<Uuid> = match queues {
            Some(queues) => queues.to_vec(),
            None => crate::store::items::queues_with_queued(&self.pool).await?,
        };
        let mut groups: BTreeMap<i32, Vec<Uuid>> = BTreeMap::new();
        for queue in queues {
            groups.entry(group_of(queue)).or_default().push(queue);
        }
        let mut total = 0;
        for queues in groups.values() {
            loop {
                let made = self.cycle(Some(queues)).await?;
                total += made;
                if made == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Runs one cycle of `queues` (every queue when `None`) under the lock of each of their
    /// groups (all groups when `None`), taken in order; returns the offers made.
    pub async fn cycle(&self, queues: Option<&[Uuid]>) -> Result<usize, RoutingError> {
        for _ in 0..MAX_RESTARTS {
            if let Some(made) = self.try_cycle(queues).await? {
                return Ok(made);
            }
            crate::metrics::cycle_restarted();
        }
        // Agents keep changing under it: the next request (or the scheduler's) runs it again.
        self.request_cycle(queues);
        Ok(0)
    }

    /// One attempt at a cycle: `None` when an agent it would write changed since it read them.
    async fn try_cycle(&self, queues: Option<&[Uuid]>) -> Result<Option<usize>, RoutingError> {
        let started = std::time::Instant::now();
        let now = self.now();
        let mut groups: Vec<i32> = match queues {
            Some(queues) => queues.iter().map(|q| group_of(*q)).collect(),
            None => (0..i32::from(CYCLE_GROUPS)).collect(),
        };
        groups.sort_unstable();
        groups.dedup();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('routing.cycle'), g) FROM unnest($1::int4[]) g")
            .bind(&groups)
            .execute(&mut *tx)
            .await?;
        let profiles = self.config.profiles(&mut tx).await?;
        let mut queue_defs: HashMap<QueueId, QueueDef> = HashMap::new();
        let mut members: HashMap<QueueId, Vec<AgentId>> = HashMap::new();
        // Each member's round-robin turn in each queue.
        let mut turns: HashMap<(QueueId, AgentId), i64> = HashMap::new();
        let mut workstreams: HashMap<WorkstreamId, WorkstreamDef> = HashMap::new();
        let mut agents: HashMap<AgentId, AgentCtx> = HashMap::new();
        let mut offers: Vec<Offer> = Vec::new();
        let mut considered = 0;
        let mut cursor: Option<(bool, i32, i32, OffsetDateTime, Uuid)> = None;
        let batch = self.settings.cycle_batch;
        let queue_filter: Option<Vec<Uuid>> = queues.map(<[Uuid]>::to_vec);

        while considered < MAX_CONSIDERED {
            // Items kept for an agent (affinity, a transfer to them) skip prioritization and go
            // first, as Dynamics orders them; then queue priority, item priority, age.
            let page = crate::store::items::lock_queued_page(&mut *tx, queue_filter.as_deref(), cursor, batch).await?;
            let Some(last) = page.last() else { break };
            cursor = Some((
                last.affinity_agent_id.is_none() && last.pinned_agent_id.is_none(),
                last.queue_priority,
                last.priority,
                last.last_customer_message_at,
                last.conversation_id.uuid(),
            ));
            let full_page = i64::try_from(page.len()).unwrap_or(0) >= batch;

            // Load what this page needs that earlier pages did not.
            let new_queues: Vec<Uuid> = page
                .iter()
                .filter_map(|i| i.queue_id)
                .filter(|q| !queue_defs.contains_key(q))
                .map(Uuid::from)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for (id, (_, def)) in self.config.definitions::<QueueDef>(&mut tx, Kind::Queue, &new_queues).await? {
                queue_defs.insert(id.into(), def);
            }
            let rows: Vec<(QueueId, AgentId, OffsetDateTime)> = sqlx::query_as(
                "SELECT queue_id, agent_id, COALESCE(last_assigned_at, joined_at) FROM routing.queue_members WHERE queue_id = ANY($1) ORDER BY joined_at",
            )
            .bind(&new_queues)
            .fetch_all(&mut *tx)
            .await?;
            for (queue, agent, turn) in rows {
                members.entry(queue).or_default().push(agent);
                turns.insert((queue, agent), nanos(Some(turn)));
            }
            let new_ws: Vec<Uuid> = page
                .iter()
                .filter_map(|i| i.workstream_id)
                .filter(|w| !workstreams.contains_key(w))
                .map(Uuid::from)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for (id, (_, def)) in self.config.definitions::<WorkstreamDef>(&mut tx, Kind::Workstream, &new_ws).await? {
                workstreams.insert(id.into(), def);
            }
            let wanted: Vec<AgentId> = page
                .iter()
                .flat_map(|i| {
                    i.queue_id
                        .and_then(|q| members.get(&q))
                        .into_iter()
                        .flatten()
                        .copied()
                        .chain(i.affinity_agent_id)
                        .chain(i.pinned_agent_id)
                })
                .filter(|a| !agents.contains_key(a))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            self.load_agents(&mut tx, &wanted, &profiles, &mut agents).await?;

            for item in &page {
                considered += 1;
                let (Some(ws_id), Some(queue_id)) = (item.workstream_id, item.queue_id) else {
                    continue;
                };
                let (Some(ws), Some(queue)) = (workstreams.get(&ws_id), queue_defs.get(&queue_id)) else {
                    continue;
                };
                if ws.mode == DistributionMode::Pick {
                    continue;
                }
                let pinned = item.pinned_agent_id.or(item.affinity_agent_id.filter(|_| ws.agent_affinity));
                let pool: Vec<AgentId> = members.get(&queue_id).into_iter().flatten().copied().chain(pinned).collect();
                let candidates: Vec<Candidate> = pool
                    .iter()
                    .filter_map(|a| {
                        let mut c = agents.get(a)?.candidate.clone();
                        c.queue_turn = turns.get(&(queue_id, *a)).copied().unwrap_or(i64::MIN);
                        Some(c)
                    })
                    .collect();
                let skills = item.skills();
                let declines = item.declines();
                let cooling = item.cooling(now, ws.decline_cooldown_secs);
                let needs = Needs {
                    units: item.units,
                    profiles: &item.profiles,
                    skills: &skills,
                    allowed: &ws.allowed_presences,
                    matching: ws.matching,
                    declined: &declines,
                    max_declines: ws.max_declines,
                    affinity: pinned,
                    cooling: &cooling,
                };
                let Some(index) = choose(&needs, &candidates, queue.assignment) else {
                    continue;
                };
                let agent_id = candidates[index].agent_id;
                turns.insert((queue_id, agent_id), nanos(Some(now)));
                if let Some(ctx) = agents.get_mut(&agent_id) {
                    ctx.candidate.free_units -= item.units;
                    ctx.state.used_units += item.units;
                    ctx.state.active_items += 1;
                    let mut used = ctx.state.profile_used();
                    for p in &item.profiles {
                        *used.entry(*p).or_insert(0) += 1;
                        if let Some(free) = ctx.candidate.profile_free.get_mut(p) {
                            *free -= 1;
                        }
                    }
                    ctx.state.profile_used = serde_json::json!(used);
                    ctx.candidate.last_assigned = nanos(Some(now));
                    ctx.state.last_assigned_at = Some(now);
                    let presence = recompute(ctx.state.chosen(), &load(&ctx.def, &ctx.state, &profiles));
                    ctx.candidate.presence = presence;
                    ctx.changed = true;
                    ctx.state.presence = presence;
                }
                let timeout = time::Duration::seconds(i64::from(ws.offer_timeout_secs));
                offers.push(Offer {
                    id: OfferId::generate(),
                    conversation_id: item.conversation_id,
                    agent_id,
                    queue_id: Some(queue_id),
                    workstream_id: Some(ws_id),
                    expires_at: now + timeout,
                    span: offer_span(item, agent_id, now - item.enqueued_at),
                    auto_accept: ws.auto_accept,
                });
            }
            let anyone_free = agents
                .values()
                .any(|a| a.candidate.free_units > 0 && matches!(a.candidate.presence, Presence::Available | Presence::Busy));
            if !full_page || !anyone_free {
                break;
            }
        }

        if !offers.is_empty() {
            let mut events = EventBatch::default();
            self.persist(&mut tx, &offers, &agents, now, &mut events).await?;
            self.emit(&mut tx, &events).await?;
            // The agents last: their rows, which accepts and releases also write, are locked
            // only from here to the commit.
            if !self.write_agents(&mut tx, &agents, now).await? {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        tx.commit().await?;
        crate::metrics::record_cycle(offers.len(), considered, started.elapsed());
        // Auto-accept: the offer is made (and seen) as usual, then accepted on the agent's
        // behalf. Should this fail, the offer stays pending and is accepted, declined or
        // expires as any other.
        for offer in offers.iter().filter(|o| o.auto_accept) {
            if let Err(error) = self.accept_offer(offer.id, offer.agent_id).instrument(offer.span.clone()).await {
                tracing::warn!(offer_id = %offer.id, error = %error, "auto-accept failed; the offer stays pending");
            }
        }
        Ok(Some(offers.len()))
    }

    async fn load_agents(
        &self,
        tx: &mut sqlx::PgConnection,
        ids: &[AgentId],
        profiles: &HashMap<Uuid, CapacityProfileDef>,
        into: &mut HashMap<AgentId, AgentCtx>,
    ) -> Result<(), RoutingError> {
        if ids.is_empty() {
            return Ok(());
        }
        let states = crate::store::agents::read_many(&mut *tx, ids).await?;
        let plain: Vec<Uuid> = ids.iter().copied().map(Uuid::from).collect();
        let defs = self.config.definitions::<AgentDef>(tx, Kind::Agent, &plain).await?;
        for state in states {
            let Some((_, def)) = defs.get(&state.agent_id.uuid()) else {
                continue;
            };
            let candidate = candidate(def, &state, profiles);
            into.insert(
                state.agent_id,
                AgentCtx {
                    def: def.clone(),
                    read: state.clone(),
                    state,
                    candidate,
                    changed: false,
                },
            );
        }
        Ok(())
    }

    /// Writes the cycle's offers and items, and the events saying so.
    async fn persist(
        &self,
        tx: &mut sqlx::PgConnection,
        offers: &[Offer],
        agents: &HashMap<AgentId, AgentCtx>,
        now: OffsetDateTime,
        events: &mut EventBatch,
    ) -> Result<(), RoutingError> {
        // The store takes the columns as plain UUID arrays.
        let ids: Vec<Uuid> = offers.iter().map(|o| o.id.uuid()).collect();
        let conversations: Vec<Uuid> = offers.iter().map(|o| o.conversation_id.uuid()).collect();
        let agent_ids: Vec<Uuid> = offers.iter().map(|o| o.agent_id.uuid()).collect();
        let queues: Vec<Option<Uuid>> = offers.iter().map(|o| o.queue_id.map(Uuid::from)).collect();
        let workstreams: Vec<Option<Uuid>> = offers.iter().map(|o| o.workstream_id.map(Uuid::from)).collect();
        let expiries: Vec<OffsetDateTime> = offers.iter().map(|o| o.expires_at).collect();
        let new = crate::store::offers::NewOffers {
            ids: &ids,
            conversations: &conversations,
            agents: &agent_ids,
            queues: &queues,
            workstreams: &workstreams,
            expiries: &expiries,
        };
        crate::store::offers::insert_pending(&mut *tx, &new, now).await?;
        crate::store::items::offered(&mut *tx, &conversations, &agent_ids, &ids, now).await?;
        // Each agent's turn in the queue they were offered from moves to the back.
        sqlx::query(
            "UPDATE routing.queue_members m SET last_assigned_at = $3 FROM UNNEST($1::uuid[], $2::uuid[]) AS d(q, a) \
             WHERE m.queue_id = d.q AND m.agent_id = d.a",
        )
        .bind(&queues)
        .bind(&agent_ids)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for a in agents.values().filter(|a| a.changed) {
            if a.read.presence != a.state.presence {
                events.push(
                    AgentPresenceV1 {
                        agent_id: a.state.agent_id,
                        presence: a.state.presence,
                        chosen: a.state.chosen_presence,
                    },
                    now,
                );
            }
        }
        for o in offers {
            // Inside the offer's span, so the event carries its conversation's trace.
            o.span.in_scope(|| {
                events.push(
                    OfferCreatedV1 {
                        offer_id: o.id,
                        conversation_id: o.conversation_id,
                        agent_id: o.agent_id,
                        queue_id: o.queue_id,
                        workstream_id: o.workstream_id,
                        expires_at: o.expires_at,
                    },
                    now,
                );
            });
        }
        crate::metrics::offers_made(offers.len(), &[KeyValue::new("how", "cycle")]);
        Ok(())
    }

    /// Writes the agents the cycle changed, in id order (two cycles writing the same agents
    /// cannot deadlock), each only if its row is still what the cycle read; `false` (the caller
    /// rolls back) when one changed since.
    async fn write_agents(
        &self,
        tx: &mut sqlx::PgConnection,
        agents: &HashMap<AgentId, AgentCtx>,
        now: OffsetDateTime,
    ) -> Result<bool, RoutingError> {
        let mut changed: Vec<&AgentCtx> = agents.values().filter(|a| a.changed).collect();
        changed.sort_by_key(|a| a.state.agent_id);
        let pairs: Vec<(&AgentStateRow, &AgentStateRow)> = changed.iter().map(|a| (&a.state, &a.read)).collect();
        let written = crate::store::agents::write_cycle_loads(&mut *tx, &pairs, now).await?;
        Ok(written == changed.len() as u64)
    }
}

/// Runs the requested cycles until `shutdown`. A failed cycle is asked for again after a pause.
pub async fn run_requested(routing: Arc<Routing>, shutdown: CancellationToken) {
    let requests = routing.cycles.clone();
    let mut failures: u32 = 0;
    loop {
        let Some(queues) = requests.take() else {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = requests.requested() => continue,
            }
        };
        match routing.assign(queues.as_deref()).await {
            Ok(_) => failures = 0,
            Err(error) => {
                failures = failures.saturating_add(1);
                requests.restore(queues.as_deref());
                tracing::warn!(error = %error, "assignment cycle failed; trying again");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(50 * u64::from(failures.min(40)))) => {}
                }
            }
        }
    }
}
