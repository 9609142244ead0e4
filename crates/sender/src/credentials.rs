//! Channel credentials from session's `ChannelDirectory`, cached for a minute.

use std::time::Duration;

use moka::future::Cache;
use secrecy::SecretString;
use switchboard_proto::session::v1::ResolveChannelRequest;
use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};
use switchboard_telemetry::propagation::TracedChannel;
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

type Client = ChannelDirectoryClient<TracedChannel>;

/// A cached credentials source.
#[derive(Clone)]
pub struct CredentialStore {
    client: Client,
    cache: Cache<String, Credentials>,
}

impl CredentialStore {
    /// Connects (lazily) to session at `url`.
    pub fn connect(url: &str, tls: &GrpcTls) -> anyhow::Result<Self> {
        let channel = switchboard_service_kit::grpc::channel(url, tls, Timeouts::call(Duration::from_secs(5)))?;
        Ok(Self {
            client: ChannelDirectoryClient::new(TracedChannel::new(channel)),
            cache: Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(60)).build(),
        })
    }

    /// Returns the credentials of `channel_id`.
    pub async fn get(&self, channel_id: &str) -> Result<Credentials, CredentialsError> {
        if let Some(c) = self.cache.get(channel_id).await {
            return Ok(c);
        }
        let response = self
            .client
            .clone()
            .resolve_channel(ResolveChannelRequest {
                channel_id: channel_id.to_owned(),
            })
            .await;
        match response {
            Ok(r) => {
                let r = r.into_inner();
                if !r.active {
                    return Err(CredentialsError::Gone);
                }
                let credentials = Credentials::account(&r.account_sid, SecretString::from(r.auth_token));
                self.cache.insert(channel_id.to_owned(), credentials.clone()).await;
                Ok(credentials)
            }
            Err(status)
                if matches!(
                    switchboard_service_kit::ErrorCode::of(&status),
                    switchboard_service_kit::ErrorCode::NotFound | switchboard_service_kit::ErrorCode::InvalidArgument
                ) =>
            {
                Err(CredentialsError::Gone)
            }
            Err(status) => Err(CredentialsError::Unavailable(status.message().to_owned())),
        }
    }
}
