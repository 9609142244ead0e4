//! Ingress configuration.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_service_kit::{ConfigError, Validate};

/// Embedded defaults (documented in `config.default.toml`).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Ingress settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The public base URL Twilio calls.
    pub public_base_url: String,
    /// The broker.
    pub amqp_url: SecretString,
    /// PostgreSQL (the webhook journal).
    pub database_url: SecretString,
    /// Bus layout.
    #[serde(default)]
    pub bus: BusConfig,
    /// Mutual TLS between services (`[grpc_tls]`), off by default.
    #[serde(default)]
    pub grpc_tls: switchboard_service_kit::grpc::GrpcTls,
    /// Ingress's own settings.
    pub ingress: IngressSettings,
}

/// The `[ingress]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct IngressSettings {
    pub listen: SocketAddr,
    pub session_url: String,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub channel_cache_ttl_ms: u64,
    pub channel_stale_ttl_ms: u64,
    pub grpc_timeout_ms: u64,
    pub drain_timeout_ms: u64,
    pub admin_listen: SocketAddr,
    pub journal: JournalSettings,
}

/// The `[ingress.journal]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct JournalSettings {
    pub enabled: bool,
    pub retention_hours: u64,
    pub queue_capacity: usize,
    pub db_max_connections: u32,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_hours: 168,
            queue_capacity: 20_000,
            db_max_connections: 4,
        }
    }
}

impl Config {
    /// Loads defaults → optional file → environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        switchboard_service_kit::load_config(DEFAULTS, file)
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let base = &self.public_base_url;
        if !(base.starts_with("https://") || base.starts_with("http://")) || base.ends_with('/') {
            return Err(ConfigError::invalid(
                "public_base_url",
                "must be an http(s):// URL without a trailing slash",
            ));
        }
        if base.contains('?') || base.contains('#') {
            return Err(ConfigError::invalid("public_base_url", "must not carry a query or fragment"));
        }
        self.bus.check().map_err(|e| ConfigError::invalid("bus", e))?;
        self.grpc_tls.check()?;
        let s = &self.ingress;
        if s.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid("ingress.body_limit_bytes", "must be at least 1024"));
        }
        if s.request_timeout_ms == 0 || s.request_timeout_ms >= 15_000 {
            return Err(ConfigError::invalid(
                "ingress.request_timeout_ms",
                "must be between 1 and 14999 (Twilio waits 15 s)",
            ));
        }
        if s.channel_stale_ttl_ms < s.channel_cache_ttl_ms {
            return Err(ConfigError::invalid(
                "ingress.channel_stale_ttl_ms",
                "must not be shorter than channel_cache_ttl_ms",
            ));
        }
        if s.journal.enabled && (s.journal.retention_hours == 0 || s.journal.queue_capacity == 0 || s.journal.db_max_connections == 0) {
            return Err(ConfigError::invalid(
                "ingress.journal",
                "retention_hours, queue_capacity and db_max_connections must be at least 1",
            ));
        }
        Ok(())
    }
}
