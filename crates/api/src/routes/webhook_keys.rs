//! Admin: a channel's webhook shared keys, for Twilio webhooks signed with a SharedKey
//! (`X-Twilio-Webhooks-Signature-Settings`). Either Switchboard sets signing up at Twilio itself
//! (`POST …/webhook-signing`: the key, a Webhook Setting and a Rule through Twilio's Webhooks
//! API; again to rotate), or an admin does it by hand: add the new key, switch Twilio's Webhook
//! Setting to it, then remove the old one. Webhooks signed with either verify meanwhile.
//! Secrets are write-only.

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
use switchboard_domain::ids::ChannelId;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_key, list_keys))
        .routes(routes!(delete_key))
        .routes(routes!(set_up_signing, get_signing))
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

/// How Twilio is to sign.
/// (`{}` for the defaults.)
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningRequest {
    /// `HMAC_SHA256` (the default) or `HMAC_SHA1`.
    #[serde(default)]
    pub algorithm: Option<String>,
}

/// A channel's shared-key signing at Twilio.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSigning {
    /// Whether Switchboard has set signing up at Twilio for this channel.
    pub configured: bool,
    /// Twilio's Rule for the channel's URLs.
    pub rule_id: Option<String>,
    /// The URL prefix that Rule matches.
    pub prefix: Option<String>,
    /// The Webhook Setting the Rule applies.
    pub setting_id: Option<String>,
    /// The SharedKey that Setting signs with.
    pub key: Option<String>,
    pub algorithm: Option<String>,
    /// The Rule change Twilio is propagating (30–60 s); none once it is live everywhere.
    pub operation_id: Option<String>,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED` or `FAILED`.
    pub operation_status: Option<String>,
    /// The key the change replaces: still verified until the change is live, then removed
    /// (here and at Twilio) by the channel's next health check.
    pub retiring_key: Option<String>,
    /// Why the last change did not take, if it did not.
    pub last_error: Option<String>,
    pub updated_at: Option<String>,
    /// The fallback ingress's Rule (when `[session.webhooks] fallback_base_url` is set): Twilio
    /// matches Rules by URL, so the fallback URLs need their own, pointed at the same Setting.
    /// A change is live only once both Rules' changes are.
    pub fallback_rule_id: Option<String>,
    /// The URL prefix the fallback Rule matches.
    pub fallback_prefix: Option<String>,
    /// The fallback Rule's change Twilio is propagating.
    pub fallback_operation_id: Option<String>,
    pub fallback_operation_status: Option<String>,
}

impl From<spb::WebhookSigning> for WebhookSigning {
    fn from(s: spb::WebhookSigning) -> Self {
        use crate::views::non_empty;
        Self {
            configured: s.configured,
            rule_id: non_empty(s.rule_id),
            prefix: non_empty(s.prefix),
            setting_id: non_empty(s.setting_id),
            key: non_empty(s.key),
            algorithm: non_empty(s.algorithm),
            operation_id: non_empty(s.operation_id),
            operation_status: non_empty(s.operation_status),
            retiring_key: non_empty(s.retiring_key),
            last_error: non_empty(s.last_error),
            updated_at: crate::views::timestamp(s.updated_at.as_ref()),
            fallback_rule_id: non_empty(s.fallback_rule_id),
            fallback_prefix: non_empty(s.fallback_prefix),
            fallback_operation_id: non_empty(s.fallback_operation_id),
            fallback_operation_status: non_empty(s.fallback_operation_status),
        }
    }
}

#[utoipa::path(post, path = "/channels/{id}/webhook-signing", tag = "admin", request_body = SigningRequest,
    description = "Has Twilio sign this channel's webhooks with a new SharedKey, through Twilio's Webhooks configuration API: \
        creates the key (kept here, sealed), a Webhook Setting that signs with it and retries 5xx, and a prefix Rule for the \
        channel's URLs. Called again, rotates to a new key; the replaced key keeps verifying until Twilio's change is live, \
        and the channel's next health check removes it. 412 while a previous change still propagates.",
    responses((status = 200, body = WebhookSigning), (status = 400, body = crate::error::ErrorBody), (status = 412, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
async fn set_up_signing(
    _: AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<ChannelId>,
    Json(request): Json<SigningRequest>,
) -> ApiResult<Json<WebhookSigning>> {
    let signing = s
        .session()
        .set_up_webhook_signing(spb::SetUpWebhookSigningRequest {
            channel_id: id.to_string(),
            algorithm: request.algorithm.unwrap_or_default(),
        })
        .await
        .api()?;
    Ok(Json(signing.into()))
}

#[utoipa::path(get, path = "/channels/{id}/webhook-signing", tag = "admin", responses((status = 200, body = WebhookSigning)))]
async fn get_signing(_: AdminCaller, State(s): State<AppState>, Path(id): Path<ChannelId>) -> ApiResult<Json<WebhookSigning>> {
    let signing = s
        .session()
        .get_webhook_signing(spb::GetByIdRequest { id: id.to_string() })
        .await
        .api()?;
    Ok(Json(signing.into()))
}
