//! The routing state shared by the gRPC service, the event handler and the scheduler, and the
//! helpers they share: loading definitions, and holding or releasing an agent's capacity with
//! their presence recomputed from it (Dynamics §2.3).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlx::{FromRow, PgConnection, PgPool};
use switchboard_bus::events::AgentPresenceV1;
use switchboard_domain::Clock;
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

/// An agent's live state.
#[derive(Debug, Clone, FromRow)]
pub struct AgentStateRow {
    pub agent_id: Uuid,
    pub presence: String,
    pub chosen_presence: String,
    pub used_units: i32,
    pub profile_used: serde_json::Value,
    pub active_items: i32,
    pub last_assigned_at: Option<OffsetDateTime>,
    pub last_released_at: Option<OffsetDateTime>,
    /// When the agent's last stream dropped (None while connected, or never connected).
    pub disconnected_at: Option<OffsetDateTime>,
    /// What they had chosen before it dropped.
    pub chosen_before_disconnect: Option<String>,
}

impl AgentStateRow {
    /// Work items held per profile.
    pub fn profile_used(&self) -> BTreeMap<Uuid, i32> {
        serde_json::from_value(self.profile_used.clone()).unwrap_or_default()
    }

    /// Current presence.
    pub fn presence(&self) -> Presence {
        Presence::parse(&self.presence).unwrap_or(Presence::Offline)
    }

    /// Presence last chosen.
    pub fn chosen(&self) -> Presence {
        Presence::parse(&self.chosen_presence).unwrap_or(Presence::Offline)
    }
}

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
pub async fn lock_agent(conn: &mut PgConnection, agent_id: Uuid) -> Result<Option<AgentStateRow>, RoutingError> {
    Ok(
        sqlx::query_as::<_, AgentStateRow>("SELECT * FROM routing.agent_state WHERE agent_id = $1 FOR UPDATE")
            .bind(agent_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Adds the `agent.presence.v1` event for `state`'s agent, now showing `presence`, if that
/// differs from what the row shows.
pub fn push_presence_change(events: &mut EventBatch, state: &AgentStateRow, presence: Presence, now: OffsetDateTime) {
    if presence != state.presence() {
        events.push(
            AgentPresenceV1 {
                agent_id: state.agent_id.to_string(),
                presence: presence.as_str().into(),
                chosen: state.chosen_presence.clone(),
            },
            now,
        );
    }
}

/// How a capacity change touches an agent's ordering keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Work was given: round-robin key.
    Assigned,
    /// Work was released: least-active key.
    Released,
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
        agent_id: Uuid,
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
        sqlx::query(
            "UPDATE routing.agent_state SET used_units = $2, active_items = $3, profile_used = $4, presence = $5, \
             last_assigned_at = CASE WHEN $6 THEN $7 ELSE last_assigned_at END, last_released_at = CASE WHEN $6 THEN last_released_at ELSE $7 END, \
             presence_changed_at = CASE WHEN presence <> $5 THEN $7 ELSE presence_changed_at END WHERE agent_id = $1",
        )
        .bind(agent_id)
        .bind(next.used_units)
        .bind(next.active_items)
        .bind(&next.profile_used)
        .bind(presence.as_str())
        .bind(touch == Touch::Assigned)
        .bind(now)
        .execute(&mut *tx)
        .await?;
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
        let Some(agent) = item.agent_id.filter(|_| item.holds_capacity()) else {
            return Ok(false);
        };
        self.change_capacity(tx, agent, item.units, &item.profiles, -1, Touch::Released, events)
            .await?;
        Ok(true)
    }

    /// Locks and returns a work item.
    pub async fn lock_item(&self, tx: &mut PgConnection, conversation_id: Uuid) -> Result<Option<ItemRow>, RoutingError> {
        Ok(crate::store::items::lock(&mut *tx, conversation_id).await?)
    }
}
