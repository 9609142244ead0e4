//! Postgres for Switchboard: the connection pool, the embedded migrations, one mapping from
//! `sqlx::Error` to [`StorageError`], and the transactional [`outbox`].

pub mod cache;
pub mod leases;
pub mod outbox;
pub mod roles;
pub mod singleton;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub use sqlx;

/// Every migration in the top-level `migrations/` directory, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Opens a pool of at most `max_connections` to `url`.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StorageError> {
    Ok(pool_options(max_connections).connect_with(connect_options(url)?).await?)
}

/// Like [`connect`], but connects on first use: for a service that must start and keep working
/// while PostgreSQL is down (ingress's journal).
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<PgPool, StorageError> {
    Ok(pool_options(max_connections).connect_lazy_with(connect_options(url)?))
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StorageError> {
    // PostgreSQL's default plan cache: a prepared statement keeps a generic plan after five runs,
    // so it is planned once per connection, not at every execution (planning the status batch's
    // lookup alone takes ~1.5 ms). That is safe because the hot lookups' indexes lead with the
    // looked-up value: a generic plan made while a table was nearly empty once scanned a whole
    // channel per message, when those indexes were led by the channel. A test keeps them so
    // (`crates/session/tests/it/plans.rs`), and an ANALYZE of a grown table re-plans anyway.
    Ok(url.parse::<PgConnectOptions>()?.log_statements(tracing::log::LevelFilter::Trace))
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
}

/// A storage failure, with the Postgres error codes callers care about told apart.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No row matched.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("already exists ({constraint})")]
    AlreadyExists {
        /// The constraint that refused it.
        constraint: String,
    },
    /// A foreign key refused the write (the referenced row is missing, or still referenced).
    #[error("a referenced row is missing or still in use ({constraint})")]
    ForeignKey {
        /// The constraint that refused it.
        constraint: String,
    },
    /// A check constraint refused the write.
    #[error("a value breaks rule {constraint}")]
    Check {
        /// The constraint that refused it.
        constraint: String,
    },
    /// A concurrent transaction won (serialization failure or deadlock); retrying may succeed.
    #[error("concurrent update, retry")]
    Conflict,
    /// The database cannot hold a value as given (SQLSTATE class 22, data exception: a NUL
    /// byte, a number out of range, text longer than its column). Trying again cannot succeed.
    #[error("a value cannot be stored: {0}")]
    Unstorable(String),
    /// The database cannot be reached or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl StorageError {
    /// Returns whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Conflict | Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable(error.to_string())
            }
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or_default().to_owned();
                match db.code().as_deref() {
                    Some("23505") => Self::AlreadyExists { constraint },
                    Some("23503") => Self::ForeignKey { constraint },
                    Some("23514") => Self::Check { constraint },
                    Some("40001" | "40P01") => Self::Conflict,
                    Some(code) if code.starts_with("22") => Self::Unstorable(db.message().to_owned()),
                    // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
                    Some("57P01" | "57P02" | "57P03" | "53300") => Self::Unavailable(error.to_string()),
                    _ => Self::Database(error),
                }
            }
            _ => Self::Database(error),
        }
    }
}
