//! Confirmed-publish throughput of `bus::Publisher` next to a raw lapin loop, same broker, same run.
//!
//! `cargo run --release -p switchboard-bus --example publish_throughput -- [messages] [concurrency]`
//! Publishes 1 KiB persistent messages to a quorum queue with publisher confirms. The raw loop
//! keeps `concurrency` confirms outstanding on one channel; the bus runs `concurrency` callers
//! that each await their own confirm (how ingress uses it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions};
use lapin::{BasicProperties, Confirmation};
use switchboard_bus::{Outgoing, Publisher, QueueSpec};
use switchboard_test_support::TestBus;

async fn raw_lapin(bus: &TestBus, n: usize, window: usize, payload: &[u8]) -> f64 {
    let channel = bus.broker("raw").channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let exchange = bus.topology().events_exchange();
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(window);
    for i in 0..n {
        if pending.len() == window {
            let confirm: lapin::PublisherConfirm = pending.pop_front().unwrap();
            assert!(matches!(confirm.await.unwrap(), Confirmation::Ack(None)));
        }
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(i.to_string().as_str().into());
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                "bench.v1".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                payload,
                props,
            )
            .await
            .unwrap();
        pending.push_back(confirm);
    }
    for confirm in pending {
        assert!(matches!(confirm.await.unwrap(), Confirmation::Ack(None)));
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn bus_publisher(publisher: &Publisher, n: usize, concurrency: usize, payload: &'static [u8]) -> f64 {
    publisher.connect().await.unwrap();
    let started = Instant::now();
    let per_task = n / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    let id = format!("{t}-{i}");
                    publisher
                        .publish(Outgoing {
                            exchange: None,
                            routing_key: "bench.v1",
                            payload,
                            message_id: &id,
                            headers: Default::default(),
                            mandatory: true,
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (per_task * concurrency) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(20_000);
    let concurrency = args.get(1).copied().unwrap_or(256);
    let payload: &'static [u8] = Box::leak(vec![b'x'; 1024].into_boxed_slice());
    let bus = TestBus::new();
    bus.declare().await;
    let spec = bus.track(QueueSpec::shared("bench", &["bench.v1"]));
    let channel = bus.broker("setup").channel().await.unwrap();
    bus.topology().declare_queue(&channel, &spec).await.unwrap();
    let queue = bus.topology().queue("bench");
    let publisher = bus.publisher();

    println!("| run | raw lapin (msg/s) | bus::Publisher (msg/s) | ratio |");
    println!("|---|---|---|---|");
    let (mut raw_total, mut bus_total) = (0.0, 0.0);
    for run in 1..=3 {
        let raw = raw_lapin(&bus, n, concurrency, payload).await;
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap();
        let ours = bus_publisher(&publisher, n, concurrency, payload).await;
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap();
        raw_total += raw;
        bus_total += ours;
        println!("| {run} | {raw:.0} | {ours:.0} | {:.2} |", ours / raw);
    }
    println!(
        "| mean | {:.0} | {:.0} | {:.2} |",
        raw_total / 3.0,
        bus_total / 3.0,
        bus_total / raw_total
    );
    println!("({n} messages of 1 KiB per run, {concurrency} outstanding confirms, quorum queue)");
}
