//! Time as a port, so the 24-hour rule and every timeout can be tested without waiting.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Returns now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that follows the system clock plus an offset that tests (and `switchboard dev`) can
/// move forward, e.g. to let a customer's 24-hour window run out.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    offset: Arc<Mutex<Duration>>,
    frozen: Arc<Mutex<Option<OffsetDateTime>>>,
}

impl ManualClock {
    /// A clock at system time with no offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock stopped at `at` until advanced.
    pub fn frozen_at(at: OffsetDateTime) -> Self {
        let clock = Self::default();
        if let Ok(mut f) = clock.frozen.lock() {
            *f = Some(at);
        }
        clock
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut frozen) = self.frozen.lock()
            && let Some(at) = frozen.as_mut()
        {
            *at += by;
            return;
        }
        if let Ok(mut offset) = self.offset.lock() {
            *offset += by;
        }
    }

    /// Returns how far the clock has been moved ahead of system time.
    pub fn offset(&self) -> Duration {
        self.offset.lock().map(|o| *o).unwrap_or_default()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        if let Ok(frozen) = self.frozen.lock()
            && let Some(at) = *frozen
        {
            return at;
        }
        OffsetDateTime::now_utc() + self.offset()
    }
}
