//! The [`Emulator`] handle: cheap to clone, shared by every route and test. Its methods set up
//! and read the state; the routes are in `http`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::Clock;
use time::OffsetDateTime;

use crate::model::{AccountSetup, CallbackSettings, Fault, SentMessage, Stats};
use crate::state::{Account, NumberUrls, Shared, State as EmulatorState, default_templates};

/// A running emulator's handle (cheap to clone).
#[derive(Clone)]
pub struct Emulator {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub state: Shared,
    pub clock: Arc<dyn Clock>,
    pub api_base: String,
    pub cdn_base: String,
    pub http: reqwest::Client,
}

impl Emulator {
    /// An emulator reachable at `api_base`, redirecting media to `cdn_base` (another host:port).
    pub fn new(api_base: &str, cdn_base: &str, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent("TwilioProxy/1.1")
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                state: Shared::new(EmulatorState::default()),
                clock,
                api_base: api_base.trim_end_matches('/').to_owned(),
                cdn_base: cdn_base.trim_end_matches('/').to_owned(),
                http,
            }),
        })
    }

    /// Returns the API base URL (what the sender's `twilio_api_base` points at).
    pub fn api_base(&self) -> &str {
        &self.inner.api_base
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, EmulatorState> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates or replaces an account.
    pub fn setup_account(&self, setup: AccountSetup) {
        let numbers: BTreeMap<String, NumberUrls> = setup
            .numbers
            .into_iter()
            .map(|n| {
                let urls = NumberUrls {
                    inbound: n.inbound_url,
                    fallback: n.fallback_url.filter(|url| !url.is_empty()),
                    status_callback: None,
                };
                (n.phone, urls)
            })
            .collect();
        let account = Account {
            auth_token: setup.auth_token,
            numbers,
            sandbox_join_code: setup.sandbox_join_code,
            templates: setup.templates.unwrap_or_else(default_templates),
            shared_key: None,
            webhooks: Default::default(),
            services: Default::default(),
        };
        let mut state = self.lock();
        // The account's webhook configuration and Messaging Services are Twilio's, not the
        // set-up's: they stay.
        let kept = state
            .accounts
            .get(&setup.account_sid)
            .map(|a| (a.webhooks.clone(), a.services.clone()));
        let (webhooks, services) = kept.unwrap_or_default();
        let account = Account {
            webhooks,
            services,
            ..account
        };
        state.accounts.insert(setup.account_sid, account);
    }

    /// Applies an account as Switchboard has it configured (development's mirror): the same
    /// configuration mirrored again, by any mirror, changes nothing, so what was changed at
    /// "Twilio" since (a sender's URLs, a revoked token) stays until Switchboard's side changes.
    pub fn mirror_account(&self, setup: AccountSetup) {
        let fingerprint = serde_json::to_string(&setup).unwrap_or_default();
        {
            let mut state = self.lock();
            if state.mirrored.get(&setup.account_sid) == Some(&fingerprint) {
                return;
            }
            state.mirrored.insert(setup.account_sid.clone(), fingerprint);
        }
        self.setup_account(setup);
    }

    /// The auth token the emulator holds for `account_sid`, if it knows the account.
    pub fn account_token(&self, account_sid: &str) -> Option<String> {
        self.lock().accounts.get(account_sid).map(|a| a.auth_token.clone())
    }

    /// Takes Switchboard's channels as the accounts Twilio has (development, where
    /// `emulator_sync` mirrors them here): until an account is mirrored, a request naming it
    /// authenticates with any token, so a channel's credential check passes as it would at
    /// Twilio with the real token. Mirrored accounts are checked as usual.
    pub fn adopt_unknown_accounts(&self) {
        self.lock().adopt_unknown = true;
    }

    /// Queues a fault for the next Messages API requests.
    pub fn inject(&self, fault: Fault) {
        let mut state = self.lock();
        match fault {
            Fault::Outage { status, code, secs } => {
                state.outage = Some((std::time::Instant::now() + Duration::from_secs(secs), status, code));
            }
            other => state.faults.push_back(other),
        }
    }

    /// Sets how status callbacks are sent.
    pub fn set_callbacks(&self, settings: CallbackSettings) {
        self.lock().callbacks = settings;
    }

    /// Returns every message sent so far.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Returns send counts, with the busiest one-second window per sender.
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let mut by_sender: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for m in &state.sent {
            by_sender.entry(m.from.clone()).or_default().push(m.received_ms);
        }
        let max_per_second = by_sender
            .into_iter()
            .map(|(from, mut times)| {
                times.sort_unstable();
                let (mut best, mut start) = (0, 0);
                for end in 0..times.len() {
                    while times[end] - times[start] >= 1_000 {
                        start += 1;
                    }
                    best = best.max(end - start + 1);
                }
                (from, best)
            })
            .collect();
        Stats {
            sent: state.sent.len(),
            refused: state.refused,
            webhook_attempts: state.webhook_attempts,
            max_per_second,
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }
}
