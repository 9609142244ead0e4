//! The live stream's positions: a row whose writer began first but committed last is still
//! delivered, before the newer rows, to a client that was already following the stream.

use serde_json::json;
use switchboard_test_support::wait_until;

use crate::harness::*;

#[tokio::test]
async fn a_stream_row_committed_after_newer_rows_is_delivered_first_not_skipped() {
    let w = World::start().await;
    let mut ana_stream = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;

    // A stream writer that took its position first and is slow to commit (another api replica
    // ingesting, say).
    let mut slow = w.db.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO api.stream_events (id, message_id, type, agent_id, occurred_at, data) \
         VALUES ((pg_current_xact_id()::text::int8 << 19) + 1, $1, 'agent.presence.v1', $2::uuid, now(), $3)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(&w.ana.id)
    .bind(json!({ "agent_id": w.ana.id, "presence": "busy", "chosen": "busy", "marker": "late" }))
    .execute(&mut *slow)
    .await
    .unwrap();

    // Meanwhile the system writes newer rows and commits them.
    w.customer_writes("+5511988880001", json!({ "body": "hello" })).await;
    wait_until(WAIT, "the offer is in the stream table", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM api.stream_events WHERE type = 'offer.created.v1'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap()
            >= 1
    })
    .await;
    slow.commit().await.unwrap();

    // The late row arrives, and the offer after it (its position is higher).
    ana_stream.expect("agent.presence.v1", |d| d["marker"] == "late").await;
    ana_stream.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    w.stop().await;
}

#[tokio::test]
async fn a_write_held_open_in_another_database_does_not_hold_the_stream_back() {
    let w = World::start().await;
    let mut ana_stream = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;
    // Transaction ids are the whole cluster's: a write of another database (another
    // application sharing the server), open for longer than the test waits.
    let other = sqlx::PgPool::connect(&switchboard_test_support::database_url()).await.unwrap();
    let mut elsewhere = other.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *elsewhere).await.unwrap();

    w.customer_writes("+5511988880002", json!({ "body": "hello" })).await;
    ana_stream.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    elsewhere.rollback().await.unwrap();
    w.stop().await;
}
