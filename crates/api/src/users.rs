//! People who sign in to the web desk, and their server-side browser sessions.
//!
//! A password is stored as an argon2id hash (PHC string). An admin invites a user or resets
//! their password by handing them a one-time setup token (its SHA-256 is stored); the user
//! chooses the password with it. Signing in makes a session: the cookie carries 256 random
//! bits (only their SHA-256 is stored) and the session a CSRF token, which every state-changing
//! request must send back as `X-CSRF-Token`. A session acts with the user's role and agent, so
//! the access rules are the API keys' own.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use switchboard_service_kit::ErrorCode;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Caller, Role, RoleColumn, Via};
use crate::error::ApiError;

/// A user, as listed (never a password or token).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = Role)]
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
    /// The agent record an agent user is.
    pub agent_id: Option<Uuid>,
    /// Queues a supervisor watches (empty: all).
    pub queue_ids: Vec<Uuid>,
    /// Whether the user has chosen a password (an invitation not yet accepted: false).
    pub active: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// A user to invite.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Required for agents: the agent record they are.
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// Supervisors: the queues watched (empty: all).
    #[serde(default)]
    pub queue_ids: Vec<Uuid>,
}

/// A change to a user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Option<String>,
    /// Supervisors: the queues watched.
    #[serde(default)]
    pub queue_ids: Option<Vec<Uuid>>,
    /// Disable (signs the user out everywhere) or enable again.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A one-time setup token (invitation or reset), shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupToken {
    pub user: User,
    /// Give it to the user: with it they choose their password (`POST /auth/setup`).
    pub setup_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

/// A signed-in session, as the browser sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignedIn {
    pub user: User,
    /// Send it as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
}

const USER_COLUMNS: &str = "id, email, name, role, agent_id, queue_ids, password_hash IS NOT NULL AS active, disabled_at, created_at";
/// The shortest and longest password accepted.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=256;

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn wrong_credentials() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, "wrong email or password")
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::invalid("password must be 12 to 256 characters"))
    }
}

async fn hash_password(password: String) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| ApiError::internal("the system random generator failed"))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&bytes).map_err(|e| ApiError::internal(format!("cannot make a salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("cannot hash a password: {e}")))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks `password` against `stored` (a PHC string); a missing user is checked against a
/// throwaway hash so that the answer takes as long either way.
async fn verify_password(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let dummy = DUMMY.get_or_init(|| {
            SaltString::encode_b64(b"switchboard-dummy")
                .ok()
                .and_then(|salt| {
                    Argon2::default()
                        .hash_password(b"not anyone's password", &salt)
                        .ok()
                        .map(|h| h.to_string())
                })
                .unwrap_or_default()
        });
        let (hash, real) = match &stored {
            Some(h) => (h.as_str(), true),
            None => (dummy.as_str(), false),
        };
        let parsed = PasswordHash::new(hash).map_err(|e| ApiError::internal(format!("a stored password hash is malformed: {e}")))?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(real && ok)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Users and their sessions in the `api` schema.
pub struct Users {
    pool: PgPool,
    session_ttl: Duration,
    setup_ttl: Duration,
    cache: moka::future::Cache<Vec<u8>, Option<Arc<Caller>>>,
}

impl Users {
    /// Users in `pool`; sessions last `session_ttl` from their last use, setup tokens
    /// `setup_ttl`; a verified session is cached for `cache_ttl`.
    pub fn new(pool: PgPool, session_ttl: Duration, setup_ttl: Duration, cache_ttl: Duration) -> Self {
        Self {
            pool,
            session_ttl,
            setup_ttl,
            cache: moka::future::Cache::builder().max_capacity(100_000).time_to_live(cache_ttl).build(),
        }
    }

    /// How long a session lasts from its last use.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// Lists users by email.
    pub async fn list(&self) -> Result<Vec<User>, ApiError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM api.users ORDER BY lower(email)"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get(&self, id: Uuid) -> Result<User, ApiError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM api.users WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))
    }

    fn new_setup(&self) -> Result<(String, time::OffsetDateTime), ApiError> {
        let token = crate::auth::generate()?.replacen("sb_", "sbs_", 1);
        let expires = time::OffsetDateTime::now_utc() + self.setup_ttl;
        Ok((token, expires))
    }

    /// Invites a user: stores them without a password and returns their setup token.
    pub async fn invite(&self, new: &NewUser) -> Result<SetupToken, ApiError> {
        let email = new.email.trim();
        let name = new.name.trim();
        if !(3..=254).contains(&email.len()) || !email.contains('@') || email.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid("email must be an address like ana@example.com"));
        }
        if name.is_empty() || name.len() > 200 {
            return Err(ApiError::invalid("name must be 1 to 200 characters"));
        }
        crate::auth::check_grant(new.role, new.agent_id, &new.queue_ids, "users")?;
        let (token, expires_at) = self.new_setup()?;
        let user: User = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api.users (id, email, name, role, agent_id, queue_ids, setup_token_hash, setup_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(email)
        .bind(name)
        .bind(new.role.as_str())
        .bind(new.agent_id)
        .bind(&new.queue_ids)
        .bind(digest(&token))
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some("users_email") => {
                ApiError::new(ErrorCode::AlreadyExists, "a user with this email exists")
            }
            sqlx::Error::Database(db) if db.constraint() == Some("users_agent") => {
                ApiError::new(ErrorCode::AlreadyExists, "another user is already this agent")
            }
            _ => ApiError::from(e),
        })?;
        Ok(SetupToken {
            user,
            setup_token: token,
            expires_at,
        })
    }

    /// Changes a user; disabling one ends their sessions.
    pub async fn update(&self, id: Uuid, patch: &UserPatch) -> Result<User, ApiError> {
        let current = self.get(id).await?;
        if let Some(name) = &patch.name
            && (name.trim().is_empty() || name.len() > 200)
        {
            return Err(ApiError::invalid("name must be 1 to 200 characters"));
        }
        if patch.queue_ids.as_ref().is_some_and(|q| !q.is_empty()) && current.role.0 != Role::Supervisor {
            return Err(ApiError::invalid("only supervisors take queue_ids"));
        }
        let mut tx = self.pool.begin().await?;
        let user: User = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE api.users SET name = COALESCE($2, name), queue_ids = COALESCE($3, queue_ids), \
             disabled_at = CASE WHEN $4 IS NULL THEN disabled_at WHEN $4 THEN COALESCE(disabled_at, now()) ELSE NULL END, \
             updated_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}"
        )))
        .bind(id)
        .bind(patch.name.as_deref().map(str::trim))
        .bind(patch.queue_ids.as_ref())
        .bind(patch.disabled)
        .fetch_one(&mut *tx)
        .await?;
        if patch.disabled == Some(true) || patch.queue_ids.is_some() {
            self.end_sessions(&mut tx, id, None).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Resets a user's password: the old one stops working, every session ends, and a new
    /// setup token is returned.
    pub async fn reset(&self, id: Uuid) -> Result<SetupToken, ApiError> {
        let (token, expires_at) = self.new_setup()?;
        let mut tx = self.pool.begin().await?;
        let user: Option<User> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE api.users SET password_hash = NULL, setup_token_hash = $2, setup_expires_at = $3, updated_at = now() \
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        )))
        .bind(id)
        .bind(digest(&token))
        .bind(expires_at)
        .fetch_optional(&mut *tx)
        .await?;
        let user = user.ok_or_else(|| ApiError::not_found("user"))?;
        self.end_sessions(&mut tx, id, None).await?;
        tx.commit().await?;
        Ok(SetupToken {
            user,
            setup_token: token,
            expires_at,
        })
    }

    /// Sets the password of the user a valid setup token belongs to; the token is spent.
    pub async fn setup(&self, token: &str, password: &str) -> Result<(), ApiError> {
        check_password(password)?;
        let hash = hash_password(password.to_owned()).await?;
        let done = sqlx::query(
            "UPDATE api.users SET password_hash = $2, setup_token_hash = NULL, setup_expires_at = NULL, updated_at = now() \
             WHERE setup_token_hash = $1 AND setup_expires_at > now() AND disabled_at IS NULL",
        )
        .bind(digest(token))
        .bind(hash)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "this setup link is not valid any more; ask an admin for a new one",
            ))
        }
    }

    /// Signs in: returns the cookie's token and the session.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<(String, SignedIn), ApiError> {
        if password.len() > 1024 {
            return Err(wrong_credentials());
        }
        let found: Option<(Uuid, Option<String>)> =
            sqlx::query_as("SELECT id, password_hash FROM api.users WHERE lower(email) = lower($1) AND disabled_at IS NULL")
                .bind(email.trim())
                .fetch_optional(&self.pool)
                .await?;
        let (id, stored) = found.map_or((None, None), |(id, h)| (Some(id), h));
        if !verify_password(password.to_owned(), stored).await? {
            return Err(wrong_credentials());
        }
        let id = id.ok_or_else(wrong_credentials)?;
        let token = crate::auth::generate()?;
        let csrf = crate::auth::generate()?.replacen("sb_", "", 1);
        sqlx::query("INSERT INTO api.web_sessions (id, token_hash, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(Uuid::now_v7())
            .bind(digest(&token))
            .bind(id)
            .bind(&csrf)
            .bind(time::OffsetDateTime::now_utc() + self.session_ttl)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM api.web_sessions WHERE user_id = $1 AND expires_at < now()")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok((
            token,
            SignedIn {
                user: self.get(id).await?,
                csrf_token: csrf,
            },
        ))
    }

    /// The caller a session cookie stands for (sliding its expiry), or `None`.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Arc<Caller>>, ApiError> {
        if token.len() > 128 {
            return Ok(None);
        }
        let pool = self.pool.clone();
        let ttl = self.session_ttl;
        let hash = digest(token);
        let lookup = hash.clone();
        self.cache
            .try_get_with(hash, async move {
                let row: Option<SessionRow> = sqlx::query_as(
                    "UPDATE api.web_sessions s SET last_seen_at = now(), expires_at = now() + make_interval(secs => $2) \
                     FROM api.users u WHERE s.token_hash = $1 AND s.expires_at > now() AND u.id = s.user_id \
                     AND u.disabled_at IS NULL AND u.password_hash IS NOT NULL \
                     RETURNING s.id, s.csrf_token, u.id AS user_id, u.role, u.agent_id, u.queue_ids",
                )
                .bind(lookup)
                .bind(ttl.as_secs_f64())
                .fetch_optional(&pool)
                .await?;
                Ok::<_, sqlx::Error>(row.and_then(SessionRow::caller).map(Arc::new))
            })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot look up a session");
                ApiError::new(ErrorCode::Unavailable, "the session store is unavailable, retry shortly")
            })
    }

    /// What session `session_id` stands for now (not cached), or `None` once it ended.
    pub async fn current(&self, session_id: Uuid) -> Result<Option<Caller>, ApiError> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT s.id, s.csrf_token, u.id AS user_id, u.role, u.agent_id, u.queue_ids \
             FROM api.web_sessions s JOIN api.users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.expires_at > now() AND u.disabled_at IS NULL AND u.password_hash IS NOT NULL",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(SessionRow::caller))
    }

    /// The signed-in user of `session_id`, with its CSRF token.
    pub async fn me(&self, caller: &Caller) -> Result<SignedIn, ApiError> {
        let Via::Session { user_id, csrf } = &caller.via else {
            return Err(ApiError::new(
                ErrorCode::FailedPrecondition,
                "this request is not signed in with a session",
            ));
        };
        Ok(SignedIn {
            user: self.get(*user_id).await?,
            csrf_token: csrf.to_string(),
        })
    }

    /// Ends one session.
    pub async fn sign_out(&self, session_id: Uuid, token: Option<&str>) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM api.web_sessions WHERE id = $1")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        if let Some(token) = token {
            self.cache.invalidate(&digest(token)).await;
        }
        Ok(())
    }

    /// Changes the signed-in user's password; their other sessions end.
    pub async fn change_password(&self, caller: &Caller, current: &str, new: &str) -> Result<(), ApiError> {
        let Via::Session { user_id, .. } = &caller.via else {
            return Err(ApiError::new(ErrorCode::FailedPrecondition, "sign in to change your password"));
        };
        check_password(new)?;
        let stored: Option<String> = sqlx::query_scalar("SELECT password_hash FROM api.users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .flatten();
        if !verify_password(current.to_owned(), stored).await? {
            return Err(ApiError::new(ErrorCode::PermissionDenied, "the current password is wrong"));
        }
        let hash = hash_password(new.to_owned()).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE api.users SET password_hash = $2, updated_at = now() WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        self.end_sessions(&mut tx, *user_id, Some(caller.key_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn end_sessions(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        user_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM api.web_sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2")
            .bind(user_id)
            .bind(keep)
            .execute(&mut **tx)
            .await?;
        // Other cached sessions of this user stop within the cache's ttl; this replica's now.
        self.cache.invalidate_all();
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    csrf_token: String,
    user_id: Uuid,
    role: String,
    agent_id: Option<Uuid>,
    queue_ids: Vec<Uuid>,
}

impl SessionRow {
    fn caller(self) -> Option<Caller> {
        Some(Caller {
            key_id: self.id,
            role: Role::parse(&self.role)?,
            agent_id: self.agent_id,
            queue_ids: self.queue_ids,
            via: Via::Session {
                user_id: self.user_id,
                csrf: self.csrf_token.into(),
            },
        })
    }
}
