//! Where Twilio sends a channel's webhooks, against where Switchboard expects them, number by
//! number; and setting them (#21 item 4). A number's WhatsApp sender (Senders API) has its own
//! URLs, but when the sender belongs to a Messaging Service, the service's inbound and fallback
//! URLs win unless the service defers to its senders (`use_inbound_webhook_on_number`), and a
//! service with no inbound URL drops the messages. The report shows the URLs that take effect;
//! `configure_webhooks` sets every sender whose own URLs differ, and every overriding service
//! whose URLs differ when all its senders are numbers of this channel (a service shared with
//! other numbers is left as it is and reported: its URLs would move them too).

use std::collections::BTreeSet;
use switchboard_domain::ids::ChannelId;

use switchboard_twilio::Credentials;
use switchboard_twilio::messaging_services::{MessagingService, ServiceWebhooks};
use switchboard_twilio::senders::{Sender, SenderWebhook};
use uuid::Uuid;

use crate::app::Session;
use crate::channel_health::twilio_failure;
use crate::error::SessionError;

/// A Messaging Service holding a number's sender.
#[derive(Debug, Clone)]
pub struct HeldBy {
    pub service: MessagingService,
    /// The service's other WhatsApp senders that are not numbers of this channel.
    pub other_senders: Vec<String>,
}

impl HeldBy {
    /// The service's URLs as sender webhook URLs.
    fn urls(&self) -> SenderWebhook {
        SenderWebhook {
            callback_url: self.service.inbound_request_url.clone(),
            fallback_url: self.service.fallback_url.clone(),
            status_callback_url: self.service.status_callback.clone(),
            ..SenderWebhook::default()
        }
    }
}

/// One number's webhooks, at Twilio and as Switchboard expects them.
#[derive(Debug, Clone)]
pub struct NumberWebhooks {
    pub number_id: Uuid,
    pub phone: String,
    /// The number takes traffic.
    pub active: bool,
    /// The WhatsApp sender at Twilio, if the account has one for this number.
    pub sender: Option<Sender>,
    /// The Messaging Service holding the sender, if any.
    pub held_by: Option<HeldBy>,
    /// What Switchboard gives out.
    pub expected: SenderWebhook,
    /// The inbound and fallback URLs that take effect (the service's when it overrides the
    /// sender's) are the expected ones.
    pub matches: bool,
}

impl NumberWebhooks {
    /// The URLs that take effect for an inbound message: none when the number has no sender, or
    /// when its service overrides it without an inbound URL (Twilio drops the message).
    pub fn effective(&self) -> Option<SenderWebhook> {
        match &self.held_by {
            Some(held) if held.service.overrides_senders() => held.service.inbound_request_url.as_ref().map(|_| held.urls()),
            _ => self.sender.as_ref().and_then(|s| s.webhook.clone()),
        }
    }

    /// Why the number cannot take messages, as `+E.164 (why)`, if it cannot.
    pub fn unable_to_receive(&self) -> Option<String> {
        let phone = &self.phone;
        match (&self.sender, &self.held_by) {
            (None, _) => Some(format!("{phone} (no sender)")),
            (Some(s), _) if !matches!(s.status.as_deref(), Some("ONLINE" | "ONLINE:UPDATING") | None) => {
                Some(format!("{phone} ({})", s.status.as_deref().unwrap_or_default()))
            }
            (_, Some(held)) if held.service.overrides_senders() && held.service.inbound_request_url.is_none() => Some(format!(
                "{phone} (its Messaging Service {} drops inbound messages: it has no inbound URL)",
                held.service.sid
            )),
            _ => None,
        }
    }
}

fn expected(session: &Session, channel: Uuid) -> SenderWebhook {
    let fallback = session.fallback_url(channel);
    SenderWebhook {
        callback_url: Some(session.inbound_url(channel)),
        callback_method: Some("POST".into()),
        fallback_method: fallback.as_ref().map(|_| "POST".into()),
        fallback_url: fallback,
        status_callback_url: Some(session.status_url(channel)),
        status_callback_method: Some("POST".into()),
    }
}

fn same(hook: Option<&SenderWebhook>, expected: &SenderWebhook) -> bool {
    let Some(hook) = hook else {
        return false;
    };
    let empty_is_none = |v: &Option<String>| v.clone().filter(|u| !u.is_empty());
    empty_is_none(&hook.callback_url) == expected.callback_url && empty_is_none(&hook.fallback_url) == expected.fallback_url
}

/// What Twilio has: the account's WhatsApp senders, and its Messaging Services with the phones
/// of their WhatsApp senders.
pub(crate) struct AtTwilio {
    senders: Vec<Sender>,
    services: Vec<(MessagingService, BTreeSet<String>)>,
}

impl Session {
    /// Reads the account's senders and Messaging Services.
    pub(crate) async fn read_webhooks_at_twilio(&self, creds: &Credentials) -> Result<AtTwilio, switchboard_twilio::TwilioError> {
        let senders = self.twilio.whatsapp_senders(creds).await?;
        let mut services = Vec::new();
        for service in self.twilio.messaging_services(creds).await? {
            let phones = self
                .twilio
                .service_channel_senders(creds, &service.sid)
                .await?
                .iter()
                .filter_map(|s| s.phone().map(str::to_owned))
                .collect();
            services.push((service, phones));
        }
        Ok(AtTwilio { senders, services })
    }

    /// Pairs each number of the channel with its sender and service at Twilio.
    pub(crate) async fn report_from(&self, channel: Uuid, at: &AtTwilio) -> Result<Vec<NumberWebhooks>, SessionError> {
        let expected = expected(self, channel);
        let numbers = self.list_numbers(Some(channel), None, 1_000).await?;
        let ours: BTreeSet<&str> = numbers.iter().map(|n| n.phone.as_str()).collect();
        Ok(numbers
            .iter()
            .map(|n| {
                let sender = at.senders.iter().find(|s| s.phone() == Some(n.phone.as_str())).cloned();
                let held_by = at
                    .services
                    .iter()
                    .find(|(_, phones)| phones.contains(&n.phone))
                    .map(|(service, phones)| HeldBy {
                        service: service.clone(),
                        other_senders: phones.iter().filter(|p| !ours.contains(p.as_str())).cloned().collect(),
                    });
                let mut number = NumberWebhooks {
                    number_id: n.id.into(),
                    phone: n.phone.clone(),
                    active: n.active,
                    sender,
                    held_by,
                    expected: expected.clone(),
                    matches: false,
                };
                number.matches = same(number.effective().as_ref(), &expected);
                number
            })
            .collect())
    }

    /// Compares each number's webhook URLs at Twilio with the ones Switchboard gives out.
    pub async fn webhook_report(&self, channel: ChannelId) -> Result<Vec<NumberWebhooks>, SessionError> {
        let credentials = self.credentials(channel.uuid()).await?;
        let at = self.read_webhooks_at_twilio(&credentials).await.map_err(|e| twilio_failure(&e))?;
        self.report_from(channel.uuid(), &at).await
    }

    /// Sets the expected URLs on every sender of the channel whose own URLs differ, and on
    /// every Messaging Service that overrides them, differs, and holds only this channel's
    /// numbers; returns the report as Twilio then has it. A number with no sender at Twilio, or
    /// held by a service shared with other numbers, is left (and reported).
    pub async fn configure_webhooks(&self, channel: ChannelId) -> Result<Vec<NumberWebhooks>, SessionError> {
        let credentials = self.credentials(channel.uuid()).await?;
        let at = self.read_webhooks_at_twilio(&credentials).await.map_err(|e| twilio_failure(&e))?;
        let report = self.report_from(channel.uuid(), &at).await?;
        let mut services_done = BTreeSet::new();
        let mut changed = false;
        for number in &report {
            if let Some(sender) = number.sender.as_ref().filter(|s| !same(s.webhook.as_ref(), &number.expected)) {
                self.twilio
                    .update_sender_webhook(&credentials, &sender.sid, &number.expected)
                    .await
                    .map_err(|e| twilio_failure(&e))?;
                tracing::info!(channel_id = %channel, phone = %number.phone, sender = %sender.sid, "webhook URLs set at Twilio");
                changed = true;
            }
            let Some(held) = &number.held_by else { continue };
            let sid = &held.service.sid;
            if !held.service.overrides_senders() || same(Some(&held.urls()), &number.expected) || !services_done.insert(sid.clone()) {
                continue;
            }
            if !held.other_senders.is_empty() {
                tracing::warn!(channel_id = %channel, service = %sid, others = ?held.other_senders,
                    "the Messaging Service also holds numbers of no channel here: its webhook URLs are left as they are");
                continue;
            }
            let webhooks = ServiceWebhooks {
                inbound_request_url: number.expected.callback_url.clone().unwrap_or_default(),
                fallback_url: number.expected.fallback_url.clone().unwrap_or_default(),
                status_callback: number.expected.status_callback_url.clone().unwrap_or_default(),
            };
            self.twilio
                .update_service_webhooks(&credentials, sid, &webhooks)
                .await
                .map_err(|e| twilio_failure(&e))?;
            tracing::info!(channel_id = %channel, service = %sid, "Messaging Service webhook URLs set at Twilio");
            changed = true;
        }
        if !changed {
            return Ok(report);
        }
        let at = self.read_webhooks_at_twilio(&credentials).await.map_err(|e| twilio_failure(&e))?;
        self.report_from(channel.uuid(), &at).await
    }
}
