//! Assignment decisions per second with 10,000 agents, 100 queues and 50,000 waiting items:
//! the persisted assignment cycle (offers, work items, agent loads and outbox events written in
//! each cycle's transaction), and the pure in-memory decision rate of `domain::routing::assign`.
//!
//! `cargo run --release -p switchboard-routing --example assignment_throughput -- [agents] [queues] [items] [batch]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use switchboard_domain::routing::assign::{Candidate, Needs, choose};
use switchboard_domain::routing::{AssignmentMethod, Presence, SkillMatching, SkillRequirement};
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_routing::Routing;
use switchboard_routing::config::RoutingSettings;
use switchboard_storage::outbox::Outbox;
use switchboard_test_support::TestDb;
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let args: Vec<i64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (agents, queues, items, batch) = (
        args.first().copied().unwrap_or(10_000),
        args.get(1).copied().unwrap_or(100),
        args.get(2).copied().unwrap_or(50_000),
        args.get(3).copied().unwrap_or(100),
    );
    let db = TestDb::new().await;
    let skill = Uuid::now_v7();
    let ws = Uuid::now_v7();
    let seed = [
        format!("INSERT INTO routing.config (kind, id, name, definition) VALUES ('skill', '{skill}', 'billing', '{{}}')"),
        // Queues q0..: priority 1..5; agents a0..: 5 units each, every tenth with the skill.
        format!("CREATE TEMP TABLE q AS SELECT n, gen_random_uuid() AS id FROM generate_series(0, {queues} - 1) n"),
        format!("CREATE TEMP TABLE a AS SELECT n, gen_random_uuid() AS id FROM generate_series(0, {agents} - 1) n"),
        "INSERT INTO routing.config (kind, id, name, definition) SELECT 'queue', id, 'queue ' || n, jsonb_build_object('priority', 1 + n % 5, 'assignment', 'highest_capacity') FROM q".into(),
        format!(
            "INSERT INTO routing.config (kind, id, name, definition) SELECT 'agent', id, 'agent ' || n, \
             CASE WHEN n % 10 = 0 THEN jsonb_build_object('capacity_units', 5, 'skills', jsonb_build_object('{skill}', 7)) ELSE jsonb_build_object('capacity_units', 5) END FROM a"
        ),
        "INSERT INTO routing.agent_state (agent_id, presence, chosen_presence) SELECT id, 'available', 'available' FROM a".into(),
        format!("INSERT INTO routing.queue_members (queue_id, agent_id) SELECT q.id, a.id FROM a JOIN q ON q.n = a.n % {queues}"),
        format!("INSERT INTO routing.config (kind, id, name, definition) VALUES ('workstream', '{ws}', 'bench', jsonb_build_object('mode', 'push', 'fallback_queue_id', (SELECT id FROM q WHERE n = 0)))"),
        format!(
            "INSERT INTO routing.work_items (conversation_id, workstream_id, queue_id, state, priority, units, skills, enqueued_at, last_customer_message_at) \
             SELECT gen_random_uuid(), '{ws}', q.id, 'queued', i % 3, 1, \
             CASE WHEN i % 20 = 0 THEN jsonb_build_array(jsonb_build_object('skill_id', '{skill}', 'min_rating', 5)) ELSE '[]'::jsonb END, \
             now(), now() - (i || ' milliseconds')::interval FROM generate_series(0, {items} - 1) i JOIN q ON q.n = i % {queues}"
        ),
        "ANALYZE".into(),
    ];
    let mut conn = db.pool.acquire().await.unwrap();
    for sql in seed {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.unwrap();
    }
    drop(conn);
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let routing = Routing {
        pool: db.pool.clone(),
        clock: Arc::new(switchboard_domain::SystemClock),
        outbox: Outbox::new("routing"),
        config: Default::default(),
        session: SessionServiceClient::new(switchboard_telemetry::propagation::TracedChannel::new(channel)),
        settings: RoutingSettings {
            grpc_listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            session_url: String::new(),
            db_max_connections: 4,
            cycle_batch: batch,
            scheduler_interval_ms: 1_000,
            event_concurrency: 1,
            outbox_batch: 500,
            outbox_poll_ms: 200,
            drain_timeout_ms: 1_000,
        },
        cycles: Default::default(),
    };

    let started = Instant::now();
    let mut decisions = 0;
    let mut cycles = 0;
    loop {
        let made = routing.cycle(None).await.unwrap();
        cycles += 1;
        decisions += made;
        if made == 0 {
            break;
        }
    }
    let persisted = decisions as f64 / started.elapsed().as_secs_f64();
    let offered: i64 = sqlx::query_scalar("SELECT count(*) FROM routing.offers")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let over: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM routing.agent_state s JOIN routing.config c ON c.kind = 'agent' AND c.id = s.agent_id WHERE s.used_units > (c.definition->>'capacity_units')::int",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();

    // Pure decisions: the same shape in memory (100 candidates per queue).
    let mut candidates: Vec<Candidate> = (0..100)
        .map(|i| Candidate {
            agent_id: Uuid::from_u128(i).into(),
            presence: Presence::Available,
            free_units: 5,
            profile_free: BTreeMap::new(),
            skills: if i % 10 == 0 { [(skill, 7)].into() } else { BTreeMap::new() },
            last_assigned: i64::MIN,
            queue_turn: i64::MIN,
            last_released: 0,
        })
        .collect();
    let allowed = [Presence::Available, Presence::Busy];
    let declined = BTreeMap::new();
    let needs_skill = [SkillRequirement {
        skill_id: skill,
        min_rating: 5,
    }];
    let started = Instant::now();
    let mut made = 0usize;
    for i in 0..items {
        let skills: &[SkillRequirement] = if i % 20 == 0 { &needs_skill } else { &[] };
        let needs = Needs {
            units: 1,
            profiles: &[],
            skills,
            allowed: &allowed,
            matching: SkillMatching::Exact,
            declined: &declined,
            max_declines: 3,
            affinity: None,
            cooling: &[],
        };
        if let Some(index) = choose(&needs, &candidates, AssignmentMethod::HighestCapacity) {
            made += 1;
            let c = &mut candidates[index];
            c.free_units -= 1;
            c.last_assigned = i;
            if c.free_units == 0 {
                c.free_units = 5; // keep the pool full: this measures the decision, not exhaustion
            }
        }
    }
    let pure = made as f64 / started.elapsed().as_secs_f64();
    println!(
        "{{\"agents\":{agents},\"queues\":{queues},\"items\":{items},\"batch\":{batch},\"cycles\":{cycles},\"decisions\":{decisions},\"offers_in_db\":{offered},\"agents_over_capacity\":{over},\"persisted_decisions_per_s\":{persisted:.0},\"pure_decisions_per_s\":{pure:.0}}}"
    );
}
