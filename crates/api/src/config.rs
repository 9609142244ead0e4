//! API configuration.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_service_kit::{ConfigError, Validate};

/// Embedded defaults (documented in `config.default.toml`).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// API settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Postgres (schema `api`).
    pub database_url: SecretString,
    /// RabbitMQ.
    pub amqp_url: SecretString,
    /// Bus layout.
    #[serde(default)]
    pub bus: BusConfig,
    /// Mutual TLS between services (`[grpc_tls]`), off by default.
    #[serde(default)]
    pub grpc_tls: switchboard_service_kit::grpc::GrpcTls,
    /// A key that is always an admin key (`SWITCHBOARD_ADMIN_API_KEY`).
    #[serde(default)]
    pub admin_api_key: Option<SecretString>,
    /// The API's own settings.
    pub api: ApiSettings,
}

/// The `[api]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct ApiSettings {
    pub listen: SocketAddr,
    pub session_url: String,
    pub routing_url: String,
    pub ingress_url: String,
    pub db_max_connections: u32,
    pub key_cache_ttl_ms: u64,
    pub grpc_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    pub stream_retention_secs: u64,
    pub stream_buffer: usize,
    pub stream_resume_max: i64,
    pub drain_timeout_ms: u64,
    /// Request limits (`[api.limits]`).
    #[serde(default)]
    pub limits: crate::limits::LimitSettings,
    /// Browser sign-in (`[api.web]`).
    #[serde(default)]
    pub web: WebSettings,
}

/// The `[api.web]` section: users' browser sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebSettings {
    /// A session ends after this many hours without a request.
    pub session_hours: u64,
    /// An invitation or password-reset link works for this many hours.
    pub setup_hours: u64,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            session_hours: 12,
            setup_hours: 72,
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
        self.bus.check().map_err(|e| ConfigError::invalid("bus", e))?;
        self.grpc_tls.check()?;
        if let Some(key) = &self.admin_api_key {
            use secrecy::ExposeSecret;
            let key = key.expose_secret();
            if key.len() < 32 || key.len() > 128 || !key.starts_with("sb_") {
                return Err(ConfigError::invalid(
                    "admin_api_key",
                    "must start with sb_ and be 32 to 128 characters long",
                ));
            }
        }
        let a = &self.api;
        for (key, url) in [
            ("api.session_url", &a.session_url),
            ("api.routing_url", &a.routing_url),
            ("api.ingress_url", &a.ingress_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(key, "must be an http(s):// URL"));
            }
        }
        if a.db_max_connections < 2 {
            return Err(ConfigError::invalid("api.db_max_connections", "must be at least 2"));
        }
        if a.stream_buffer < 16 || !(1..=10_000).contains(&a.stream_resume_max) {
            return Err(ConfigError::invalid(
                "api.stream_buffer",
                "stream_buffer must be at least 16 and stream_resume_max between 1 and 10000",
            ));
        }
        if a.body_limit_bytes < 1024 || a.request_timeout_ms == 0 || a.grpc_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "api",
                "body_limit_bytes must be at least 1024 and timeouts above 0",
            ));
        }
        Ok(())
    }
}
