//! SIGINT/SIGTERM turned into one root `CancellationToken` that every task watches.

use tokio_util::sync::CancellationToken;

/// Waits for SIGINT or SIGTERM and returns the name of the signal received.
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "ctrl-c"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

/// Spawns a task that cancels `token` on the first shutdown signal.
pub fn spawn_shutdown_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            signal = shutdown_signal() => {
                tracing::info!(signal, "shutdown signal received, draining");
                token.cancel();
            }
            () = token.cancelled() => {}
        }
    });
}

/// Waits for `work` (a service's tasks and servers finishing after shutdown) for at most
/// `drain`; logs a warning naming `service` when it does not finish in time.
pub async fn drain_within(service: &str, drain: std::time::Duration, work: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(drain, work).await.is_err() {
        tracing::warn!(?drain, "{service} did not drain in time");
    }
}
