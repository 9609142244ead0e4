//! Delivery status of an outbound message. Twilio's status callbacks arrive in any order, so
//! the status only ever moves forward: queued < sending < sent < failed/undelivered < delivered
//! < read. `failed` and `undelivered` end the normal path (and carry Twilio's error code), but a
//! later `delivered`/`read` still wins, as Twilio's own guidance suggests.

use serde::{Deserialize, Serialize};

/// Delivery status of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored by us, not yet accepted by Twilio.
    Pending,
    /// Accepted by Twilio (Messaging Service), not yet queued.
    Accepted,
    /// Twilio queued it.
    Queued,
    /// Being dispatched.
    Sending,
    /// WhatsApp accepted it.
    Sent,
    /// Could not be sent.
    Failed,
    /// WhatsApp reported it not delivered.
    Undelivered,
    /// On the customer's phone.
    Delivered,
    /// Read by the customer.
    Read,
}

impl DeliveryStatus {
    /// Returns the position in the forward-only order.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Accepted => 1,
            Self::Queued => 2,
            Self::Sending => 3,
            Self::Sent => 4,
            Self::Failed | Self::Undelivered => 5,
            Self::Delivered => 6,
            Self::Read => 7,
        }
    }

    /// Parses Twilio's `MessageStatus` (`scheduled` counts as accepted; inbound-only and
    /// cancellation values are not outbound delivery states).
    pub fn from_twilio(raw: &str) -> Option<Self> {
        Some(match raw {
            "accepted" | "scheduled" => Self::Accepted,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" | "canceled" => Self::Failed,
            "undelivered" => Self::Undelivered,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            _ => return None,
        })
    }

    /// Returns the snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Undelivered => "undelivered",
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw == "pending" {
            Some(Self::Pending)
        } else {
            Self::from_twilio(raw)
        }
    }

    /// Returns whether this is a failure.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Undelivered)
    }
}

/// A message's delivery state: its status and, for failures, Twilio's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Current status.
    pub status: DeliveryStatus,
    /// Twilio error code, kept while the status is a failure.
    pub error_code: Option<u32>,
}

impl Delivery {
    /// Applies an update; returns whether anything changed. Never moves backwards; a repeated
    /// or older update changes nothing.
    pub fn apply(&mut self, status: DeliveryStatus, error_code: Option<u32>) -> bool {
        if status.rank() <= self.status.rank() {
            // Same rank: the only change allowed is a failure gaining its error code.
            if status == self.status && status.is_failure() && self.error_code.is_none() && error_code.is_some() {
                self.error_code = error_code;
                return true;
            }
            return false;
        }
        self.status = status;
        self.error_code = if status.is_failure() { error_code } else { None };
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::DeliveryStatus as D;
    use super::*;

    fn fold(updates: &[(D, Option<u32>)]) -> Delivery {
        let mut d = Delivery {
            status: D::Pending,
            error_code: None,
        };
        for (s, e) in updates {
            d.apply(*s, *e);
        }
        d
    }

    #[test]
    fn read_then_sent_then_delivered_stays_read() {
        assert_eq!(fold(&[(D::Read, None), (D::Sent, None), (D::Delivered, None)]).status, D::Read);
    }

    #[test]
    fn failures_keep_their_code_and_a_later_delivery_wins() {
        let failed = fold(&[(D::Queued, None), (D::Failed, Some(63016)), (D::Sent, None)]);
        assert_eq!(
            failed,
            Delivery {
                status: D::Failed,
                error_code: Some(63016)
            }
        );
        let recovered = fold(&[(D::Undelivered, Some(63024)), (D::Delivered, None)]);
        assert_eq!(
            recovered,
            Delivery {
                status: D::Delivered,
                error_code: None
            }
        );
        assert_eq!(fold(&[(D::Failed, None), (D::Failed, Some(63016))]).error_code, Some(63016));
    }

    #[test]
    fn twilio_names() {
        assert_eq!(D::from_twilio("delivered"), Some(D::Delivered));
        assert_eq!(D::from_twilio("received"), None);
        assert_eq!(D::parse("pending"), Some(D::Pending));
        for s in [D::Queued, D::Sent, D::Read, D::Failed, D::Undelivered] {
            assert_eq!(D::parse(s.as_str()), Some(s));
        }
    }

    fn status() -> impl Strategy<Value = D> {
        prop::sample::select(vec![
            D::Accepted,
            D::Queued,
            D::Sending,
            D::Sent,
            D::Failed,
            D::Undelivered,
            D::Delivered,
            D::Read,
        ])
    }

    proptest! {
        /// Whatever order the callbacks come in, the result is the highest-ranked one.
        #[test]
        fn order_of_arrival_does_not_matter(mut updates in proptest::collection::vec(status(), 1..12), seed in any::<u64>()) {
            let forward = fold(&updates.iter().map(|s| (*s, None)).collect::<Vec<_>>());
            let mut rng = seed;
            for i in (1..updates.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                updates.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            let shuffled = fold(&updates.iter().map(|s| (*s, None)).collect::<Vec<_>>());
            prop_assert_eq!(forward.status.rank(), shuffled.status.rank());
            prop_assert_eq!(forward.status.rank(), updates.iter().map(|s| s.rank()).max().unwrap());
        }

        /// The rank never decreases across a sequence of updates.
        #[test]
        fn never_moves_backwards(updates in proptest::collection::vec(status(), 1..20)) {
            let mut d = Delivery { status: D::Pending, error_code: None };
            let mut last = d.status.rank();
            for s in updates {
                d.apply(s, None);
                prop_assert!(d.status.rank() >= last);
                last = d.status.rank();
            }
        }
    }
}
