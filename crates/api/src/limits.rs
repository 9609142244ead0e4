//! Request limits, per api replica: token buckets per API key (requests per second, with a
//! burst), and per client address for failed authentication, so a key cannot be guessed and one
//! client cannot starve the others. Over a limit a request gets `429` with the error body.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use uuid::Uuid;

/// Limits (`[api.limits]`); a rate of 0 turns that limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Requests per second one key may make on a replica, sustained.
    pub key_requests_per_second: f64,
    /// Requests one key may make at once above that.
    pub key_burst: f64,
    /// Wrong keys one client address may present per minute before every authentication from
    /// it is refused for a while (a request without a key is not counted).
    pub failed_auth_per_minute: f64,
    /// Our own proxies in front of the api (ingress controller, load balancer), as networks:
    /// a request from one of them is counted against the address it forwarded
    /// (`X-Forwarded-For`, read from the right). Empty: the connection's peer is the client.
    pub trusted_proxies: Vec<switchboard_domain::client_address::Cidr>,
    /// File uploads one replica receives at once (each is held in memory, up to WhatsApp's
    /// 16 MB, until session has it); more are refused with 429 until one ends.
    pub concurrent_uploads: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            key_requests_per_second: 1_000.0,
            key_burst: 2_000.0,
            failed_auth_per_minute: 20.0,
            trusted_proxies: Vec::new(),
            concurrent_uploads: 8,
        }
    }
}

/// Token buckets keyed by `K`: `rate` tokens a second, at most `burst`.
struct Buckets<K> {
    rate: f64,
    burst: f64,
    state: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token; `Err(wait)` when none is left.
    fn take(&self, key: &K) -> Result<(), Duration> {
        self.spend(key, true)
    }

    /// Whether a token is left, without taking one; `Err(wait)` when none is.
    fn check(&self, key: &K) -> Result<(), Duration> {
        self.spend(key, false)
    }

    fn spend(&self, key: &K, take: bool) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (rate, burst) = (self.rate, self.burst);
        let refilled = |(tokens, at): (f64, Instant)| (tokens + now.duration_since(at).as_secs_f64() * rate).min(burst);
        if take && state.len() > 100_000 {
            // Forget the buckets that refilled, so the map stays small.
            state.retain(|_, bucket| refilled(*bucket) < burst);
        }
        let level = state.get(key).copied().map_or(burst, refilled);
        if level < 1.0 {
            if take {
                state.insert(key.clone(), (level, now));
            }
            return Err(Duration::from_secs_f64((1.0 - level) / rate));
        }
        if take {
            state.insert(key.clone(), (level - 1.0, now));
        }
        Ok(())
    }
}

/// The limits of one api replica.
pub struct Limits {
    keys: Buckets<Uuid>,
    failures: Buckets<IpAddr>,
    accounts: Buckets<String>,
    uploads: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Limits {
    /// Limits as configured.
    pub fn new(settings: &LimitSettings) -> Self {
        let per_minute = settings.failed_auth_per_minute;
        Self {
            keys: Buckets::new(settings.key_requests_per_second, settings.key_burst),
            failures: Buckets::new(per_minute / 60.0, per_minute),
            accounts: Buckets::new(per_minute / 60.0, per_minute),
            uploads: std::sync::Arc::new(tokio::sync::Semaphore::new(settings.concurrent_uploads.max(1))),
        }
    }

    /// A place for one more upload in progress, held until dropped; `None` while
    /// `concurrent_uploads` are already being received.
    pub fn upload(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.uploads.clone().try_acquire_owned().ok()
    }

    /// Refuses every authentication from `address` while its failures are over the limit.
    pub fn address_allowed(&self, address: IpAddr) -> Result<(), Duration> {
        self.failures.check(&address)
    }

    /// Counts a failed authentication from `address`.
    pub fn failed(&self, address: IpAddr) {
        let _ = self.failures.take(&address);
    }

    /// Refuses sign-ins to `email` (any case) while its wrong passwords are over the limit,
    /// from whatever address they come.
    pub fn account_allowed(&self, email: &str) -> Result<(), Duration> {
        self.accounts.check(&email.trim().to_lowercase())
    }

    /// Counts a wrong password for `email`.
    pub fn account_failed(&self, email: &str) {
        let _ = self.accounts.take(&email.trim().to_lowercase());
    }

    /// Counts a request of `key_id`; `Err(wait)` when it is over its rate.
    pub fn request(&self, key_id: Uuid) -> Result<(), Duration> {
        self.keys.take(&key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_it_refills() {
        let buckets = Buckets::new(10.0, 3.0);
        let key = 1u8;
        for _ in 0..3 {
            assert!(buckets.take(&key).is_ok());
        }
        let wait = buckets.take(&key).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(buckets.take(&2u8).is_ok(), "another key has its own bucket");
        assert!(Buckets::new(0.0, 1.0).take(&key).is_ok(), "a rate of 0 is no limit");
    }
}
