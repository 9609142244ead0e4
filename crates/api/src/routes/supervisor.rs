//! Supervisors: queue figures, agents' presence and load, a queue's work items.

use axum::extract::State;
use serde::Deserialize;
use switchboard_domain::routing::offer::ItemState;
use switchboard_proto::closed_sets::codes_of;
use switchboard_proto::common::v1 as cpb;
use switchboard_proto::routing::v1 as rpb;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::SupervisorCaller;
use crate::error::{ApiError, ApiResult, parse_id};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::{AgentStatus, Page, PageQuery, QueueStat, WorkItem, comma_list};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_stats))
        .routes(routes!(agent_statuses))
        .routes(routes!(queue_items))
}

#[utoipa::path(get, path = "/stats/queues", tag = "supervisor",
    description = "Waiting, offered and assigned counts, longest wait and available agents of each queue the caller watches.",
    responses((status = 200, body = Vec<QueueStat>)))]
async fn queue_stats(SupervisorCaller(caller): SupervisorCaller, State(s): State<AppState>) -> ApiResult<Json<Vec<QueueStat>>> {
    let r = s.routing().queue_stats(cpb::Empty {}).await.api()?;
    Ok(Json(
        r.queues
            .into_iter()
            .filter(|q| caller.watches(Some(&q.queue_id)))
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    ))
}

#[utoipa::path(get, path = "/stats/agents", tag = "supervisor",
    description = "Presence, capacity and load of each agent (of the caller's queues).",
    responses((status = 200, body = Vec<AgentStatus>)))]
async fn agent_statuses(SupervisorCaller(caller): SupervisorCaller, State(s): State<AppState>) -> ApiResult<Json<Vec<AgentStatus>>> {
    let r = s.routing().list_agent_statuses(cpb::Empty {}).await.api()?;
    Ok(Json(
        r.agents
            .into_iter()
            .filter(|a| caller.queue_ids.is_empty() || a.queue_ids.iter().any(|q| caller.watches(Some(q))))
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
    ))
}

/// Work items of a queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemFilter {
    /// Comma-separated states: queued, offered, assigned, wrap_up, waiting, pick_only.
    pub state: Option<String>,
    /// Items per page (default 50, at most 200).
    #[serde(default, deserialize_with = "crate::views::page_size")]
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[utoipa::path(get, path = "/queues/{id}/items", tag = "supervisor", params(ItemFilter), responses((status = 200, body = Page<WorkItem>)))]
async fn queue_items(
    SupervisorCaller(caller): SupervisorCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(f): Query<ItemFilter>,
) -> ApiResult<Json<Page<WorkItem>>> {
    parse_id(&id, "queue id")?;
    if !caller.watches(Some(&id)) {
        return Err(ApiError::forbidden());
    }
    let page = PageQuery {
        page_size: f.page_size,
        page_token: f.page_token,
    };
    let states = comma_list(f.state);
    let r = s
        .routing()
        .list_work_items(rpb::ListWorkItemsRequest {
            queue_id: id,
            state_codes: codes_of::<ItemState>(&states),
            states,
            page: Some(page.to_pb()),
        })
        .await
        .api()?;
    Ok(Json(Page::new(
        r.items.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
        r.page,
    )))
}
