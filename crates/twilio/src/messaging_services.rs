//! Twilio's Messaging Services (`messaging.twilio.com/v1/Services`): a sender in a service takes
//! its inbound webhook from the service (`inbound_request_url`, `fallback_url`) unless the
//! service defers to the sender's own (`use_inbound_webhook_on_number`); a service with neither
//! drops inbound messages. `ChannelSenders` lists the WhatsApp senders a service holds. Lists
//! page by `meta.next_page_url`; updates are form-encoded. Shapes from twilio-python 9.13
//! (`rest/messaging/v1/service`).

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::client::{Credentials, TwilioClient, TwilioError};
use crate::content::PageMeta;

/// A Messaging Service (the fields used here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Twilio's own field names
pub struct MessagingService {
    /// `MG…`.
    pub sid: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Where inbound messages to its senders go; none (and not deferring): they are dropped.
    #[serde(default)]
    pub inbound_request_url: Option<String>,
    #[serde(default)]
    pub inbound_method: Option<String>,
    #[serde(default)]
    pub fallback_url: Option<String>,
    #[serde(default)]
    pub fallback_method: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    /// The sender's own webhook wins over the service's.
    #[serde(default)]
    pub use_inbound_webhook_on_number: Option<bool>,
}

impl MessagingService {
    /// Whether the service's inbound URL, not the sender's, receives its senders' messages.
    pub fn overrides_senders(&self) -> bool {
        !self.use_inbound_webhook_on_number.unwrap_or(false)
    }
}

/// A sender of a service (`ChannelSenders`): `sender` is `whatsapp:+E.164`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Twilio's own field names
pub struct ChannelSender {
    pub sid: String,
    pub sender: String,
    #[serde(default)]
    pub sender_type: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
}

impl ChannelSender {
    /// The sender's phone number (E.164), if it is a WhatsApp sender.
    pub fn phone(&self) -> Option<&str> {
        self.sender.strip_prefix("whatsapp:")
    }
}

/// A service's webhook URLs to set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceWebhooks {
    /// `InboundRequestUrl`.
    pub inbound_request_url: String,
    /// `FallbackUrl` (empty: none).
    pub fallback_url: String,
    /// `StatusCallback`.
    pub status_callback: String,
}

/// A page of a Messaging API list (v1 Services, their ChannelSenders, v2 Senders): the items
/// under the list's own name, and `meta.next_page_url`.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: serde::de::DeserializeOwned"))]
struct Page<T> {
    #[serde(default = "Vec::new", alias = "services", alias = "senders")]
    items: Vec<T>,
    #[serde(default)]
    meta: PageMeta,
}

/// The most pages read (a guard against a pagination loop).
const MAX_PAGES: usize = 20;
const SERVICES: &str = "/v1/Services";

impl TwilioClient {
    /// Reads every page of a list on the Messaging host, from `first`, following
    /// `next_page_url` (only on that host: credentials go nowhere else).
    pub(crate) async fn messaging_pages<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        first: String,
        template: &'static str,
    ) -> Result<Vec<T>, TwilioError> {
        let base = self.messaging_base().to_owned();
        let mut url = first;
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.get_json(creds, &url, template).await?;
            all.extend(page.items);
            match page.meta.next_page_url {
                Some(next) if next.starts_with(&base) => url = next,
                Some(next) if !next.is_empty() => return Err(TwilioError::ForeignHost(next)),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Lists the account's Messaging Services.
    pub async fn messaging_services(&self, creds: &Credentials) -> Result<Vec<MessagingService>, TwilioError> {
        let first = format!("{}{SERVICES}?PageSize=100", self.messaging_base());
        self.messaging_pages(creds, first, SERVICES).await
    }

    /// Lists the WhatsApp (and other channel) senders of service `sid`.
    pub async fn service_channel_senders(&self, creds: &Credentials, sid: &str) -> Result<Vec<ChannelSender>, TwilioError> {
        if !crate::is_sid(sid, "MG") {
            return Err(TwilioError::Decode(format!("{sid:?} is not a Messaging Service SID")));
        }
        let first = format!("{}{SERVICES}/{sid}/ChannelSenders?PageSize=100", self.messaging_base());
        self.messaging_pages(creds, first, "/v1/Services/{Sid}/ChannelSenders").await
    }

    /// Sets service `sid`'s inbound, fallback and status callback URLs (POST); returns the
    /// service as Twilio now has it.
    pub async fn update_service_webhooks(
        &self,
        creds: &Credentials,
        sid: &str,
        webhooks: &ServiceWebhooks,
    ) -> Result<MessagingService, TwilioError> {
        if !crate::is_sid(sid, "MG") {
            return Err(TwilioError::Decode(format!("{sid:?} is not a Messaging Service SID")));
        }
        let url = format!("{}{SERVICES}/{sid}", self.messaging_base());
        let form = [
            ("InboundRequestUrl", webhooks.inbound_request_url.as_str()),
            ("InboundMethod", "POST"),
            ("FallbackUrl", webhooks.fallback_url.as_str()),
            ("FallbackMethod", "POST"),
            ("StatusCallback", webhooks.status_callback.as_str()),
        ];
        let request = self
            .http()
            .post(url)
            .basic_auth(&creds.username, Some(creds.password.expose_secret()))
            .form(&form);
        let response = self
            .send(request, "/v1/Services/{Sid}")
            .await
            .map_err(|e| TwilioError::Network(crate::client::redact(&e)))?;
        crate::client::json_or_error(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_overrides_its_senders_unless_it_defers_to_them() {
        let service: MessagingService = serde_json::from_str(
            r#"{"sid":"MG00000000000000000000000000000001","inbound_request_url":"https://x.test/in","use_inbound_webhook_on_number":false}"#,
        )
        .unwrap();
        assert!(service.overrides_senders());
        let deferring = MessagingService {
            use_inbound_webhook_on_number: Some(true),
            ..service
        };
        assert!(!deferring.overrides_senders());
    }

    #[test]
    fn both_list_shapes_parse_into_a_page() {
        let services: Page<MessagingService> =
            serde_json::from_str(r#"{"services":[{"sid":"MG1"}],"meta":{"key":"services","next_page_url":null}}"#).unwrap();
        assert_eq!(services.items.len(), 1);
        let senders: Page<ChannelSender> =
            serde_json::from_str(r#"{"senders":[{"sid":"XE1","sender":"whatsapp:+14155550100"}],"meta":{"key":"senders"}}"#).unwrap();
        assert_eq!(senders.items[0].phone(), Some("+14155550100"));
    }
}
