//! Latency of one confirmed publish at a low rate (one every `gap` ms), as a webhook sees it:
//! `cargo run --release -p switchboard-bus --example confirm_latency -- 50 100`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use switchboard_bus::{Outgoing, QueueSpec};
use switchboard_test_support::TestBus;

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(50);
    let gap = args.get(1).copied().unwrap_or(100);
    let bus = TestBus::new();
    bus.declare().await;
    let spec = bus.track(QueueSpec::shared("latency", &["latency.v1"]));
    let channel = bus.broker("setup").channel().await.unwrap();
    bus.topology().declare_queue(&channel, &spec).await.unwrap();
    let publisher = bus.publisher();
    let mut took = Vec::new();
    for i in 0..n {
        let id = i.to_string();
        let started = Instant::now();
        publisher
            .publish(Outgoing {
                exchange: None,
                routing_key: "latency.v1",
                payload: b"{}",
                message_id: &id,
                headers: Default::default(),
                mandatory: true,
            })
            .await
            .unwrap();
        took.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    took.sort();
    let at = |p: f64| took[((took.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "{n} publishes, one every {gap} ms: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
