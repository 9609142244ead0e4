//! The gRPC side of a channel's webhook signing: its shared keys (secrets write-only) and the
//! shared-key signing set up through Twilio's Webhooks configuration API.

use secrecy::SecretString;
use switchboard_proto::session::v1 as pb;

use crate::app::Session;
use crate::error::{SessionError, parse_id};
use crate::grpc::convert::{timestamp, webhook_key};
use crate::webhook_signing::WebhookSigning;

pub async fn add_key(session: &Session, r: pb::AddWebhookKeyRequest) -> Result<pb::WebhookKey, SessionError> {
    let channel = parse_id(&r.channel_id, "channel_id")?;
    let key = session
        .add_webhook_key(channel.into(), &r.key, &SecretString::from(r.secret))
        .await?;
    Ok(webhook_key(&key))
}

pub async fn list_keys(session: &Session, r: &pb::GetByIdRequest) -> Result<pb::ListWebhookKeysResponse, SessionError> {
    let keys = session.webhook_keys(parse_id(&r.id, "id")?.into()).await?;
    Ok(pb::ListWebhookKeysResponse {
        keys: keys.iter().map(webhook_key).collect(),
    })
}

pub async fn delete_key(session: &Session, r: &pb::DeleteWebhookKeyRequest) -> Result<(), SessionError> {
    session
        .delete_webhook_key(parse_id(&r.channel_id, "channel_id")?.into(), &r.key)
        .await
}

fn signing(row: Option<WebhookSigning>) -> pb::WebhookSigning {
    let Some(row) = row else {
        return pb::WebhookSigning::default();
    };
    pb::WebhookSigning {
        configured: true,
        rule_id: row.rule_id,
        prefix: row.prefix,
        setting_id: row.setting_id,
        key: row.key_sid,
        algorithm: row.algorithm,
        operation_id: row.operation_id.unwrap_or_default(),
        operation_status: row.operation_status.unwrap_or_default(),
        retiring_key: row.retiring_key_sid.unwrap_or_default(),
        last_error: row.last_error.unwrap_or_default(),
        updated_at: Some(timestamp(row.updated_at)),
        fallback_rule_id: row.fallback_rule_id.unwrap_or_default(),
        fallback_prefix: row.fallback_prefix.unwrap_or_default(),
        fallback_operation_id: row.fallback_operation_id.unwrap_or_default(),
        fallback_operation_status: row.fallback_operation_status.unwrap_or_default(),
    }
}

pub async fn set_up_signing(session: &Session, r: &pb::SetUpWebhookSigningRequest) -> Result<pb::WebhookSigning, SessionError> {
    let algorithm = if r.algorithm.is_empty() { "HMAC_SHA256" } else { &r.algorithm };
    let row = session
        .set_up_webhook_signing(parse_id(&r.channel_id, "channel_id")?.into(), algorithm)
        .await?;
    Ok(signing(Some(row)))
}

pub async fn get_signing(session: &Session, r: &pb::GetByIdRequest) -> Result<pb::WebhookSigning, SessionError> {
    Ok(signing(session.webhook_signing(parse_id(&r.id, "id")?.into()).await?))
}
