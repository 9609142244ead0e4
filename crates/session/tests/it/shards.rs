//! Replicas divide the inbound shards with leases; a hand-over on join, leave or death keeps
//! every customer's order and loses or duplicates nothing.

use std::collections::BTreeMap;

use switchboard_bus::{Envelope, Publisher};
use switchboard_test_support::{TestBus, wait_until};
use tokio_util::sync::CancellationToken;

use crate::harness::*;

const SHARDS: u16 = 8;

async fn holders_are(h: &Harness, mut want: Vec<i64>) -> bool {
    let mut counts: Vec<i64> = h.lease_holders().await.into_iter().map(|(_, n)| n).collect();
    counts.sort_unstable();
    want.sort_unstable();
    counts == want
}

/// Every stored inbound body, per customer phone, in the order stored.
async fn stored(h: &Harness) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT cu.phone, m.body FROM session.messages m JOIN session.conversations c ON c.id = m.conversation_id \
         JOIN session.customers cu ON cu.id = c.customer_id WHERE m.direction = 'inbound' ORDER BY m.seq",
    )
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (phone, body) in rows {
        by_customer.entry(phone).or_default().push(body);
    }
    by_customer
}

/// Publishes rounds of one message from each of `customers` customers, as ingress would, until
/// `stop`; returns how many rounds went out. A round every few milliseconds keeps messages
/// flowing through every hand-over.
async fn publish_rounds(publisher: Publisher, channel_id: String, customers: u32, stop: CancellationToken) -> u32 {
    let mut round = 0;
    let mut next_sid = 0;
    while !stop.is_cancelled() || round < 3 {
        for c in 0..customers {
            next_sid += 1;
            let phone = format!("+55119100{c:05}");
            let event = inbound_event_on(SHARDS, &channel_id, &sid(next_sid), &phone, &format!("{round:04}"), &[]);
            publisher.publish_event(&Envelope::new(event), true).await.unwrap();
        }
        round += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    round
}

#[tokio::test]
async fn shards_are_divided_and_handed_over_on_join_and_leave_keeping_every_customers_order() {
    let mut bus = TestBus::new();
    bus.config.shards = SHARDS;
    let mut h = Harness::start_on(bus, 2).await;
    let (channel_id, _) = h.channel_and_number().await;
    wait_until(WAIT, "two replicas hold four shards each", || holders_are(&h, vec![4, 4])).await;
    // Each shard is read by the one replica that holds it, not by every replica.
    wait_until(WAIT, "one consumer per shard", || async {
        let mut consumers = Vec::new();
        for shard in 0..SHARDS {
            let queue = h.bus.topology().queue(&format!("session.inbound.{shard}"));
            consumers.push(h.bus.queue_counts(&queue).await.map_or(0, |(_, c)| c));
        }
        consumers.iter().all(|c| *c == 1)
    })
    .await;

    const CUSTOMERS: u32 = 24;
    let stop = CancellationToken::new();
    let publishing = tokio::spawn(publish_rounds(h.bus.publisher(), channel_id.clone(), CUSTOMERS, stop.clone()));
    // A third replica joins while messages flow: 3 + 3 + 2.
    h.add_replica().await;
    wait_until(WAIT, "three replicas share the shards", || holders_are(&h, vec![2, 3, 3])).await;
    // The first replica leaves while messages flow: its shards go to the other two.
    h.stop_replica(0).await;
    wait_until(WAIT, "two replicas again", || holders_are(&h, vec![4, 4])).await;
    stop.cancel();
    let rounds = publishing.await.unwrap();

    wait_until(WAIT, "every message stored", || async {
        stored(&h).await.values().map(Vec::len).sum::<usize>() == (CUSTOMERS * rounds) as usize
    })
    .await;
    let expected: Vec<String> = (0..rounds).map(|r| format!("{r:04}")).collect();
    let by_customer = stored(&h).await;
    assert_eq!(by_customer.len(), CUSTOMERS as usize);
    for (phone, bodies) in &by_customer {
        assert_eq!(bodies, &expected, "{phone}: each message once, in the order sent");
    }
    h.stop().await;
}

#[tokio::test]
async fn the_shards_of_a_replica_that_died_are_taken_over_once_its_leases_expire() {
    let mut bus = TestBus::new();
    bus.config.shards = SHARDS;
    let mut h = Harness::start_on(bus, 0).await;
    // A replica that died holding every shard: its heartbeat and leases stop being renewed.
    sqlx::query("INSERT INTO session.lease_members (member, heartbeat_at) VALUES ('ghost:1', now())")
        .execute(&h.db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO session.leases (part, owner, epoch, expires_at) \
         SELECT p, 'ghost:1', 1, now() + interval '1 second' FROM generate_series(0, $1 - 1) p",
    )
    .bind(i32::from(SHARDS))
    .execute(&h.db.pool)
    .await
    .unwrap();
    h.add_replica().await;
    let (channel_id, _) = h.channel_and_number().await;
    for n in 0..16u32 {
        h.inbound(
            &channel_id,
            &sid(n + 1),
            &format!("+55119200{n:05}"),
            "while the owner was dead",
            &[],
        )
        .await;
    }
    wait_until(WAIT, "the live replica holds every shard", || async {
        let holders = h.lease_holders().await;
        holders.len() == 1 && holders[0].1 == i64::from(SHARDS) && holders[0].0 != "ghost:1"
    })
    .await;
    wait_until(WAIT, "the messages sent meanwhile are stored", || async {
        stored(&h).await.values().map(Vec::len).sum::<usize>() == 16
    })
    .await;
    let epochs: Vec<i64> = sqlx::query_scalar("SELECT epoch FROM session.leases ORDER BY part")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert!(epochs.iter().all(|e| *e == 2), "each taken over once, its epoch raised: {epochs:?}");
    h.stop().await;
}
