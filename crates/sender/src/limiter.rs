//! Per-number send pacing: each send reserves the next free slot of its number's schedule
//! (virtual scheduling: slots `1/rate` apart, no bursts), so no number ever exceeds its rate in
//! any second, and one slow number never delays another. A `Retry-After` from Twilio pauses the
//! whole account. With several replicas each takes an equal share of every rate (the share is
//! updated from the replicas' heartbeats).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The schedule of every number.
#[derive(Debug)]
pub struct RateLimiter {
    next: Mutex<HashMap<String, Instant>>,
    paused: Mutex<HashMap<String, Instant>>,
    share_bits: AtomicU64,
    safety: f64,
}

impl RateLimiter {
    /// A limiter using `safety` (≤ 1) of each rate.
    pub fn new(safety: f64) -> Self {
        Self {
            next: Mutex::new(HashMap::new()),
            paused: Mutex::new(HashMap::new()),
            share_bits: AtomicU64::new(1.0f64.to_bits()),
            safety,
        }
    }

    /// Sets this replica's share of every rate (1 / live replicas).
    pub fn set_share(&self, share: f64) {
        self.share_bits.store(share.clamp(0.01, 1.0).to_bits(), Ordering::Relaxed);
    }

    /// Returns this replica's share.
    pub fn share(&self) -> f64 {
        f64::from_bits(self.share_bits.load(Ordering::Relaxed))
    }

    /// Reserves the next slot of `number` at `rate` per second, or returns how long it would
    /// wait when that is more than `max_wait` (nothing is reserved then).
    pub fn reserve(&self, number: &str, account: &str, rate: f64, max_wait: Duration) -> Result<Instant, Duration> {
        let effective = (rate * self.safety * self.share()).max(0.001);
        let interval = Duration::from_secs_f64(1.0 / effective);
        let now = Instant::now();
        let paused_until = self.paused.lock().ok().and_then(|p| p.get(account).copied()).filter(|t| *t > now);
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = next.entry(number.to_owned()).or_insert(now);
        let start = (*slot).max(now).max(paused_until.unwrap_or(now));
        let wait = start - now;
        if wait > max_wait {
            return Err(wait);
        }
        *slot = start + interval;
        Ok(start)
    }

    /// Holds every number of `account` until `until` (Twilio asked us to back off).
    pub fn pause(&self, account: &str, until: Instant) {
        if let Ok(mut paused) = self.paused.lock() {
            let entry = paused.entry(account.to_owned()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_one_interval_apart_per_number_and_independent_across_numbers() {
        let limiter = RateLimiter::new(1.0);
        let start = Instant::now();
        let a: Vec<_> = (0..5)
            .map(|_| limiter.reserve("a", "AC1", 10.0, Duration::from_secs(10)).unwrap() - start)
            .collect();
        assert_eq!(a, (0..5).map(|i| Duration::from_millis(100 * i)).collect::<Vec<_>>());
        assert_eq!(
            limiter.reserve("b", "AC1", 10.0, Duration::from_secs(10)).unwrap(),
            start,
            "another number is not held up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn long_waits_are_refused_and_pauses_hold_the_account() {
        let limiter = RateLimiter::new(1.0);
        let now = Instant::now();
        limiter.reserve("sandbox", "AC1", 1.0 / 3.0, Duration::from_secs(1)).unwrap();
        let wait = limiter.reserve("sandbox", "AC1", 1.0 / 3.0, Duration::from_secs(1)).unwrap_err();
        assert!(wait >= Duration::from_millis(2_900), "{wait:?}");
        limiter.pause("AC2", now + Duration::from_secs(5));
        assert!(
            limiter.reserve("n2", "AC2", 80.0, Duration::from_secs(1)).is_err(),
            "paused account"
        );
        assert_eq!(limiter.reserve("n3", "AC3", 80.0, Duration::from_secs(1)).unwrap(), now);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_uses_its_share_and_the_safety_margin() {
        let limiter = RateLimiter::new(0.5);
        limiter.set_share(0.5);
        let start = Instant::now();
        limiter.reserve("n", "AC", 80.0, Duration::from_secs(1)).unwrap();
        let second = limiter.reserve("n", "AC", 80.0, Duration::from_secs(1)).unwrap();
        assert_eq!(second - start, Duration::from_millis(50), "80/s × 0.5 × 0.5 = 20/s");
    }
}
