//! A channel's health: whether Twilio still takes its credentials, and whether Twilio's webhooks
//! still arrive. Twilio gives no signal when webhooks stop (a URL changed in the console, a
//! proxy in between broke), so the sign is indirect: messages Twilio accepted that never got a
//! status callback while none of their neighbours did either.

use serde::{Deserialize, Serialize};

/// Messages Twilio accepted that must stay without any status callback before the channel
/// counts as unhealthy (one or two can be slow).
pub const STUCK_THRESHOLD: i64 = 3;

/// What a health check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet, or Twilio could not be reached.
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// How Twilio answered a credentials check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialCheck {
    /// Accepted.
    Accepted,
    /// Refused (401/403, e.g. 20003 after the auth token was changed or revoked).
    Refused { code: Option<u32> },
    /// No answer.
    Unreachable(String),
}

/// Delivery reports of the channel's recent sends (accepted by Twilio a while ago).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallbackFacts {
    /// Accepted by Twilio, old enough, and never given a status by a callback.
    pub stuck: i64,
    /// In the same period, moved on by a callback (sent, delivered, read, failed, …).
    pub advanced: i64,
}

/// Judges a channel; `not_senders` lists its numbers that are not online WhatsApp senders of
/// the account (each as `+E.164 (why)`). Returns its health and, unless healthy, why.
pub fn assess(credentials: &CredentialCheck, not_senders: &[String], callbacks: CallbackFacts) -> (Health, Option<String>) {
    match credentials {
        CredentialCheck::Refused { code } => (
            Health::Unhealthy,
            Some(format!(
                "Twilio refuses the channel's credentials ({}): the auth token was changed or revoked; update it",
                code.map_or_else(|| "401".to_owned(), |c| c.to_string())
            )),
        ),
        CredentialCheck::Unreachable(why) => (Health::Unknown, Some(format!("Twilio could not be reached: {why}"))),
        CredentialCheck::Accepted if !not_senders.is_empty() => (
            Health::Unhealthy,
            Some(format!(
                "numbers that cannot take messages at this Twilio account: {}; put them right at Twilio or remove them",
                not_senders.join(", ")
            )),
        ),
        CredentialCheck::Accepted if callbacks.stuck >= STUCK_THRESHOLD && callbacks.advanced == 0 => (
            Health::Unhealthy,
            Some(format!(
                "Twilio's webhooks have stopped arriving: {} sent messages have had no status callback for 15 minutes; \
                 check the webhook URLs (GET /channels/{{id}}/webhooks)",
                callbacks.stuck
            )),
        ),
        CredentialCheck::Accepted => (Health::Healthy, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_make_a_channel_unhealthy_and_say_why() {
        let (health, why) = assess(&CredentialCheck::Refused { code: Some(20003) }, &[], CallbackFacts::default());
        assert_eq!(health, Health::Unhealthy);
        assert!(why.unwrap().contains("20003"));
    }

    #[test]
    fn webhooks_that_stopped_while_sends_succeed_make_it_unhealthy() {
        let stuck = CallbackFacts { stuck: 3, advanced: 0 };
        assert_eq!(assess(&CredentialCheck::Accepted, &[], stuck).0, Health::Unhealthy);
        let some_arrive = CallbackFacts { stuck: 5, advanced: 1 };
        assert_eq!(
            assess(&CredentialCheck::Accepted, &[], some_arrive).0,
            Health::Healthy,
            "slow, not stopped"
        );
        let few = CallbackFacts { stuck: 2, advanced: 0 };
        assert_eq!(assess(&CredentialCheck::Accepted, &[], few).0, Health::Healthy);
    }

    #[test]
    fn a_number_that_is_not_an_online_sender_makes_it_unhealthy() {
        let missing = ["+14155550999 (no sender)".to_owned()];
        let (health, why) = assess(&CredentialCheck::Accepted, &missing, CallbackFacts::default());
        assert_eq!(health, Health::Unhealthy);
        assert!(why.unwrap().contains("+14155550999 (no sender)"));
        let refused = assess(&CredentialCheck::Refused { code: Some(20003) }, &missing, CallbackFacts::default());
        assert!(refused.1.unwrap().contains("20003"), "refused credentials are said first");
    }

    #[test]
    fn an_unreachable_twilio_is_unknown_not_unhealthy() {
        let (health, why) = assess(&CredentialCheck::Unreachable("timeout".into()), &[], CallbackFacts::default());
        assert_eq!(health, Health::Unknown);
        assert!(why.unwrap().contains("timeout"));
    }
}
