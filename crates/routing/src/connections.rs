//! Agent disconnects (Dynamics §2.3). The API reports each agent's live streams; when the last
//! one drops, the agent shows Offline at once and their pending offers are withdrawn and offered
//! again. Back within the restore window, they get their presence back. Once the window is over,
//! each conversation still Active with them goes back to its queue and the customer gets the
//! `agent_disconnected` message; when they come back, their presence is recalculated from their
//! default.
//!
//! An API replica confirms its streams every [`CONFIRM_EVERY`]; a stream it stops confirming (the
//! replica died) counts as closed after [`CONNECTION_TTL`]. Liveness is measured on the
//! database's wall clock, not the service clock that times the business rules (the restore
//! window): a replica confirms on real time. A replica that shuts down cleanly
//! reports nothing, so its agents, who reconnect to another replica, never look disconnected.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_domain::ids::AgentId;
use switchboard_domain::routing::Presence;
use switchboard_domain::routing::config::{AgentDef, Kind};
use switchboard_domain::routing::presence::{RESTORE_WINDOW_SECS, chosen_on_return, recompute};
use switchboard_storage::outbox::EventBatch;
use uuid::Uuid;

use crate::app::{AgentStateRow, Routing, load, lock_agent, push_presence_change};
use crate::error::RoutingError;
use crate::store::agents;

/// How often an API replica confirms its open streams.
pub const CONFIRM_EVERY: Duration = Duration::from_secs(30);
/// A stream not confirmed for this long is gone (SQL interval, on the database's clock).
pub const CONNECTION_TTL: &str = "90 seconds";

/// What a report changed for one agent.
#[derive(Debug, Default)]
struct Changes {
    alive: Vec<Uuid>,
    closed: Vec<Uuid>,
}

impl Routing {
    /// Records the API's report of agents' streams: `alive` ones opened or still open, `closed`
    /// ones the agent closed. Unknown agents are skipped (they may have been deleted meanwhile).
    pub async fn agent_connections(&self, alive: &[(Uuid, Uuid)], closed: &[(Uuid, Uuid)]) -> Result<(), RoutingError> {
        let mut by_agent: BTreeMap<Uuid, Changes> = BTreeMap::new();
        for (agent, connection) in alive {
            by_agent.entry(*agent).or_default().alive.push(*connection);
        }
        for (agent, connection) in closed {
            by_agent.entry(*agent).or_default().closed.push(*connection);
        }
        for (agent, changes) in by_agent {
            self.apply_connections(agent.into(), &changes).await?;
        }
        Ok(())
    }

    /// Drops streams no API replica has confirmed within [`CONNECTION_TTL`]; returns how many.
    pub async fn drop_stale_connections(&self) -> Result<usize, RoutingError> {
        let stale: Vec<(Uuid, Uuid)> =
            sqlx::query_as("SELECT agent_id, connection_id FROM routing.agent_connections WHERE seen_at < now() - $1::interval ORDER BY agent_id LIMIT 500")
                .bind(CONNECTION_TTL)
                .fetch_all(&self.pool)
                .await?;
        self.agent_connections(&[], &stale).await?;
        Ok(stale.len())
    }

    async fn apply_connections(&self, agent_id: AgentId, changes: &Changes) -> Result<(), RoutingError> {
        let now = self.now();
        let mut tx = self.pool.begin().await?;
        // The agent's row serialises every change to their connections.
        let Some(state) = lock_agent(&mut tx, agent_id).await? else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO routing.agent_connections (connection_id, agent_id, opened_at, seen_at) SELECT c, $2, now(), now() FROM unnest($1::uuid[]) c \
             ON CONFLICT (connection_id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
        )
        .bind(&changes.alive)
        .bind(agent_id)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM routing.agent_connections WHERE agent_id = $1 AND connection_id = ANY($2)")
            .bind(agent_id)
            .bind(&changes.closed)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let live: i64 =
            sqlx::query_scalar("SELECT count(*) FROM routing.agent_connections WHERE agent_id = $1 AND seen_at >= now() - $2::interval")
                .bind(agent_id)
                .bind(CONNECTION_TTL)
                .fetch_one(&mut *tx)
                .await?;
        let mut events = EventBatch::default();
        let mut withdraw = Vec::new();
        let mut cycle_queues = Vec::new();
        match (live > 0, state.disconnected_at) {
            (true, Some(since)) => {
                // Back: within the window they get their choice back, else their default.
                let default = self
                    .config
                    .definition::<AgentDef>(&mut tx, Kind::Agent, agent_id)
                    .await?
                    .map_or(Presence::Available, |(_, d)| d.default_presence);
                let before = state.chosen_before_disconnect.unwrap_or(default);
                let chosen = chosen_on_return(before, default, (now - since).whole_seconds());
                self.choose_presence(&mut tx, &state, chosen, &mut events).await?;
                cycle_queues = self.agent_queues(&mut tx, Some(agent_id.uuid())).await?;
            }
            (false, None) if removed > 0 => {
                // The last stream dropped: Offline at once, and nothing stays offered to them.
                agents::disconnected(&mut *tx, agent_id, now).await?;
                push_presence_change(&mut events, &state, Presence::Offline, now);
                withdraw = crate::store::offers::pending_ids_of(&mut *tx, agent_id).await?;
                tracing::info!(%agent_id, offers = withdraw.len(), "agent disconnected");
            }
            _ => {}
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        self.withdraw_offers(withdraw).await?;
        if !cycle_queues.is_empty() {
            self.request_cycle(Some(&cycle_queues));
        }
        Ok(())
    }

    /// Sets what an agent has chosen and shows the presence it gives with their load.
    pub(crate) async fn choose_presence(
        &self,
        tx: &mut sqlx::PgConnection,
        state: &AgentStateRow,
        chosen: Presence,
        events: &mut EventBatch,
    ) -> Result<(), RoutingError> {
        let presence = match self.config.definition::<AgentDef>(tx, Kind::Agent, state.agent_id).await? {
            Some((_, def)) => recompute(chosen, &load(&def, state, &*self.config.profiles(tx).await?)),
            None => chosen,
        };
        let now = self.now();
        agents::chose_connected(&mut *tx, state.agent_id, chosen, presence, now).await?;
        let mut next = state.clone();
        next.chosen_presence = chosen;
        if presence != state.presence() || next.chosen_presence != state.chosen_presence {
            events.push(
                switchboard_bus::events::AgentPresenceV1 {
                    agent_id: state.agent_id,
                    presence,
                    chosen,
                },
                now,
            );
        }
        Ok(())
    }

    /// Gives the conversations of agents disconnected for longer than the restore window back to
    /// their queues, with the `agent_disconnected` message to each customer; returns how many
    /// conversations.
    pub async fn release_disconnected(&self) -> Result<usize, RoutingError> {
        let due = agents::disconnected_since(&self.pool, self.now() - time::Duration::seconds(RESTORE_WINDOW_SECS), 100).await?;
        let mut released = 0;
        for agent_id in due {
            let mut conn = self.pool.acquire().await?;
            let agent_name = self
                .config
                .definition::<serde_json::Value>(&mut conn, Kind::Agent, agent_id)
                .await?
                .map(|(n, _)| n)
                .unwrap_or_default();
            let items = crate::store::items::assigned_to(&mut *conn, agent_id.uuid()).await?;
            drop(conn);
            for item in items {
                let note = format!("{agent_name} was disconnected for more than {} minutes", RESTORE_WINDOW_SECS / 60);
                match self
                    .session_transition(&item, "release_to_queue", None, (agent_name.clone(), String::new()), &note)
                    .await
                {
                    Ok(()) => {
                        released += 1;
                        self.notify_as(item.conversation_id.uuid(), "agent_disconnected", &agent_name, "")
                            .await;
                    }
                    // Closed, ended or released meanwhile: nothing to give back.
                    Err(RoutingError::Precondition(_) | RoutingError::NotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            // Only if they are still away: a return meanwhile cleared `disconnected_at`.
            agents::disconnect_handled(&self.pool, agent_id).await?;
        }
        Ok(released)
    }
}
