//! Sender configuration.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_service_kit::{ConfigError, Validate};

/// Embedded defaults (documented in `config.default.toml`).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Sender settings.
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
    /// Sender's own settings.
    pub sender: SenderSettings,
}

/// The `[sender]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct SenderSettings {
    pub http_listen: SocketAddr,
    /// PostgreSQL connections (sends in flight each hold one briefly).
    #[serde(default = "default_db_max_connections")]
    pub db_max_connections: u32,
    pub session_url: String,
    /// Session's `ChannelDirectory` when it listens on a port of its own; empty: `session_url`.
    #[serde(default)]
    pub directory_url: String,
    pub twilio_api_base: String,
    pub twilio_content_base: String,
    pub twilio_messaging_base: String,
    pub concurrency: usize,
    pub default_rate_per_second: f64,
    pub rate_safety: f64,
    pub max_rate_wait_ms: u64,
    pub request_timeout_ms: u64,
    pub http_retries: u32,
    pub retry_base_ms: u64,
    pub max_retry_after_ms: u64,
    pub template_sync_interval_secs: u64,
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
        let s = &self.sender;
        if s.concurrency == 0 {
            return Err(ConfigError::invalid("sender.concurrency", "must be at least 1"));
        }
        if !(s.default_rate_per_second > 0.0 && s.default_rate_per_second <= 400.0) {
            return Err(ConfigError::invalid(
                "sender.default_rate_per_second",
                "must be above 0 and at most 400",
            ));
        }
        if !(s.rate_safety > 0.5 && s.rate_safety <= 1.0) {
            return Err(ConfigError::invalid("sender.rate_safety", "must be between 0.5 and 1"));
        }
        for (key, url) in [
            ("sender.twilio_api_base", &s.twilio_api_base),
            ("sender.twilio_content_base", &s.twilio_content_base),
            ("sender.twilio_messaging_base", &s.twilio_messaging_base),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::invalid(key, "must be an http(s):// URL"));
            }
        }
        Ok(())
    }
}

fn default_db_max_connections() -> u32 {
    32
}

impl SenderSettings {
    /// Where session's `ChannelDirectory` is.
    pub fn directory(&self) -> &str {
        if self.directory_url.is_empty() {
            &self.session_url
        } else {
            &self.directory_url
        }
    }
}
