//! The emulator's in-memory state.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::model::{CallbackSettings, Fault, SeededTemplate, SentMessage};

/// An account: its token and its numbers' webhook URLs.
#[derive(Debug, Clone)]
pub struct Account {
    pub auth_token: String,
    /// Number (E.164) → its webhook URLs.
    pub numbers: BTreeMap<String, NumberUrls>,
    pub sandbox_join_code: Option<String>,
    pub templates: Vec<SeededTemplate>,
    /// Signs webhooks instead of the auth token, when set.
    pub shared_key: Option<crate::model::SharedKeySetup>,
    /// The Webhooks configuration API's SharedKeys, Settings and Rules.
    pub webhooks: crate::webhook_rules::WebhooksConfig,
    /// Messaging Services by SID.
    pub services: BTreeMap<String, Service>,
}

/// A Messaging Service: its senders take its inbound webhook unless it defers to theirs.
#[derive(Debug, Clone, Default)]
pub struct Service {
    pub friendly_name: String,
    pub inbound_url: Option<String>,
    pub fallback_url: Option<String>,
    pub status_callback: Option<String>,
    pub use_number_webhook: bool,
    /// Its WhatsApp senders (E.164).
    pub phones: std::collections::BTreeSet<String>,
}

impl Account {
    /// Where a customer's message to `phone` goes: the number's URLs, or its Messaging
    /// Service's when the service does not defer to the number. `None`: the service drops it
    /// (no inbound URL).
    pub fn inbound_urls(&self, phone: &str) -> Option<NumberUrls> {
        let own = self.numbers.get(phone)?.clone();
        match self.services.values().find(|s| s.phones.contains(phone)) {
            Some(service) if !service.use_number_webhook => Some(NumberUrls {
                inbound: service.inbound_url.clone()?,
                fallback: service.fallback_url.clone(),
                status_callback: service.status_callback.clone(),
            }),
            _ => Some(own),
        }
    }
}

/// Where a number's inbound webhooks go.
#[derive(Debug, Clone)]
pub struct NumberUrls {
    /// "A message comes in".
    pub inbound: String,
    /// "Primary handler fails": tried once the inbound URL failed, with `ErrorCode` and `ErrorUrl`.
    pub fallback: Option<String>,
    /// The sender's status callback URL (Senders API); messages name their own.
    pub status_callback: Option<String>,
}

/// Everything the emulator remembers.
#[derive(Debug, Default)]
pub struct State {
    pub accounts: HashMap<String, Account>,
    /// (our sender, customer) → when the customer last wrote.
    pub windows: HashMap<(String, String), OffsetDateTime>,
    /// Customers who joined the sandbox.
    pub sandbox_joined: HashSet<String>,
    pub sent: Vec<SentMessage>,
    pub faults: VecDeque<Fault>,
    /// An injected outage: until this instant, every Messages API request gets (status, code).
    pub outage: Option<(std::time::Instant, u16, u32)>,
    pub callbacks: CallbackSettings,
    /// Media of simulated customer messages: media SID → (account, content type, bytes).
    pub media: HashMap<String, (String, String, Vec<u8>)>,
    /// Customer messages delivered: SID → account and customer.
    pub inbound: HashMap<String, crate::model::Inbound>,
    /// Typing indicators accepted.
    pub indicators: Vec<crate::model::TypingIndicator>,
    /// Requests refused (auth, validation, injected faults).
    pub refused: u64,
    /// Webhook attempts answered or failed (customer messages and status callbacks, retries
    /// included).
    pub webhook_attempts: u64,
    /// Accounts come from Switchboard's channels (development, `emulator_sync`): an account not
    /// yet mirrored authenticates with any token.
    pub adopt_unknown: bool,
    /// What [`crate::Emulator::mirror_account`] last applied to each account (serialized), so a
    /// second mirror of the same configuration leaves the account as the tests changed it.
    pub mirrored: HashMap<String, String>,
    /// How long a Webhooks API Rule change takes to go live.
    pub webhooks_propagation: std::time::Duration,
    /// Rule changes fail at the end of their propagation (and change nothing): those of the
    /// Rules whose prefix (or exact URL) starts with this (`""`: every Rule's).
    pub webhooks_fail_changes: Option<String>,
}

/// The lock around the state.
pub type Shared = Mutex<State>;

/// Twilio's seed templates for a new account: a few approved, one rejected, one pending.
pub fn default_templates() -> Vec<SeededTemplate> {
    let t = |n: u32, name: &str, language: &str, body: &str, status: &str| SeededTemplate {
        sid: format!("HX{n:032x}"),
        name: name.into(),
        language: language.into(),
        body: body.into(),
        status: status.into(),
        content_type: None,
        content: None,
    };
    let rich = |n: u32, name: &str, body: &str, status: &str, kind: &str, content: serde_json::Value| SeededTemplate {
        content_type: Some(kind.into()),
        content: Some(content),
        ..t(n, name, "en", body, status)
    };
    vec![
        t(
            1,
            "appointment_reminder",
            "en",
            "Your appointment is coming up on {{1}} at {{2}}",
            "approved",
        ),
        t(
            2,
            "order_notification",
            "en",
            "Your {{1}} order of {{2}} has shipped and should be delivered on {{3}}. Details: {{4}}",
            "approved",
        ),
        t(3, "verification_code", "en", "Your {{1}} code is {{2}}", "approved"),
        t(
            4,
            "follow_up",
            "en",
            "Hi {{1}}, we are following up on your request {{2}}. Reply to continue.",
            "approved",
        ),
        t(
            5,
            "follow_up",
            "pt_BR",
            "Olá {{1}}, estamos acompanhando sua solicitação {{2}}. Responda para continuar.",
            "approved",
        ),
        t(
            6,
            "survey_link",
            "en",
            "Thanks for talking to us. Tell us how we did: {{1}}",
            "approved",
        ),
        t(7, "promo_blast", "en", "Big sale {{1}}!", "rejected"),
        t(8, "new_feature", "en", "Try our new feature {{1}}", "pending"),
        rich(
            9,
            "delivery_slot",
            "When should we deliver order {{1}}?",
            "approved",
            "twilio/quick-reply",
            serde_json::json!({ "actions": [{ "title": "Morning", "id": "slot_am" }, { "title": "Afternoon", "id": "slot_pm" }] }),
        ),
        rich(
            10,
            "help_topics",
            "What do you need help with?",
            "unsubmitted",
            "twilio/list-picker",
            serde_json::json!({ "button": "Topics", "items": [
                { "item": "Billing", "id": "topic_billing", "description": "Invoices and payments" },
                { "item": "Delivery", "id": "topic_delivery", "description": "Where is my order" }
            ] }),
        ),
    ]
}
