//! API keys and roles. A key is `sb_` followed by 256 random bits (base64url); only its SHA-256
//! is stored, with a short prefix to tell keys apart. Verified keys are cached for
//! `key_cache_ttl_ms`; revoking a key drops it from this replica's cache at once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use switchboard_service_kit::ErrorCode;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Configures everything, manages keys.
    Admin,
    /// Watches queues and agents, assigns and transfers.
    Supervisor,
    /// Works the conversations offered or assigned to one agent.
    Agent,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
            Self::Agent => "agent",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        [Self::Admin, Self::Supervisor, Self::Agent].into_iter().find(|r| r.as_str() == raw)
    }
}

/// How a caller signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An API key (machines, the CLI).
    Key,
    /// A browser session of a user, with the CSRF token its state-changing requests carry.
    Session {
        /// The user signed in.
        user_id: Uuid,
        /// The session's CSRF token.
        csrf: Arc<str>,
    },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key used, or the browser session (its id).
    pub key_id: Uuid,
    /// A key or a session.
    pub via: Via,
    /// Its role.
    pub role: Role,
    /// The agent an agent key acts as.
    pub agent_id: Option<Uuid>,
    /// Queues a supervisor watches (empty: all).
    pub queue_ids: Vec<Uuid>,
}

impl Caller {
    /// Refuses callers below `role` (admin > supervisor > agent).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        let rank = |r: Role| match r {
            Role::Agent => 0,
            Role::Supervisor => 1,
            Role::Admin => 2,
        };
        if rank(self.role) >= rank(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The agent of an agent key; `403` for other keys.
    pub fn agent(&self) -> Result<Uuid, ApiError> {
        match (self.role, self.agent_id) {
            (Role::Agent, Some(id)) => Ok(id),
            _ => Err(ApiError::forbidden()),
        }
    }

    /// Whether a supervisor (or admin) sees `queue`.
    pub fn watches(&self, queue: Option<&str>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Supervisor => {
                self.queue_ids.is_empty()
                    || queue
                        .and_then(|q| Uuid::parse_str(q).ok())
                        .is_some_and(|q| self.queue_ids.contains(&q))
            }
            Role::Agent => false,
        }
    }
}

/// A stored key, as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct KeyInfo {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Role)]
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
    pub agent_id: Option<Uuid>,
    pub queue_ids: Vec<Uuid>,
    /// The key's first characters.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<time::OffsetDateTime>,
}

/// A role read from the database.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(transparent)]
pub struct RoleColumn(pub Role);

impl TryFrom<String> for RoleColumn {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Role::parse(&raw).map(Self).ok_or_else(|| format!("unknown role {raw}"))
    }
}

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewKey {
    /// Who or what uses it.
    pub name: String,
    pub role: Role,
    /// Required for agent keys: the agent it acts as.
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// Supervisor keys: the queues watched (empty: all).
    #[serde(default)]
    pub queue_ids: Vec<Uuid>,
}

/// A key just created: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The secret; store it now, it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

const BOOTSTRAP_NAME: &str = "bootstrap admin (SWITCHBOARD_ADMIN_API_KEY)";
const KEY_COLUMNS: &str = "id, name, role, agent_id, queue_ids, prefix, created_at, last_used_at, revoked_at";

fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Makes a fresh key.
pub fn generate() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::internal("the system random generator failed"))?;
    Ok(format!("sb_{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Key storage and verification.
pub struct Keys {
    pool: PgPool,
    cache: moka::future::Cache<Vec<u8>, Option<Arc<Caller>>>,
}

impl Keys {
    /// Keys in `pool`, verified ones cached for `ttl`.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            cache: moka::future::Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
        }
    }

    /// Makes `key` an admin key (the configured bootstrap key); an earlier bootstrap key that
    /// differs is revoked. A bootstrap key that was revoked stays revoked across restarts: it is
    /// never revived by being configured again (configure a new one). Returns whether `key` is
    /// usable.
    pub async fn ensure_bootstrap(&self, key: &SecretString) -> Result<bool, ApiError> {
        let hash = digest(key.expose_secret());
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE api.keys SET revoked_at = now() WHERE name = $1 AND hash <> $2 AND revoked_at IS NULL")
            .bind(BOOTSTRAP_NAME)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO api.keys (id, name, role, prefix, hash) VALUES ($1, $2, 'admin', $3, $4) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(BOOTSTRAP_NAME)
        .bind(prefix(key.expose_secret()))
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        let usable: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api.keys WHERE hash = $1 AND revoked_at IS NULL)")
            .bind(&hash)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.cache.invalidate_all();
        if !usable {
            tracing::warn!("the configured bootstrap admin key was revoked and stays revoked; configure a new one");
        }
        Ok(usable)
    }

    /// Whether any admin key exists.
    pub async fn any_admin(&self) -> Result<bool, ApiError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api.keys WHERE role = 'admin' AND revoked_at IS NULL)")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Returns what key `key_id` stands for now, read from the database (not the cache), or
    /// `None` once it is revoked. Open streams call this every few seconds.
    pub async fn current(&self, key_id: Uuid) -> Result<Option<Caller>, ApiError> {
        let row: Option<(String, Option<Uuid>, Vec<Uuid>)> =
            sqlx::query_as("SELECT role, agent_id, queue_ids FROM api.keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(role, agent_id, queue_ids)| {
            Some(Caller {
                key_id,
                via: Via::Key,
                role: Role::parse(&role)?,
                agent_id,
                queue_ids,
            })
        }))
    }

    /// Returns the caller a presented key stands for.
    pub async fn authenticate(&self, presented: &str) -> Result<Arc<Caller>, ApiError> {
        let unauthenticated = || {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "a valid API key is required (Authorization: Bearer sb_…)",
            )
        };
        if !presented.starts_with("sb_") || presented.len() > 128 {
            return Err(unauthenticated());
        }
        let hash = digest(presented);
        let pool = self.pool.clone();
        let lookup = hash.clone();
        let found = self
            .cache
            .try_get_with(hash, async move {
                let row: Option<(Uuid, String, Option<Uuid>, Vec<Uuid>)> = sqlx::query_as(
                    "UPDATE api.keys SET last_used_at = now() WHERE hash = $1 AND revoked_at IS NULL \
                     RETURNING id, role, agent_id, queue_ids",
                )
                .bind(lookup)
                .fetch_optional(&pool)
                .await?;
                Ok::<_, sqlx::Error>(row.and_then(|(key_id, role, agent_id, queue_ids)| {
                    Some(Arc::new(Caller {
                        key_id,
                        via: Via::Key,
                        role: Role::parse(&role)?,
                        agent_id,
                        queue_ids,
                    }))
                }))
            })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot look up an API key");
                ApiError::new(ErrorCode::Unavailable, "the key store is unavailable, retry shortly")
            })?;
        found.ok_or_else(unauthenticated)
    }

    /// Stores a new key; returns it with its secret.
    pub async fn create(&self, new: &NewKey) -> Result<CreatedKey, ApiError> {
        let name = new.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(ApiError::invalid("name must be 1 to 200 characters"));
        }
        check_grant(new.role, new.agent_id, &new.queue_ids, "keys")?;
        let key = generate()?;
        let info: KeyInfo = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api.keys (id, name, role, agent_id, queue_ids, prefix, hash) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(new.role.as_str())
        .bind(new.agent_id)
        .bind(&new.queue_ids)
        .bind(prefix(&key))
        .bind(digest(&key))
        .fetch_one(&self.pool)
        .await?;
        Ok(CreatedKey { key, info })
    }

    /// Lists keys, newest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, ApiError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api.keys ORDER BY created_at DESC, id DESC"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes a key.
    pub async fn revoke(&self, id: Uuid) -> Result<KeyInfo, ApiError> {
        let revoked: Option<(Vec<u8>,)> =
            sqlx::query_as("UPDATE api.keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING hash")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let (hash,) = revoked.ok_or_else(|| ApiError::not_found("API key"))?;
        self.cache.invalidate(&hash).await;
        let info = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api.keys WHERE id = $1")))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(info)
    }
}

/// What a key or a user may be granted: agents are one agent, only supervisors are limited
/// to queues; `what` names it in the error ("keys", "users").
pub fn check_grant(role: Role, agent_id: Option<Uuid>, queue_ids: &[Uuid], what: &str) -> Result<(), ApiError> {
    match (role, agent_id) {
        (Role::Agent, None) => Err(ApiError::invalid(format!("agent {what} need agent_id"))),
        (Role::Admin | Role::Supervisor, Some(_)) => Err(ApiError::invalid(format!("only agent {what} take agent_id"))),
        (Role::Admin | Role::Agent, _) if !queue_ids.is_empty() => Err(ApiError::invalid(format!("only supervisor {what} take queue_ids"))),
        _ => Ok(()),
    }
}

fn prefix(key: &str) -> String {
    key.chars().take(10).collect()
}

/// The key a request presents: `Authorization: Bearer <key>`, or for WebSocket clients (which
/// cannot set headers in browsers) a `Sec-WebSocket-Protocol` entry `bearer.<key>`.
pub fn presented_key(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, key) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim().to_owned());
    }
    parts
        .headers
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())?
        .split(',')
        .find_map(|p| p.trim().strip_prefix("bearer.").map(str::to_owned))
}

/// The client's address: the connection's peer, or behind a trusted proxy the address it
/// forwarded (`api.limits.trusted_proxies`); `None` when the server was not given peers.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

/// A caller with the admin role, checked before the request body is read (so a caller without
/// the role gets `403` whatever it sent).
pub struct AdminCaller(pub Caller);

/// A caller with the supervisor role or above, checked before the body is read.
pub struct SupervisorCaller(pub Caller);
