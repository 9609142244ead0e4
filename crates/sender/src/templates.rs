//! Template sync: fetch every Content template with its WhatsApp approval status from Twilio's
//! Content API (paginated) and apply them to the channel's numbers through session. Runs on a
//! schedule (one replica at a time, by advisory lock) and on demand
//! (`sender.command.sync_templates.v1`).

use std::sync::Arc;
use std::time::Duration;

use switchboard_bus::events::SyncTemplatesV1;
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_domain::ids::ChannelId;
use switchboard_proto::common::v1::PageRequest;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_proto::session::v1::{ListChannelsRequest, SyncTemplatesRequest, SyncedTemplate};
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};
use switchboard_telemetry::propagation::TracedChannel;

use crate::send::App;

type Session = SessionServiceClient<TracedChannel>;

/// Syncs templates.
#[derive(Clone)]
pub struct TemplateSync {
    app: Arc<App>,
    session: Session,
}

/// Most Content API pages read per sync (a guard against a pagination loop).
const MAX_PAGES: usize = 100;

impl TemplateSync {
    /// A syncer using session at `url`.
    pub fn connect(app: Arc<App>, url: &str, tls: &GrpcTls) -> anyhow::Result<Self> {
        let channel = switchboard_service_kit::grpc::channel(url, tls, Timeouts::call(Duration::from_secs(30)))?;
        Ok(Self {
            app,
            session: SessionServiceClient::new(TracedChannel::new(channel)),
        })
    }

    /// Syncs one channel; returns (created, updated).
    pub async fn sync_channel(&self, channel_id: ChannelId) -> anyhow::Result<(u32, u32)> {
        let credentials = self.app.credentials_for(channel_id).await?;
        let mut templates = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.app.twilio.content_and_approvals(&credentials, next.as_deref()).await?;
            for item in &page.contents {
                let (Some(language), Some(text)) = (item.language.clone(), item.text()) else {
                    continue;
                };
                let (content_type, content) = item.content().unwrap_or(("twilio/text", &serde_json::Value::Null));
                templates.push(SyncedTemplate {
                    content_sid: item.sid.clone(),
                    name: item.name(),
                    language,
                    text,
                    status: item.whatsapp_status().as_str().into(),
                    content_type: content_type.to_owned(),
                    content_json: content.to_string(),
                });
            }
            match page.meta.next_page_url {
                Some(url) if !url.is_empty() => next = Some(url),
                _ => break,
            }
        }
        let fetched = templates.len();
        let response = self
            .session
            .clone()
            .sync_templates(SyncTemplatesRequest {
                channel_id: channel_id.to_string(),
                templates,
            })
            .await?
            .into_inner();
        tracing::info!(
            %channel_id,
            fetched,
            created = response.created,
            updated = response.updated,
            "templates synced from Twilio"
        );
        Ok((response.created, response.updated))
    }

    /// Syncs every channel.
    pub async fn sync_all(&self) -> anyhow::Result<()> {
        let mut token = String::new();
        loop {
            let page = self
                .session
                .clone()
                .list_channels(ListChannelsRequest {
                    page: Some(PageRequest {
                        page_size: 100,
                        page_token: token.clone(),
                    }),
                })
                .await?
                .into_inner();
            for channel in &page.channels {
                let Ok(channel_id) = channel.id.parse() else {
                    tracing::warn!(channel_id = %channel.id, "session listed a channel whose id is not a UUID; skipped");
                    continue;
                };
                if let Err(error) = self.sync_channel(channel_id).await {
                    tracing::warn!(channel_id = %channel.id, error = %format!("{error:#}"), "template sync failed");
                }
            }
            token = page.page.map(|p| p.next_page_token).unwrap_or_default();
            if token.is_empty() {
                return Ok(());
            }
        }
    }

    /// One scheduled round: syncs every channel, by one replica at a time.
    pub async fn scheduled_round(self) {
        let synced = switchboard_storage::singleton::run_if_first(&self.app.pool, "sender.template_sync", Box::pin(self.sync_all())).await;
        if let Some(Err(error)) = synced {
            tracing::warn!(error = %format!("{error:#}"), "scheduled template sync failed");
        }
    }
}

impl Handler for TemplateSync {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            let envelope: Envelope<SyncTemplatesV1> = incoming.json()?;
            let result = match &envelope.payload.channel_id {
                Some(channel) => self.sync_channel(*channel).await.map(|_| ()),
                None => self.sync_all().await,
            };
            result.map_err(HandleError::Retry)?;
        }
        Ok(())
    }
}
