//! Session configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_service_kit::{ConfigError, Validate};

/// Embedded defaults (documented in `config.default.toml`).
pub const DEFAULTS: &str = include_str!("../config.default.toml");

/// Session settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Public base URL Twilio calls.
    pub public_base_url: String,
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
    /// Session's own settings.
    pub session: SessionSettings,
}

/// Which bot endpoints may be configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BotEndpoints {
    /// Allow endpoints on the loopback interface, over plain HTTP too (development only).
    pub allow_loopback: bool,
}

/// How the webhook URLs given to Twilio are made.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookUrls {
    /// Connection overrides put on every URL as its fragment (`reference/twilio.md` §1.5), so
    /// Twilio retries a webhook answered 5xx; empty for none (Twilio then retries only a
    /// failed connect, once).
    pub overrides: String,
    /// The base URL of a second ingress (another zone or cluster), given out as each channel's
    /// fallback URL; empty for none.
    pub fallback_base_url: String,
}

impl Default for WebhookUrls {
    fn default() -> Self {
        Self {
            overrides: switchboard_twilio::overrides::ConnectionOverrides::switchboard().to_string(),
            fallback_base_url: String::new(),
        }
    }
}

/// The `[session]` section.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in config.default.toml
pub struct SessionSettings {
    pub grpc_listen: SocketAddr,
    /// Where `ChannelDirectory` (it hands out decrypted auth tokens and bot secrets) listens, on
    /// its own port that only ingress, sender and bots may reach; unset, it shares `grpc_listen`.
    #[serde(default)]
    pub directory_listen: Option<SocketAddr>,
    /// With `grpc_tls` on, the DNS names a client certificate must carry (one of them) to call
    /// `ChannelDirectory`.
    #[serde(default = "default_directory_clients")]
    pub directory_clients: Vec<String>,
    pub http_listen: SocketAddr,
    pub db_max_connections: u32,
    pub inbound_batch_max: usize,
    pub delivery_concurrency: usize,
    /// Most delivery reports (status callbacks, accepted, failed) applied in one transaction.
    #[serde(default = "default_delivery_batch_max")]
    pub delivery_batch_max: usize,
    pub outbox_batch: i64,
    pub outbox_poll_ms: u64,
    pub auto_close_interval_secs: u64,
    pub default_waiting_auto_close_secs: i64,
    /// How long before a customer's 24-hour window closes the conversation's agent is warned
    /// (`conversation.window_closing.v1` on the stream); 0: never.
    #[serde(default = "one_hour")]
    pub window_warning_secs: u64,
    pub twilio_api_base: String,
    pub twilio_content_base: String,
    pub media_max_bytes: u64,
    pub token_active_key: String,
    #[serde(default)]
    pub token_keys: BTreeMap<String, SecretString>,
    pub drain_timeout_ms: u64,
    /// Which bot endpoints may be configured (`[session.bot_endpoints]`).
    #[serde(default)]
    pub bot_endpoints: BotEndpoints,
    /// The webhook URLs given out (`[session.webhooks]`).
    #[serde(default)]
    pub webhooks: WebhookUrls,
    /// How replicas divide the inbound shards (`[session.shard_leases]`).
    #[serde(default)]
    pub shard_leases: switchboard_storage::leases::LeaseSettings,
    /// Channel health checks and the Senders API (`[session.channel_health]`).
    #[serde(default)]
    pub channel_health: ChannelHealthSettings,
    /// Files agents upload (`[session.files]`).
    #[serde(default)]
    pub files: FileSettings,
    /// Shared-key signing set up through Twilio's Webhooks API (`[session.webhook_signing]`).
    #[serde(default)]
    pub webhook_signing: WebhookSigningSettings,
}

/// `[session.webhook_signing]`: how a channel's shared-key signing is set up at Twilio.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSigningSettings {
    /// The Webhooks configuration API host (the emulator's in development).
    pub twilio_webhooks_base: String,
    /// The Setting's `auth` object: how Twilio authenticates to ingress (ingress relies on the
    /// signature, so none by default).
    pub auth: serde_json::Value,
    /// The Setting's `signature.type` for a SharedKey.
    pub signature_type: String,
}

impl Default for WebhookSigningSettings {
    fn default() -> Self {
        Self {
            twilio_webhooks_base: "https://webhooks.twilio.com".into(),
            auth: serde_json::json!({ "source": "INLINE", "value": { "scheme": "NONE" } }),
            signature_type: "SHARED_KEY".into(),
        }
    }
}

/// `[session.files]`: where agents' uploads are kept and how Twilio gets them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FileSettings {
    /// `postgres` (the default: no other system to run), or an object-store URL:
    /// `s3://bucket/prefix` (S3 or any S3-compatible store) or `file:///var/lib/switchboard/files`.
    pub store: String,
    /// The object store's options, as `object_store` names them (`aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_allow_http`, …); secrets, never logged.
    pub store_options: BTreeMap<String, SecretString>,
    /// How long the URL a file is sent to Twilio with stays valid. Twilio fetches it when it
    /// takes the send; a send held up longer than this fails with Twilio's media error.
    pub url_ttl_secs: u64,
    /// Files are deleted this many days after their upload (0: kept for ever). A message whose
    /// file is gone shows it as missing.
    pub retention_days: u64,
    /// How often one replica deletes the files past `retention_days`.
    pub sweep_interval_secs: u64,
}

impl Default for FileSettings {
    fn default() -> Self {
        Self {
            store: "postgres".into(),
            store_options: BTreeMap::new(),
            url_ttl_secs: 3600,
            retention_days: 90,
            sweep_interval_secs: 3600,
        }
    }
}

/// `[session.channel_health]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelHealthSettings {
    /// Seconds between checks of every channel (credentials, status callbacks); 0: never.
    #[serde(default = "five_minutes")]
    pub interval_secs: u64,
    /// Twilio's Messaging v2 host (Senders API; the emulator's in development).
    #[serde(default = "messaging_base")]
    pub twilio_messaging_base: String,
    /// Refuse a new number that Twilio does not list among the account's WhatsApp senders
    /// (when Twilio answers; unreachable, the number is saved unchecked). Off in `switchboard
    /// dev`, whose emulator learns the numbers from Switchboard once they are saved.
    #[serde(default = "yes")]
    pub check_senders_on_save: bool,
}

impl Default for ChannelHealthSettings {
    fn default() -> Self {
        Self {
            interval_secs: five_minutes(),
            twilio_messaging_base: messaging_base(),
            check_senders_on_save: true,
        }
    }
}

fn yes() -> bool {
    true
}

fn five_minutes() -> u64 {
    300
}

fn messaging_base() -> String {
    "https://messaging.twilio.com".into()
}

fn default_directory_clients() -> Vec<String> {
    ["ingress", "sender", "bots"].map(String::from).to_vec()
}

fn default_delivery_batch_max() -> usize {
    64
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
        self.bus.check().map_err(|e| ConfigError::invalid("bus", e))?;
        self.grpc_tls.check()?;
        let s = &self.session;
        if self.grpc_tls.enabled && s.directory_clients.iter().all(|n| n.trim().is_empty()) {
            return Err(ConfigError::invalid(
                "session.directory_clients",
                "must name at least one service when grpc_tls is enabled",
            ));
        }
        if s.token_keys.is_empty() {
            return Err(ConfigError::invalid(
                "session.token_keys",
                "no auth-token encryption key: set SWITCHBOARD_SESSION__TOKEN_KEYS__K1 to 32 random bytes in base64 and SWITCHBOARD_SESSION__TOKEN_ACTIVE_KEY=k1",
            ));
        }
        crate::crypto::TokenCipher::from_keys(&s.token_keys, &s.token_active_key)
            .map_err(|e| ConfigError::invalid("session.token_keys", e))?;
        if s.inbound_batch_max == 0 || s.delivery_concurrency == 0 || s.delivery_batch_max == 0 || s.db_max_connections < 2 {
            return Err(ConfigError::invalid(
                "session",
                "batch, concurrency and connection counts must be positive (at least 2 connections)",
            ));
        }
        if s.window_warning_secs >= 86_400 {
            return Err(ConfigError::invalid(
                "session.window_warning_secs",
                "must be under 24 hours (86400)",
            ));
        }
        if s.default_waiting_auto_close_secs <= 0 {
            return Err(ConfigError::invalid("session.default_waiting_auto_close_secs", "must be positive"));
        }
        if s.files.url_ttl_secs == 0 || s.files.url_ttl_secs > 7 * 86_400 {
            return Err(ConfigError::invalid(
                "session.files.url_ttl_secs",
                "must be between 1 second and 7 days",
            ));
        }
        crate::files::store::FileStore::open(&s.files.store, &s.files.store_options)
            .map_err(|e| ConfigError::invalid("session.files.store", e))?;
        Ok(())
    }
}

fn one_hour() -> u64 {
    3_600
}
