//! The journal's internal gRPC service (`switchboard.ingress.v1.WebhookJournal`): list, show,
//! replay. The API is its only caller; it checks that the caller is an admin.

use std::sync::Arc;

use sqlx::PgPool;
use switchboard_domain::Clock;
use switchboard_proto::common::v1::Attribute;
use switchboard_proto::ingress::v1 as pb;
use switchboard_proto::ingress::v1::webhook_journal_server::WebhookJournal;
use switchboard_proto::time::{datetime, timestamp};
use switchboard_service_kit::ErrorCode;
use switchboard_storage::StorageError;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::journal::{self, Entry, Filter};
use crate::webhooks::{Refusal, Webhooks};

/// Outcomes of webhooks that carried a message ingress could publish: replaying one can work.
const REPLAYABLE: [&str; 2] = ["accepted", "unavailable"];

/// Serves the journal.
pub struct JournalService {
    pool: PgPool,
    webhooks: Arc<Webhooks>,
    clock: Arc<dyn Clock>,
}

impl JournalService {
    /// The service on `pool`, replaying through `webhooks`.
    pub fn new(pool: PgPool, webhooks: Arc<Webhooks>, clock: Arc<dyn Clock>) -> Self {
        Self { pool, webhooks, clock }
    }
}

fn storage(error: StorageError) -> Status {
    match error {
        StorageError::NotFound => ErrorCode::NotFound.to_status("no such journaled webhook"),
        StorageError::Unavailable(_) | StorageError::Conflict => ErrorCode::Unavailable.to_status("the journal's database is unavailable"),
        other => {
            tracing::error!(error = %other, "webhook journal query failed");
            ErrorCode::Internal.to_status("internal error")
        }
    }
}

fn invalid(message: impl Into<String>) -> Status {
    ErrorCode::InvalidArgument.to_status(message)
}

fn id(raw: &str) -> Result<Uuid, Status> {
    Ok(switchboard_service_kit::parse_id(raw, "id")?)
}

fn text(raw: String) -> Option<String> {
    Some(raw).filter(|v| !v.is_empty())
}

/// Customers are `whatsapp:+E.164` on the wire; a bare number is taken to mean that.
fn customer(raw: String) -> Option<String> {
    let raw = raw.trim().to_owned();
    match raw.as_str() {
        "" => None,
        r if r.contains(':') => Some(raw),
        r => Some(format!("whatsapp:{r}")),
    }
}

fn attribute((key, value): (String, String)) -> Attribute {
    Attribute { key, value }
}

fn view(e: Entry) -> pb::JournaledWebhook {
    pb::JournaledWebhook {
        id: e.id.to_string(),
        channel_id: e.channel_id,
        kind: e.kind,
        message_sid: e.message_sid,
        from: e.from_address,
        to: e.to_address,
        answer: u32::try_from(e.answer).unwrap_or(0),
        outcome: e.outcome,
        params: e.params.0.into_iter().map(attribute).collect(),
        headers: e.headers.0.into_iter().map(attribute).collect(),
        received_at: Some(timestamp(e.received_at)),
        replays: u32::try_from(e.replays).unwrap_or(0),
        last_replayed_at: e.last_replayed_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl WebhookJournal for JournalService {
    async fn list_webhooks(&self, request: Request<pb::ListWebhooksRequest>) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let r = request.into_inner();
        let kind = text(r.kind);
        if kind.as_deref().is_some_and(|k| crate::webhooks::Kind::parse(k).is_none()) {
            return Err(invalid("kind must be inbound or status"));
        }
        let limit = if r.limit == 0 { 100 } else { r.limit };
        if limit > 500 {
            return Err(invalid("limit must be between 1 and 500"));
        }
        let answer = match r.answer {
            0 => None,
            a @ 100..=599 => i16::try_from(a).ok(),
            _ => return Err(invalid("answer must be an HTTP status")),
        };
        let filter = Filter {
            channel_id: text(r.channel_id),
            kind,
            message_sid: text(r.message_sid),
            customer: customer(r.customer),
            answer,
            since: r
                .since
                .as_ref()
                .map(|t| datetime(t).ok_or_else(|| invalid("since is out of range")))
                .transpose()?,
            before: text(r.before).map(|b| id(&b)).transpose()?,
            limit: i64::from(limit),
        };
        let entries = journal::list(&self.pool, &filter).await.map_err(storage)?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: entries.into_iter().map(view).collect(),
        }))
    }

    async fn get_webhook(&self, request: Request<pb::GetWebhookRequest>) -> Result<Response<pb::JournaledWebhook>, Status> {
        let id = id(&request.into_inner().id)?;
        Ok(Response::new(view(journal::get(&self.pool, id).await.map_err(storage)?)))
    }

    async fn replay_webhook(&self, request: Request<pb::GetWebhookRequest>) -> Result<Response<pb::JournaledWebhook>, Status> {
        let id = id(&request.into_inner().id)?;
        let entry = journal::get(&self.pool, id).await.map_err(storage)?;
        if !REPLAYABLE.contains(&entry.outcome.as_str()) {
            return Err(ErrorCode::FailedPrecondition
                .to_status(format!("this webhook was refused ({}); replaying it cannot succeed", entry.outcome)));
        }
        match self.webhooks.replay(&entry).await {
            Ok(()) => {}
            Err(Refusal::Unavailable) => return Err(ErrorCode::Unavailable.to_status("the broker is unavailable; try again")),
            Err(refusal) => return Err(ErrorCode::FailedPrecondition.to_status(refusal.to_string())),
        }
        tracing::info!(%id, message_sid = %entry.message_sid, channel_id = %entry.channel_id, "webhook replayed");
        let entry = journal::mark_replayed(&self.pool, id, self.clock.now()).await.map_err(storage)?;
        Ok(Response::new(view(entry)))
    }
}
