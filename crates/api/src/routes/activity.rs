//! The agent's activity in a conversation: opened it, is typing. Session turns it into read
//! receipts and typing indicators by the workstream's policy, and the conversation's watchers see
//! the agent typing on the stream.

use axum::extract::State;
use serde::Serialize;
use switchboard_proto::session::v1 as spb;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::access::{Intent, conversation};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(opened)).routes(routes!(typing))
}

/// What the activity caused.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityOutcome {
    /// Twilio's typing indicator went out for the customer's latest message.
    pub indicator_sent: bool,
    /// The customer's messages are now marked read.
    pub marked_read: bool,
    /// The workstream's read-receipt policy: `on_open`, `on_typing` or `never`.
    pub read_receipts: String,
}

async fn record(s: &AppState, caller: &Caller, id: String, activity: spb::AgentActivity) -> ApiResult<Json<ActivityOutcome>> {
    let me = caller.agent()?;
    conversation(s, caller, &id, Intent::Work).await?;
    let outcome = s
        .session()
        .record_agent_activity(spb::AgentActivityRequest {
            conversation_id: id,
            agent_id: me.to_string(),
            activity: activity.into(),
        })
        .await
        .api()?;
    Ok(Json(ActivityOutcome {
        indicator_sent: outcome.indicator_sent,
        marked_read: outcome.marked_read,
        read_receipts: outcome.read_receipts,
    }))
}

#[utoipa::path(post, path = "/conversations/{id}/read", tag = "conversations",
    description = "The assigned agent opened the conversation. Under the workstream's `read_receipts: on_open` the customer's \
                   messages are marked read (through Twilio's typing indicator, so the customer briefly sees \"typing…\").",
    responses((status = 200, body = ActivityOutcome), (status = 403, body = crate::error::ErrorBody)))]
async fn opened(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ActivityOutcome>> {
    record(&s, &caller, id, spb::AgentActivity::Opened).await
}

#[utoipa::path(post, path = "/conversations/{id}/typing", tag = "conversations",
    description = "The assigned agent is typing. At most every 20 s it reaches the stream (`conversation.typing.v1`) and, unless \
                   the workstream's `read_receipts` is `never`, the customer sees \"typing…\" and their messages read. Call it \
                   as the agent types; calls in between change nothing.",
    responses((status = 200, body = ActivityOutcome), (status = 403, body = crate::error::ErrorBody)))]
async fn typing(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ActivityOutcome>> {
    record(&s, &caller, id, spb::AgentActivity::Typing).await
}
