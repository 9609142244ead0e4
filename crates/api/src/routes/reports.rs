//! Historical reporting: how queues and agents did over a period, and one conversation's
//! figures (first wait, handle and wrap-up time, abandoned, transfers and overflows).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchboard_domain::ids::{AgentId, ConversationId, QueueId};
use switchboard_proto::common::v1 as cpb;
use switchboard_proto::routing::v1 as rpb;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::access::{Intent, conversation};
use crate::auth::{Caller, SupervisorCaller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::wire;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_report))
        .routes(routes!(agent_report))
        .routes(routes!(conversation_report))
}

/// The period of a report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// Start (RFC 3339, inclusive); default: 24 hours before `to`.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default: now.
    pub to: Option<String>,
    /// Service-level threshold in seconds (1–86400); default: each queue's own
    /// `service_level_secs` (60 unless set).
    pub service_level_secs: Option<u32>,
    /// Only this queue (queue report) or agent (agent report).
    pub id: Option<String>,
}

fn instant(raw: Option<&str>, what: &str) -> ApiResult<Option<OffsetDateTime>> {
    raw.map(|r| {
        OffsetDateTime::parse(r, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ApiError::invalid(format!("{what} must be an RFC 3339 time, e.g. 2026-12-05T09:00:00Z")))
    })
    .transpose()
}

impl Period {
    fn request(&self, ids: Vec<String>) -> ApiResult<rpb::ReportRequest> {
        let to = instant(self.to.as_deref(), "to")?.unwrap_or_else(OffsetDateTime::now_utc);
        let from = instant(self.from.as_deref(), "from")?.unwrap_or(to - time::Duration::days(1));
        if self.service_level_secs == Some(0) {
            return Err(ApiError::invalid("service_level_secs is 1 to 86400"));
        }
        Ok(rpb::ReportRequest {
            from: Some(switchboard_proto::time::timestamp(from)),
            to: Some(switchboard_proto::time::timestamp(to)),
            service_level_secs: self.service_level_secs.unwrap_or(0),
            ids,
        })
    }
}

/// How one queue did over the period (waits that started in it).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueReport {
    pub queue_id: QueueId,
    pub name: String,
    /// The threshold the service level is measured against.
    pub service_level_secs: u32,
    /// Waits that started in the period.
    pub incoming: i64,
    /// Taken by an agent.
    pub answered: i64,
    /// Taken within the threshold.
    pub answered_within: i64,
    /// Closed while waiting.
    pub abandoned: i64,
    /// Transferred elsewhere while waiting.
    pub transferred: i64,
    /// Overflowed elsewhere (or ended by an overflow rule) while waiting.
    pub overflowed: i64,
    /// Still waiting.
    pub waiting: i64,
    /// answered_within / (answered + abandoned); null when there were none.
    pub service_level: Option<f64>,
    /// abandoned / (answered + abandoned).
    pub abandon_rate: Option<f64>,
    /// Average speed of answer, over the answered.
    pub average_speed_of_answer_secs: Option<f64>,
    /// Conversations taken from this queue in the period and finished.
    pub handled: i64,
    /// Average handle time (accept to wrap-up, or to the end).
    pub average_handle_secs: Option<f64>,
    /// Average wrap-up time.
    pub average_wrap_up_secs: Option<f64>,
}

impl TryFrom<rpb::QueueFigures> for QueueReport {
    type Error = ApiError;

    fn try_from(q: rpb::QueueFigures) -> Result<Self, ApiError> {
        Ok(Self {
            queue_id: wire(&q.queue_id, "queue id")?,
            name: q.name,
            service_level_secs: q.service_level_secs,
            incoming: q.incoming,
            answered: q.answered,
            answered_within: q.answered_within,
            abandoned: q.abandoned,
            transferred: q.transferred,
            overflowed: q.overflowed,
            waiting: q.waiting,
            service_level: q.service_level,
            abandon_rate: q.abandon_rate,
            average_speed_of_answer_secs: q.average_speed_of_answer_secs,
            handled: q.handled,
            average_handle_secs: q.average_handle_secs,
            average_wrap_up_secs: q.average_wrap_up_secs,
        })
    }
}

/// How one agent did over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentReport {
    pub agent_id: AgentId,
    pub name: String,
    /// Conversations they took in the period and finished.
    pub handled: i64,
    pub average_handle_secs: Option<f64>,
    pub average_wrap_up_secs: Option<f64>,
    /// Offers made to them in the period, and what became of them.
    pub offered: i64,
    pub accepted: i64,
    pub declined: i64,
    /// Expired unanswered.
    pub missed: i64,
}

impl TryFrom<rpb::AgentFigures> for AgentReport {
    type Error = ApiError;

    fn try_from(a: rpb::AgentFigures) -> Result<Self, ApiError> {
        Ok(Self {
            agent_id: wire(&a.agent_id, "agent id")?,
            name: a.name,
            handled: a.handled,
            average_handle_secs: a.average_handle_secs,
            average_wrap_up_secs: a.average_wrap_up_secs,
            offered: a.offered,
            accepted: a.accepted,
            declined: a.declined,
            missed: a.missed,
        })
    }
}

/// One conversation's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationReport {
    pub conversation_id: ConversationId,
    /// When it first waited in a queue.
    pub first_queued_at: Option<String>,
    /// From first waiting in a queue to the first agent taking it.
    pub first_wait_secs: Option<f64>,
    /// Agents' handling, summed (an ongoing one counts up to now).
    pub handle_secs: Option<f64>,
    /// Wrap-up, summed.
    pub wrap_up_secs: Option<f64>,
    /// Closed while waiting, never taken by an agent.
    pub abandoned: bool,
    pub transfers: i64,
    pub overflows: i64,
    /// Agents who handled it.
    pub agents: i64,
}

#[utoipa::path(get, path = "/reports/queues", tag = "supervisor", params(Period),
    description = "How each queue the caller watches did over a period: waits that started in it, answered (within the \
                   service-level threshold), abandoned, transferred, overflowed; service level, abandon rate, average speed \
                   of answer, average handle and wrap-up time.",
    responses((status = 200, body = Vec<QueueReport>), (status = 400, body = crate::error::ErrorBody)))]
async fn queue_report(
    SupervisorCaller(caller): SupervisorCaller,
    State(s): State<AppState>,
    Query(period): Query<Period>,
) -> ApiResult<Json<Vec<QueueReport>>> {
    let ids = match &period.id {
        Some(id) if !caller.watches(Some(id)) => return Err(ApiError::forbidden()),
        Some(id) => vec![id.clone()],
        None => caller.queue_ids.iter().map(ToString::to_string).collect(),
    };
    let r = s.routing().queue_report(period.request(ids)?).await.api()?;
    Ok(Json(r.queues.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

#[utoipa::path(get, path = "/reports/agents", tag = "supervisor", params(Period),
    description = "How each agent (of the caller's queues) did over a period: conversations handled, average handle and \
                   wrap-up time, offers made, accepted, declined and missed.",
    responses((status = 200, body = Vec<AgentReport>), (status = 400, body = crate::error::ErrorBody)))]
async fn agent_report(
    SupervisorCaller(caller): SupervisorCaller,
    State(s): State<AppState>,
    Query(period): Query<Period>,
) -> ApiResult<Json<Vec<AgentReport>>> {
    let mut ids: Vec<String> = period.id.iter().cloned().collect();
    if !caller.queue_ids.is_empty() {
        // A supervisor of some queues sees those queues' agents.
        let theirs: Vec<String> = s
            .routing()
            .list_agent_statuses(cpb::Empty {})
            .await
            .api()?
            .agents
            .into_iter()
            .filter(|a| a.queue_ids.iter().any(|q| caller.watches(Some(q))))
            .map(|a| a.agent_id)
            .collect();
        if ids.iter().any(|id| !theirs.contains(id)) {
            return Err(ApiError::forbidden());
        }
        if ids.is_empty() {
            if theirs.is_empty() {
                return Ok(Json(Vec::new()));
            }
            ids = theirs;
        }
    }
    let r = s.routing().agent_report(period.request(ids)?).await.api()?;
    Ok(Json(r.agents.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

#[utoipa::path(get, path = "/conversations/{id}/report", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    description = "One conversation's figures: first wait, handle and wrap-up time, whether it was abandoned, transfers and overflows.",
    responses((status = 200, body = ConversationReport), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn conversation_report(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ConversationReport>> {
    conversation(&s, &caller, &id, Intent::Read).await?;
    let c = s
        .routing()
        .conversation_report(rpb::ConversationRef { conversation_id: id })
        .await
        .api()?;
    Ok(Json(ConversationReport {
        conversation_id: wire(&c.conversation_id, "conversation id")?,
        first_queued_at: c.first_queued_at.as_ref().and_then(crate::views::rfc3339),
        first_wait_secs: c.first_wait_secs,
        handle_secs: c.handle_secs,
        wrap_up_secs: c.wrap_up_secs,
        abandoned: c.abandoned,
        transfers: c.transfers,
        overflows: c.overflows,
        agents: c.agents,
    }))
}
