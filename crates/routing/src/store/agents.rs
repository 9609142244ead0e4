//! The agents' live state's SQL (`routing.agent_state`): presence chosen and shown, the
//! capacity in use, the disconnect bookkeeping. Presence is recomputed from capacity by
//! `switchboard_domain::routing::presence` before these write it.

use std::collections::BTreeMap;

use sqlx::{FromRow, PgExecutor};
use switchboard_domain::ids::AgentId;
use switchboard_domain::routing::Presence;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// An agent's live state.
#[derive(Debug, Clone, FromRow)]
pub struct AgentStateRow {
    pub agent_id: AgentId,
    /// Read as a [`Presence`]: a stored value outside the set fails the read (the column's
    /// CHECK keeps them out) rather than passing for offline.
    pub presence: Presence,
    pub chosen_presence: Presence,
    pub used_units: i32,
    pub profile_used: serde_json::Value,
    pub active_items: i32,
    pub last_assigned_at: Option<OffsetDateTime>,
    pub last_released_at: Option<OffsetDateTime>,
    /// When the agent's last stream dropped (None while connected, or never connected).
    pub disconnected_at: Option<OffsetDateTime>,
    /// What they had chosen before it dropped.
    pub chosen_before_disconnect: Option<Presence>,
}

impl AgentStateRow {
    /// Work items held per profile.
    pub fn profile_used(&self) -> BTreeMap<Uuid, i32> {
        serde_json::from_value(self.profile_used.clone()).unwrap_or_default()
    }

    /// Current presence.
    pub fn presence(&self) -> Presence {
        self.presence
    }

    /// Presence last chosen.
    pub fn chosen(&self) -> Presence {
        self.chosen_presence
    }
}

/// Which ordering key a capacity change moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Work was given: round-robin key.
    Assigned,
    /// Work was released: least-active key.
    Released,
}

/// A new agent's state: `presence` chosen, its capacity day starting on `day`.
pub async fn create<'c>(db: impl PgExecutor<'c>, agent: AgentId, presence: Presence, day: Date) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO routing.agent_state (agent_id, presence, chosen_presence, profile_day) VALUES ($1, $2, $2, $3) ON CONFLICT (agent_id) DO NOTHING",
    )
    .bind(agent)
    .bind(presence.as_str())
    .bind(day)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes an agent's state (the agent was deleted).
pub async fn delete<'c>(db: impl PgExecutor<'c>, agent: AgentId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM routing.agent_state WHERE agent_id = $1")
        .bind(agent)
        .execute(db)
        .await?;
    Ok(())
}

/// An agent's state.
pub async fn get<'c>(db: impl PgExecutor<'c>, agent: AgentId) -> Result<Option<AgentStateRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.agent_state WHERE agent_id = $1")
        .bind(agent)
        .fetch_optional(db)
        .await
}

/// Locks and returns an agent's state.
pub async fn lock<'c>(db: impl PgExecutor<'c>, agent: AgentId) -> Result<Option<AgentStateRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.agent_state WHERE agent_id = $1 FOR UPDATE")
        .bind(agent)
        .fetch_optional(db)
        .await
}

/// The states of `agents`, unlocked (the cycle writes them back only if unchanged).
pub async fn read_many<'c>(db: impl PgExecutor<'c>, agents: &[AgentId]) -> Result<Vec<AgentStateRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.agent_state WHERE agent_id = ANY($1)")
        .bind(agents)
        .fetch_all(db)
        .await
}

/// Every agent's id.
pub async fn ids<'c>(db: impl PgExecutor<'c>) -> Result<Vec<AgentId>, sqlx::Error> {
    sqlx::query_scalar("SELECT agent_id FROM routing.agent_state ORDER BY agent_id")
        .fetch_all(db)
        .await
}

/// Writes an agent's load after one item's capacity was taken or given back (the caller holds
/// the row's lock), with the presence it now shows.
pub async fn write_load<'c>(
    db: impl PgExecutor<'c>,
    next: &AgentStateRow,
    presence: Presence,
    touch: Touch,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.agent_state SET used_units = $2, active_items = $3, profile_used = $4, presence = $5, \
         last_assigned_at = CASE WHEN $6 THEN $7 ELSE last_assigned_at END, last_released_at = CASE WHEN $6 THEN last_released_at ELSE $7 END, \
         presence_changed_at = CASE WHEN presence <> $5 THEN $7 ELSE presence_changed_at END WHERE agent_id = $1",
    )
    .bind(next.agent_id)
    .bind(next.used_units)
    .bind(next.active_items)
    .bind(&next.profile_used)
    .bind(presence.as_str())
    .bind(touch == Touch::Assigned)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes the cycle's new loads (`(next, as read)` per agent), each only if the row is still
/// as the cycle read it; returns how many were written (fewer: another writer came first).
pub async fn write_cycle_loads<'c>(
    db: impl PgExecutor<'c>,
    changed: &[(&AgentStateRow, &AgentStateRow)],
    now: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    let next = |f: fn(&AgentStateRow) -> i32| changed.iter().map(|(n, _)| f(n)).collect::<Vec<_>>();
    let read = |f: fn(&AgentStateRow) -> i32| changed.iter().map(|(_, r)| f(r)).collect::<Vec<_>>();
    Ok(sqlx::query(
        "UPDATE routing.agent_state s SET used_units = d.u, active_items = d.i, profile_used = d.p, presence = d.pr, last_assigned_at = $6, \
         presence_changed_at = CASE WHEN s.presence <> d.pr THEN $6 ELSE s.presence_changed_at END \
         FROM UNNEST($1::uuid[], $2::int[], $3::int[], $4::jsonb[], $5::text[], $7::int[], $8::int[], $9::jsonb[], $10::text[], $11::text[]) \
           AS d(id, u, i, p, pr, ru, ri, rp, rpr, rc) \
         WHERE s.agent_id = d.id AND s.used_units = d.ru AND s.active_items = d.ri AND s.profile_used = d.rp \
           AND s.presence = d.rpr AND s.chosen_presence = d.rc",
    )
    .bind(changed.iter().map(|(n, _)| n.agent_id).collect::<Vec<_>>())
    .bind(next(|s| s.used_units))
    .bind(next(|s| s.active_items))
    .bind(changed.iter().map(|(n, _)| n.profile_used.clone()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(n, _)| n.presence.as_str()).collect::<Vec<_>>())
    .bind(now)
    .bind(read(|s| s.used_units))
    .bind(read(|s| s.active_items))
    .bind(changed.iter().map(|(_, r)| r.profile_used.clone()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.presence.as_str()).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.chosen_presence.as_str()).collect::<Vec<_>>())
    .execute(db)
    .await?
    .rows_affected())
}

/// The agent chose `presence` by hand (which ends a disconnect); false: no such agent.
pub async fn chose<'c>(db: impl PgExecutor<'c>, agent: AgentId, presence: Presence, now: OffsetDateTime) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE routing.agent_state SET presence = $2, chosen_presence = $2, presence_changed_at = $3, \
         disconnected_at = NULL, chosen_before_disconnect = NULL, disconnect_handled = false WHERE agent_id = $1",
    )
    .bind(agent)
    .bind(presence.as_str())
    .bind(now)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// The agent chose `chosen` (with a stream), and shows `presence`; a disconnect ends.
pub async fn chose_connected<'c>(
    db: impl PgExecutor<'c>,
    agent: AgentId,
    chosen: Presence,
    presence: Presence,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.agent_state SET chosen_presence = $2, presence = $3, \
         presence_changed_at = CASE WHEN presence <> $3 THEN $4 ELSE presence_changed_at END, \
         disconnected_at = NULL, chosen_before_disconnect = NULL, disconnect_handled = false WHERE agent_id = $1",
    )
    .bind(agent)
    .bind(chosen.as_str())
    .bind(presence.as_str())
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// The agent's last stream dropped: Offline now, their choice kept to restore.
pub async fn disconnected<'c>(db: impl PgExecutor<'c>, agent: AgentId, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routing.agent_state SET chosen_before_disconnect = chosen_presence, chosen_presence = 'offline', \
         presence = 'offline', presence_changed_at = CASE WHEN presence <> 'offline' THEN $2 ELSE presence_changed_at END, \
         disconnected_at = $2, disconnect_handled = false WHERE agent_id = $1",
    )
    .bind(agent)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Up to `limit` agents disconnected since `before` or earlier whose work is not yet released.
pub async fn disconnected_since<'c>(db: impl PgExecutor<'c>, before: OffsetDateTime, limit: i64) -> Result<Vec<AgentId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT agent_id FROM routing.agent_state WHERE disconnected_at <= $1 AND NOT disconnect_handled ORDER BY disconnected_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A disconnected agent's work was released (only if they are still away).
pub async fn disconnect_handled<'c>(db: impl PgExecutor<'c>, agent: AgentId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routing.agent_state SET disconnect_handled = true WHERE agent_id = $1 AND disconnected_at IS NOT NULL")
        .bind(agent)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks up to `limit` agents whose capacity day is before `today` (skipping locked ones).
pub async fn lock_past_day<'c>(db: impl PgExecutor<'c>, today: Date, limit: i64) -> Result<Vec<AgentStateRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing.agent_state WHERE profile_day < $1 ORDER BY agent_id FOR UPDATE SKIP LOCKED LIMIT $2")
        .bind(today)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// A new capacity day: the profiles' use as given, and the presence it leads to.
pub async fn new_day<'c>(db: impl PgExecutor<'c>, next: &AgentStateRow, today: Date, presence: Presence) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routing.agent_state SET profile_day = $2, profile_used = $3, presence = $4 WHERE agent_id = $1")
        .bind(next.agent_id)
        .bind(today)
        .bind(&next.profile_used)
        .bind(presence.as_str())
        .execute(db)
        .await?;
    Ok(())
}
