//! The keyed consumer: a dispatcher reads the deliveries and hands each to lane `key % lanes`;
//! every lane is a task that batches what waits in its own queue (up to `batch_max`) and handles
//! one batch at a time. Deliveries with one key therefore never run at once here, so batches of
//! this consumer never wait on each other's locks for them, while different keys still run in
//! parallel. Acks, retries and dead-lettering are the concurrent mode's (`process_batch`).
//!
//! Nothing is held outside the broker's prefetch window: a lane's queue holds only deliveries
//! the broker counts as unacknowledged. The window is shared, though: a lane that stays busy
//! (a handler waiting long on one key) keeps accumulating its deliveries, and once they fill the
//! window the broker sends nothing more, so the other lanes wait too. Handlers here are short
//! transactions, and a failing delivery is parked in a delay queue rather than retried in place,
//! so a lane is never busy for long. On shutdown the dispatcher cancels the subscription and
//! each lane stops after its current batch; what it had not started goes back to the broker
//! when the channel closes.

use lapin::Channel;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Handler, Incoming, Inner, next_delivery};

impl<H: Handler> Inner<H> {
    pub(super) async fn keyed(
        self: std::sync::Arc<Self>,
        channel: &Channel,
        mut consumer: lapin::Consumer,
        tag: &str,
        key: fn(&Incoming) -> u64,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let tracker = TaskTracker::new();
        // Lanes stop with the shutdown, or when this subscription ends (the channel is gone and
        // with it every unacknowledged delivery they hold).
        let stop = shutdown.child_token();
        let mut lanes = Vec::with_capacity(self.options.concurrency);
        for _ in 0..self.options.concurrency {
            let (send, receive) = mpsc::unbounded_channel::<Incoming>();
            lanes.push(send);
            tracker.spawn(self.clone().lane(receive, stop.clone()));
        }
        let count = u64::try_from(lanes.len()).unwrap_or(1).max(1);
        let outcome = loop {
            let delivery = match next_delivery(channel, &mut consumer, tag, shutdown).await {
                Ok(Some(delivery)) => Incoming::from_delivery(delivery),
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let lane = usize::try_from(key(&delivery) % count).unwrap_or(0);
            if lanes[lane].send(delivery).is_err() {
                break Err(anyhow::anyhow!("a lane of {} stopped", self.queue));
            }
        };
        stop.cancel();
        drop(lanes);
        tracker.close();
        tracker.wait().await;
        outcome
    }

    async fn lane(self: std::sync::Arc<Self>, mut queue: mpsc::UnboundedReceiver<Incoming>, stop: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                next = queue.recv() => match next {
                    Some(first) => first,
                    None => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < self.options.batch_max {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if let Err(error) = self.process_batch(batch, &stop).await {
                tracing::warn!(queue = %self.queue, error = %format!("{error:#}"), "delivery left unacknowledged; the broker will redeliver it");
            }
        }
    }
}
