//! The in-process configuration cache: a change made anywhere reaches it through the trigger's
//! NOTIFY, a hit does not read PostgreSQL, and a lost listener connection drops what it held.

use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::routing::config::Kind;
use switchboard_routing::config_cache::ConfigCache;
use switchboard_test_support::{TestDb, wait_until};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn name_of(cache: &ConfigCache, pool: &sqlx::PgPool, id: Uuid) -> Option<String> {
    let mut conn = pool.acquire().await.unwrap();
    cache
        .definition::<serde_json::Value>(&mut conn, Kind::Skill, id)
        .await
        .unwrap()
        .map(|(name, _)| name)
}

async fn rename(pool: &sqlx::PgPool, id: Uuid, name: &str) {
    sqlx::query("UPDATE routing.config SET name = $2 WHERE kind = 'skill' AND id = $1")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn changes_reach_the_cache_and_a_lost_listener_drops_it() {
    let db = TestDb::new().await;
    let pool = db.pool.clone();
    let cache = Arc::new(ConfigCache::default());
    let stop = CancellationToken::new();
    let listener = tokio::spawn(cache.invalidation.clone().listen(pool.clone(), stop.clone()));
    wait_until(WAIT, "the cache listens", || async { cache.invalidation.is_listening() }).await;

    // Not there yet: the miss is cached too, and a new row's NOTIFY drops it.
    let id = Uuid::now_v7();
    assert_eq!(name_of(&cache, &pool, id).await, None);
    sqlx::query("INSERT INTO routing.config (kind, id, name, definition, created_at, updated_at) VALUES ('skill', $1, 'billing', '{}', now(), now())")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    wait_until(WAIT, "the new skill is seen", || async {
        name_of(&cache, &pool, id).await.as_deref() == Some("billing")
    })
    .await;

    // A hit does not read PostgreSQL: with the trigger off, a change stays unseen...
    sqlx::query("ALTER TABLE routing.config DISABLE TRIGGER config_changed")
        .execute(&pool)
        .await
        .unwrap();
    rename(&pool, id, "invoices").await;
    assert_eq!(
        name_of(&cache, &pool, id).await.as_deref(),
        Some("billing"),
        "served from the cache"
    );
    // ...until a notification comes, from anyone.
    sqlx::query("NOTIFY routing_config").execute(&pool).await.unwrap();
    wait_until(WAIT, "the rename is seen", || async {
        name_of(&cache, &pool, id).await.as_deref() == Some("invoices")
    })
    .await;

    // A change made while the listener's connection is lost would send a notification nobody
    // hears: losing the connection drops the cache, and it reads PostgreSQL until it listens again.
    rename(&pool, id, "refunds").await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(killed, 1, "one listener connection");
    wait_until(WAIT, "the change made while deaf is seen", || async {
        name_of(&cache, &pool, id).await.as_deref() == Some("refunds")
    })
    .await;
    wait_until(WAIT, "the cache listens again", || async { cache.invalidation.is_listening() }).await;
    sqlx::query("ALTER TABLE routing.config ENABLE TRIGGER config_changed")
        .execute(&pool)
        .await
        .unwrap();
    rename(&pool, id, "payments").await;
    wait_until(WAIT, "a change after the reconnect is seen", || async {
        name_of(&cache, &pool, id).await.as_deref() == Some("payments")
    })
    .await;

    stop.cancel();
    listener.await.unwrap();
}

/// `GetNames` answers from the cache, and a rename through the catalog is seen by the next call
/// (the writing replica drops its copy as it commits; the others by the NOTIFY).
#[tokio::test]
async fn names_come_from_the_cache_and_follow_a_rename() {
    use switchboard_proto::routing::v1 as rpb;
    let h = crate::harness::Harness::start(2).await;
    let ana = h.put("agent", "Ana", serde_json::json!({ "capacity_units": 5 })).await;
    let queue = h
        .put("queue", "General", serde_json::json!({ "priority": 1, "members": [ana] }))
        .await;
    let names = |replica: usize, agent: &str, queue: &str| {
        let mut client = h.routing[replica].clone();
        let request = rpb::NamesRequest {
            agent_id: agent.into(),
            queue_id: queue.into(),
        };
        async move {
            let n = client.get_names(request).await.unwrap().into_inner();
            (n.agent_name, n.queue_name)
        }
    };
    assert_eq!(names(0, &ana, &queue).await, ("Ana".into(), "General".into()));
    assert_eq!(names(1, &ana, "").await, ("Ana".into(), String::new()));
    let nobody = Uuid::now_v7().to_string();
    assert_eq!(names(0, &nobody, &queue).await, (String::new(), "General".into()));
    let bad = h.routing[0]
        .clone()
        .get_names(rpb::NamesRequest {
            agent_id: "not-an-id".into(),
            queue_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    h.routing()
        .put_config(rpb::PutConfigRequest {
            kind: "agent".into(),
            id: ana.clone(),
            name: "Ana Lima".into(),
            definition_json: serde_json::json!({ "capacity_units": 5 }).to_string(),
        })
        .await
        .unwrap();
    assert_eq!(names(0, &ana, "").await.0, "Ana Lima", "the writing replica at once");
    wait_until(WAIT, "the other replica sees the rename", || async {
        names(1, &ana, "").await.0 == "Ana Lima"
    })
    .await;
    h.stop().await;
}
