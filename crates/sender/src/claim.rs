//! Claiming a send, and finding out what happened to one whose outcome was lost.
//!
//! A copy of `outbound.send.v1` may call Twilio only while it holds the send's lease
//! (`sender.deliveries.lease_until`); the claim raises `attempts`, the fencing token, and marks
//! the send `unknown` *before* the call, so a crash, a lost answer or a failed record leaves
//! evidence that Twilio may have the message. A later claim of an `unknown` send looks for it in
//! Twilio's Messages list (To, From, DateSent, body) before sending anything again.

use std::time::Duration;

use switchboard_bus::HandleError;
use switchboard_bus::events::{OutboundContent, OutboundSendV1};
use switchboard_twilio::{Credentials, TwilioError};
use time::OffsetDateTime;
use uuid::Uuid;

use sqlx::PgPool;
use switchboard_twilio::TwilioClient;

use crate::config::SenderSettings;

/// What a copy of a send may do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Claim {
    /// Call Twilio, as claim `fence`; first `reconcile` when an earlier attempt may have
    /// reached Twilio. `since` is when the first attempt was claimed.
    Go {
        fence: i32,
        reconcile: bool,
        since: OffsetDateTime,
    },
    /// Accepted, cancelled or failed for good: nothing to do.
    Done,
    /// Another copy holds the lease for about this long.
    Held(Duration),
}

/// Whether Twilio may have the message when a claim gives its lease back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Certainly not created.
    No,
    /// Perhaps created: look before any resend.
    Maybe,
}

const CLAIM: &str = "WITH ins AS ( \
       INSERT INTO sender.deliveries (message_id, channel_id, number_id, status, attempts, lease_until) \
       VALUES ($1, $2, $3, 'unknown', 1, now() + make_interval(secs => $4)) ON CONFLICT (message_id) DO NOTHING \
       RETURNING attempts, false AS reconcile, created_at), \
     prev AS ( \
       SELECT message_id, status AS was, lease_until FROM sender.deliveries \
       WHERE message_id = $1 AND NOT EXISTS (SELECT 1 FROM ins) FOR UPDATE), \
     upd AS ( \
       UPDATE sender.deliveries d SET attempts = d.attempts + 1, status = 'unknown', \
         lease_until = now() + make_interval(secs => $4), updated_at = now() \
       FROM prev WHERE d.message_id = prev.message_id AND d.twilio_sid IS NULL AND prev.was IN ('sending', 'unknown') \
         AND (prev.lease_until IS NULL OR prev.lease_until < now()) \
       RETURNING d.attempts, prev.was = 'unknown' AS reconcile, d.created_at) \
     SELECT 'go' AS verdict, attempts, reconcile, created_at, 0::float8 AS wait_secs FROM ins \
     UNION ALL SELECT 'go', attempts, reconcile, created_at, 0::float8 FROM upd \
     UNION ALL SELECT CASE WHEN prev.was IN ('sending', 'unknown') AND prev.lease_until >= now() THEN 'held' ELSE 'done' END, \
       0, false, now(), GREATEST(EXTRACT(EPOCH FROM prev.lease_until - now()), 0)::float8 \
       FROM prev WHERE NOT EXISTS (SELECT 1 FROM upd)";

/// The claims of sends, in `sender.deliveries`, and the lookups in Twilio's list.
pub(crate) struct Claims {
    pool: PgPool,
    twilio: TwilioClient,
    lease: Duration,
}

impl Claims {
    pub(crate) fn new(pool: PgPool, twilio: TwilioClient, settings: &SenderSettings) -> Self {
        Self {
            pool,
            twilio,
            lease: lease(settings),
        }
    }

    /// Claims message `id` (one round trip).
    pub(crate) async fn claim(&self, id: Uuid, event: &OutboundSendV1) -> Result<Claim, HandleError> {
        let row: Option<(String, i32, bool, OffsetDateTime, f64)> = sqlx::query_as(CLAIM)
            .bind(id)
            .bind(event.channel_id)
            .bind(event.number_id)
            .bind(self.lease.as_secs_f64())
            .fetch_optional(&self.pool)
            .await
            .map_err(HandleError::retry)?;
        Ok(match row {
            Some((verdict, fence, reconcile, since, _)) if verdict == "go" => Claim::Go { fence, reconcile, since },
            Some((verdict, _, _, _, wait)) if verdict == "held" => Claim::Held(Duration::from_secs_f64(wait.clamp(0.1, 60.0))),
            _ => Claim::Done,
        })
    }

    /// Gives claim `fence`'s lease back. [`Sent::No`]: Twilio answered without creating the
    /// message (a 5xx, a 429, a refused connect), or nothing was called, so the next attempt
    /// sends without looking first. [`Sent::Maybe`]: the outcome stays `unknown`, so the next
    /// attempt looks first.
    pub(crate) async fn release(&self, id: Uuid, fence: i32, sent: Sent) -> Result<(), HandleError> {
        sqlx::query(
            "UPDATE sender.deliveries SET status = CASE WHEN $3 THEN status ELSE 'sending' END, lease_until = NULL, \
             updated_at = now() WHERE message_id = $1 AND attempts = $2 AND twilio_sid IS NULL AND status = 'unknown'",
        )
        .bind(id)
        .bind(fence)
        .bind(sent == Sent::Maybe)
        .execute(&self.pool)
        .await
        .map_err(HandleError::retry)?;
        Ok(())
    }

    /// Looks for the message of `event` in Twilio's Messages list: sent from our number to the
    /// customer since the first attempt (a minute's margin for clocks), with the same body (a
    /// template's rendered text is not ours to compare, so any such message counts), and not
    /// already recorded for another send. Returns its SID and status, the oldest such.
    pub(crate) async fn find_sent(
        &self,
        credentials: &Credentials,
        event: &OutboundSendV1,
        since: OffsetDateTime,
    ) -> Result<Option<(String, String)>, TwilioError> {
        let listed = self
            .twilio
            .list_messages(credentials, &event.to, &event.from, since.date(), 3)
            .await?;
        let not_before = since - time::Duration::minutes(1);
        let rfc2822 = time::format_description::well_known::Rfc2822;
        let candidates: Vec<(String, String)> = listed
            .into_iter()
            .filter(|m| {
                m.date_created
                    .as_deref()
                    .and_then(|d| OffsetDateTime::parse(d, &rfc2822).ok())
                    .is_some_and(|d| d >= not_before)
            })
            .filter(|m| match &event.content {
                OutboundContent::Text { body } => m.body.as_deref() == Some(body.as_str()),
                OutboundContent::Media { caption, .. } => {
                    m.num_media.as_deref().is_some_and(|n| n != "0")
                        && m.body.as_deref().unwrap_or_default() == caption.as_deref().unwrap_or_default()
                }
                OutboundContent::Template { .. } => true,
            })
            .filter_map(|m| Some((m.sid?, m.status.unwrap_or_else(|| "queued".into()))))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let sids: Vec<String> = candidates.iter().map(|(sid, _)| sid.clone()).collect();
        let taken: Vec<String> = sqlx::query_scalar("SELECT twilio_sid FROM sender.deliveries WHERE twilio_sid = ANY($1)")
            .bind(&sids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| TwilioError::Network(format!("cannot read recorded SIDs: {e}")))?;
        // The list is newest first: the oldest unrecorded match is the one this send made.
        Ok(candidates.into_iter().rev().find(|(sid, _)| !taken.contains(sid)))
    }
}

/// How long a claim holds a send: every quick retry of the slowest Twilio call, the longest
/// `Retry-After` honoured between them and the longest pacing wait, with a margin.
fn lease(s: &SenderSettings) -> Duration {
    let calls = u64::from(s.http_retries) + 1;
    Duration::from_millis(s.request_timeout_ms * calls + s.max_retry_after_ms * u64::from(s.http_retries) + s.max_rate_wait_ms + 5_000)
}
