//! Channel credentials from session's `ChannelDirectory`, through the shared directory client
//! (`switchboard-directory`): cached for a minute, one call per channel however many sends ask
//! at once, and the last known credentials kept for ten minutes while session cannot be reached,
//! so a session restart does not stall sending.

use std::time::Duration;

use switchboard_directory::{ChannelDirectory, DirectorySettings, ResolveError};
use switchboard_domain::ids::ChannelId;
use switchboard_service_kit::grpc::GrpcTls;
use switchboard_twilio::Credentials;

/// Why credentials could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    /// The channel is gone or inactive: messages for it can never be sent.
    #[error("the channel no longer exists or is inactive")]
    Gone,
    /// Session could not be asked.
    #[error("session unavailable: {0}")]
    Unavailable(String),
}

/// A cached credentials source.
#[derive(Clone)]
pub struct CredentialStore {
    directory: ChannelDirectory,
}

impl CredentialStore {
    /// Connects (lazily) to session at `url`.
    pub fn connect(url: &str, tls: &GrpcTls) -> anyhow::Result<Self> {
        let settings = DirectorySettings {
            fresh_ttl: Duration::from_secs(60),
            stale_ttl: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
        };
        Ok(Self {
            directory: ChannelDirectory::connect(url, tls, settings)?,
        })
    }

    /// Returns the credentials of `channel_id`.
    pub async fn get(&self, channel_id: ChannelId) -> Result<Credentials, CredentialsError> {
        match self.directory.resolve(channel_id).await {
            Ok(channel) if channel.active => Ok(Credentials::account(&channel.account_sid, channel.auth_token.clone())),
            Ok(_) | Err(ResolveError::NotFound) => Err(CredentialsError::Gone),
            Err(ResolveError::Unavailable(why)) => Err(CredentialsError::Unavailable(why)),
        }
    }
}
