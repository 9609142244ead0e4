//! Who may see and act on a conversation. Agents: the conversations assigned to them (work while
//! Active or in Wrap-up, read-only while Waiting or once Closed, nothing once it is back in the
//! queue), and those offered to them (read-only until accepted). Supervisors: conversations of the queues they
//! watch. Admins: all. A denial is the same `403` whether the conversation exists or not, so
//! nothing leaks.

use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::routing::offer::OfferState;
use switchboard_proto::closed_sets::read;
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

/// What the rules say about a caller and a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Refused.
    Deny,
    /// Allowed only if the conversation is offered to this agent now (read-only until accepted).
    IfOffered,
}

/// The access rules, on what is known without asking routing: `caller`'s role, agent and
/// watched queues, and the conversation's agent, queue and stored status.
pub fn decide(caller: &Caller, conversation: &spb::Conversation, intent: Intent) -> Decision {
    match caller.role {
        Role::Admin => Decision::Allow,
        Role::Supervisor if caller.watches(Some(&conversation.queue_id)) => Decision::Allow,
        Role::Supervisor => Decision::Deny,
        Role::Agent => {
            let Ok(me) = caller.agent() else {
                return Decision::Deny;
            };
            // An unknown status grants nothing.
            let status: Option<ConversationStatus> = read(conversation.status_code, &conversation.status).ok();
            let mine = conversation.agent_id == me.to_string();
            let granted = status.is_some_and(|s| match intent {
                Intent::Read => s.agent_may_read(),
                Intent::Work => s.agent_may_work(),
            });
            if mine && granted {
                Decision::Allow
            } else if intent == Intent::Read {
                Decision::IfOffered
            } else {
                Decision::Deny
            }
        }
    }
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
    let allowed = match decide(caller, &conversation, intent) {
        Decision::Allow => true,
        Decision::Deny => false,
        Decision::IfOffered => offered_to(s, &caller.agent()?.to_string(), id).await?,
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
        .any(|o| o.conversation_id == conversation && read(o.state_code, &o.state) == Ok(OfferState::Pending)))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::auth::Via;

    fn caller(role: Role, agent: Option<Uuid>, queues: Vec<Uuid>) -> Caller {
        Caller {
            key_id: Uuid::nil(),
            via: Via::Key,
            role,
            agent_id: agent,
            queue_ids: queues,
        }
    }

    fn conversation(agent: Uuid, queue: Uuid, status: &str) -> spb::Conversation {
        spb::Conversation {
            agent_id: agent.to_string(),
            queue_id: queue.to_string(),
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_agent_works_their_own_conversation_only_while_it_is_theirs_to_work() {
        let (me, other, queue) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let agent = caller(Role::Agent, Some(me), vec![]);
        for (status, read, work) in [
            ("active", Decision::Allow, Decision::Allow),
            ("wrap_up", Decision::Allow, Decision::Allow),
            ("waiting", Decision::Allow, Decision::Deny),
            ("closed", Decision::Allow, Decision::Deny),
            // Back in the queue: only an offer lets the agent look.
            ("open", Decision::IfOffered, Decision::Deny),
            // A status this build does not know grants nothing.
            ("archived", Decision::IfOffered, Decision::Deny),
        ] {
            let mine = conversation(me, queue, status);
            assert_eq!(decide(&agent, &mine, Intent::Read), read, "read while {status}");
            assert_eq!(decide(&agent, &mine, Intent::Work), work, "work while {status}");
        }
        let theirs = conversation(other, queue, "active");
        assert_eq!(decide(&agent, &theirs, Intent::Read), Decision::IfOffered);
        assert_eq!(decide(&agent, &theirs, Intent::Work), Decision::Deny);
    }

    #[test]
    fn an_agent_role_without_an_agent_is_refused() {
        let queue = Uuid::now_v7();
        let nobody = caller(Role::Agent, None, vec![]);
        let c = conversation(Uuid::now_v7(), queue, "active");
        assert_eq!(decide(&nobody, &c, Intent::Read), Decision::Deny);
    }

    #[test]
    fn supervisors_see_the_queues_they_watch_and_admins_see_all() {
        let (watched, other) = (Uuid::now_v7(), Uuid::now_v7());
        let in_watched = conversation(Uuid::now_v7(), watched, "active");
        let elsewhere = conversation(Uuid::now_v7(), other, "active");
        let supervisor = caller(Role::Supervisor, None, vec![watched]);
        assert_eq!(decide(&supervisor, &in_watched, Intent::Work), Decision::Allow);
        assert_eq!(decide(&supervisor, &elsewhere, Intent::Read), Decision::Deny);
        let all_queues = caller(Role::Supervisor, None, vec![]);
        assert_eq!(decide(&all_queues, &elsewhere, Intent::Read), Decision::Allow);
        let admin = caller(Role::Admin, None, vec![watched]);
        assert_eq!(decide(&admin, &elsewhere, Intent::Work), Decision::Allow);
    }
}
