//! Routing configuration.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_service_kit::{ConfigError, Validate};

/// Embedded defaults (documented in `config.default.toml`).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Routing settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Postgres.
    pub database_url: SecretString,
    /// RabbitMQ.
    pub amqp_url: SecretString,
    /// Bus layout.
    #[serde(default)]
    pub bus: BusConfig,
    /// Mutual TLS between services (`[grpc_tls]`), off by default.
    #[serde(default)]
    pub grpc_tls: switchboard_service_kit::grpc::GrpcTls,
    /// Routing's own settings.
    pub routing: RoutingSettings,
}

/// The `[routing]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct RoutingSettings {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub session_url: String,
    pub db_max_connections: u32,
    pub cycle_batch: i64,
    pub scheduler_interval_ms: u64,
    pub event_concurrency: usize,
    pub outbox_batch: i64,
    pub outbox_poll_ms: u64,
    pub drain_timeout_ms: u64,
}

impl Config {
    /// Loads defaults → optional file → environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        switchboard_service_kit::load_config(DEFAULTS, file)
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        self.bus.check().map_err(|e| ConfigError::invalid("bus", e))?;
        self.grpc_tls.check()?;
        let r = &self.routing;
        if !(1..=1_000).contains(&r.cycle_batch) {
            return Err(ConfigError::invalid("routing.cycle_batch", "must be between 1 and 1000"));
        }
        if r.scheduler_interval_ms < 100 || r.event_concurrency == 0 || r.db_max_connections < 2 {
            return Err(ConfigError::invalid(
                "routing",
                "scheduler_interval_ms ≥ 100, event_concurrency ≥ 1, db_max_connections ≥ 2",
            ));
        }
        Ok(())
    }
}
