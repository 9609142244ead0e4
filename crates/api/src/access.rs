//! Who may see and act on a conversation. Agents: the conversations assigned to them (work while
//! Active or in Wrap-up, read-only while Waiting or once Closed, nothing once it is back in the
//! queue), and those offered to them (read-only until accepted). Supervisors: conversations of the queues they
//! watch. Admins: all. A denial is the same `403` whether the conversation exists or not, so
//! nothing leaks.

use switchboard_domain::conversation::ConversationStatus;
use switchboard_proto::routing::v1 as rpb;
use switchboard_proto::session::v1 as spb;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, parse_id};
use crate::routes::GrpcExt;
use crate::state::AppState;

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Read it and its messages.
    Read,
    /// Reply, end, close, transfer: the assigned agent (or a supervisor, where allowed).
    Work,
}

/// Loads conversation `id` if `caller` may do `intent` on it.
pub async fn conversation(s: &AppState, caller: &Caller, id: &str, intent: Intent) -> ApiResult<spb::Conversation> {
    parse_id(id, "conversation id")?;
    let found = s.session().get_conversation(spb::GetByIdRequest { id: id.to_owned() }).await.api();
    let conversation = match (found, caller.role) {
        (Ok(c), _) => c,
        (Err(e), Role::Admin) => return Err(e),
        (Err(e), _) if e.code == switchboard_service_kit::ErrorCode::NotFound => return Err(ApiError::forbidden()),
        (Err(e), _) => return Err(e),
    };
    let allowed = match caller.role {
        Role::Admin => true,
        Role::Supervisor => caller.watches(Some(&conversation.queue_id)),
        Role::Agent => {
            let me = caller.agent()?.to_string();
            // An unknown stored status grants nothing.
            let status = ConversationStatus::parse(&conversation.status);
            let mine = conversation.agent_id == me;
            if mine
                && status.is_some_and(|s| {
                    if intent == Intent::Read {
                        s.agent_may_read()
                    } else {
                        s.agent_may_work()
                    }
                })
            {
                true
            } else if intent == Intent::Read {
                offered_to(s, &me, id).await?
            } else {
                false
            }
        }
    };
    if allowed { Ok(conversation) } else { Err(ApiError::forbidden()) }
}

async fn offered_to(s: &AppState, agent: &str, conversation: &str) -> ApiResult<bool> {
    let offers = s
        .routing()
        .list_offers(rpb::AgentRef {
            agent_id: agent.to_owned(),
        })
        .await
        .api()?;
    Ok(offers
        .offers
        .iter()
        .any(|o| o.conversation_id == conversation && o.state == "pending"))
}
