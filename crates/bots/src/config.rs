//! Bots service configuration.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_service_kit::{ConfigError, Validate};

/// Embedded defaults (documented in `config.default.toml`).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Bots service settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// RabbitMQ.
    pub amqp_url: SecretString,
    /// Bus layout.
    #[serde(default)]
    pub bus: BusConfig,
    /// Mutual TLS between services (`[grpc_tls]`), off by default.
    #[serde(default)]
    pub grpc_tls: switchboard_service_kit::grpc::GrpcTls,
    /// The service's own settings.
    pub bots: BotsSettings,
}

/// The `[bots]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct BotsSettings {
    pub http_listen: SocketAddr,
    pub session_url: String,
    /// Session's `ChannelDirectory` when it listens on a port of its own; empty: `session_url`.
    #[serde(default)]
    pub directory_url: String,
    pub routing_url: String,
    pub concurrency: usize,
    pub retry_base_ms: u64,
    pub drain_timeout_ms: u64,
    /// Let bot endpoints on the loopback interface be called (development bots).
    #[serde(default)]
    pub allow_loopback_endpoints: bool,
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
        let b = &self.bots;
        if !(1..=1024).contains(&b.concurrency) {
            return Err(ConfigError::invalid("bots.concurrency", "must be between 1 and 1024"));
        }
        for (key, url) in [
            ("bots.session_url", b.session_url.as_str()),
            ("bots.directory_url", b.directory()),
            ("bots.routing_url", b.routing_url.as_str()),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(key, "must be an http(s):// URL"));
            }
        }
        Ok(())
    }
}

impl BotsSettings {
    /// Where session's `ChannelDirectory` is.
    pub fn directory(&self) -> &str {
        if self.directory_url.is_empty() {
            &self.session_url
        } else {
            &self.directory_url
        }
    }
}
