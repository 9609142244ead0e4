//! A fake of session's `ChannelDirectory` for the services that resolve channels (ingress, and
//! benchmarks): channels set by the test, a switch that makes it answer UNAVAILABLE as a session
//! outage would, and a count of the calls it answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use switchboard_proto::session::v1::channel_directory_server::{ChannelDirectory, ChannelDirectoryServer};
use switchboard_proto::session::v1::{ResolveChannelRequest, ResolveChannelResponse, WebhookKeySecret};
use tonic::{Request, Response, Status};

/// One channel as the fake directory answers it.
#[derive(Debug, Clone)]
pub struct FakeChannel {
    /// The Account SID webhooks must carry.
    pub account_sid: String,
    /// The auth token signatures are checked with.
    pub token: String,
    /// An inactive channel is answered, marked inactive.
    pub active: bool,
    /// Shared keys (id, secret).
    pub webhook_keys: Vec<(String, String)>,
}

impl FakeChannel {
    /// An active channel of `account_sid` with `token`, no shared keys.
    pub fn active(account_sid: &str, token: &str) -> Self {
        Self {
            account_sid: account_sid.into(),
            token: token.into(),
            active: true,
            webhook_keys: Vec::new(),
        }
    }
}

/// The fake directory; clones share their channels, switch and count.
#[derive(Debug, Clone, Default)]
pub struct FakeDirectory {
    channels: Arc<Mutex<HashMap<String, FakeChannel>>>,
    any: Option<FakeChannel>,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl FakeDirectory {
    /// A directory that knows no channel yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory that answers `channel` for every id (benchmarks).
    pub fn answering_any(channel: FakeChannel) -> Self {
        Self {
            any: Some(channel),
            ..Self::default()
        }
    }

    /// Adds or replaces channel `id`.
    pub fn put(&self, id: &str, channel: FakeChannel) {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.into(), channel);
    }

    /// Activates or deactivates channel `id`, if known.
    pub fn set_active(&self, id: &str, active: bool) {
        if let Some(channel) = self.channels.lock().unwrap_or_else(PoisonError::into_inner).get_mut(id) {
            channel.active = active;
        }
    }

    /// While `down`, every call is answered UNAVAILABLE (and still counted).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many resolve calls reached the directory.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Serves the directory on a local port until the test ends; returns its URL.
    pub async fn serve(&self) -> String {
        let listener = crate::bind_local().await;
        let url = format!("http://{}", listener.local_addr().expect("a bound listener has an address"));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ChannelDirectoryServer::new(self.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        url
    }
}

#[tonic::async_trait]
impl ChannelDirectory for FakeDirectory {
    async fn resolve_channel(&self, request: Request<ResolveChannelRequest>) -> Result<Response<ResolveChannelResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("session is down"));
        }
        let id = request.into_inner().channel_id;
        let found = match &self.any {
            Some(any) => Some(any.clone()),
            None => self.channels.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned(),
        };
        let channel = found.ok_or_else(|| Status::not_found("no such channel"))?;
        Ok(Response::new(ResolveChannelResponse {
            channel_id: id,
            account_sid: channel.account_sid,
            auth_token: channel.token,
            active: channel.active,
            sandbox: false,
            webhook_keys: channel
                .webhook_keys
                .into_iter()
                .map(|(key, secret)| WebhookKeySecret { key, secret })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;

    use super::*;

    async fn resolve(url: &str, id: &str) -> Result<ResolveChannelResponse, Status> {
        let mut client = ChannelDirectoryClient::connect(url.to_owned()).await.expect("the fake serves");
        client
            .resolve_channel(ResolveChannelRequest { channel_id: id.into() })
            .await
            .map(Response::into_inner)
    }

    #[tokio::test]
    async fn the_fake_answers_its_channels_counts_calls_and_goes_down_on_demand() {
        let directory = FakeDirectory::new();
        directory.put("known", FakeChannel::active("AC1", "token"));
        let url = directory.serve().await;
        let known = resolve(&url, "known").await.expect("known");
        assert_eq!((known.account_sid.as_str(), known.active), ("AC1", true));
        assert_eq!(resolve(&url, "unknown").await.unwrap_err().code(), tonic::Code::NotFound);
        directory.set_active("known", false);
        assert!(!resolve(&url, "known").await.expect("still known").active);
        directory.set_down(true);
        assert_eq!(resolve(&url, "known").await.unwrap_err().code(), tonic::Code::Unavailable);
        assert_eq!(directory.calls(), 4);

        let any = FakeDirectory::answering_any(FakeChannel::active("AC2", "token"));
        let url = any.serve().await;
        assert_eq!(resolve(&url, "whatever").await.expect("any id").channel_id, "whatever");
    }
}
