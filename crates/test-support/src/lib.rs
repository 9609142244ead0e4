//! Fixtures for tests that run against the real local Postgres and RabbitMQ, in parallel:
//! each test gets its own database ([`TestDb`]) and its own bus namespace ([`TestBus`]) and
//! removes them when dropped. [`TcpProxy`] cuts or blocks connections to simulate outages
//! without touching the shared servers. [`wait_until`] awaits a condition with a deadline.
//! [`fakes::FakeDirectory`] stands in for session's `ChannelDirectory`, and
//! [`session_fake::FakeSession`] for its `SessionService`, so no other service's tests start session.

mod db;
pub mod fakes;
pub mod http_load;
mod logs;
mod proxy;
mod rabbit;
pub mod session_fake;
mod tap;

use std::future::Future;
use std::time::Duration;

pub use db::TestDb;
pub use logs::LogCapture;
pub use proxy::TcpProxy;
pub use rabbit::TestBus;
pub use tap::Tap;

/// Returns the Postgres URL of the server tests run against (`DATABASE_URL`, default local).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Returns the AMQP URL of the broker tests run against (`AMQP_URL`, default local).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Polls `condition` every 20 ms until it returns true; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let met = condition();
        async move { met.await.then_some(()) }
    })
    .await;
}

/// Polls `probe` every 20 ms until it returns `Some`; panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_for(timeout, probe)
        .await
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `probe` every 20 ms until it returns `Some`, for at most `timeout`; `None` after it
/// (for callers that say more about the failure than [`wait_for`] can).
pub async fn poll_for<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds a listener on 127.0.0.1 with an OS-chosen port.
pub async fn bind_local() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}
