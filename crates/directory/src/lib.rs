//! The one client of session's `ChannelDirectory` (ingress checks webhook signatures with it,
//! the sender sends with it): a channel id → its account SID, auth token, webhook shared keys and
//! active flag, asked of session over gRPC and cached briefly. One call per channel per expiry
//! however many requests arrive at once (single-flight); a changed or deleted channel takes
//! effect once the short cache entry expires; while session cannot be reached, the last known
//! answer keeps serving for a while (the stale fallback).

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use switchboard_domain::ids::ChannelId;
use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;
use switchboard_proto::session::v1::{MediaChunk, ReadFileRequest, ResolveChannelRequest};
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};
use switchboard_telemetry::propagation::TracedChannel;

/// How long answers are kept, and how long a call may take.
#[derive(Debug, Clone, Copy)]
pub struct DirectorySettings {
    /// A fresh answer is used this long before session is asked again.
    pub fresh_ttl: Duration,
    /// The last answer is still used this long while session cannot be reached.
    pub stale_ttl: Duration,
    /// One call's timeout (connect and request).
    pub timeout: Duration,
}

/// What a service knows about a channel.
#[derive(Debug)]
pub struct ResolvedChannel {
    /// The channel, as the webhook URL names it.
    pub channel_id: ChannelId,
    /// The Twilio Account SID webhooks must carry.
    pub account_sid: String,
    /// The auth token signatures are checked with.
    pub auth_token: SecretString,
    /// Inactive channels refuse traffic.
    pub active: bool,
    /// Shared keys webhooks may be signed with: key id → secret.
    pub webhook_keys: Vec<(String, SecretString)>,
}

impl ResolvedChannel {
    /// The secret of shared key `key`, if the channel holds it.
    pub fn webhook_key(&self, key: &str) -> Option<&str> {
        self.webhook_keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, secret)| secret.expose_secret())
    }
}

#[derive(Debug, Clone)]
enum Lookup {
    Found(Arc<ResolvedChannel>),
    NotFound,
}

/// Why a channel could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// No such channel.
    NotFound,
    /// Session unreachable and nothing cached.
    Unavailable(String),
}

type Client = ChannelDirectoryClient<TracedChannel>;

/// Resolves channel ids through a two-level cache in front of the session service.
#[derive(Clone)]
pub struct ChannelDirectory {
    client: Client,
    fresh: Cache<ChannelId, Lookup>,
    stale: Cache<ChannelId, Arc<ResolvedChannel>>,
    /// Channels whose cached answer was dropped lately ([`Self::forget`]).
    forgotten: Cache<ChannelId, ()>,
    timeout: Duration,
}

impl ChannelDirectory {
    /// A directory client for session's ChannelDirectory at `url` (connects lazily).
    pub fn connect(url: &str, tls: &GrpcTls, settings: DirectorySettings) -> anyhow::Result<Self> {
        let timeout = settings.timeout;
        let timeouts = Timeouts {
            connect: timeout,
            request: timeout,
        };
        let channel = switchboard_service_kit::grpc::channel(url, tls, timeouts)?;
        let client = ChannelDirectoryClient::new(TracedChannel::new(channel));
        Ok(Self {
            client,
            fresh: Cache::builder().max_capacity(100_000).time_to_live(settings.fresh_ttl).build(),
            stale: Cache::builder().max_capacity(100_000).time_to_live(settings.stale_ttl).build(),
            forgotten: Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(5)).build(),
            timeout,
        })
    }

    /// Returns the channel, from cache or from session.
    pub async fn resolve(&self, channel_id: ChannelId) -> Result<Arc<ResolvedChannel>, ResolveError> {
        // One gRPC call per channel per expiry, however many requests arrive at once.
        let loaded = self.fresh.try_get_with(channel_id, self.load(channel_id)).await;
        match loaded {
            Ok(Lookup::Found(channel)) => Ok(channel),
            Ok(Lookup::NotFound) => Err(ResolveError::NotFound),
            Err(error) => match self.stale.get(&channel_id).await {
                Some(channel) => {
                    tracing::warn!(%channel_id, error = %error, "session unreachable, using the last known channel");
                    Ok(channel)
                }
                None => Err(ResolveError::Unavailable(error.to_string())),
            },
        }
    }

    /// Drops the cached answer for `channel_id`, so the next lookup asks session; at most once
    /// every few seconds per channel, so requests naming unknown keys cannot make every webhook
    /// a call to session. Returns whether it did.
    pub async fn forget(&self, channel_id: ChannelId) -> bool {
        if self.forgotten.contains_key(&channel_id) {
            return false;
        }
        self.forgotten.insert(channel_id, ()).await;
        self.fresh.invalidate(&channel_id).await;
        true
    }

    /// Opens the bytes of an agent's uploaded file named by a signed URL (ingress serves it to
    /// Twilio); session checks the signature and expiry. Never cached.
    pub async fn read_file(&self, request: ReadFileRequest) -> Result<tonic::Streaming<MediaChunk>, tonic::Status> {
        let mut request = tonic::Request::new(request);
        // The answer starts within the usual timeout; the bytes then stream for as long as they
        // take.
        request.set_timeout(self.timeout.max(Duration::from_secs(10)));
        Ok(self.client.clone().read_file(request).await?.into_inner())
    }

    async fn load(&self, channel_id: ChannelId) -> Result<Lookup, String> {
        let mut request = tonic::Request::new(ResolveChannelRequest {
            channel_id: channel_id.to_string(),
        });
        request.set_timeout(self.timeout);
        match self.client.clone().resolve_channel(request).await {
            Ok(response) => {
                let r = response.into_inner();
                let channel = Arc::new(ResolvedChannel {
                    channel_id,
                    account_sid: r.account_sid,
                    auth_token: SecretString::from(r.auth_token),
                    active: r.active,
                    webhook_keys: r.webhook_keys.into_iter().map(|k| (k.key, SecretString::from(k.secret))).collect(),
                });
                self.stale.insert(channel_id, channel.clone()).await;
                Ok(Lookup::Found(channel))
            }
            Err(status)
                if matches!(
                    switchboard_service_kit::ErrorCode::of(&status),
                    switchboard_service_kit::ErrorCode::NotFound | switchboard_service_kit::ErrorCode::InvalidArgument
                ) =>
            {
                self.stale.invalidate(&channel_id).await;
                Ok(Lookup::NotFound)
            }
            Err(status) => Err(format!("session answered {:?}: {}", status.code(), status.message())),
        }
    }
}
