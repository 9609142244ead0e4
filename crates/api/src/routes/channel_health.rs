//! Admin: a channel's health and its webhook set-up at Twilio. The check runs every few minutes
//! on its own (its verdict is on the channel); these run it now, compare each number's webhook
//! URLs at Twilio (Senders API) with Switchboard's, and set them.

use axum::extract::State;
use serde::Serialize;
use switchboard_domain::ids::NumberId;
use switchboard_proto::session::v1 as spb;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::views::{Channel, non_empty, wire};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(webhooks))
        .routes(routes!(configure))
}

/// Webhook URLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookUrls {
    pub callback_url: Option<String>,
    pub fallback_url: Option<String>,
    pub status_callback_url: Option<String>,
}

/// One number's webhooks at Twilio against Switchboard's.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberWebhooks {
    pub number_id: NumberId,
    pub phone: String,
    /// The WhatsApp sender at Twilio; none: the account has no sender for this number.
    pub sender_sid: Option<String>,
    pub sender_status: Option<String>,
    pub configured: WebhookUrls,
    pub expected: WebhookUrls,
    /// The inbound and fallback URLs that take effect (the Messaging Service's when it
    /// overrides the sender's) are the expected ones.
    pub matches: bool,
    /// The Messaging Service holding the sender, if any.
    pub messaging_service: Option<MessagingServiceWebhooks>,
}

/// A Messaging Service holding a number's sender.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagingServiceWebhooks {
    pub sid: String,
    pub friendly_name: Option<String>,
    /// Its URLs win over its senders' (it does not defer to them); with no inbound URL, it
    /// drops their messages.
    pub overrides_sender: bool,
    pub urls: WebhookUrls,
    /// Its WhatsApp senders that are numbers of no channel here: configuring leaves its URLs
    /// alone, since they would move those numbers too.
    pub other_senders: Vec<String>,
}

fn urls(u: Option<spb::SenderWebhookUrls>) -> WebhookUrls {
    let u = u.unwrap_or_default();
    WebhookUrls {
        callback_url: non_empty(u.callback_url),
        fallback_url: non_empty(u.fallback_url),
        status_callback_url: non_empty(u.status_callback_url),
    }
}

fn report(r: spb::ChannelWebhooksResponse) -> Result<Vec<NumberWebhooks>, ApiError> {
    r.numbers
        .into_iter()
        .map(|n| {
            Ok(NumberWebhooks {
                number_id: wire(&n.number_id, "number id")?,
                phone: n.phone,
                sender_sid: non_empty(n.sender_sid),
                sender_status: non_empty(n.sender_status),
                configured: urls(n.configured),
                expected: urls(n.expected),
                matches: n.matches,
                messaging_service: n.messaging_service.map(|m| MessagingServiceWebhooks {
                    sid: m.sid,
                    friendly_name: non_empty(m.friendly_name),
                    overrides_sender: m.overrides_sender,
                    urls: urls(m.urls),
                    other_senders: m.other_senders,
                }),
            })
        })
        .collect()
}

#[utoipa::path(post, path = "/channels/{id}/health-check", tag = "admin",
    description = "Checks the channel now: does Twilio take its credentials, do status callbacks arrive? Returns the channel with the verdict.",
    responses((status = 200, body = Channel), (status = 404, body = crate::error::ErrorBody)))]
async fn check(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Channel>> {
    Ok(Json(s.session().check_channel(spb::GetByIdRequest { id }).await.api()?.into()))
}

#[utoipa::path(get, path = "/channels/{id}/webhooks", tag = "admin",
    description = "Each number's webhook URLs as Twilio has them (Senders API, and the Messaging Service holding its sender) against the ones Switchboard expects.",
    responses((status = 200, body = [NumberWebhooks]), (status = 422, description = "Twilio refuses the credentials", body = crate::error::ErrorBody)))]
async fn webhooks(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<NumberWebhooks>>> {
    Ok(Json(report(s.session().channel_webhooks(spb::GetByIdRequest { id }).await.api()?)?))
}

#[utoipa::path(post, path = "/channels/{id}/webhooks/configure", tag = "admin",
    description = "Sets Switchboard's webhook URLs (with the connection overrides) on every WhatsApp sender of the channel whose URLs differ, through Twilio's Senders API, \
        and on every Messaging Service that overrides its senders' URLs, differs, and holds only numbers of this channel.",
    responses((status = 200, body = [NumberWebhooks]), (status = 422, body = crate::error::ErrorBody)))]
async fn configure(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<NumberWebhooks>>> {
    Ok(Json(report(
        s.session().configure_channel_webhooks(spb::GetByIdRequest { id }).await.api()?,
    )?))
}
