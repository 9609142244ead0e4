//! The emulator's own control API (not Twilio's): set up accounts, make customers write, inject
//! faults, tune callbacks, read what was sent. Served under `/emulator/…`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::http::Emulator;
use crate::state::{CallbackSettings, SeededTemplate};

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
    /// Profile name.
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
    pub media: Vec<crate::media::FetchedMedia>,
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

pub(crate) async fn put_account(State(em): State<Emulator>, Json(setup): Json<AccountSetup>) -> Response {
    em.setup_account(setup);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn post_customer_message(State(em): State<Emulator>, Json(message): Json<CustomerMessage>) -> Response {
    match em.customer_message(message).await {
        Ok(result) => Json(result).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": format!("{error:#}") }))).into_response(),
    }
}

/// Customers whose 24-hour window with a business number is open (as if they had just written).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenWindows {
    /// Business number (E.164).
    pub business: String,
    /// Customers (E.164).
    pub customers: Vec<String>,
}

pub(crate) async fn put_windows(State(em): State<Emulator>, Json(open): Json<OpenWindows>) -> Response {
    let business = match switchboard_domain::PhoneNumber::parse(&open.business) {
        Ok(n) => n.as_str().to_owned(),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": format!("business: {e}") })),
            )
                .into_response();
        }
    };
    let now = em.now();
    let mut state = em.lock();
    for customer in &open.customers {
        match switchboard_domain::PhoneNumber::parse(customer) {
            Ok(c) => {
                state.windows.insert((business.clone(), c.as_str().to_owned()), now);
            }
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({ "error": format!("{customer}: {e}") })),
                )
                    .into_response();
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn post_fault(State(em): State<Emulator>, Json(fault): Json<Fault>) -> Response {
    em.inject(fault);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn put_callbacks(State(em): State<Emulator>, Json(settings): Json<CallbackSettings>) -> Response {
    em.set_callbacks(settings);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn get_messages(State(em): State<Emulator>) -> Json<Vec<SentMessage>> {
    Json(em.sent())
}

pub(crate) async fn get_stats(State(em): State<Emulator>) -> Json<Stats> {
    Json(em.stats())
}
