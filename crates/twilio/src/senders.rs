//! Twilio's Senders API for WhatsApp (`messaging.twilio.com/v2/Channels/Senders`, public beta):
//! which WhatsApp senders an account has, their status, and the webhook URLs configured on each;
//! and updating those URLs. Shapes from `twilio_messaging_v2.json` (twilio-oai).

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::client::{Credentials, TwilioClient, TwilioError};

/// A sender's webhook configuration (`messaging.v2.channels_sender.webhook`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Twilio's own field names
pub struct SenderWebhook {
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub callback_method: Option<String>,
    #[serde(default)]
    pub fallback_url: Option<String>,
    #[serde(default)]
    pub fallback_method: Option<String>,
    #[serde(default)]
    pub status_callback_url: Option<String>,
    #[serde(default)]
    pub status_callback_method: Option<String>,
}

/// A WhatsApp sender (`messaging.v2.channels_sender_response`, the fields used here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// `XE…`.
    pub sid: String,
    /// `ONLINE`, `OFFLINE`, `CREATING`, …
    #[serde(default)]
    pub status: Option<String>,
    /// `whatsapp:+E.164`.
    pub sender_id: String,
    /// Where its webhooks go.
    #[serde(default)]
    pub webhook: Option<SenderWebhook>,
}

impl Sender {
    /// The sender's phone number (E.164), if it is a WhatsApp phone sender.
    pub fn phone(&self) -> Option<&str> {
        self.sender_id.strip_prefix("whatsapp:")
    }
}

const LIST: &str = "/v2/Channels/Senders";
const ONE: &str = "/v2/Channels/Senders/{Sid}";

impl TwilioClient {
    /// Lists the account's WhatsApp senders.
    pub async fn whatsapp_senders(&self, creds: &Credentials) -> Result<Vec<Sender>, TwilioError> {
        let first = format!("{}{LIST}?Channel=whatsapp&PageSize=200", self.messaging_base());
        self.messaging_pages(creds, first, LIST).await
    }

    /// Sets the webhook URLs of sender `sid`; returns the sender as Twilio now has it.
    pub async fn update_sender_webhook(&self, creds: &Credentials, sid: &str, webhook: &SenderWebhook) -> Result<Sender, TwilioError> {
        if !crate::is_sid(sid, "XE") {
            return Err(TwilioError::Decode(format!("{sid:?} is not a sender SID")));
        }
        let url = format!("{}/v2/Channels/Senders/{sid}", self.messaging_base());
        let request = self
            .http()
            .post(url)
            .basic_auth(&creds.username, Some(creds.password.expose_secret()))
            .json(&serde_json::json!({ "webhook": webhook }));
        let response = self
            .send(request, ONE)
            .await
            .map_err(|e| TwilioError::Network(crate::client::redact(&e)))?;
        crate::client::json_or_error(response).await
    }
}
