//! Twilio's webhooks for WhatsApp, typed. A [`Webhook<Unverified>`] holds the decoded form; only
//! [`Webhook::verify`] turns it into a [`Webhook<Verified>`], which alone can be parsed into an
//! [`InboundMessage`] or a [`StatusCallback`]: nothing is interpreted before its signature holds.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use switchboard_domain::{AddressError, CustomerAddress, PhoneNumber};

use crate::shared_key::{self, SignatureSettings};
use crate::signature;

/// Marker: the signature has not been checked.
#[derive(Debug)]
pub struct Unverified;
/// Marker: the signature matched the channel's auth token or one of its shared keys.
#[derive(Debug)]
pub struct Verified;

/// A webhook's decoded parameters, in state `S`.
#[derive(Debug)]
pub struct Webhook<S> {
    params: Vec<(String, String)>,
    state: PhantomData<S>,
}

/// The signature did not match (or was missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Twilio-Signature` header.
    #[error("missing X-Twilio-Signature")]
    Missing,
    /// The header does not match.
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    /// `X-Twilio-Webhooks-Signature-Settings` names a shared key this channel does not hold.
    #[error("the webhook is signed with a shared key this channel does not hold")]
    UnknownKey,
    /// `X-Twilio-Webhooks-Signature-Settings` names an algorithm this version does not know,
    /// or no key.
    #[error("unsupported X-Twilio-Webhooks-Signature-Settings")]
    UnsupportedSettings,
}

/// A verified webhook that does not carry what it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A required parameter is absent or empty.
    #[error("missing required parameter {0}")]
    Missing(&'static str),
    /// A parameter has a value that cannot be right.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// Parameter.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(name: impl Into<String>, reason: impl Into<String>) -> WebhookError {
    WebhookError::Invalid {
        name: name.into(),
        reason: reason.into(),
    }
}

impl Webhook<Unverified> {
    /// Decodes a form body (no validation yet).
    pub fn from_form(body: &[u8]) -> Self {
        Self {
            params: signature::form_params(body),
            state: PhantomData,
        }
    }

    /// Checks `X-Twilio-Signature` against `url`, with the shared key and algorithm that
    /// `X-Twilio-Webhooks-Signature-Settings` names (`settings`; `shared_key` returns a key's
    /// secret), or, without that header, with the auth token and HMAC-SHA1.
    pub fn verify_with<'k>(
        self,
        auth_token: &str,
        shared_key: impl Fn(&str) -> Option<&'k str>,
        url: &str,
        header: Option<&str>,
        settings: Option<&str>,
    ) -> Result<Webhook<Verified>, SignatureError> {
        let Some(settings) = settings.filter(|s| !s.trim().is_empty()) else {
            return self.verify(auth_token, url, header);
        };
        let header = header.filter(|h| !h.is_empty()).ok_or(SignatureError::Missing)?;
        let settings = SignatureSettings::parse(settings).map_err(|_| SignatureError::UnsupportedSettings)?;
        let secret = shared_key(&settings.key).ok_or(SignatureError::UnknownKey)?;
        if shared_key::validate(settings.algorithm, secret, url, &self.params, header) {
            Ok(Webhook::trusted(self.params))
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Checks `X-Twilio-Signature` against `url` (the public URL Twilio called, query included).
    pub fn verify(self, auth_token: &str, url: &str, header: Option<&str>) -> Result<Webhook<Verified>, SignatureError> {
        let header = header.filter(|h| !h.is_empty()).ok_or(SignatureError::Missing)?;
        if signature::validate(auth_token, url, &self.params, header) {
            // The signature covers the values as sent; what goes on is what can be stored.
            Ok(Webhook::trusted(self.params))
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

impl Webhook<Verified> {
    /// Wraps parameters that were verified earlier (e.g. by ingress, before publishing).
    /// Every value is made storable first ([`make_storable`]), so this holds for a message
    /// published before that rule too.
    pub fn trusted(mut params: Vec<(String, String)>) -> Self {
        make_storable(&mut params);
        Self {
            params,
            state: PhantomData,
        }
    }

    /// Returns the verified parameters.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Takes the verified parameters.
    pub fn into_params(self) -> Vec<(String, String)> {
        self.params
    }

    /// Returns the `AccountSid` parameter.
    pub fn account_sid(&self) -> Option<&str> {
        self.get("AccountSid")
    }

    /// Parses an incoming-message webhook.
    pub fn inbound(&self) -> Result<InboundMessage, WebhookError> {
        InboundMessage::from_params(&self.params)
    }

    /// Parses a status-callback webhook.
    pub fn status(&self) -> Result<StatusCallback, WebhookError> {
        StatusCallback::from_params(&self.params)
    }

    fn get(&self, name: &str) -> Option<&str> {
        get(&self.params, name)
    }
}

/// Makes every name and value storable, in place: NUL (U+0000), which a form may carry as `%00`
/// but PostgreSQL text and JSON cannot hold, is removed. This is the one place where webhook
/// input is cleaned; everything downstream (profile names, bodies, button texts, addresses, the
/// parameters kept with a message) reads the result.
pub fn make_storable(params: &mut [(String, String)]) {
    for (name, value) in params {
        for text in [name, value] {
            if text.contains('\0') {
                text.retain(|c| c != '\0');
            }
        }
    }
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Twilio's media URLs are HTTPS; plain HTTP is accepted only on the loopback interface, where
/// the Twilio emulator serves them in development and tests. (The media proxy fetches only from
/// the configured Twilio API host either way.)
fn is_media_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn non_empty<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    get(params, name).map(str::trim).filter(|v| !v.is_empty())
}

fn required<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, WebhookError> {
    non_empty(params, name).ok_or(WebhookError::Missing(name))
}

fn owned(params: &[(String, String)], name: &str) -> Option<String> {
    non_empty(params, name).map(str::to_owned)
}

fn flag(params: &[(String, String)], name: &str) -> bool {
    get(params, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn address_err(name: &str, e: AddressError) -> WebhookError {
    invalid(name, e.to_string())
}

/// Most media one message may carry (Twilio's API limit).
pub const MAX_MEDIA: usize = 10;

/// One media item of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// `MediaUrl{N}`: Twilio's URL (needs the account's credentials).
    pub url: String,
    /// `MediaContentType{N}`.
    pub content_type: String,
}

/// A shared location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Street address, when shared.
    pub address: Option<String>,
    /// Place name, when shared.
    pub label: Option<String>,
}

/// A tapped button (quick reply or call to action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Visible text.
    pub text: Option<String>,
    /// Postback payload.
    pub payload: Option<String>,
    /// `REPLY` or `ACTION`.
    pub kind: Option<String>,
}

/// The message a reply refers to (swipe-to-reply or a button on our message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepliedTo {
    /// Our outbound `SM…`/`MM…`.
    pub message_sid: String,
    /// Who sent it (our number).
    pub sender: Option<String>,
}

/// Click-to-WhatsApp ad attribution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // one field per Twilio `Referral*` parameter
pub struct Referral {
    pub body: Option<String>,
    pub headline: Option<String>,
    pub source_id: Option<String>,
    pub source_type: Option<String>,
    pub source_url: Option<String>,
    pub media_id: Option<String>,
    pub media_content_type: Option<String>,
    pub media_url: Option<String>,
    pub ctwa_clid: Option<String>,
}

/// A customer's WhatsApp message as Twilio delivers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// `MessageSid`: unique, and the same across Twilio's retries (the dedupe key).
    pub message_sid: String,
    /// `AccountSid`.
    pub account_sid: String,
    /// `MessagingServiceSid`, when the number is in a Messaging Service (changes nothing).
    pub messaging_service_sid: Option<String>,
    /// The customer (`From` plus `ExternalUserId`).
    pub customer: CustomerAddress,
    /// Our WhatsApp number (`To`).
    pub to: PhoneNumber,
    /// `Body` (empty for media without caption and for locations).
    pub body: String,
    /// Media items.
    pub media: Vec<Media>,
    /// `ProfileName`.
    pub profile_name: Option<String>,
    /// `WaId`.
    pub wa_id: Option<String>,
    /// `MessageType` (`text`, `image`, `interactive`, `button`, `location`…).
    pub message_type: Option<String>,
    /// A shared location.
    pub location: Option<Location>,
    /// A tapped button.
    pub button: Option<Button>,
    /// The message this one replies to.
    pub replied_to: Option<RepliedTo>,
    /// Ad attribution.
    pub referral: Option<Referral>,
    /// `Forwarded`.
    pub forwarded: bool,
    /// `FrequentlyForwarded`.
    pub frequently_forwarded: bool,
    /// `InteractiveData` (JSON text).
    pub interactive_data: Option<String>,
    /// `FlowData` (JSON text).
    pub flow_data: Option<String>,
}

impl InboundMessage {
    /// Parses and validates the parameters of an incoming-message webhook.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, WebhookError> {
        let message_sid = required(params, "MessageSid")?;
        if !crate::is_message_sid(message_sid) {
            return Err(invalid("MessageSid", "expected SM or MM followed by 32 hex digits"));
        }
        let account_sid = required(params, "AccountSid")?;
        if !crate::is_account_sid(account_sid) {
            return Err(invalid("AccountSid", "expected AC followed by 32 hex digits"));
        }
        let from = required(params, "From")?;
        let customer = CustomerAddress::from_webhook(from, non_empty(params, "ExternalUserId")).map_err(|e| address_err("From", e))?;
        let to_raw = required(params, "To")?;
        if !to_raw.starts_with(switchboard_domain::address::WHATSAPP_PREFIX) {
            return Err(invalid("To", "expected a whatsapp: address"));
        }
        let to = PhoneNumber::parse(to_raw).map_err(|e| address_err("To", e))?;

        let num_media: usize = match non_empty(params, "NumMedia") {
            None => 0,
            Some(n) => n.parse().map_err(|_| invalid("NumMedia", "not a number"))?,
        };
        if num_media > MAX_MEDIA {
            return Err(invalid("NumMedia", format!("at most {MAX_MEDIA}")));
        }
        let mut media = Vec::with_capacity(num_media);
        for i in 0..num_media {
            let url = non_empty(params, &format!("MediaUrl{i}")).ok_or_else(|| invalid(format!("MediaUrl{i}"), "missing for NumMedia"))?;
            if !is_media_url(url) {
                return Err(invalid(format!("MediaUrl{i}"), "expected an https:// URL"));
            }
            let content_type = non_empty(params, &format!("MediaContentType{i}")).unwrap_or("application/octet-stream");
            media.push(Media {
                url: url.to_owned(),
                content_type: content_type.to_owned(),
            });
        }

        let location = match (non_empty(params, "Latitude"), non_empty(params, "Longitude")) {
            (None, None) => None,
            (Some(lat), Some(lon)) => {
                let latitude: f64 = lat.parse().map_err(|_| invalid("Latitude", "not a number"))?;
                let longitude: f64 = lon.parse().map_err(|_| invalid("Longitude", "not a number"))?;
                if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
                    return Err(invalid("Latitude", "coordinates out of range"));
                }
                Some(Location {
                    latitude,
                    longitude,
                    address: owned(params, "Address"),
                    label: owned(params, "Label"),
                })
            }
            _ => return Err(invalid("Latitude", "Latitude and Longitude come together")),
        };
        let button = match (
            owned(params, "ButtonText"),
            owned(params, "ButtonPayload"),
            owned(params, "ButtonType"),
        ) {
            (None, None, _) => None,
            (text, payload, kind) => Some(Button { text, payload, kind }),
        };
        let replied_to = owned(params, "OriginalRepliedMessageSid").map(|sid| RepliedTo {
            message_sid: sid,
            sender: owned(params, "OriginalRepliedMessageSender"),
        });
        let referral = Referral {
            body: owned(params, "ReferralBody"),
            headline: owned(params, "ReferralHeadline"),
            source_id: owned(params, "ReferralSourceId"),
            source_type: owned(params, "ReferralSourceType"),
            source_url: owned(params, "ReferralSourceUrl"),
            media_id: owned(params, "ReferralMediaId"),
            media_content_type: owned(params, "ReferralMediaContentType"),
            media_url: owned(params, "ReferralMediaUrl"),
            ctwa_clid: owned(params, "ReferralCtwaClid"),
        };
        let referral = (referral != Referral::default()).then_some(referral);

        Ok(Self {
            message_sid: message_sid.to_owned(),
            account_sid: account_sid.to_owned(),
            messaging_service_sid: owned(params, "MessagingServiceSid"),
            customer,
            to,
            body: get(params, "Body").unwrap_or_default().to_owned(),
            media,
            profile_name: owned(params, "ProfileName"),
            wa_id: owned(params, "WaId"),
            message_type: owned(params, "MessageType"),
            location,
            button,
            replied_to,
            referral,
            forwarded: flag(params, "Forwarded"),
            frequently_forwarded: flag(params, "FrequentlyForwarded"),
            interactive_data: owned(params, "InteractiveData"),
            flow_data: owned(params, "FlowData"),
        })
    }
}

/// A delivery-status callback for one of our outbound messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCallback {
    /// Our message's SID.
    pub message_sid: String,
    /// `AccountSid`.
    pub account_sid: String,
    /// `MessageStatus` as Twilio wrote it.
    pub status: String,
    /// `ErrorCode`, on failures.
    pub error_code: Option<u32>,
    /// `ErrorMessage` (often empty for WhatsApp).
    pub error_message: Option<String>,
    /// `ChannelStatusMessage`, WhatsApp's own error text.
    pub channel_status_message: Option<String>,
    /// `EventType` (`READ`, `DELIVERED`).
    pub event_type: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `From`.
    pub from: Option<String>,
}

impl StatusCallback {
    /// Parses and validates the parameters of a status callback.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, WebhookError> {
        let message_sid = required(params, "MessageSid")?;
        if !crate::is_message_sid(message_sid) {
            return Err(invalid("MessageSid", "expected SM or MM followed by 32 hex digits"));
        }
        let account_sid = required(params, "AccountSid")?;
        if !crate::is_account_sid(account_sid) {
            return Err(invalid("AccountSid", "expected AC followed by 32 hex digits"));
        }
        let status = required(params, "MessageStatus")?;
        if !status.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(invalid("MessageStatus", "expected a lowercase status name"));
        }
        let error_code = match non_empty(params, "ErrorCode") {
            None => None,
            Some(code) => Some(code.parse::<u32>().map_err(|_| invalid("ErrorCode", "not a number"))?),
        };
        Ok(Self {
            message_sid: message_sid.to_owned(),
            account_sid: account_sid.to_owned(),
            status: status.to_owned(),
            error_code,
            error_message: owned(params, "ErrorMessage"),
            channel_status_message: owned(params, "ChannelStatusMessage"),
            event_type: owned(params, "EventType"),
            to: owned(params, "To"),
            from: owned(params, "From"),
        })
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
