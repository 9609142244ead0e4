//! Channel resolution: the channel id in the webhook URL → its account SID, auth token, shared
//! keys and active flag, through the shared ChannelDirectory client (`switchboard-directory`)
//! with ingress's settings: a changed or deleted channel takes effect once the short cache entry
//! expires (`channel_cache_ttl_ms`); while session cannot be reached, the last known answer
//! keeps serving (for up to `channel_stale_ttl_ms`).

use std::time::Duration;

use switchboard_directory::DirectorySettings;
pub use switchboard_directory::{ChannelDirectory, ResolveError, ResolvedChannel};
use switchboard_service_kit::grpc::GrpcTls;

use crate::config::IngressSettings;

/// Connects (lazily) to session's ChannelDirectory at `settings.session_url`.
pub fn connect(settings: &IngressSettings, tls: &GrpcTls) -> anyhow::Result<ChannelDirectory> {
    ChannelDirectory::connect(
        &settings.session_url,
        tls,
        DirectorySettings {
            fresh_ttl: Duration::from_millis(settings.channel_cache_ttl_ms),
            stale_ttl: Duration::from_millis(settings.channel_stale_ttl_ms),
            timeout: Duration::from_millis(settings.grpc_timeout_ms),
        },
    )
}
