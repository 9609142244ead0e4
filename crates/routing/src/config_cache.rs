//! Routing's configuration objects (workstreams, queues, operating hours, skills, capacity
//! profiles, agents), kept in process. Intake, the assignment cycle, accepts and releases read
//! them all the time and they change rarely: before this cache they cost about 4.5 reads of
//! `routing.config` per inbound message (issue #16), each a jsonb value sent and parsed.
//!
//! How a change reaches every replica:
//! - any change to `routing.config` (any replica, any statement, psql included) fires a
//!   statement-level trigger that `pg_notify`s `routing_config`; every replica LISTENs, and a
//!   notification drops its whole cache (changes are rare: dropping everything keeps it simple);
//! - the replica that made a change drops its own cache right after the commit, so what it does
//!   next (the cycle the change asks for) reads the change without waiting for the notification;
//! - a read that began before a drop never fills the cache: each entry carries the generation it
//!   was read in, and an entry of an older generation is a miss;
//! - while the listener is not connected (start-up, a lost connection) the cache is off and every
//!   read goes to PostgreSQL; a reconnect starts a new generation, since notifications sent in
//!   between were lost.
//!
//! Other replicas see a change once its notification arrives (a few milliseconds after the
//! commit); reads inside the transaction that writes the configuration do not go through here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use switchboard_domain::routing::config::{CapacityProfileDef, Kind};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::RoutingError;

/// The channel the `routing.config` trigger notifies.
pub const CHANNEL: &str = "routing_config";

type Row = Option<Arc<(String, serde_json::Value)>>;
type Profiles = Arc<HashMap<Uuid, CapacityProfileDef>>;

/// The in-process cache of `routing.config`.
#[derive(Debug, Default)]
pub struct ConfigCache {
    generation: AtomicU64,
    listening: AtomicBool,
    rows: RwLock<HashMap<(Kind, Uuid), (u64, Row)>>,
    profiles: RwLock<Option<(u64, Profiles)>>,
}

impl ConfigCache {
    /// Drops every entry: what is read next comes from PostgreSQL.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut rows) = self.rows.write() {
            rows.clear();
        }
        if let Ok(mut profiles) = self.profiles.write() {
            *profiles = None;
        }
    }

    /// Whether the cache is on: its listener is connected.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The generation to read under, or `None` while the cache is off.
    fn current(&self) -> Option<u64> {
        self.listening
            .load(Ordering::Acquire)
            .then(|| self.generation.load(Ordering::Acquire))
    }

    fn cached(&self, kind: Kind, id: Uuid, generation: u64) -> Option<Row> {
        let rows = self.rows.read().ok()?;
        rows.get(&(kind, id)).filter(|(g, _)| *g == generation).map(|(_, row)| row.clone())
    }

    fn keep(&self, generation: u64, found: impl IntoIterator<Item = ((Kind, Uuid), Row)>) {
        // Checked under the write lock: an invalidation that raced the read has already bumped
        // the generation, and the rows it read may predate the change.
        if let Ok(mut rows) = self.rows.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            rows.extend(found.into_iter().map(|(key, row)| (key, (generation, row))));
        }
    }

    /// Loads one definition: its name and its definition as `T`.
    pub async fn definition<T: DeserializeOwned>(
        &self,
        conn: &mut PgConnection,
        kind: Kind,
        id: Uuid,
    ) -> Result<Option<(String, T)>, RoutingError> {
        let generation = self.current();
        let row = match generation.and_then(|g| self.cached(kind, id, g)) {
            Some(row) => row,
            None => {
                let row: Option<(String, serde_json::Value)> =
                    sqlx::query_as("SELECT name, definition FROM routing.config WHERE kind = $1 AND id = $2")
                        .bind(kind.as_str())
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let row = row.map(Arc::new);
                if let Some(g) = generation {
                    self.keep(g, [((kind, id), row.clone())]);
                }
                row
            }
        };
        row.map(|row| typed(&row)).transpose()
    }

    /// Loads several definitions of one kind (the ids that exist).
    pub async fn definitions<T: DeserializeOwned>(
        &self,
        conn: &mut PgConnection,
        kind: Kind,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (String, T)>, RoutingError> {
        let generation = self.current();
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match generation.and_then(|g| self.cached(kind, *id, g)) {
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
                self.keep(g, read.into_iter().map(|(id, row)| ((kind, id), row)));
            }
        }
        found.into_iter().map(|(id, row)| Ok((id, typed(&row)?))).collect()
    }

    /// Every capacity profile.
    pub async fn profiles(&self, conn: &mut PgConnection) -> Result<Profiles, RoutingError> {
        let generation = self.current();
        if let Some(g) = generation
            && let Ok(profiles) = self.profiles.read()
            && let Some((at, profiles)) = profiles.as_ref()
            && *at == g
        {
            return Ok(profiles.clone());
        }
        let rows: Vec<(Uuid, serde_json::Value)> =
            sqlx::query_as("SELECT id, definition FROM routing.config WHERE kind = 'capacity_profile'")
                .fetch_all(&mut *conn)
                .await?;
        let profiles = Arc::new(
            rows.into_iter()
                .map(|(id, def)| Ok((id, serde_json::from_value(def).map_err(|e| RoutingError::Internal(e.into()))?)))
                .collect::<Result<HashMap<_, _>, RoutingError>>()?,
        );
        if let Some(g) = generation
            && let Ok(mut slot) = self.profiles.write()
            && self.generation.load(Ordering::Acquire) == g
        {
            *slot = Some((g, profiles.clone()));
        }
        Ok(profiles)
    }

    /// Listens for changes until `shutdown`: the cache is on only while the listener is
    /// connected, and each (re)connection starts a new generation.
    pub async fn listen(self: Arc<Self>, pool: PgPool, shutdown: CancellationToken) {
        let mut retry = Duration::from_millis(100);
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.eager_reconnect(false);
                listener.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                () = shutdown.cancelled() => return,
                result = connected => match result {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for routing configuration changes; reading it from PostgreSQL each time");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            retry = Duration::from_millis(100);
            self.invalidate();
            self.listening.store(true, Ordering::Release);
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(_)) => self.invalidate(),
                    // The connection was lost: notifications may be lost with it.
                    Ok(None) | Err(_) => {
                        self.listening.store(false, Ordering::Release);
                        self.invalidate();
                        break;
                    }
                }
            }
        }
    }
}

fn typed<T: DeserializeOwned>(row: &(String, serde_json::Value)) -> Result<(String, T), RoutingError> {
    let def = T::deserialize(&row.1).map_err(|e| RoutingError::Internal(e.into()))?;
    Ok((row.0.clone(), def))
}
