//! Read receipts and typing indicators towards the customer. Twilio's Typing Indicators API for
//! WhatsApp does both at once: it shows "typing…" to the customer (for up to 25 seconds, or until
//! the next message) and marks the inbound message it names, and those before it, as read. So
//! when a customer sees their messages read is a deliberate policy, chosen per workstream.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// WhatsApp shows a typing indicator for this long; a longer burst of typing sends another.
pub const TYPING_REFRESH: Duration = Duration::seconds(20);

/// When the customer's messages are marked read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadReceipts {
    /// When the agent opens the conversation (the customer also sees "typing…" briefly, since
    /// Twilio has no read-only call), and again while the agent types.
    OnOpen,
    /// When the agent starts typing: the customer sees their message read and "typing…"
    /// together.
    #[default]
    OnTyping,
    /// Never: no read receipts and no typing indicators reach the customer.
    Never,
}

impl ReadReceipts {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnOpen => "on_open",
            Self::OnTyping => "on_typing",
            Self::Never => "never",
        }
    }

    /// Parses a stored name; anything unknown is the default.
    pub fn parse(s: &str) -> Self {
        match s {
            "on_open" => Self::OnOpen,
            "never" => Self::Never,
            _ => Self::OnTyping,
        }
    }
}

/// What the agent did in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentActivity {
    /// Opened it (the desk shows its messages).
    Opened,
    /// Is typing a reply.
    Typing,
}

/// The facts a decision needs.
#[derive(Debug, Clone, Copy)]
pub struct ActivityFacts {
    /// The workstream's policy.
    pub policy: ReadReceipts,
    /// The customer has messages the business has not marked read.
    pub unread: bool,
    /// The customer's 24-hour window is open (an indicator answers a message the agent can
    /// still reply to freely).
    pub window_open: bool,
    /// When the last typing indicator for this conversation was sent, if any.
    pub last_typing_at: Option<OffsetDateTime>,
    /// The time the decision is made at (the service clock).
    pub now: OffsetDateTime,
}

/// What to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Indicator {
    /// Send Twilio's typing indicator for the customer's latest message.
    pub send: bool,
    /// Record the customer's messages as read.
    pub mark_read: bool,
    /// Tell the conversation's watchers (the stream) that the agent is typing.
    pub announce_typing: bool,
}

/// Decides what an agent's activity causes.
pub fn decide(activity: AgentActivity, f: ActivityFacts) -> Indicator {
    match activity {
        AgentActivity::Opened => {
            let send = f.policy == ReadReceipts::OnOpen && f.unread && f.window_open;
            Indicator {
                send,
                mark_read: send,
                announce_typing: false,
            }
        }
        AgentActivity::Typing => {
            let due = f.last_typing_at.is_none_or(|last| f.now - last >= TYPING_REFRESH);
            let send = due && f.policy != ReadReceipts::Never && f.window_open;
            Indicator {
                send,
                mark_read: send && f.unread,
                announce_typing: due,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn facts(policy: ReadReceipts) -> ActivityFacts {
        ActivityFacts {
            policy,
            unread: true,
            window_open: true,
            last_typing_at: None,
            now: datetime!(2026-12-06 10:00 UTC),
        }
    }

    #[test]
    fn opening_marks_read_only_under_on_open() {
        let open = |p| decide(AgentActivity::Opened, facts(p));
        assert_eq!(
            open(ReadReceipts::OnOpen),
            Indicator {
                send: true,
                mark_read: true,
                announce_typing: false
            }
        );
        assert_eq!(open(ReadReceipts::OnTyping), Indicator::default());
        assert_eq!(open(ReadReceipts::Never), Indicator::default());
        let read_already = ActivityFacts {
            unread: false,
            ..facts(ReadReceipts::OnOpen)
        };
        assert_eq!(
            decide(AgentActivity::Opened, read_already),
            Indicator::default(),
            "nothing new to mark read"
        );
    }

    #[test]
    fn typing_sends_an_indicator_unless_never_and_is_announced_either_way() {
        let typing = |p| decide(AgentActivity::Typing, facts(p));
        assert!(typing(ReadReceipts::OnTyping).send && typing(ReadReceipts::OnTyping).mark_read);
        assert!(typing(ReadReceipts::OnOpen).send);
        let never = typing(ReadReceipts::Never);
        assert!(!never.send && !never.mark_read && never.announce_typing);
    }

    #[test]
    fn typing_is_refreshed_at_most_every_twenty_seconds() {
        let f = facts(ReadReceipts::OnTyping);
        let recent = ActivityFacts {
            last_typing_at: Some(f.now - Duration::seconds(5)),
            ..f
        };
        assert_eq!(decide(AgentActivity::Typing, recent), Indicator::default());
        let stale = ActivityFacts {
            last_typing_at: Some(f.now - TYPING_REFRESH),
            ..f
        };
        assert!(decide(AgentActivity::Typing, stale).send);
    }

    #[test]
    fn nothing_reaches_the_customer_once_the_window_closed() {
        let closed = ActivityFacts {
            window_open: false,
            ..facts(ReadReceipts::OnOpen)
        };
        assert_eq!(decide(AgentActivity::Opened, closed), Indicator::default());
        let typing = decide(AgentActivity::Typing, closed);
        assert!(!typing.send && typing.announce_typing);
    }

    #[test]
    fn policies_round_trip_and_unknown_is_the_default() {
        for p in [ReadReceipts::OnOpen, ReadReceipts::OnTyping, ReadReceipts::Never] {
            assert_eq!(ReadReceipts::parse(p.as_str()), p);
        }
        assert_eq!(ReadReceipts::parse("sometimes"), ReadReceipts::OnTyping);
    }
}
