//! Routing's configuration objects (workstreams, queues, operating hours, skills, capacity
//! profiles, agents), kept in process. Intake, the assignment cycle, accepts and releases read
//! them all the time and they change rarely: before this cache they cost about 6.6 reads of
//! `routing.config` per inbound message (issue #16), each a jsonb value sent and parsed.
//!
//! Queue memberships (`routing.queue_members`) are kept too: they change only inside the
//! catalog's transactions that write `routing.config`.
//!
//! A trigger on `routing.config` NOTIFYs [`CHANNEL`] on any change; the rules by which a change
//! reaches every replica are those of `switchboard_storage::cache`. The catalog drops this
//! replica's copy right after it commits a change.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use switchboard_domain::routing::config::{CapacityProfileDef, Kind};
use switchboard_storage::cache::{Cache, Invalidation};
use uuid::Uuid;

use crate::error::RoutingError;

/// The channel the `routing.config` trigger notifies.
pub const CHANNEL: &str = "routing_config";

type Row = Option<Arc<(String, serde_json::Value)>>;
type Profiles = Arc<HashMap<Uuid, CapacityProfileDef>>;

/// The in-process cache of `routing.config`.
#[derive(Debug)]
pub struct ConfigCache {
    /// Drops this cache (after a local write), and listens for the others' changes.
    pub invalidation: Arc<Invalidation>,
    rows: Cache<(Kind, Uuid), Row>,
    profiles: Cache<(), Profiles>,
    memberships: Cache<Uuid, Arc<Vec<Uuid>>>,
}

impl Default for ConfigCache {
    fn default() -> Self {
        let invalidation = Invalidation::new(CHANNEL);
        Self {
            rows: Cache::new(invalidation.clone()),
            profiles: Cache::new(invalidation.clone()),
            memberships: Cache::new(invalidation.clone()),
            invalidation,
        }
    }
}

impl ConfigCache {
    /// Loads one definition: its name and its definition as `T`.
    pub async fn definition<T: DeserializeOwned>(
        &self,
        conn: &mut PgConnection,
        kind: Kind,
        id: impl Into<Uuid>,
    ) -> Result<Option<(String, T)>, RoutingError> {
        self.row(conn, kind, id.into()).await?.map(|row| typed(&row)).transpose()
    }

    /// One object's name (none when there is no such object).
    pub async fn name(&self, conn: &mut PgConnection, kind: Kind, id: Uuid) -> Result<Option<String>, RoutingError> {
        Ok(self.row(conn, kind, id).await?.map(|row| row.0.clone()))
    }

    /// One object's name if this replica has it cached (`Some(None)`: cached as absent), without
    /// a connection.
    pub fn cached_name(&self, kind: Kind, id: Uuid) -> Option<Option<String>> {
        let generation = self.rows.generation()?;
        self.rows.get(generation, &(kind, id)).map(|row| row.map(|r| r.0.clone()))
    }

    async fn row(&self, conn: &mut PgConnection, kind: Kind, id: Uuid) -> Result<Row, RoutingError> {
        self.rows
            .get_or_load((kind, id), || async {
                let row: Option<(String, serde_json::Value)> =
                    sqlx::query_as("SELECT name, definition FROM routing.config WHERE kind = $1 AND id = $2")
                        .bind(kind.as_str())
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                Ok::<_, RoutingError>(row.map(Arc::new))
            })
            .await
    }

    /// Loads several definitions of one kind (the ids that exist).
    pub async fn definitions<T: DeserializeOwned>(
        &self,
        conn: &mut PgConnection,
        kind: Kind,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (String, T)>, RoutingError> {
        let generation = self.rows.generation();
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match generation.and_then(|g| self.rows.get(g, &(kind, *id))) {
                Some(Some(row)) => {
                    found.insert(*id, row);
                }
                Some(None) => {}
                None => missing.push(*id),
            }
        }
        if !missing.is_empty() {
            let rows: Vec<(Uuid, String, serde_json::Value)> =
                sqlx::query_as("SELECT id, name, definition FROM routing.config WHERE kind = $1 AND id = ANY($2)")
                    .bind(kind.as_str())
                    .bind(&missing)
                    .fetch_all(&mut *conn)
                    .await?;
            let mut read: HashMap<Uuid, Row> = missing.iter().map(|id| (*id, None)).collect();
            for (id, name, def) in rows {
                let row = Arc::new((name, def));
                found.insert(id, row.clone());
                read.insert(id, Some(row));
            }
            if let Some(g) = generation {
                self.rows.keep(g, read.into_iter().map(|(id, row)| ((kind, id), row)));
            }
        }
        found.into_iter().map(|(id, row)| Ok((id, typed(&row)?))).collect()
    }

    /// Every capacity profile.
    pub async fn profiles(&self, conn: &mut PgConnection) -> Result<Profiles, RoutingError> {
        self.profiles
            .get_or_load((), || async {
                let rows: Vec<(Uuid, serde_json::Value)> =
                    sqlx::query_as("SELECT id, definition FROM routing.config WHERE kind = 'capacity_profile'")
                        .fetch_all(&mut *conn)
                        .await?;
                let profiles = rows
                    .into_iter()
                    .map(|(id, def)| Ok((id, serde_json::from_value(def).map_err(|e| RoutingError::Internal(e.into()))?)))
                    .collect::<Result<HashMap<_, _>, RoutingError>>()?;
                Ok(Arc::new(profiles))
            })
            .await
    }

    /// The queues agent `agent` is a member of. Memberships change only in the transactions that
    /// change a queue's or an agent's definition, so the `routing.config` trigger covers them.
    pub async fn agent_queues(&self, conn: &mut PgConnection, agent: impl Into<Uuid>) -> Result<Arc<Vec<Uuid>>, RoutingError> {
        let agent: Uuid = agent.into();
        self.memberships
            .get_or_load(agent, || async {
                let queues: Vec<Uuid> = sqlx::query_scalar("SELECT queue_id FROM routing.queue_members WHERE agent_id = $1")
                    .bind(agent)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok::<_, RoutingError>(Arc::new(queues))
            })
            .await
    }
}

fn typed<T: DeserializeOwned>(row: &(String, serde_json::Value)) -> Result<(String, T), RoutingError> {
    let def = T::deserialize(&row.1).map_err(|e| RoutingError::Internal(e.into()))?;
    Ok((row.0.clone(), def))
}
