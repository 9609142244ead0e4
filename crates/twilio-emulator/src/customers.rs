//! Simulated customers: a message to a business number becomes the webhook Twilio would send,
//! signed with the account's auth token over the number's inbound URL, retried only as the URL's
//! connection overrides say (by default Twilio retries a failed connect once, a 5xx never).

use base64::Engine;

use crate::handle::Emulator;
use crate::model::{CustomerMessage, CustomerResult};

impl Emulator {
    /// Delivers a customer's message to the business as a signed webhook.
    pub async fn customer_message(&self, message: CustomerMessage) -> anyhow::Result<CustomerResult> {
        // A phone number, or a BSUID (`CC.…`) for a customer known only by username: then Twilio
        // puts the BSUID in From and ExternalUserId and sends no WaId.
        let from =
            switchboard_domain::WhatsAppAddress::parse(&format!("whatsapp:{}", message.from)).map_err(|e| anyhow::anyhow!("from: {e}"))?;
        let (from_key, wa_id, bsuid) = match &from {
            switchboard_domain::WhatsAppAddress::Phone(p) => {
                (p.as_str().to_owned(), Some(p.digits().to_owned()), message.external_user_id.clone())
            }
            switchboard_domain::WhatsAppAddress::Bsuid(b) => (b.as_str().to_owned(), None, Some(b.as_str().to_owned())),
        };
        let to = switchboard_domain::PhoneNumber::parse(&message.to).map_err(|e| anyhow::anyhow!("to: {e}"))?;
        let (account_sid, token, urls, join_code) = {
            let state = self.lock();
            let (sid, account) = state
                .accounts
                .iter()
                .find(|(_, a)| a.numbers.contains_key(to.as_str()))
                .ok_or_else(|| anyhow::anyhow!("no emulated account has the number {to}"))?;
            (
                sid.clone(),
                account.auth_token.clone(),
                account.inbound_urls(to.as_str()),
                account.sandbox_join_code.clone(),
            )
        };
        let has_media = !message.media.is_empty();
        let message_sid = format!("{}{}", if has_media { "MM" } else { "SM" }, uuid::Uuid::new_v4().simple());
        {
            let mut state = self.lock();
            // The window is the person's, whichever address a reply uses.
            let now = self.now();
            for key in [Some(from_key.clone()), bsuid.clone()].into_iter().flatten() {
                state.windows.insert((to.as_str().to_owned(), key), now);
            }
            let order = state.inbound.len() as u64 + 1;
            state.inbound.insert(
                message_sid.clone(),
                crate::model::Inbound {
                    account_sid: account_sid.clone(),
                    customer: from_key.clone(),
                    order,
                },
            );
            if join_code.is_some_and(|code| message.body.trim().eq_ignore_ascii_case(&format!("join {code}"))) {
                state.sandbox_joined.insert(from_key.clone());
            }
        }
        let mut params: Vec<(String, String)> = vec![
            ("SmsMessageSid".into(), message_sid.clone()),
            ("NumMedia".into(), message.media.len().to_string()),
            (
                "ProfileName".into(),
                message.profile_name.clone().unwrap_or_else(|| "Customer".into()),
            ),
            ("SmsSid".into(), message_sid.clone()),
            ("SmsStatus".into(), "received".into()),
            ("Body".into(), message.body.clone()),
            ("To".into(), to.to_whatsapp()),
            ("NumSegments".into(), "1".into()),
            ("ReferralNumMedia".into(), "0".into()),
            ("MessageSid".into(), message_sid.clone()),
            ("AccountSid".into(), account_sid.clone()),
            ("From".into(), from.to_string()),
            ("ApiVersion".into(), "2010-04-01".into()),
        ];
        if let Some(wa_id) = wa_id {
            params.push(("WaId".into(), wa_id));
        }
        let kind = if message.location.is_some() {
            "location"
        } else if message.flow_data.is_some() {
            "interactive"
        } else if message.button.is_some() {
            "button"
        } else if has_media {
            "image"
        } else {
            "text"
        };
        params.push(("MessageType".into(), kind.into()));
        for (i, media) in message.media.iter().enumerate() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&media.data_base64)
                .map_err(|_| anyhow::anyhow!("media {i} is not base64"))?;
            let media_sid = format!("ME{}", uuid::Uuid::new_v4().simple());
            self.lock()
                .media
                .insert(media_sid.clone(), (account_sid.clone(), media.content_type.clone(), bytes));
            params.push((
                format!("MediaUrl{i}"),
                format!(
                    "{}/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}",
                    self.inner.api_base
                ),
            ));
            params.push((format!("MediaContentType{i}"), media.content_type.clone()));
        }
        if let Some((lat, lon, label)) = &message.location {
            params.push(("Latitude".into(), lat.to_string()));
            params.push(("Longitude".into(), lon.to_string()));
            if let Some(label) = label {
                params.push(("Label".into(), label.clone()));
            }
        }
        if let Some((text, payload)) = &message.button {
            params.push(("ButtonText".into(), text.clone()));
            params.push(("ButtonPayload".into(), payload.clone()));
        }
        if let Some(flow) = &message.flow_data {
            params.push(("FlowData".into(), flow.clone()));
        }
        if let Some(sid) = &message.replied_to_sid {
            params.push(("OriginalRepliedMessageSid".into(), sid.clone()));
            params.push(("OriginalRepliedMessageSender".into(), to.to_whatsapp()));
        }
        if let Some(bsuid) = &bsuid {
            params.push(("ExternalUserId".into(), format!("whatsapp:{bsuid}")));
        }
        let Some(urls) = urls else {
            // The number's Messaging Service has no inbound URL: Twilio drops the message.
            return Ok(CustomerResult {
                message_sid,
                webhook_status: 0,
                webhook_error: Some("dropped: the number's Messaging Service has no inbound URL".into()),
                webhook_attempts: 0,
                webhook_fallback: false,
            });
        };
        let mut delivered = crate::deliver::post(self, &urls.inbound, &token, &params).await;
        let mut fallback = false;
        if let (false, Some(fallback_url)) = (delivered.succeeded(), &urls.fallback) {
            // Twilio requests the fallback URL at once, naming the failure and where it happened.
            let code = if delivered.status == 0 { "11205" } else { "11200" };
            let (failed_url, _) = switchboard_twilio::overrides::split(&urls.inbound);
            params.push(("ErrorCode".into(), code.into()));
            params.push(("ErrorUrl".into(), failed_url.to_owned()));
            let second = crate::deliver::post(self, fallback_url, &token, &params).await;
            delivered = crate::deliver::Delivered {
                attempts: delivered.attempts + second.attempts,
                ..second
            };
            fallback = true;
        }
        Ok(CustomerResult {
            message_sid,
            webhook_status: delivered.status,
            webhook_error: delivered.error,
            webhook_attempts: delivered.attempts,
            webhook_fallback: fallback,
        })
    }
}
