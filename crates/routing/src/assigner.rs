//! Assignment cycles on request, coalesced: intake, accept, decline, transfers, presence and
//! configuration changes ask for a cycle of the queues they touched and return; one task per
//! replica runs the cycles. Requests that arrive while a cycle runs are merged into the next
//! one, so a burst of a thousand intakes costs a few cycles, not a thousand, and no request
//! waits on the cycle lock that replicas share. The task itself is `crate::cycle::run_requested`.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use uuid::Uuid;

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

    /// Waits until a request arrives (one that arrived since the last wait counts).
    pub(crate) async fn requested(&self) {
        self.wake.notified().await;
    }

    /// Takes what is pending: `None` when nothing is, `Some(None)` for every queue.
    pub(crate) fn take(&self) -> Option<Option<Vec<Uuid>>> {
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
    pub(crate) fn restore(&self, queues: Option<&[Uuid]>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match queues {
            Some(queues) => pending.queues.extend(queues.iter().copied()),
            None => pending.all = true,
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
