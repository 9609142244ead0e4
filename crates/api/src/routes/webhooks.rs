//! Admin: the webhook journal kept by ingress. Every webhook whose signature verified is there
//! with the answer it got, so a customer's message that went missing can be found (by customer,
//! MessageSid, channel or answer) and published again. A replay goes through session's usual
//! dedupe on the MessageSid: replaying a message session already has changes nothing.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchboard_proto::ingress::v1 as ipb;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks))
        .routes(routes!(get_webhook))
        .routes(routes!(replay_webhook))
}

/// Which journaled webhooks to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookFilter {
    /// The customer: `whatsapp:+E.164` or the bare number. Matches From (inbound) and To (status).
    pub customer: Option<String>,
    pub message_sid: Option<String>,
    pub channel_id: Option<String>,
    /// `inbound` or `status`.
    pub kind: Option<String>,
    /// Only webhooks answered with this HTTP status (e.g. 503).
    pub answer: Option<u32>,
    /// Received at or after (RFC 3339).
    pub since: Option<String>,
    /// The next page: ids below this one.
    pub before: Option<String>,
    /// How many, newest first (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A webhook as ingress received and answered it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournaledWebhook {
    pub id: String,
    pub channel_id: String,
    /// `inbound` or `status`.
    pub kind: String,
    pub message_sid: String,
    pub from: String,
    pub to: String,
    /// The HTTP status ingress answered.
    pub answer: u32,
    /// Why: `accepted`, `unavailable` (the broker was down: 503), `malformed`, `account_mismatch`.
    pub outcome: String,
    /// The verified form, as `[name, value]` pairs in the order received.
    pub params: Vec<(String, String)>,
    /// The request headers kept (content type, signature, idempotency token, user agent).
    pub headers: BTreeMap<String, String>,
    pub received_at: Option<String>,
    /// How many times an admin replayed it.
    pub replays: u32,
    pub last_replayed_at: Option<String>,
}

impl From<ipb::JournaledWebhook> for JournaledWebhook {
    fn from(w: ipb::JournaledWebhook) -> Self {
        Self {
            received_at: crate::views::timestamp(w.received_at.as_ref()),
            last_replayed_at: crate::views::timestamp(w.last_replayed_at.as_ref()),
            id: w.id,
            channel_id: w.channel_id,
            kind: w.kind,
            message_sid: w.message_sid,
            from: w.from,
            to: w.to,
            answer: w.answer,
            outcome: w.outcome,
            params: w.params.into_iter().map(|p| (p.key, p.value)).collect(),
            headers: w.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            replays: w.replays,
        }
    }
}

#[utoipa::path(get, path = "/webhooks", tag = "admin", params(WebhookFilter),
    description = "Webhooks ingress received with a valid signature, newest first, kept for the journal's retention \
                   (`[ingress.journal] retention_hours`). Find a customer's missing message here, then replay it.",
    responses((status = 200, body = Vec<JournaledWebhook>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 503, body = crate::error::ErrorBody)))]
async fn list_webhooks(
    _: AdminCaller,
    State(s): State<AppState>,
    Query(f): Query<WebhookFilter>,
) -> ApiResult<Json<Vec<JournaledWebhook>>> {
    let since = f
        .since
        .map(|raw| {
            time::OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339)
                .map(switchboard_proto::time::timestamp)
                .map_err(|_| ApiError::invalid("since must be an RFC 3339 time"))
        })
        .transpose()?;
    let listed = s
        .journal()
        .list_webhooks(ipb::ListWebhooksRequest {
            channel_id: f.channel_id.unwrap_or_default(),
            kind: f.kind.unwrap_or_default(),
            message_sid: f.message_sid.unwrap_or_default(),
            customer: f.customer.unwrap_or_default(),
            answer: f.answer.unwrap_or(0),
            since,
            before: f.before.unwrap_or_default(),
            limit: match f.limit {
                None => 100,
                Some(n @ 1..=500) => n,
                Some(_) => return Err(ApiError::invalid("limit is 1 to 500")),
            },
        })
        .await
        .api()?;
    Ok(Json(listed.webhooks.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "admin",
    responses((status = 200, body = JournaledWebhook), (status = 404, body = crate::error::ErrorBody)))]
async fn get_webhook(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JournaledWebhook>> {
    Ok(Json(s.journal().get_webhook(ipb::GetWebhookRequest { id }).await.api()?.into()))
}

#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "admin",
    description = "Publishes the webhook's event again, stamped with its original arrival time. Session deduplicates \
                   on the MessageSid, so a message it already has is not stored or routed twice. Webhooks refused as \
                   malformed or for a foreign account cannot be replayed (422).",
    responses((status = 200, body = JournaledWebhook), (status = 404, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
async fn replay_webhook(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JournaledWebhook>> {
    Ok(Json(s.journal().replay_webhook(ipb::GetWebhookRequest { id }).await.api()?.into()))
}
