//! The hardware's own ceilings, measured in the same run: RabbitMQ confirmed publishes (raw
//! lapin, 256 in flight) and PostgreSQL single-row commits (16 connections).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde::Serialize;

/// Raw rates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Baseline {
    pub rabbitmq_confirmed_publishes_per_s: f64,
    pub postgres_commits_per_s: f64,
}

/// Confirmed publishes per second for `for_`.
pub async fn rabbitmq(amqp_url: &str, for_: Duration) -> anyhow::Result<f64> {
    let conn = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let queue = format!("loadgen.baseline.{}", uuid::Uuid::new_v4().simple());
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await?;
    let payload = vec![b'x'; 512];
    let started = Instant::now();
    let mut confirmed = 0u64;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    while started.elapsed() < for_ {
        while pending.len() < 256 {
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?;
            pending.push(confirm);
        }
        if let Some(result) = pending.next().await {
            result?;
            confirmed += 1;
        }
    }
    while let Some(result) = pending.next().await {
        result?;
        confirmed += 1;
    }
    let rate = confirmed as f64 / started.elapsed().as_secs_f64();
    let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = conn.close(200, "done".into()).await;
    Ok(rate)
}

/// Single-row insert commits per second for `for_`.
pub async fn postgres(database_url: &str, for_: Duration) -> anyhow::Result<f64> {
    let pool = switchboard_storage::connect(database_url, 16).await?;
    let table = format!("loadgen_baseline_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE UNLOGGED TABLE IF NOT EXISTS {table} (id bigserial, v text)"
    )))
    .execute(&pool)
    .await?;
    // Logged like the real tables: a commit waits for its WAL flush.
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE {table} SET LOGGED")))
        .execute(&pool)
        .await?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (pool, table) = (pool.clone(), table.clone());
        workers.spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < for_ {
                if sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO {table} (v) VALUES ('x')")))
                    .execute(&pool)
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            n
        });
    }
    let mut total = 0u64;
    while let Some(n) = workers.join_next().await {
        total += n.unwrap_or(0);
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).execute(&pool).await;
    pool.close().await;
    Ok(rate)
}
