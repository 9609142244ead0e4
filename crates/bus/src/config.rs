//! Bus settings (the AMQP URL is passed separately, as a secret).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the bus is laid out and how patient it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BusConfig {
    /// Prefix of every exchange and queue name (`switchboard` → `switchboard.events`).
    pub namespace: String,
    /// Number of per-customer ordering shards for inbound messages.
    pub shards: u16,
    /// Deliveries a consumer may hold unacknowledged.
    pub prefetch: u16,
    /// How long a publisher waits for the broker's confirm.
    pub confirm_timeout_ms: u64,
    /// How long a connection attempt may take.
    pub connect_timeout_ms: u64,
    /// Backoff delays between attempts of a failing message, in milliseconds.
    pub retry_delays_ms: Vec<u64>,
    /// Attempts (the first included) before a message is dead-lettered.
    pub max_attempts: u32,
    /// Longest pause between reconnection attempts.
    pub reconnect_max_backoff_ms: u64,
    /// Declare the topology at start (the default). Off, a service only checks that it exists,
    /// so its broker user needs no configure permission: `switchboard migrate --amqp-url`
    /// declares it once per rollout, as an administrator (see [`crate::Topology::permissions`]).
    pub declare: bool,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            namespace: "switchboard".into(),
            shards: 8,
            prefetch: 64,
            confirm_timeout_ms: 5_000,
            connect_timeout_ms: 3_000,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            max_attempts: 6,
            reconnect_max_backoff_ms: 5_000,
            declare: true,
        }
    }
}

impl BusConfig {
    /// Returns the first rule the settings break.
    pub fn check(&self) -> Result<(), String> {
        if self.namespace.is_empty() || !self.namespace.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("bus.namespace must be non-empty ASCII letters, digits, '-' or '_'".into());
        }
        if self.shards == 0 || self.shards > 1024 {
            return Err("bus.shards must be between 1 and 1024".into());
        }
        if self.prefetch == 0 {
            return Err("bus.prefetch must be above 0".into());
        }
        if self.max_attempts == 0 {
            return Err("bus.max_attempts must be at least 1".into());
        }
        if self.retry_delays_ms.is_empty() || self.retry_delays_ms.contains(&0) {
            return Err("bus.retry_delays_ms must list at least one delay above 0".into());
        }
        Ok(())
    }

    /// Returns the confirm deadline.
    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.confirm_timeout_ms)
    }

    /// Returns the connect deadline.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}
