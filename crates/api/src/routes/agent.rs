//! The agent's own resources: who am I, presence, offers (accept or decline), pickable work.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchboard_domain::ids::{ApiKeyId, QueueId};
use switchboard_domain::routing::Presence;
use switchboard_proto::closed_sets::{code_of, read};
use switchboard_proto::routing::v1 as rpb;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::{Caller, Role};
use crate::error::{ApiResult, parse_id};
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::views::{AgentStatus, Offer, WorkItem};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(set_presence))
        .routes(routes!(my_offers))
        .routes(routes!(accept_offer))
        .routes(routes!(decline_offer))
        .routes(routes!(pickable))
        .routes(routes!(transfer_targets))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[schema(value_type = String, format = Uuid)]
    pub key_id: ApiKeyId,
    pub role: Role,
    /// Agent keys: the agent, with presence and load.
    pub agent: Option<AgentStatus>,
    /// Supervisor keys: the queues watched (empty: all).
    #[schema(value_type = Vec<String>)]
    pub queue_ids: Vec<QueueId>,
}

#[utoipa::path(get, path = "/me", tag = "agent", responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
async fn me(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Me>> {
    let agent = match caller.agent_id {
        Some(id) => Some(
            s.routing()
                .get_agent_status(rpb::AgentRef { agent_id: id.to_string() })
                .await
                .api()?
                .try_into()?,
        ),
        None => None,
    };
    Ok(Json(Me {
        key_id: caller.key_id.into(),
        role: caller.role,
        agent,
        queue_ids: caller.queue_ids.iter().copied().map(QueueId::from).collect(),
    }))
}

/// A presence to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PresenceRequest {
    /// available, busy, busy_dnd, away, offline.
    pub presence: String,
}

#[utoipa::path(put, path = "/me/presence", tag = "agent", request_body = PresenceRequest,
    responses((status = 200, body = AgentStatus), (status = 400, body = crate::error::ErrorBody)))]
async fn set_presence(caller: Caller, State(s): State<AppState>, Json(p): Json<PresenceRequest>) -> ApiResult<Json<AgentStatus>> {
    let me = caller.agent()?;
    let status = s
        .routing()
        .set_presence(rpb::SetPresenceRequest {
            agent_id: me.to_string(),
            // Text routing does not know keeps code 0, so routing answers what is wrong with it.
            presence_code: code_of::<Presence>(&p.presence),
            presence: p.presence,
        })
        .await
        .api()?;
    Ok(Json(status.try_into()?))
}

#[utoipa::path(get, path = "/me/offers", tag = "agent", responses((status = 200, body = Vec<Offer>)))]
async fn my_offers(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<Offer>>> {
    let me = caller.agent()?;
    let r = s.routing().list_offers(rpb::AgentRef { agent_id: me.to_string() }).await.api()?;
    Ok(Json(r.offers.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

async fn act_on_offer(s: &AppState, caller: &Caller, id: String, accept: bool) -> ApiResult<Json<WorkItem>> {
    let me = caller.agent()?;
    parse_id(&id, "offer id")?;
    let action = rpb::OfferAction {
        offer_id: id,
        agent_id: me.to_string(),
    };
    let mut routing = s.routing();
    let item = if accept {
        routing.accept_offer(action).await
    } else {
        routing.decline_offer(action).await
    }
    .api()?;
    Ok(Json(item.try_into()?))
}

#[utoipa::path(post, path = "/offers/{id}/accept", tag = "agent",
    description = "Accepts an offer: the conversation becomes Active with this agent.",
    responses((status = 200, body = WorkItem), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn accept_offer(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<WorkItem>> {
    act_on_offer(&s, &caller, id, true).await
}

#[utoipa::path(post, path = "/offers/{id}/decline", tag = "agent",
    description = "Declines an offer: it goes to the next agent.",
    responses((status = 200, body = WorkItem), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn decline_offer(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<WorkItem>> {
    act_on_offer(&s, &caller, id, false).await
}

#[utoipa::path(get, path = "/me/pickable", tag = "agent",
    description = "Waiting conversations of pick workstreams this agent may take.",
    responses((status = 200, body = Vec<WorkItem>)))]
async fn pickable(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<WorkItem>>> {
    let me = caller.agent()?;
    let r = s.routing().list_pickable(rpb::AgentRef { agent_id: me.to_string() }).await.api()?;
    Ok(Json(r.items.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

/// A queue an agent may transfer to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetQueue {
    pub id: String,
    pub name: String,
    /// Within its operating hours.
    pub open: bool,
}

/// An agent one may transfer to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetAgent {
    pub id: String,
    pub name: String,
    pub presence: String,
}

/// Where the caller may transfer a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferTargets {
    pub queues: Vec<TargetQueue>,
    /// Agents who are signed in and reachable (available or busy), the caller excepted.
    pub agents: Vec<TargetAgent>,
}

#[utoipa::path(get, path = "/me/transfer-targets", tag = "agent",
    description = "The queues, and the agents present (available or busy), a conversation can be transferred to.",
    responses((status = 200, body = TransferTargets)))]
async fn transfer_targets(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<TransferTargets>> {
    caller.require(Role::Agent)?;
    let empty = switchboard_proto::common::v1::Empty {};
    let queues = s.routing().queue_stats(empty).await.api()?.queues;
    let agents = s.routing().list_agent_statuses(empty).await.api()?.agents;
    let me = caller.agent_id.map(|a| a.to_string());
    Ok(Json(TransferTargets {
        queues: queues
            .into_iter()
            .map(|q| TargetQueue {
                id: q.queue_id,
                name: q.name,
                open: q.open,
            })
            .collect(),
        agents: agents
            .into_iter()
            .filter(|a| {
                matches!(read(a.presence_code, &a.presence), Ok(Presence::Available | Presence::Busy)) && Some(&a.agent_id) != me.as_ref()
            })
            .map(|a| TargetAgent {
                id: a.agent_id,
                name: a.name,
                presence: a.presence,
            })
            .collect(),
    }))
}
