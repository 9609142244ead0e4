//! Assignment cycles on request, coalesced: intake, accept, decline, transfers, presence and
//! configuration changes ask for a cycle of the queues they touched and return; one task per
//! replica runs the cycles. Requests that arrive while a cycle runs are merged into the next
//! one, so a burst of a thousand intakes costs a few cycles, not a thousand, and no request
//! waits on the cycle lock that replicas share.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::Routing;

/// The queues waiting for a cycle.
#[derive(Debug, Default)]
struct Pending {
    /// Every queue (the scheduler's safety net, or a change that concerns them all).
    all: bool,
    queues: BTreeSet<Uuid>,
}

/// Cycles asked for and not yet run, shared by a replica's request paths and its assigner.
#[derive(Debug, Default)]
pub struct CycleRequests {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl CycleRequests {
    /// Asks for a cycle of `queues` (all queues when `None`).
    pub fn request(&self, queues: Option<&[Uuid]>) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            match queues {
                Some(queues) => pending.queues.extend(queues.iter().copied()),
                None => pending.all = true,
            }
        }
        self.wake.notify_one();
    }

    /// Takes what is pending: `None` when nothing is, `Some(None)` for every queue.
    fn take(&self) -> Option<Option<Vec<Uuid>>> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = std::mem::take(&mut *pending);
        if taken.all {
            Some(None)
        } else if taken.queues.is_empty() {
            None
        } else {
            Some(Some(taken.queues.into_iter().collect()))
        }
    }

    /// Puts back what a failed cycle did not do.
    fn restore(&self, queues: Option<&[Uuid]>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match queues {
            Some(queues) => pending.queues.extend(queues.iter().copied()),
            None => pending.all = true,
        }
    }
}

/// Runs the requested cycles until `shutdown`. A failed cycle is asked for again after a pause.
pub async fn run(routing: Arc<Routing>, shutdown: CancellationToken) {
    let requests = routing.cycles.clone();
    let mut failures: u32 = 0;
    loop {
        let Some(queues) = requests.take() else {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = requests.wake.notified() => continue,
            }
        };
        match routing.assign(queues.as_deref()).await {
            Ok(_) => failures = 0,
            Err(error) => {
                failures = failures.saturating_add(1);
                requests.restore(queues.as_deref());
                tracing::warn!(error = %error, "assignment cycle failed; trying again");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(50 * u64::from(failures.min(40)))) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_merge_until_taken_and_all_queues_wins() {
        let requests = CycleRequests::default();
        assert_eq!(requests.take(), None);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        requests.request(Some(&[a]));
        requests.request(Some(&[b, a]));
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(requests.take(), Some(Some(expected)));
        assert_eq!(requests.take(), None, "taken once");
        requests.request(Some(&[a]));
        requests.request(None);
        assert_eq!(requests.take(), Some(None));
        requests.restore(Some(&[b]));
        assert_eq!(requests.take(), Some(Some(vec![b])));
    }
}
