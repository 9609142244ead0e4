//! In-process caches of configuration (routing's workstreams, queues and agents; session's
//! automated messages and workstream languages) that PostgreSQL itself invalidates. Hot paths
//! read such rows for every message, and they change rarely.
//!
//! How a change reaches every replica:
//! - a statement-level trigger on each cached table `pg_notify`s the cache's channel on any
//!   change (any replica, any statement, psql included); every replica LISTENs, and a
//!   notification starts a new generation, which drops everything cached (changes are rare:
//!   dropping everything keeps the rule simple);
//! - the replica that made a change calls [`Invalidation::invalidate`] right after its commit, so
//!   its own next read sees the change without waiting for the notification;
//! - a read that began before a drop never fills the cache: [`Cache::keep`] stores only under the
//!   generation that is still current;
//! - while the listener is not connected (start-up, a lost connection) the cache is off and every
//!   read goes to PostgreSQL; a reconnect starts a new generation, since notifications sent in
//!   between were lost.
//!
//! Other replicas see a change once its notification arrives, a few milliseconds after the
//! commit. Reads inside the transaction that writes the configuration must not go through a
//! cache.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

/// The generations of one notification channel, shared by the caches it invalidates.
#[derive(Debug)]
pub struct Invalidation {
    channel: &'static str,
    generation: AtomicU64,
    listening: AtomicBool,
}

impl Invalidation {
    /// Invalidation by NOTIFYs on `channel`; off until [`Self::listen`] connects.
    pub fn new(channel: &'static str) -> Arc<Self> {
        Arc::new(Self {
            channel,
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        })
    }

    /// Drops everything cached under this channel.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the caches are on: the listener is connected.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The generation to read under, or `None` while the caches are off.
    pub fn generation(&self) -> Option<u64> {
        self.is_listening().then(|| self.generation.load(Ordering::Acquire))
    }

    fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }

    /// Listens for changes until `shutdown`: the caches are on only while the listener is
    /// connected, and each (re)connection starts a new generation.
    pub async fn listen(self: Arc<Self>, pool: PgPool, shutdown: CancellationToken) {
        let mut retry = Duration::from_millis(100);
        loop {
            let connect = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.eager_reconnect(false);
                listener.listen(self.channel).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                () = shutdown.cancelled() => return,
                connected = connect => match connected {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, channel = self.channel, "cannot listen for configuration changes; reading from PostgreSQL each time");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            retry = Duration::from_millis(100);
            self.invalidate();
            self.listening.store(true, Ordering::Release);
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(_)) => self.invalidate(),
                    // The connection was lost, and notifications with it.
                    Ok(None) | Err(_) => {
                        self.listening.store(false, Ordering::Release);
                        self.invalidate();
                        break;
                    }
                }
            }
        }
    }
}

/// One cache of `K` → `V` under an [`Invalidation`].
#[derive(Debug)]
pub struct Cache<K, V> {
    invalidation: Arc<Invalidation>,
    entries: RwLock<(u64, HashMap<K, V>)>,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// An empty cache that `invalidation` drops.
    pub fn new(invalidation: Arc<Invalidation>) -> Self {
        Self {
            invalidation,
            entries: RwLock::new((0, HashMap::new())),
        }
    }

    /// The generation to read under, or `None` while the cache is off.
    pub fn generation(&self) -> Option<u64> {
        self.invalidation.generation()
    }

    /// The entry for `key` cached in `generation`.
    pub fn get(&self, generation: u64, key: &K) -> Option<V> {
        let entries = self.entries.read().ok()?;
        (entries.0 == generation).then(|| entries.1.get(key).cloned()).flatten()
    }

    /// Keeps entries read in `generation`, unless a drop has happened since (the rows may then
    /// predate the change).
    pub fn keep(&self, generation: u64, read: impl IntoIterator<Item = (K, V)>) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        // Checked under the lock, so a drop that raced the read is seen.
        if !self.invalidation.is_current(generation) {
            return;
        }
        if entries.0 != generation {
            *entries = (generation, HashMap::new());
        }
        entries.1.extend(read);
    }

    /// The entry for `key`, from the cache or else from `load` (kept for next time).
    pub async fn get_or_load<E, Fut>(&self, key: K, load: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let generation = self.generation();
        if let Some(found) = generation.and_then(|g| self.get(g, &key)) {
            return Ok(found);
        }
        let value = load().await?;
        if let Some(g) = generation {
            self.keep(g, [(key, value.clone())]);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(invalidation: &Invalidation) {
        invalidation.listening.store(true, Ordering::Release);
    }

    #[tokio::test]
    async fn a_read_that_raced_a_drop_is_not_kept() {
        let invalidation = Invalidation::new("test");
        on(&invalidation);
        let cache: Cache<u32, &str> = Cache::new(invalidation.clone());
        let before = cache.generation().expect("on");
        // The read began, then a change was notified, then the (old) row arrived.
        invalidation.invalidate();
        cache.keep(before, [(1, "old")]);
        let now = cache.generation().expect("on");
        assert_eq!(cache.get(now, &1), None);
        let loaded: Result<&str, ()> = cache.get_or_load(1, || async { Ok("new") }).await;
        assert_eq!(loaded, Ok("new"));
        assert_eq!(cache.get(now, &1), Some("new"));
        invalidation.invalidate();
        assert_eq!(cache.get(cache.generation().expect("on"), &1), None, "a drop empties it");
    }

    #[tokio::test]
    async fn an_unheard_cache_always_loads() {
        let invalidation = Invalidation::new("test");
        let cache: Cache<u32, u32> = Cache::new(invalidation);
        let mut loads = 0;
        for _ in 0..2 {
            let value: Result<u32, ()> = cache
                .get_or_load(1, || {
                    loads += 1;
                    async { Ok(7) }
                })
                .await;
            assert_eq!(value, Ok(7));
        }
        assert_eq!(loads, 2, "nothing is kept while no listener is connected");
    }
}
