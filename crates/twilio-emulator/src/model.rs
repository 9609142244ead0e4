//! The emulator's data as tests and the control API exchange it: accounts and numbers to set up,
//! customer messages, faults, callback settings, what was sent and fetched, typing indicators,
//! shared keys. Plain data; the state that holds it is `state`, the handle `handle`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use switchboard_twilio::shared_key::Algorithm;

/// One WhatsApp number of an account and where its inbound webhooks go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumberSetup {
    /// E.164.
    pub phone: String,
    /// "When a message comes in" URL.
    pub inbound_url: String,
    /// "Primary handler fails" URL: requested once the inbound URL failed (its retries spent),
    /// with `ErrorCode` and `ErrorUrl` added.
    #[serde(default)]
    pub fallback_url: Option<String>,
}

/// An account to emulate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountSetup {
    /// `AC…`.
    pub account_sid: String,
    /// Primary auth token.
    pub auth_token: String,
    /// Its WhatsApp senders.
    pub numbers: Vec<NumberSetup>,
    /// Sandbox join code (for `join <code>`), when this is a sandbox account.
    #[serde(default)]
    pub sandbox_join_code: Option<String>,
    /// Content templates; Twilio's usual seed set when absent.
    #[serde(default)]
    pub templates: Option<Vec<SeededTemplate>>,
}

/// A Messaging Service of an account (`PUT /emulator/accounts/{sid}/messaging-services`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagingServiceSetup {
    /// `MG…`.
    pub sid: String,
    #[serde(default)]
    pub friendly_name: String,
    /// None, and not deferring to the numbers: inbound messages are dropped.
    #[serde(default)]
    pub inbound_request_url: Option<String>,
    #[serde(default)]
    pub fallback_url: Option<String>,
    #[serde(default)]
    pub use_inbound_webhook_on_number: bool,
    /// Its WhatsApp senders (numbers of the account, E.164); a number is in one service at most.
    #[serde(default)]
    pub numbers: Vec<String>,
}

/// A file a simulated customer sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerMedia {
    /// MIME type.
    pub content_type: String,
    /// Content, base64.
    pub data_base64: String,
}

/// A message a simulated customer sends to a business number.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerMessage {
    /// Customer phone (E.164), or their BSUID (`CC.…`) when they are known only by username.
    pub from: String,
    /// Business number (E.164).
    pub to: String,
    /// Text.
    pub body: String,
    /// The WhatsApp profile name Twilio passes on (`ProfileName`); none: not shared.
    pub profile_name: Option<String>,
    /// Files.
    pub media: Vec<CustomerMedia>,
    /// (latitude, longitude, label).
    pub location: Option<(f64, f64, Option<String>)>,
    /// (button text, payload).
    pub button: Option<(String, String)>,
    /// The business message this replies to.
    pub replied_to_sid: Option<String>,
    /// The customer's BSUID (`CC.xxxx`), sent as ExternalUserId.
    pub external_user_id: Option<String>,
    /// A WhatsApp Flow's response (JSON text), sent as `FlowData` with `MessageType=interactive`.
    pub flow_data: Option<String>,
}

/// What happened to a simulated customer message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerResult {
    /// Its MessageSid.
    pub message_sid: String,
    /// HTTP status the webhook answered (0: no answer).
    pub webhook_status: u16,
    /// Transport error, if any.
    pub webhook_error: Option<String>,
    /// Attempts made (more than one when the URL's overrides asked for retries).
    #[serde(default)]
    pub webhook_attempts: u32,
    /// Whether the number's fallback URL was requested (the status and error are then its).
    #[serde(default)]
    pub webhook_fallback: bool,
}

/// A fault applied to the next Messages API requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer `status` with Twilio error `code` (e.g. 429/20429 with Retry-After, 500).
    Status {
        status: u16,
        code: u32,
        retry_after_secs: Option<u64>,
        count: u32,
    },
    /// Answer after `ms` milliseconds.
    Slow { ms: u64, count: u32 },
    /// Accept, then fail the message with `code` in its status callback (e.g. 63024).
    FailWith { code: u32, count: u32 },
    /// Accept (create and send the message), then lose the answer: the response's body breaks
    /// off, as when a connection dies after Twilio accepted. The client cannot know the outcome.
    LoseResponse { count: u32 },
    /// An outage: answer every Messages API request with `status` and Twilio error `code` for
    /// the next `secs` seconds of wall time from injection, however many requests come.
    Outage { status: u16, code: u32, secs: u64 },
}

impl Fault {
    /// The requests it still applies to; `None` for an outage, which is kept as a deadline
    /// (`State::outage`) and never queued.
    pub(crate) fn count_mut(&mut self) -> Option<&mut u32> {
        match self {
            Self::Status { count, .. } | Self::Slow { count, .. } | Self::FailWith { count, .. } | Self::LoseResponse { count } => {
                Some(count)
            }
            Self::Outage { .. } => None,
        }
    }
}

/// A message sent through the emulated Messages API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentMessage {
    pub sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    pub body: Option<String>,
    pub media_urls: Vec<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
    pub status_callback: Option<String>,
    /// Final status (after callbacks).
    pub status: String,
    pub error_code: Option<u32>,
    /// When the request arrived, Unix milliseconds.
    pub received_ms: i64,
    /// When it was created by the emulator's clock, Unix seconds (its `date_created` and
    /// `date_sent`, which the Messages list filters on).
    #[serde(default)]
    pub created_unix: i64,
    /// The media files downloaded for it, once downloaded.
    #[serde(default)]
    pub media: Vec<FetchedMedia>,
}

/// Send counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub sent: usize,
    pub refused: u64,
    /// Webhook attempts made (retries included).
    #[serde(default)]
    pub webhook_attempts: u64,
    /// Per sender: the most messages received in any one-second window.
    pub max_per_second: BTreeMap<String, usize>,
}

/// Customers whose 24-hour window with a business number is open (as if they had just written).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenWindows {
    /// Business number (E.164).
    pub business: String,
    /// Customers (E.164).
    pub customers: Vec<String>,
}

/// A customer message the emulator delivered, for indicators to name.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub account_sid: String,
    /// The customer (E.164).
    pub customer: String,
    /// Its place among all customer messages, in the order they were sent.
    pub order: u64,
}

/// A typing indicator Twilio accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingIndicator {
    /// The customer message it names.
    pub message_sid: String,
    pub account_sid: String,
    /// The customer who sees it.
    pub customer: String,
    /// When (Unix milliseconds, the emulator's clock).
    pub at_ms: i64,
}

/// `GET /emulator/indicators`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Indicators {
    /// Every accepted indicator, oldest first.
    pub indicators: Vec<TypingIndicator>,
    /// Customer message SID → read (an indicator named it or a later message of theirs).
    pub read: HashMap<String, bool>,
}

/// One file Twilio downloaded (or tried to) for an outbound message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchedMedia {
    pub url: String,
    /// The HTTP status answered (0: no answer).
    pub status: u16,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes received.
    pub sha256: String,
    /// Why the download counts as failed, if it does.
    pub error: Option<String>,
}

/// A shared key the account's webhooks are signed with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedKeySetup {
    /// The SharedKey's id.
    pub key: String,
    /// Its secret.
    pub secret: String,
    /// `HMAC_SHA256` (the default) or `HMAC_SHA1`.
    #[serde(default = "sha256")]
    pub algorithm: String,
}

fn sha256() -> String {
    Algorithm::HmacSha256.as_str().into()
}

/// A Content template with its WhatsApp approval status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededTemplate {
    pub sid: String,
    pub name: String,
    pub language: String,
    pub body: String,
    pub status: String,
    /// Its Content type (`twilio/text` when absent).
    #[serde(default)]
    pub content_type: Option<String>,
    /// That type's other fields (`actions`, `items`, `button`, …).
    #[serde(default)]
    pub content: Option<serde_json::Value>,
}

impl SeededTemplate {
    /// The `types` object of its Content resource.
    pub fn types(&self) -> serde_json::Value {
        let kind = self.content_type.clone().unwrap_or_else(|| "twilio/text".into());
        let mut fields = self.content.clone().unwrap_or_else(|| serde_json::json!({}));
        if let Some(o) = fields.as_object_mut() {
            o.insert("body".into(), serde_json::Value::String(self.body.clone()));
        }
        serde_json::json!({ kind: fields })
    }
}

/// How status callbacks are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSettings {
    /// Delay before each callback, milliseconds.
    pub delay_ms: u64,
    /// Send the callbacks of a message in a shuffled order.
    pub reorder: bool,
    /// Send every callback twice.
    pub duplicate: bool,
    /// Send a `read` callback after `delivered`.
    pub read: bool,
    /// Status callbacks never arrive (the message still goes through).
    #[serde(default)]
    pub lost: bool,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            delay_ms: 20,
            reorder: false,
            duplicate: false,
            read: true,
            lost: false,
        }
    }
}
