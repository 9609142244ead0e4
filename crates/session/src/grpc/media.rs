//! The media proxy: streams an inbound message's media from Twilio with the account's
//! credentials (sent only to the configured Twilio API host; Twilio's CDN redirect is followed
//! without them), checking type and size (the number's cap for the type, within the service's),
//! so agent UIs never see Twilio credentials.

use std::sync::Arc;

use futures_util::StreamExt;
use switchboard_proto::session::v1::MediaChunk;
use switchboard_twilio::Credentials;
use tonic::Status;
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

use super::files::ChunkStream;

/// Opens the media stream of message `message_id`, item `index` (of `conversation`, when given).
pub async fn stream(session: Arc<Session>, message_id: Uuid, index: u32, conversation: Option<Uuid>) -> Result<ChunkStream, SessionError> {
    let message = session.message(message_id.into()).await?;
    if conversation.is_some_and(|c| c != message.conversation_id.uuid()) {
        return Err(SessionError::NotFound("message"));
    }
    let item = message
        .media
        .as_array()
        .and_then(|items| items.get(usize::try_from(index).unwrap_or(usize::MAX)))
        .ok_or(SessionError::NotFound("media"))?;
    if let Some(file_id) = item.get("file_id").and_then(|v| v.as_str()) {
        // An agent's uploaded file, from the file store.
        let file_id = crate::error::parse_id(file_id, "file_id")?;
        let file = session.file(&session.pool, file_id).await?;
        let bytes = session.file_bytes(&file).await?;
        return Ok(super::files::chunks(&file, bytes));
    }
    let url = item
        .get("twilio_url")
        .and_then(|v| v.as_str())
        .ok_or(SessionError::NotFound("media"))?
        .to_owned();
    let resolved = session.resolve_channel(message.channel_id).await?;
    let credentials = Credentials::account(&resolved.channel.account_sid, resolved.auth_token);
    let response = session.twilio.fetch_media(&credentials, &url).await.map_err(|e| match e {
        switchboard_twilio::TwilioError::ForeignHost(host) => {
            SessionError::Precondition(format!("media is not on the configured Twilio host ({host})"))
        }
        other if other.is_retryable() => SessionError::Unavailable(format!("Twilio media unavailable: {other}")),
        other => SessionError::Precondition(format!("Twilio refused the media: {other}")),
    })?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    if !switchboard_domain::attachment::is_allowed_type(&content_type) {
        return Err(SessionError::Precondition(format!(
            "media of type {content_type} is not carried on this channel"
        )));
    }
    // The number's own cap for this type (WhatsApp's per-type limits within it), within the
    // service's.
    let number: (i64,) = sqlx::query_as(
        "SELECT n.max_attachment_bytes FROM session.conversations c JOIN session.numbers n ON n.id = c.number_id WHERE c.id = $1",
    )
    .bind(message.conversation_id)
    .fetch_one(&session.pool)
    .await?;
    let number_cap = switchboard_domain::attachment::AttachmentSettings {
        max_bytes: u64::try_from(number.0).unwrap_or(0),
        ..Default::default()
    }
    .cap_for(&content_type);
    let limit = session.settings.media_max_bytes.min(number_cap);
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(SessionError::Precondition(format!(
            "media is larger than {limit} bytes, this number's limit for {content_type}"
        )));
    }
    let state = (response, 0u64, Some(content_type));
    let chunks = futures_util::stream::unfold(Some(state), move |state| async move {
        let (mut response, sent, content_type) = state?;
        match response.chunk().await {
            Ok(Some(bytes)) => {
                let sent = sent + bytes.len() as u64;
                if sent > limit {
                    return Some((
                        Err(Status::failed_precondition(format!("media is larger than {limit} bytes"))),
                        None,
                    ));
                }
                let chunk = MediaChunk {
                    content_type: content_type.clone().unwrap_or_default(),
                    data: bytes.to_vec(),
                    ..Default::default()
                };
                Some((Ok(chunk), Some((response, sent, None))))
            }
            Ok(None) => None,
            Err(_) => Some((Err(Status::unavailable("media download interrupted")), None)),
        }
    });
    Ok(chunks.boxed())
}
