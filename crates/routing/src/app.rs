//! The routing state shared by the gRPC service, the event handler and the scheduler, and the
//! helpers they share: loading definitions, and holding or releasing an agent's capacity with
//! their presence recomputed from it (Dynamics §2.3).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use switchboard_bus::events::AgentPresenceV1;
use switchboard_domain::Clock;
use switchboard_domain::ids::AgentId;
use switchboard_domain::routing::Presence;
use switchboard_domain::routing::config::{AgentDef, CapacityProfileDef, Kind, ResetFrequency};
use switchboard_domain::routing::presence::{Load, ProfileLoad, recompute};
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_storage::outbox::{EventBatch, Outbox};
use switchboard_telemetry::propagation::TracedChannel;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::RoutingSettings;
use crate::error::RoutingError;

/// A session gRPC client.
pub type SessionClient = SessionServiceClient<TracedChannel>;

/// Everything a routing operation needs.
pub struct Routing {
    pub pool: PgPool,
    pub clock: Arc<dyn Clock>,
    pub outbox: Outbox,
    pub session: SessionClient,
    pub settings: RoutingSettings,
    /// Cycles asked for, run by this replica's assigner ([`crate::assigner`]).
    pub cycles: std::sync::Arc<crate::assigner::CycleRequests>,
    /// The configuration objects, kept in process ([`crate::config_cache`]).
    pub config: std::sync::Arc<crate::config_cache::ConfigCache>,
}

pub use crate::store::items::ItemRow;

pub use crate::store::agents::{AgentStateRow, Touch};

/// Builds an agent's capacity load.
pub fn load(def: &AgentDef, state: &AgentStateRow, profiles: &HashMap<Uuid, CapacityProfileDef>) -> Load {
    let used = state.profile_used();
    Load {
        capacity_units: def.capacity_units,
        used_units: state.used_units,
        profiles: def
            .capacity_profiles
            .iter()
            .filter_map(|(id, personal)| {
                let profile = profiles.get(id)?;
                Some(ProfileLoad {
                    limit: personal.unwrap_or(profile.max_items),
                    used: used.get(id).copied().unwrap_or(0),
                    blocking: profile.blocking,
                })
            })
            .collect(),
    }
}

/// Locks and returns an agent's state row (`None`: no such agent, or deleted).
pub async fn lock_agent(conn: &mut PgConnection, agent_id: AgentId) -> Result<Option<AgentStateRow>, RoutingError> {
    Ok(crate::store::agents::lock(&mut *conn, agent_id).await?)
}

/// Adds the `agent.presence.v1` event for `state`'s agent, now showing `presence`, if that
/// differs from what the row shows.
pub fn push_presence_change(events: &mut EventBatch, state: &AgentStateRow, presence: Presence, now: OffsetDateTime) {
    if presence != state.presence() {
        events.push(
            AgentPresenceV1 {
                agent_id: state.agent_id,
                presence,
                chosen: state.chosen_presence,
            },
            now,
        );
    }
}

impl Routing {
    /// Returns now, from routing's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Writes `events` to the outbox inside the caller's transaction.
    pub async fn emit(&self, conn: &mut PgConnection, events: &EventBatch) -> Result<(), RoutingError> {
        self.outbox.enqueue(conn, events.records()).await?;
        Ok(())
    }

    /// Adds (positive) or removes (negative) one item's capacity from an agent, then recomputes
    /// their presence.
    #[allow(clippy::too_many_arguments)] // one capacity change, fully described
    pub async fn change_capacity(
        &self,
        tx: &mut PgConnection,
        agent_id: AgentId,
        units: i32,
        profiles: &[Uuid],
        sign: i32,
        touch: Touch,
        events: &mut EventBatch,
    ) -> Result<(), RoutingError> {
        let Some(state) = lock_agent(tx, agent_id).await? else {
            return Ok(()); // the agent was deleted
        };
        let Some((_, def)) = self.config.definition::<AgentDef>(tx, Kind::Agent, agent_id).await? else {
            return Ok(());
        };
        let profile_defs = self.config.profiles(tx).await?;
        let mut used = state.profile_used();
        for p in profiles {
            // An end-of-day profile's use is given back when the day changes, not when the
            // work ends (`reset_daily_capacity`).
            let daily = profile_defs.get(p).is_some_and(|d| d.reset == ResetFrequency::Daily);
            if sign > 0 || !daily {
                *used.entry(*p).or_insert(0) += sign;
            }
        }
        let mut next = state.clone();
        next.used_units += sign * units;
        next.active_items += sign;
        next.profile_used = serde_json::json!(used);
        let presence = recompute(state.chosen(), &load(&def, &next, &profile_defs));
        let now = self.now();
        crate::store::agents::write_load(&mut *tx, &next, presence, touch, now).await?;
        push_presence_change(events, &state, presence, now);
        Ok(())
    }

    /// Releases the capacity a work item holds, if it holds any.
    pub async fn release(&self, tx: &mut PgConnection, item: &ItemRow, events: &mut EventBatch) -> Result<(), RoutingError> {
        if self.free_capacity(tx, item, events).await? {
            crate::store::items::capacity_released(&mut *tx, item.conversation_id).await?;
        }
        Ok(())
    }

    /// Gives the agent back the capacity `item` holds, if it holds any; returns whether it did.
    /// The caller marks the item (`capacity_held = false, release_at = NULL`) in its own write.
    pub async fn free_capacity(&self, tx: &mut PgConnection, item: &ItemRow, events: &mut EventBatch) -> Result<bool, RoutingError> {
        let Some(agent) = item.agent().filter(|_| item.holds_capacity()) else {
            return Ok(false);
        };
        self.change_capacity(tx, agent.into(), item.units, &item.profiles, -1, Touch::Released, events)
            .await?;
        Ok(true)
    }

    /// Locks and returns a work item.
    pub async fn lock_item(&self, tx: &mut PgConnection, conversation_id: impl Into<Uuid>) -> Result<Option<ItemRow>, RoutingError> {
        Ok(crate::store::items::lock(&mut *tx, conversation_id).await?)
    }
}
