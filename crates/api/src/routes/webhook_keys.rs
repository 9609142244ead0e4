//! Admin: a channel's webhook shared keys, for Twilio webhooks signed with a SharedKey
//! (`X-Twilio-Webhooks-Signature-Settings`). Rotate by adding the new key, switching Twilio's
//! Webhook Setting to it, then removing the old one: webhooks signed with either verify
//! meanwhile. Secrets are write-only.

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_proto::session::v1 as spb;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::AdminCaller;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_key, list_keys)).routes(routes!(delete_key))
}

/// A shared key to add.
// No Debug: it carries a secret, which must never reach a log line.
#[derive(Deserialize, ToSchema)]
pub struct NewWebhookKey {
    /// The SharedKey's id, as Twilio names it in `X-Twilio-Webhooks-Signature-Settings`.
    pub key: String,
    /// Its secret (16 to 256 characters).
    pub secret: String,
}

/// A shared key (its secret is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookKey {
    pub key: String,
    pub created_at: Option<String>,
}

impl From<spb::WebhookKey> for WebhookKey {
    fn from(k: spb::WebhookKey) -> Self {
        Self {
            key: k.key,
            created_at: crate::views::timestamp(k.created_at.as_ref()),
        }
    }
}

#[utoipa::path(post, path = "/channels/{id}/webhook-keys", tag = "admin", request_body = NewWebhookKey,
    description = "Adds a shared key webhooks of this channel may be signed with (at most 5).",
    responses((status = 201, body = WebhookKey), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn add_key(
    _: AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(new): Json<NewWebhookKey>,
) -> ApiResult<(StatusCode, Json<WebhookKey>)> {
    let key = s
        .session()
        .add_webhook_key(spb::AddWebhookKeyRequest {
            channel_id: id,
            key: new.key,
            secret: new.secret,
        })
        .await
        .api()?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

#[utoipa::path(get, path = "/channels/{id}/webhook-keys", tag = "admin", responses((status = 200, body = [WebhookKey])))]
async fn list_keys(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<WebhookKey>>> {
    let keys = s.session().list_webhook_keys(spb::GetByIdRequest { id }).await.api()?;
    Ok(Json(keys.keys.into_iter().map(WebhookKey::from).collect()))
}

#[utoipa::path(delete, path = "/channels/{id}/webhook-keys/{key}", tag = "admin",
    description = "Removes a shared key: webhooks signed with it are refused from then on.",
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_key(_: AdminCaller, State(s): State<AppState>, Path((id, key)): Path<(String, String)>) -> ApiResult<StatusCode> {
    s.session()
        .delete_webhook_key(spb::DeleteWebhookKeyRequest { channel_id: id, key })
        .await
        .api()?;
    Ok(StatusCode::NO_CONTENT)
}
