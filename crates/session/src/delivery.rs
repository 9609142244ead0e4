//! Delivery results: Twilio's status callbacks and the sender's accepted/failed reports. The
//! status only moves forward (`domain::delivery`), whatever order they arrive in.
//!
//! A batch of reports is applied in one transaction with a fixed number of statements, whatever
//! its size: lock the SIDs it names (one statement, in sorted order), read and lock every
//! message concerned, take the callbacks that were waiting for the SIDs the sender reported,
//! apply the reports in arrival order in memory, then write the messages that moved (new SID
//! and status in one UPDATE, so a row is written once per batch), the callbacks still waiting,
//! and the events. A callback that arrives before the sender reported its SID waits in
//! `pending_statuses`; both paths hold the SID's advisory lock, so neither can miss the other.
//!
//! The consumer is keyed by SID ([`lane`]): on one replica the reports of one SID are applied
//! one batch after another, so batches do not wait on each other's SID and row locks. Replicas
//! still may, which is why the locks stay.

use std::sync::Arc;

use sqlx::PgConnection;
use switchboard_bus::events::{MessageStatusV1, OutboundAcceptedV1, OutboundFailedV1, StatusReceivedV1, WorkstreamUpdatedV1};
use switchboard_bus::{Envelope, HandleError, Handler, Incoming};
use switchboard_domain::delivery::{Delivery, DeliveryStatus};
use switchboard_domain::ids::MessageId;
use switchboard_domain::indicators::ReadReceipts;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::error::SessionError;
use crate::inbound::classify;
use crate::store::delivery::{self as store, Pending, Tracked, Waiting};

/// Consumes `status.received.v1`, `outbound.accepted.v1`, `outbound.failed.v1`.
pub struct DeliveryHandler {
    session: Arc<Session>,
}

impl DeliveryHandler {
    /// A handler writing through `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }
}

impl Handler for DeliveryHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        let reports = batch.iter().map(Report::parse).collect::<Result<Vec<_>, _>>()?;
        self.session.apply_reports(&reports).await.map_err(classify)
    }
}

/// Consumes commands for session: workstream settings published by routing.
pub struct CommandHandler {
    session: Arc<Session>,
}

impl CommandHandler {
    /// A handler writing through `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }
}

impl Handler for CommandHandler {
    async fn handle(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        for incoming in batch {
            match incoming.routing_key.as_str() {
                "workstream.updated.v1" => {
                    let e: Envelope<WorkstreamUpdatedV1> = incoming.json()?;
                    self.session.apply_workstream(&e.payload).await.map_err(classify)?;
                }
                other => tracing::warn!(routing_key = other, "ignoring unknown session command"),
            }
        }
        Ok(())
    }
}

/// One delivery report of a batch.
pub enum Report {
    /// A Twilio status callback.
    Status(StatusReceivedV1),
    /// The sender's report of the SID Twilio gave a message.
    Accepted(OutboundAcceptedV1),
    /// The sender's report that a message failed for good.
    Failed(OutboundFailedV1),
}

/// The lane of a delivery report (see `ConsumerOptions::keyed`): the callbacks of one SID and
/// the sender's report of that SID share a lane, so this replica never applies two batches
/// naming the same SID at once, and they do not queue on each other's SID and row locks. A
/// failure report names no SID; it goes by its message.
pub fn lane(incoming: &Incoming) -> u64 {
    let key = match Report::parse(incoming) {
        Ok(Report::Status(e)) => format!("{}|{}", e.channel_id, e.message_sid),
        Ok(Report::Accepted(e)) => format!("{}|{}", e.channel_id, e.twilio_sid),
        Ok(Report::Failed(e)) => e.message_id.to_string(),
        Err(_) => String::new(),
    };
    switchboard_bus::key_hash(&key)
}

impl Report {
    fn parse(incoming: &Incoming) -> Result<Self, HandleError> {
        Ok(match incoming.routing_key.as_str() {
            "status.received.v1" => Self::Status(incoming.json::<Envelope<StatusReceivedV1>>()?.payload),
            "outbound.accepted.v1" => Self::Accepted(incoming.json::<Envelope<OutboundAcceptedV1>>()?.payload),
            "outbound.failed.v1" => Self::Failed(incoming.json::<Envelope<OutboundFailedV1>>()?.payload),
            other => return Err(HandleError::Reject(anyhow::anyhow!("unexpected routing key {other}"))),
        })
    }
}

/// A report with its id parsed: the channel of a status, the message of the others.
enum Parsed<'a> {
    Status(Uuid, &'a StatusReceivedV1),
    Accepted(Uuid, &'a OutboundAcceptedV1),
    Failed(Uuid, &'a OutboundFailedV1),
}

impl Tracked {
    /// Moves this message forward to `status` if that is forward; returns the event saying so.
    fn advance(&mut self, status: &str, code: Option<u32>, text: Option<&str>) -> Option<MessageStatusV1> {
        let Some(incoming) = DeliveryStatus::from_twilio(status) else {
            tracing::debug!(status, "ignoring a status that is not an outbound delivery state");
            return None;
        };
        let mut delivery = Delivery {
            status: DeliveryStatus::parse(&self.status).unwrap_or(DeliveryStatus::Pending),
            error_code: self.error_code.and_then(|c| u32::try_from(c).ok()),
        };
        if !delivery.apply(incoming, code) {
            return None;
        }
        let error_message = delivery.status.is_failure().then(|| match delivery.error_code {
            Some(c) => switchboard_twilio::errors::explain(c, text),
            None => text.unwrap_or("failed").to_owned(),
        });
        crate::metrics::delivery(delivery.status.as_str(), delivery.error_code);
        self.status = delivery.status.as_str().to_owned();
        self.error_code = delivery.error_code.and_then(|c| i32::try_from(c).ok());
        self.error_message.clone_from(&error_message);
        self.moved = true;
        Some(MessageStatusV1 {
            conversation_id: self.conversation_id.into(),
            message_id: self.id.into(),
            status: self.status.clone(),
            error_code: delivery.error_code,
            error_message,
            agent_id: self.agent_id.map(Into::into),
        })
    }
}

/// Records each status a message moved to in that message's own trace (the agent's or bot's
/// reply it was sent in), linked to the callback's trace: so the reply's trace ends with its
/// delivery and read, though Twilio's callbacks carry no trace context.
fn trace_moves(started: std::time::SystemTime, moves: &[(MessageId, String)], messages: &[Tracked]) {
    use opentelemetry::KeyValue;
    for (id, status) in moves {
        let Some(message) = messages.iter().find(|m| m.id == id.uuid()) else {
            continue;
        };
        let Some(traceparent) = message.traceparent.as_deref() else {
            continue;
        };
        let mut attributes = vec![
            KeyValue::new(switchboard_telemetry::semconv::SWITCHBOARD_SERVICE, "session"),
            KeyValue::new("message_id", id.to_string()),
            KeyValue::new(switchboard_telemetry::semconv::CONVERSATION_ID, message.conversation_id.to_string()),
            KeyValue::new("message.status", status.clone()),
        ];
        if let Some(sid) = &message.twilio_sid {
            attributes.push(KeyValue::new(switchboard_telemetry::semconv::MESSAGE_SID, sid.clone()));
        }
        switchboard_telemetry::propagation::record_in_stored_trace(traceparent, format!("message {status}"), started, attributes);
    }
}

impl Session {
    /// Applies a Twilio status callback.
    pub async fn apply_status_callback(&self, event: &StatusReceivedV1) -> Result<(), SessionError> {
        self.apply_reports(&[Report::Status(event.clone())]).await
    }

    /// Records the SID Twilio gave a message, then any callbacks that were waiting for it.
    pub async fn apply_accepted(&self, event: &OutboundAcceptedV1) -> Result<(), SessionError> {
        self.apply_reports(&[Report::Accepted(event.clone())]).await
    }

    /// Marks a message failed for good.
    pub async fn apply_failed(&self, event: &OutboundFailedV1) -> Result<(), SessionError> {
        self.apply_reports(&[Report::Failed(event.clone())]).await
    }

    /// Applies a batch of delivery reports in one transaction (see the module documentation).
    pub async fn apply_reports(&self, reports: &[Report]) -> Result<(), SessionError> {
        let started = std::time::SystemTime::now();
        let mut parsed = Vec::with_capacity(reports.len());
        let mut sids: Vec<(Uuid, &str)> = Vec::new();
        let mut accepted: Vec<(Uuid, Uuid, &str)> = Vec::new();
        let mut failed: Vec<Uuid> = Vec::new();
        for report in reports {
            parsed.push(match report {
                Report::Status(e) => {
                    let channel = e.channel_id.uuid();
                    sids.push((channel, &e.message_sid));
                    Parsed::Status(channel, e)
                }
                Report::Accepted(e) => {
                    let (channel, message) = (e.channel_id.uuid(), e.message_id.uuid());
                    sids.push((channel, &e.twilio_sid));
                    if !accepted.iter().any(|(m, _, _)| *m == message) {
                        accepted.push((message, channel, &e.twilio_sid));
                    }
                    Parsed::Accepted(message, e)
                }
                Report::Failed(e) => {
                    let message = e.message_id.uuid();
                    failed.push(message);
                    Parsed::Failed(message, e)
                }
            });
        }
        let mut tx = self.pool.begin().await?;
        let mut locks: Vec<String> = sids.iter().map(|(c, s)| format!("{c}|{s}")).collect();
        locks.sort_unstable();
        locks.dedup();
        if !locks.is_empty() {
            store::lock_sids(&mut *tx, &locks).await?;
        }
        // Every message concerned, read and locked: those the sender reported on by id, and
        // those the callbacks name by SID.
        let by_id: Vec<Uuid> = accepted.iter().map(|a| a.0).chain(failed.iter().copied()).collect();
        let (channels, sid_list): (Vec<Uuid>, Vec<&str>) = sids.iter().copied().unzip();
        let mut messages = store::lock_tracked(&mut *tx, &by_id, &channels, &sid_list).await?;
        // The SIDs the sender reported, on messages that have none yet (or that one): written
        // below with the statuses, in the same UPDATE, and taking the callbacks that waited.
        let mut known: Vec<Uuid> = Vec::new();
        for (id, _, sid) in &accepted {
            if let Some(m) = messages.iter_mut().find(|m| m.id == *id)
                && m.twilio_sid.as_deref().is_none_or(|s| s == *sid)
            {
                if m.twilio_sid.is_none() {
                    m.twilio_sid = Some((*sid).to_owned());
                    m.moved = true;
                }
                known.push(*id);
            }
        }
        let mut waiting: Vec<Pending> = Vec::new();
        if !known.is_empty() {
            let (channels, sids): (Vec<Uuid>, Vec<&str>) = accepted.iter().filter(|a| known.contains(&a.0)).map(|a| (a.1, a.2)).unzip();
            waiting = store::take_waiting(&mut *tx, &channels, &sids).await?;
        }
        let mut events = Events::default();
        let mut keep: Vec<Waiting<'_>> = Vec::new();
        let mut moves: Vec<(MessageId, String)> = Vec::new();
        let now = self.now();
        for report in &parsed {
            let mut emit = |event: Option<MessageStatusV1>| {
                if let Some(event) = event {
                    moves.push((event.message_id, event.status.clone()));
                    events.push(event, now);
                }
            };
            match report {
                Parsed::Status(channel, e) => {
                    let (channel, sid) = (*channel, Some(e.message_sid.as_str()));
                    match messages
                        .iter_mut()
                        .find(|m| m.channel_id == channel && m.twilio_sid.as_deref() == sid)
                    {
                        Some(m) => emit(m.advance(&e.status, e.error_code, e.error_message.as_deref())),
                        None => keep.push(Waiting {
                            channel_id: channel,
                            sid: &e.message_sid,
                            status: &e.status,
                            error_code: e.error_code.and_then(|c| i32::try_from(c).ok()),
                            error_message: e.error_message.as_deref(),
                            received_at: e.received_at,
                        }),
                    }
                }
                Parsed::Accepted(id, e) => {
                    let id = *id;
                    let Some(m) = messages.iter_mut().find(|m| m.id == id && known.contains(&id)) else {
                        tracing::warn!(message_id = %id, "accepted report for an unknown message or a different SID, ignored");
                        continue;
                    };
                    emit(m.advance(&e.status, None, None));
                    let channel = m.channel_id;
                    for (_, _, status, code, text) in waiting.iter().filter(|w| w.0 == channel && w.1 == e.twilio_sid) {
                        emit(m.advance(status, code.and_then(|c| u32::try_from(c).ok()), text.as_deref()));
                    }
                }
                Parsed::Failed(id, e) => {
                    let id = *id;
                    match messages.iter_mut().find(|m| m.id == id) {
                        Some(m) => emit(m.advance("failed", e.error_code, Some(&e.error_message))),
                        None => tracing::warn!(message_id = %id, "failure report for an unknown message, ignored"),
                    }
                }
            }
        }
        self.write_moved(&mut tx, &messages).await?;
        // A message the window closed under: whoever works the conversation is told what still
        // reaches the customer.
        let mut closed_under: Vec<Uuid> = messages
            .iter()
            .filter(|m| m.moved && m.error_code == Some(63016))
            .map(|m| m.conversation_id)
            .collect();
        closed_under.sort_unstable();
        closed_under.dedup();
        for conversation in closed_under {
            self.note_window_closed(&mut tx, conversation, &mut events).await?;
        }
        if !keep.is_empty() {
            store::keep_waiting(&mut *tx, &keep).await?;
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        trace_moves(started, &moves, &messages);
        Ok(())
    }

    async fn write_moved(&self, conn: &mut PgConnection, messages: &[Tracked]) -> Result<(), SessionError> {
        let moved: Vec<&Tracked> = messages.iter().filter(|m| m.moved).collect();
        if moved.is_empty() {
            return Ok(());
        }
        store::write_moved(&mut *conn, &moved).await?;
        Ok(())
    }

    /// Stores the workstream settings routing published.
    pub async fn apply_workstream(&self, event: &WorkstreamUpdatedV1) -> Result<(), SessionError> {
        let id = event.workstream_id;
        if event.deleted {
            sqlx::query("DELETE FROM session.workstreams WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            self.config.invalidation.invalidate();
            return Ok(());
        }
        let bot = event.bot_id;
        sqlx::query(
            "INSERT INTO session.workstreams (id, waiting_auto_close_secs, bot_id, bot_inactivity_secs, updated_at, default_language, \
             open_auto_close_secs, active_auto_close_secs, wrap_up_auto_close_secs, context_variables, read_receipts, window_template) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET waiting_auto_close_secs = EXCLUDED.waiting_auto_close_secs, bot_id = EXCLUDED.bot_id, \
             bot_inactivity_secs = EXCLUDED.bot_inactivity_secs, updated_at = EXCLUDED.updated_at, default_language = EXCLUDED.default_language, \
             open_auto_close_secs = EXCLUDED.open_auto_close_secs, active_auto_close_secs = EXCLUDED.active_auto_close_secs, \
             wrap_up_auto_close_secs = EXCLUDED.wrap_up_auto_close_secs, context_variables = EXCLUDED.context_variables, \
             read_receipts = EXCLUDED.read_receipts, window_template = EXCLUDED.window_template",
        )
        .bind(id)
        .bind(event.waiting_auto_close_secs)
        .bind(bot)
        .bind(event.bot_inactivity_secs)
        .bind(OffsetDateTime::now_utc())
        .bind(&event.default_language)
        .bind(event.open_auto_close_secs)
        .bind(event.active_auto_close_secs)
        .bind(event.wrap_up_auto_close_secs)
        .bind(serde_json::json!(event.context_variables))
        .bind(ReadReceipts::parse(event.read_receipts.as_deref().unwrap_or_default()).as_str())
        .bind(event.window_template.as_ref().map(|t| serde_json::json!(t)))
        .execute(&self.pool)
        .await?;
        self.config.invalidation.invalidate();
        Ok(())
    }
}
