//! Keeps the Twilio emulator's accounts in step with the channels and numbers configured in
//! Switchboard, so that in development a channel created through the API (with any Account SID
//! and auth token) works against the emulator at once: simulated customers reach its inbound
//! URL, signed with its token, and sends with its credentials are accepted.

use std::time::Duration;

use switchboard_proto::common::v1::PageRequest;
use switchboard_proto::session::v1 as spb;
use switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};
use switchboard_twilio_emulator::{AccountSetup, Emulator, NumberSetup};
use tokio_util::sync::CancellationToken;

/// Mirrors the configuration every second until `shutdown`. The caller puts the emulator in
/// [`Emulator::adopt_unknown_accounts`] first, so a channel saved before its first mirror passes
/// its credential check.
pub async fn run(
    emulator: Emulator,
    session_url: String,
    directory_url: String,
    tls: GrpcTls,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let lazy = |url: &str| switchboard_service_kit::grpc::channel(url, &tls, Timeouts::call(Duration::from_secs(5)));
    let mut session = SessionServiceClient::new(lazy(&session_url)?);
    let mut directory = ChannelDirectoryClient::new(lazy(&directory_url)?);
    loop {
        if let Err(error) = sync_once(&emulator, &mut session, &mut directory).await {
            tracing::debug!(%error, "emulator sync skipped");
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Brings the emulator up to date once.
pub async fn sync_once(
    emulator: &Emulator,
    session: &mut SessionServiceClient<tonic::transport::Channel>,
    directory: &mut ChannelDirectoryClient<tonic::transport::Channel>,
) -> anyhow::Result<()> {
    let mut token = String::new();
    loop {
        let page = session
            .list_channels(spb::ListChannelsRequest {
                page: Some(PageRequest {
                    page_size: 200,
                    page_token: token.clone(),
                }),
            })
            .await?
            .into_inner();
        for channel in page.channels {
            let resolved = directory
                .resolve_channel(spb::ResolveChannelRequest {
                    channel_id: channel.id.clone(),
                })
                .await?
                .into_inner();
            let numbers = session
                .list_numbers(spb::ListNumbersRequest {
                    channel_id: channel.id.clone(),
                    page: Some(PageRequest {
                        page_size: 200,
                        page_token: String::new(),
                    }),
                })
                .await?
                .into_inner()
                .numbers;
            let setup = AccountSetup {
                account_sid: channel.account_sid.clone(),
                auth_token: resolved.auth_token,
                numbers: numbers
                    .into_iter()
                    .map(|n| NumberSetup {
                        phone: n.phone,
                        inbound_url: channel.inbound_url.clone(),
                        fallback_url: (!channel.fallback_url.is_empty()).then(|| channel.fallback_url.clone()),
                    })
                    .collect(),
                sandbox_join_code: (!channel.sandbox_join_code.is_empty()).then(|| channel.sandbox_join_code.clone()),
                templates: None,
            };
            // The emulator skips a configuration it already mirrored (from this loop or any
            // other mirror, such as a test's), so only a change on Switchboard's side lands.
            emulator.mirror_account(setup);
        }
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            return Ok(());
        }
    }
}
