//! A stand-in for Twilio's WhatsApp APIs, for tests, benchmarks and `switchboard dev` (no machine
//! here can reach Twilio). It behaves as `reference/twilio.md` describes:
//! - Messages API: HTTP Basic auth (401 with Twilio's JSON error), validation with Twilio's error
//!   codes (400), `201` with a Message resource, GET by SID;
//! - WhatsApp's 24-hour window per (sender, customer): free-form messages outside it are accepted
//!   and then fail with 63016 in their status callback; templates need an approved ContentSid;
//! - status callbacks signed with the account's auth token (or a shared key set for the account,
//!   with `X-Twilio-Webhooks-Signature-Settings`), with configurable delay, reordering and
//!   duplication;
//! - simulated customers whose messages arrive as correctly signed webhooks (15 s timeout, no
//!   retry on 5xx), media served behind Basic auth with a redirect to a second "CDN" host;
//! - the Content API (`/v1/ContentAndApprovals`), the Typing Indicators API
//!   (`/v2/Indicators/Typing.json`), the Senders API (`/v2/Channels/Senders`, each number a
//!   sender whose webhook URLs are where the emulator posts), Messaging Services
//!   (`/v1/Services`, whose inbound URL wins over their senders' unless they defer to them, and
//!   which drop inbound messages when they have none), fault injection, and per-sender
//!   send counts;
//! - the Webhooks configuration API (`/v1/Webhooks/…`: SharedKeys, Settings, Rules with their
//!   propagation delay, Operations), whose live Rules sign and time the webhooks that match;
//! - outbound media downloaded as Twilio does before sending (63019 when that fails).

mod admin;
mod answers;
mod callbacks;
mod customers;
mod deliver;
mod handle;
mod http;
mod indicators;
mod list;
mod media;
mod messaging_services;
mod model;
mod senders;
mod signing;
mod state;
mod webhook_rules;
mod webhooks_api;

pub use handle::Emulator;
pub use http::{cdn_router, router};
pub use model::{
    AccountSetup, CallbackSettings, CustomerMedia, CustomerMessage, CustomerResult, Fault, FetchedMedia, Indicators, MessagingServiceSetup,
    NumberSetup, OpenWindows, SeededTemplate, SentMessage, SharedKeySetup, Stats, TypingIndicator,
};

/// The shared sandbox sender.
pub const SANDBOX_NUMBER: &str = "+14155238886";
