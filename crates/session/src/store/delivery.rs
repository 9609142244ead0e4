//! The batch statements that apply delivery reports (`crate::delivery`): the SIDs' advisory
//! locks, the messages concerned read and locked, the callbacks that waited for a SID taken or
//! kept (`session.pending_statuses`), and the messages that moved written back, one statement
//! each per batch.

use sqlx::{FromRow, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// A message a batch of reports concerns, read and locked, with the agent of its
/// conversation; `moved` once a report moved it (and it is written back).
#[derive(FromRow)]
pub(crate) struct Tracked {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub channel_id: Uuid,
    pub twilio_sid: Option<String>,
    pub status: String,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub agent_id: Option<Uuid>,
    pub traceparent: Option<String>,
    #[sqlx(skip)]
    pub moved: bool,
}

/// A callback to keep until its SID is reported.
pub(crate) struct Waiting<'a> {
    pub channel_id: Uuid,
    pub sid: &'a str,
    pub status: &'a str,
    pub error_code: Option<i32>,
    pub error_message: Option<&'a str>,
    pub received_at: OffsetDateTime,
}

pub(crate) type Pending = (Uuid, String, String, Option<i32>, Option<String>);

/// Takes the batch's SID locks (`channel|sid`, sorted, so batches never deadlock).
pub(crate) async fn lock_sids<'c>(db: impl PgExecutor<'c>, keys: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) k")
        .bind(keys)
        .execute(db)
        .await?;
    Ok(())
}

/// Reads and locks (in id order) the messages `by_id` names and those with the (channel, SID)
/// pairs of `channels` × `sids`, zipped.
pub(crate) async fn lock_tracked<'c>(
    db: impl PgExecutor<'c>,
    by_id: &[Uuid],
    channels: &[Uuid],
    sids: &[&str],
) -> Result<Vec<Tracked>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id, m.conversation_id, m.channel_id, m.twilio_sid, m.status, m.error_code, m.error_message, c.agent_id, m.traceparent \
         FROM session.messages m JOIN session.conversations c ON c.id = m.conversation_id \
         WHERE m.id IN (SELECT unnest($1::uuid[]) UNION \
                        SELECT s.id FROM session.messages s JOIN unnest($2::uuid[], $3::text[]) u(ch, sid) \
                        ON s.twilio_sid IS NOT NULL AND s.twilio_sid = u.sid AND s.channel_id = u.ch) \
         ORDER BY m.id FOR UPDATE OF m",
    )
    .bind(by_id)
    .bind(channels)
    .bind(sids)
    .fetch_all(db)
    .await
}

/// Takes (deletes and returns) the callbacks that waited for the (channel, SID) pairs, zipped.
pub(crate) async fn take_waiting<'c>(db: impl PgExecutor<'c>, channels: &[Uuid], sids: &[&str]) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM session.pending_statuses p USING unnest($1::uuid[], $2::text[]) u(ch, sid) \
         WHERE p.channel_id = u.ch AND p.twilio_sid = u.sid \
         RETURNING p.channel_id, p.twilio_sid, p.status, p.error_code, p.error_message",
    )
    .bind(channels)
    .bind(sids)
    .fetch_all(db)
    .await
}

/// Keeps callbacks whose SID no message has yet.
pub(crate) async fn keep_waiting<'c>(db: impl PgExecutor<'c>, keep: &[Waiting<'_>]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session.pending_statuses (channel_id, twilio_sid, status, error_code, error_message, received_at) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::timestamptz[]) ON CONFLICT DO NOTHING",
    )
    .bind(keep.iter().map(|w| w.channel_id).collect::<Vec<_>>())
    .bind(keep.iter().map(|w| w.sid).collect::<Vec<_>>())
    .bind(keep.iter().map(|w| w.status).collect::<Vec<_>>())
    .bind(keep.iter().map(|w| w.error_code).collect::<Vec<_>>())
    .bind(keep.iter().map(|w| w.error_message).collect::<Vec<_>>())
    .bind(keep.iter().map(|w| w.received_at).collect::<Vec<_>>())
    .execute(db)
    .await?;
    Ok(())
}

/// Writes the moved messages' SID and status in one UPDATE (a row is written once per batch).
pub(crate) async fn write_moved<'c>(db: impl PgExecutor<'c>, moved: &[&Tracked]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE session.messages m SET twilio_sid = u.sid, status = u.status, error_code = u.code, error_message = u.message \
         FROM unnest($1::uuid[], $5::text[], $2::text[], $3::int4[], $4::text[]) u(id, sid, status, code, message) WHERE m.id = u.id",
    )
    .bind(moved.iter().map(|m| m.id).collect::<Vec<_>>())
    .bind(moved.iter().map(|m| m.status.as_str()).collect::<Vec<_>>())
    .bind(moved.iter().map(|m| m.error_code).collect::<Vec<_>>())
    .bind(moved.iter().map(|m| m.error_message.as_deref()).collect::<Vec<_>>())
    .bind(moved.iter().map(|m| m.twilio_sid.as_deref()).collect::<Vec<_>>())
    .execute(db)
    .await?;
    Ok(())
}
