//! The conversation (work item) lifecycle of Dynamics 365 for an async channel like WhatsApp:
//! statuses Open, Active, Waiting, Wrap-up, Closed with Dynamics' status-change reasons and
//! exactly the transitions of `product-dynamics365.md` §2.1. Closed is terminal.

use serde::{Deserialize, Serialize};
use time::Duration;

/// A conversation's status (Dynamics `statuscode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Waiting in a queue for an agent.
    Open,
    /// An agent (or a bot) is working it.
    Active,
    /// The agent closed the session without ending: waiting for the customer; no capacity held.
    Waiting,
    /// The agent ended it and is wrapping up.
    WrapUp,
    /// Done. Terminal.
    Closed,
}

impl ConversationStatus {
    /// Returns Dynamics' `statuscode` value.
    pub fn code(self) -> i32 {
        match self {
            Self::Open => 1,
            Self::Active => 2,
            Self::Waiting => 3,
            Self::Closed => 4,
            Self::WrapUp => 5,
        }
    }

    /// Returns the snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Active => "active",
            Self::Waiting => "waiting",
            Self::WrapUp => "wrap_up",
            Self::Closed => "closed",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "open" => Self::Open,
            "active" => Self::Active,
            "waiting" => Self::Waiting,
            "wrap_up" => Self::WrapUp,
            "closed" => Self::Closed,
            _ => return None,
        })
    }

    /// Returns whether the agent a conversation names may work on it (reply, add notes, end,
    /// close, transfer) in this status: only while it is Active with them or in their Wrap-up.
    /// Waiting is theirs to read; Open means it is back in the queue, offered to others.
    pub fn agent_may_work(self) -> bool {
        matches!(self, Self::Active | Self::WrapUp)
    }

    /// Returns whether the agent a conversation names may read it in this status: not while it
    /// is Open (back in the queue, where only the agent it is offered to reads it).
    pub fn agent_may_read(self) -> bool {
        !matches!(self, Self::Open)
    }

    /// Returns whether an agent's capacity is held in this status (wrap-up depends on the
    /// workstream's block-capacity setting, decided by routing).
    pub fn holds_capacity(self) -> bool {
        matches!(self, Self::Active)
    }
}

/// Why the status last changed (Dynamics `msdyn_statuschangereason`; values 192350001–17 are
/// Microsoft's, 192350100 and up are ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the names are Dynamics' own
pub enum StatusReason {
    AwaitingAgentAssignment,
    AwaitingAgentAcceptance,
    InConversation,
    AwaitingCustomerResponse,
    AgentMovedToWrapUp,
    CustomerDisconnectedOrLeftActiveConversation,
    CustomerMovedToWrapUp,
    ConversationEndedByAgent,
    AutoClosedFromWaitingState,
    AutoClosedBySystem,
    ClosedDueToOverflow,
    CustomerDisconnectedOrLeftOpenConversation,
    ConversationEndedByBot,
    ClosedDueToFailure,
    ForceClosedBySupervisor,
    ClosedInDataverseDirectlyByAdmin,
    AssignedBySupervisor,
    /// The WhatsApp number or account was deleted.
    ChannelDeleted,
    /// Routing found no agents in the queue.
    ClosedNoAgents,
}

impl StatusReason {
    /// Its snake_case name (Dynamics' status-change reason name).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Returns the integer code.
    pub fn code(self) -> i32 {
        match self {
            Self::AwaitingAgentAssignment => 192_350_001,
            Self::AwaitingAgentAcceptance => 192_350_002,
            Self::InConversation => 192_350_003,
            Self::AwaitingCustomerResponse => 192_350_004,
            Self::AgentMovedToWrapUp => 192_350_005,
            Self::CustomerDisconnectedOrLeftActiveConversation => 192_350_006,
            Self::CustomerMovedToWrapUp => 192_350_007,
            Self::ConversationEndedByAgent => 192_350_008,
            Self::AutoClosedFromWaitingState => 192_350_009,
            Self::AutoClosedBySystem => 192_350_010,
            Self::ClosedDueToOverflow => 192_350_011,
            Self::CustomerDisconnectedOrLeftOpenConversation => 192_350_012,
            Self::ConversationEndedByBot => 192_350_013,
            Self::ClosedDueToFailure => 192_350_014,
            Self::ForceClosedBySupervisor => 192_350_015,
            Self::ClosedInDataverseDirectlyByAdmin => 192_350_016,
            Self::AssignedBySupervisor => 192_350_017,
            Self::ChannelDeleted => 192_350_100,
            Self::ClosedNoAgents => 192_350_101,
        }
    }

    /// Returns the reason for a code.
    pub fn from_code(code: i32) -> Option<Self> {
        ALL_REASONS.iter().copied().find(|r| r.code() == code)
    }
}

const ALL_REASONS: [StatusReason; 19] = [
    StatusReason::AwaitingAgentAssignment,
    StatusReason::AwaitingAgentAcceptance,
    StatusReason::InConversation,
    StatusReason::AwaitingCustomerResponse,
    StatusReason::AgentMovedToWrapUp,
    StatusReason::CustomerDisconnectedOrLeftActiveConversation,
    StatusReason::CustomerMovedToWrapUp,
    StatusReason::ConversationEndedByAgent,
    StatusReason::AutoClosedFromWaitingState,
    StatusReason::AutoClosedBySystem,
    StatusReason::ClosedDueToOverflow,
    StatusReason::CustomerDisconnectedOrLeftOpenConversation,
    StatusReason::ConversationEndedByBot,
    StatusReason::ClosedDueToFailure,
    StatusReason::ForceClosedBySupervisor,
    StatusReason::ClosedInDataverseDirectlyByAdmin,
    StatusReason::AssignedBySupervisor,
    StatusReason::ChannelDeleted,
    StatusReason::ClosedNoAgents,
];

/// Something that happens to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// An agent accepts a push offer (or a bot takes it): Open → Active.
    Accept,
    /// An agent picks it from open work items: Open → Active.
    Pick,
    /// A supervisor assigns it to an agent: Open → Active.
    SupervisorAssign,
    /// The agent presses End: Active → Wrap-up.
    End,
    /// The agent closes the session: Wrap-up → Closed, or (without End) Active → Waiting.
    CloseSession,
    /// The agent releases it (or transfers it) to a queue: Active or Waiting → Open.
    ReleaseToQueue,
    /// The customer writes: Waiting → Open (no change in other live states).
    CustomerMessage,
    /// The agent revives it from their work items: Waiting → Active.
    Revive,
    /// The auto-close scheduler found it idle too long.
    AutoClose,
    /// A supervisor force-closes it.
    ForceClose,
    /// Overflow action "End conversation": Open → Closed.
    OverflowEnd,
    /// The queue it was routed to has no agents: Open → Closed.
    NoAgents,
    /// A bot ends it: Active → Closed.
    BotEnd,
    /// The number or account was deleted.
    ChannelDeleted,
    /// Routing or sending failed permanently.
    Failure,
}

impl Transition {
    /// Its snake_case name, as events carry it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Pick => "pick",
            Self::SupervisorAssign => "supervisor_assign",
            Self::End => "end",
            Self::CloseSession => "close_session",
            Self::ReleaseToQueue => "release_to_queue",
            Self::CustomerMessage => "customer_message",
            Self::Revive => "revive",
            Self::AutoClose => "auto_close",
            Self::ForceClose => "force_close",
            Self::OverflowEnd => "overflow_end",
            Self::NoAgents => "no_agents",
            Self::BotEnd => "bot_end",
            Self::ChannelDeleted => "channel_deleted",
            Self::Failure => "failure",
        }
    }

    /// The transition a caller (an agent, routing, a bot) may ask for by name, with the
    /// aliases `close` and `transfer_to_queue`; `None` for an unknown name and for the
    /// system's own (`customer_message`, `auto_close`, `channel_deleted`).
    pub fn requested(raw: &str) -> Option<Self> {
        Some(match raw {
            "accept" => Self::Accept,
            "pick" => Self::Pick,
            "supervisor_assign" => Self::SupervisorAssign,
            "end" => Self::End,
            "close_session" | "close" => Self::CloseSession,
            "release_to_queue" | "transfer_to_queue" => Self::ReleaseToQueue,
            "revive" => Self::Revive,
            "force_close" => Self::ForceClose,
            "overflow_end" => Self::OverflowEnd,
            "no_agents" => Self::NoAgents,
            "bot_end" => Self::BotEnd,
            "failure" => Self::Failure,
            _ => return None,
        })
    }
}

/// A transition that the current status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a conversation that is {} cannot {:?}", from.as_str(), transition)]
pub struct InvalidTransition {
    /// Current status.
    pub from: ConversationStatus,
    /// Attempted transition.
    pub transition: Transition,
}

/// Returns the status and reason after `transition`, or why it is not allowed.
/// `CustomerMessage` on Open, Active or Wrap-up returns the same status (the message is simply
/// added); callers check `new == old` to know nothing changed.
pub fn apply(from: ConversationStatus, transition: Transition) -> Result<(ConversationStatus, StatusReason), InvalidTransition> {
    use ConversationStatus as S;
    use StatusReason as R;
    use Transition as T;
    let next = match (from, transition) {
        (S::Open, T::Accept | T::Pick) => (S::Active, R::InConversation),
        (S::Open, T::SupervisorAssign) => (S::Active, R::AssignedBySupervisor),
        (S::Open, T::OverflowEnd) => (S::Closed, R::ClosedDueToOverflow),
        (S::Open, T::NoAgents) => (S::Closed, R::ClosedNoAgents),
        (S::Active, T::End) => (S::WrapUp, R::AgentMovedToWrapUp),
        (S::Active, T::CloseSession) => (S::Waiting, R::AwaitingCustomerResponse),
        (S::Active | S::Waiting, T::ReleaseToQueue) => (S::Open, R::AwaitingAgentAssignment),
        (S::Active, T::BotEnd) => (S::Closed, R::ConversationEndedByBot),
        (S::Waiting, T::CustomerMessage) => (S::Open, R::AwaitingAgentAssignment),
        (S::Waiting, T::Revive) => (S::Active, R::InConversation),
        (S::Waiting, T::AutoClose) => (S::Closed, R::AutoClosedFromWaitingState),
        (S::WrapUp, T::CloseSession) => (S::Closed, R::ConversationEndedByAgent),
        (S::Open | S::Active | S::WrapUp, T::AutoClose) => (S::Closed, R::AutoClosedBySystem),
        (S::Open | S::Active | S::Waiting | S::WrapUp, T::ForceClose) => (S::Closed, R::ForceClosedBySupervisor),
        (S::Open | S::Active | S::Waiting | S::WrapUp, T::ChannelDeleted) => (S::Closed, R::ChannelDeleted),
        (S::Open | S::Active | S::Waiting | S::WrapUp, T::Failure) => (S::Closed, R::ClosedDueToFailure),
        (S::Open, T::CustomerMessage) => (S::Open, R::AwaitingAgentAssignment),
        (S::Active, T::CustomerMessage) => (S::Active, R::InConversation),
        (S::WrapUp, T::CustomerMessage) => (S::WrapUp, R::AgentMovedToWrapUp),
        (from, transition) => return Err(InvalidTransition { from, transition }),
    };
    Ok(next)
}

/// Default idle time after which an Open conversation on an async channel is closed.
pub const AUTO_CLOSE_OPEN: Duration = Duration::days(30);
/// Default idle time after which an Active conversation is closed.
pub const AUTO_CLOSE_ACTIVE: Duration = Duration::days(30);
/// Default idle time after which a Wrap-up conversation is closed.
pub const AUTO_CLOSE_WRAP_UP: Duration = Duration::days(1);
/// How long a bot-only conversation may sit idle.
pub const AUTO_CLOSE_BOT: Duration = Duration::minutes(30);

/// Returns how long a conversation may stay idle in `status` before it is auto-closed;
/// Waiting follows the workstream's "auto-close after inactivity" setting.
pub fn auto_close_after(status: ConversationStatus, waiting_inactivity: Duration) -> Option<Duration> {
    match status {
        ConversationStatus::Open => Some(AUTO_CLOSE_OPEN),
        ConversationStatus::Active => Some(AUTO_CLOSE_ACTIVE),
        ConversationStatus::WrapUp => Some(AUTO_CLOSE_WRAP_UP),
        ConversationStatus::Waiting => Some(waiting_inactivity),
        ConversationStatus::Closed => None,
    }
}

/// A stored conversation status that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stored conversation status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for ConversationStatus {
    type Error = UnknownStatus;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or(UnknownStatus(raw))
    }
}

crate::sql_text::sql_text!(ConversationStatus, |text| ConversationStatus::try_from(text.to_owned()));

#[cfg(test)]
mod tests {
    use super::ConversationStatus as S;
    use super::Transition as T;
    use super::*;

    #[test]
    fn callers_request_transitions_by_name_but_never_the_systems_own() {
        for t in [
            T::Accept,
            T::Pick,
            T::SupervisorAssign,
            T::End,
            T::CloseSession,
            T::ReleaseToQueue,
            T::Revive,
            T::ForceClose,
        ] {
            assert_eq!(T::requested(t.name()), Some(t));
        }
        assert_eq!(T::requested("close"), Some(T::CloseSession));
        assert_eq!(T::requested("transfer_to_queue"), Some(T::ReleaseToQueue));
        for own in [T::CustomerMessage, T::AutoClose, T::ChannelDeleted] {
            assert_eq!(T::requested(own.name()), None, "{own:?}");
        }
        assert_eq!(T::requested("teleport"), None);
        assert_eq!(StatusReason::AwaitingAgentAssignment.name(), "awaiting_agent_assignment");
    }

    const STATUSES: [S; 5] = [S::Open, S::Active, S::Waiting, S::WrapUp, S::Closed];
    const TRANSITIONS: [T; 15] = [
        T::Accept,
        T::Pick,
        T::SupervisorAssign,
        T::End,
        T::CloseSession,
        T::ReleaseToQueue,
        T::CustomerMessage,
        T::Revive,
        T::AutoClose,
        T::ForceClose,
        T::OverflowEnd,
        T::NoAgents,
        T::BotEnd,
        T::ChannelDeleted,
        T::Failure,
    ];

    #[test]
    fn the_documented_whatsapp_transitions() {
        assert_eq!(apply(S::Open, T::Accept).unwrap(), (S::Active, StatusReason::InConversation));
        assert_eq!(apply(S::Open, T::Pick).unwrap().0, S::Active);
        assert_eq!(apply(S::Active, T::End).unwrap(), (S::WrapUp, StatusReason::AgentMovedToWrapUp));
        assert_eq!(
            apply(S::Active, T::CloseSession).unwrap(),
            (S::Waiting, StatusReason::AwaitingCustomerResponse),
            "X without End → Waiting"
        );
        assert_eq!(
            apply(S::Waiting, T::ReleaseToQueue).unwrap(),
            (S::Open, StatusReason::AwaitingAgentAssignment),
            "a Waiting conversation transferred goes back to a queue"
        );
        assert_eq!(
            apply(S::WrapUp, T::CloseSession).unwrap(),
            (S::Closed, StatusReason::ConversationEndedByAgent),
            "End then X → Closed"
        );
        assert_eq!(
            apply(S::Waiting, T::CustomerMessage).unwrap(),
            (S::Open, StatusReason::AwaitingAgentAssignment)
        );
        assert_eq!(apply(S::Waiting, T::Revive).unwrap().0, S::Active);
        assert_eq!(
            apply(S::Waiting, T::AutoClose).unwrap(),
            (S::Closed, StatusReason::AutoClosedFromWaitingState)
        );
        assert_eq!(apply(S::Active, T::ReleaseToQueue).unwrap().0, S::Open);
        assert_eq!(
            apply(S::Open, T::OverflowEnd).unwrap(),
            (S::Closed, StatusReason::ClosedDueToOverflow)
        );
        assert_eq!(
            apply(S::Active, T::ForceClose).unwrap(),
            (S::Closed, StatusReason::ForceClosedBySupervisor)
        );
    }

    #[test]
    fn closed_is_terminal() {
        for t in TRANSITIONS {
            assert_eq!(
                apply(S::Closed, t),
                Err(InvalidTransition {
                    from: S::Closed,
                    transition: t
                }),
                "{t:?}"
            );
        }
    }

    #[test]
    fn invalid_transitions_are_typed_errors() {
        assert!(apply(S::Open, T::End).is_err(), "nothing to end before an agent joins");
        assert!(apply(S::WrapUp, T::Accept).is_err());
        assert!(apply(S::Active, T::Accept).is_err());
        assert!(apply(S::Waiting, T::End).is_err());
        assert!(apply(S::Open, T::Revive).is_err());
        let e = apply(S::Open, T::End).unwrap_err();
        assert!(e.to_string().contains("open"));
    }

    #[test]
    fn every_transition_is_decided_and_closing_ones_close() {
        for s in STATUSES {
            for t in TRANSITIONS {
                if let Ok((next, reason)) = apply(s, t) {
                    assert_eq!(StatusReason::from_code(reason.code()), Some(reason));
                    if matches!(
                        t,
                        T::ForceClose | T::ChannelDeleted | T::Failure | T::AutoClose | T::OverflowEnd | T::NoAgents | T::BotEnd
                    ) {
                        assert_eq!(next, S::Closed, "{s:?} {t:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn auto_close_deadlines() {
        let waiting = Duration::hours(8);
        assert_eq!(auto_close_after(S::Open, waiting), Some(Duration::days(30)));
        assert_eq!(auto_close_after(S::Active, waiting), Some(Duration::days(30)));
        assert_eq!(auto_close_after(S::WrapUp, waiting), Some(Duration::days(1)));
        assert_eq!(auto_close_after(S::Waiting, waiting), Some(waiting));
        assert_eq!(auto_close_after(S::Closed, waiting), None);
        assert_eq!(S::Waiting.code(), 3);
        assert_eq!(S::parse(S::WrapUp.as_str()), Some(S::WrapUp));
    }
}
