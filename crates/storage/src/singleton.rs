//! Periodic work that one replica at a time should do (template sync, channel health checks):
//! whoever takes the session-level advisory lock named for it runs it, the others skip the round.

use std::future::Future;

use sqlx::PgPool;

/// Runs `work` if this process takes the advisory lock `name` (released afterwards, on the same
/// connection); `None` when another replica holds it or no connection could be had.
pub async fn run_if_first<F: Future>(pool: &PgPool, name: &str, work: F) -> Option<F::Output> {
    let mut conn = pool.acquire().await.ok()?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or(false);
    if !locked {
        return None;
    }
    let output = work.await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(name)
        .execute(&mut *conn)
        .await;
    Some(output)
}
