//! Every Twilio wire detail Switchboard needs for WhatsApp:
//! - [`signature`]: computing and checking `X-Twilio-Signature` exactly as Twilio's SDKs do, and
//!   [`shared_key`] for webhooks signed with a SharedKey (HMAC-SHA1 or HMAC-SHA256);
//! - [`webhook`]: the inbound-message and status-callback webhooks, typed, behind a
//!   verified/unverified typestate so nothing is parsed before its signature is checked;
//! - [`messages`] and [`content`]: the Messages API and Content API request/response shapes;
//! - [`errors`]: which Twilio errors are worth retrying, and human text for the codes that
//!   arrive without a message;
//! - [`client`]: a small REST client over reqwest (base URLs configurable for the emulator);
//! - [`senders`], [`messaging_services`] and [`webhooks_config`]: the Senders API, Messaging
//!   Services and the Webhooks configuration API
//!   (SharedKeys, Settings, Rules, Operations).

pub mod client;
pub mod content;
pub mod errors;
pub mod messages;
pub mod messaging_services;
pub mod overrides;
pub mod senders;
pub mod shared_key;
pub mod signature;
pub mod webhook;
pub mod webhooks_config;

pub use client::{Credentials, TwilioClient, TwilioError};
pub use webhook::{InboundMessage, StatusCallback, Unverified, Verified, Webhook, WebhookError};

/// Returns whether `sid` is a 34-character Twilio SID with the given two-letter prefix.
pub fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34 && sid.starts_with(prefix) && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Returns whether `sid` is an Account SID (`AC` + 32 hex digits).
pub fn is_account_sid(sid: &str) -> bool {
    is_sid(sid, "AC")
}

/// Returns whether `sid` is a Message SID (`SM` or `MM` + 32 hex digits).
pub fn is_message_sid(sid: &str) -> bool {
    is_sid(sid, "SM") || is_sid(sid, "MM")
}
