//! WhatsApp's 24-hour customer-service window: free-form messages may be sent only within 24
//! hours of the customer's last message. Only an inbound customer message opens or extends it;
//! nothing the business sends (agent, bot, automated message, template) does.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// How long the window stays open after the customer's last message.
pub const WINDOW: Duration = Duration::hours(24);

/// The window of one customer on one business number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceWindow {
    /// When the customer last wrote (Twilio's receive time), if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_inbound_at: Option<OffsetDateTime>,
}

impl ServiceWindow {
    /// A window last opened by a customer message at `at`.
    pub fn opened_at(at: OffsetDateTime) -> Self {
        Self { last_inbound_at: Some(at) }
    }

    /// Records a customer message received at `at`. Out-of-order arrivals never move it back.
    pub fn record_inbound(&mut self, at: OffsetDateTime) {
        if self.last_inbound_at.is_none_or(|last| at > last) {
            self.last_inbound_at = Some(at);
        }
    }

    /// Returns when the window closes (it is closed at that instant), if it was ever opened.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.last_inbound_at.map(|at| at + WINDOW)
    }

    /// Returns whether free-form messages may be sent at `now`.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.expires_at().is_some_and(|expires| now < expires)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn open_until_just_before_24_hours_closed_at_24_hours() {
        let t0 = datetime!(2026-11-26 10:00 UTC);
        let w = ServiceWindow::opened_at(t0);
        assert!(w.is_open(t0));
        assert!(w.is_open(t0 + Duration::hours(23) + Duration::minutes(59)));
        assert!(w.is_open(t0 + WINDOW - Duration::nanoseconds(1)));
        assert!(!w.is_open(t0 + WINDOW), "closed exactly at 24 h");
        assert_eq!(w.expires_at(), Some(t0 + WINDOW));
    }

    #[test]
    fn never_opened_is_closed() {
        let w = ServiceWindow::default();
        assert!(!w.is_open(datetime!(2026-01-01 0:00 UTC)));
        assert_eq!(w.expires_at(), None);
    }

    #[test]
    fn a_new_customer_message_extends_it() {
        let t0 = datetime!(2026-11-26 10:00 UTC);
        let mut w = ServiceWindow::opened_at(t0);
        w.record_inbound(t0 + Duration::hours(20));
        assert!(w.is_open(t0 + Duration::hours(30)));
        assert_eq!(w.expires_at(), Some(t0 + Duration::hours(44)));
    }

    proptest! {
        /// Whatever order customer messages are recorded in, the window ends 24 h after the latest.
        #[test]
        fn expiry_is_24h_after_the_latest_message(offsets in proptest::collection::vec(0i64..10_000_000, 1..20)) {
            let t0 = datetime!(2026-01-01 0:00 UTC);
            let mut w = ServiceWindow::default();
            for s in &offsets {
                w.record_inbound(t0 + Duration::seconds(*s));
            }
            let latest = t0 + Duration::seconds(*offsets.iter().max().unwrap());
            prop_assert_eq!(w.expires_at(), Some(latest + WINDOW));
            prop_assert!(w.is_open(latest + WINDOW - Duration::seconds(1)));
            prop_assert!(!w.is_open(latest + WINDOW));
        }

        /// Open at `now` exactly when some customer message is less than 24 h before it.
        #[test]
        fn open_iff_a_message_is_less_than_24h_old(msgs in proptest::collection::vec(0i64..400_000, 0..10), now in 0i64..500_000) {
            let t0 = datetime!(2026-01-01 0:00 UTC);
            let mut w = ServiceWindow::default();
            for s in &msgs {
                w.record_inbound(t0 + Duration::seconds(*s));
            }
            let now_t = t0 + Duration::seconds(now);
            let expected = msgs.iter().any(|s| { let at = t0 + Duration::seconds(*s); at <= now_t && now_t - at < WINDOW })
                || msgs.iter().any(|s| t0 + Duration::seconds(*s) > now_t);
            prop_assert_eq!(w.is_open(now_t), expected);
        }
    }
}
