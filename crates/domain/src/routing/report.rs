//! Historical reporting, as Dynamics' conversation metrics define it. Each move of a work item
//! becomes bookkeeping on two kinds of leg:
//!
//! - a **queue leg** is one wait in one queue: it starts when the item waits there (routed,
//!   released, transferred or overflowed to it) and ends answered (an agent took it), abandoned
//!   (the conversation closed while it waited), transferred, overflowed, or left;
//! - an **agent leg** is one agent's handling: from the accept (or pick, or assignment) to the
//!   end of their work, with the wrap-up time split off.
//!
//! Queue figures (service level, abandon rate, speed of answer) come from queue legs; handle and
//! wrap-up times from agent legs; a conversation's first wait, transfers and overflows from both.

use uuid::Uuid;

/// Where a work item's stage puts it, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting in a queue (queued, offered, or left to picks).
    Waiting,
    /// With an agent.
    Handling,
    /// The agent is wrapping up.
    WrappingUp,
    /// Anywhere else: with a bot, unrouted, or waiting for the customer.
    Elsewhere,
}

impl Stage {
    /// The stage of a stored work-item state.
    pub fn of(state: &str) -> Self {
        match state {
            "queued" | "offered" | "pick_only" => Self::Waiting,
            "assigned" => Self::Handling,
            "wrap_up" => Self::WrappingUp,
            _ => Self::Elsewhere,
        }
    }

    fn with_agent(self) -> bool {
        matches!(self, Self::Handling | Self::WrappingUp)
    }
}

/// A work item as reporting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Its stage.
    pub stage: Stage,
    /// Its queue.
    pub queue: Option<Uuid>,
    /// Its agent.
    pub agent: Option<Uuid>,
}

/// Why a work item moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Routing rules, an accept, a close, a customer's return: the ordinary flow.
    Routed,
    /// The agent released it to its queue.
    Released,
    /// A transfer (to a queue or an agent).
    Transfer,
    /// An overflow action (to another queue, or ending the conversation).
    Overflow,
}

impl Cause {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "routed",
            Self::Released => "released",
            Self::Transfer => "transfer",
            Self::Overflow => "overflow",
        }
    }
}

/// How a queue leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// An agent took it.
    Answered,
    /// The conversation closed while it waited.
    Abandoned,
    /// Transferred elsewhere while it waited.
    Transferred,
    /// Overflowed elsewhere (or ended by an overflow rule) while it waited.
    Overflowed,
    /// Moved on some other way (back to a bot, say).
    Left,
}

impl LegEnd {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Abandoned => "abandoned",
            Self::Transferred => "transferred",
            Self::Overflowed => "overflowed",
            Self::Left => "left",
        }
    }
}

/// One piece of bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The open queue leg ends (answered by `agent`, when answered).
    EndQueueLeg(LegEnd, Option<Uuid>),
    /// A queue leg starts in `queue`.
    StartQueueLeg(Uuid, Cause),
    /// The open agent leg ends.
    EndAgentLeg,
    /// An agent leg starts: `agent` handles it, from `queue`.
    StartAgentLeg(Uuid, Option<Uuid>),
    /// The open agent leg's wrap-up starts.
    StartWrapUp,
}

/// Returns the bookkeeping for a work item that moved from `before` to `after` (`None`: no work
/// item, i.e. not yet created, or deleted because the conversation closed), in order.
pub fn changes(before: Option<Place>, after: Option<Place>, cause: Cause) -> Vec<Change> {
    let mut out = Vec::new();
    let waited = before.filter(|b| b.stage == Stage::Waiting);
    let waits = after.filter(|a| a.stage == Stage::Waiting);
    let same_queue = matches!((waited, waits), (Some(b), Some(a)) if b.queue == a.queue);
    if waited.is_some() && !same_queue {
        let end = match after {
            Some(a) if a.stage == Stage::Handling => LegEnd::Answered,
            Some(a) if a.stage == Stage::Waiting => match cause {
                Cause::Transfer => LegEnd::Transferred,
                Cause::Overflow => LegEnd::Overflowed,
                Cause::Routed | Cause::Released => LegEnd::Left,
            },
            None if cause == Cause::Overflow => LegEnd::Overflowed,
            None => LegEnd::Abandoned,
            Some(_) => LegEnd::Left,
        };
        let agent = after.filter(|_| end == LegEnd::Answered).and_then(|a| a.agent);
        out.push(Change::EndQueueLeg(end, agent));
    }
    let handled = before.filter(|b| b.stage.with_agent());
    let handles = after.filter(|a| a.stage.with_agent());
    let same_agent = matches!((handled, handles), (Some(b), Some(a)) if b.agent == a.agent);
    if handled.is_some() && !same_agent {
        out.push(Change::EndAgentLeg);
    }
    if let Some(a) = waits
        && !same_queue
        && let Some(queue) = a.queue
    {
        out.push(Change::StartQueueLeg(queue, cause));
    }
    if let Some(a) = handles
        && !same_agent
        && let Some(agent) = a.agent
    {
        out.push(Change::StartAgentLeg(agent, a.queue));
    }
    if let (Some(b), Some(a)) = (handled, handles)
        && same_agent
        && b.stage == Stage::Handling
        && a.stage == Stage::WrappingUp
    {
        out.push(Change::StartWrapUp);
    }
    out
}

/// Queue figures over a period, from its queue and agent legs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueTotals {
    /// Legs answered.
    pub answered: i64,
    /// Legs answered within the service-level threshold.
    pub answered_within: i64,
    /// Legs abandoned.
    pub abandoned: i64,
}

impl QueueTotals {
    /// The share answered within the threshold, of those answered or abandoned (Dynamics'
    /// service level; `None` when there were none).
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.answered_within, self.answered + self.abandoned)
    }

    /// The share abandoned, of those answered or abandoned.
    pub fn abandon_rate(&self) -> Option<f64> {
        ratio(self.abandoned, self.answered + self.abandoned)
    }
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // counts of conversations
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(stage: Stage, queue: u128, agent: Option<u128>) -> Option<Place> {
        Some(Place {
            stage,
            queue: Some(Uuid::from_u128(queue)),
            agent: agent.map(Uuid::from_u128),
        })
    }

    const Q1: u128 = 1;
    const Q2: u128 = 2;
    const ANA: u128 = 10;
    const BO: u128 = 11;

    #[test]
    fn a_conversation_waits_is_answered_wraps_up_and_closes() {
        let queued = at(Stage::Waiting, Q1, None);
        assert_eq!(
            changes(None, queued, Cause::Routed),
            vec![Change::StartQueueLeg(Uuid::from_u128(Q1), Cause::Routed)]
        );
        // An offer, a decline: still the same wait.
        assert_eq!(changes(queued, at(Stage::Waiting, Q1, Some(ANA)), Cause::Routed), vec![]);
        let handling = at(Stage::Handling, Q1, Some(ANA));
        assert_eq!(
            changes(queued, handling, Cause::Routed),
            vec![
                Change::EndQueueLeg(LegEnd::Answered, Some(Uuid::from_u128(ANA))),
                Change::StartAgentLeg(Uuid::from_u128(ANA), Some(Uuid::from_u128(Q1)))
            ]
        );
        let wrapping = at(Stage::WrappingUp, Q1, Some(ANA));
        assert_eq!(changes(handling, wrapping, Cause::Routed), vec![Change::StartWrapUp]);
        assert_eq!(changes(wrapping, None, Cause::Routed), vec![Change::EndAgentLeg]);
    }

    #[test]
    fn closing_while_waiting_is_an_abandon_unless_an_overflow_rule_ended_it() {
        let queued = at(Stage::Waiting, Q1, None);
        assert_eq!(
            changes(queued, None, Cause::Routed),
            vec![Change::EndQueueLeg(LegEnd::Abandoned, None)]
        );
        assert_eq!(
            changes(queued, None, Cause::Overflow),
            vec![Change::EndQueueLeg(LegEnd::Overflowed, None)]
        );
    }

    #[test]
    fn transfers_and_overflows_end_one_leg_and_start_the_next() {
        let q2 = Uuid::from_u128(Q2);
        assert_eq!(
            changes(at(Stage::Waiting, Q1, None), at(Stage::Waiting, Q2, None), Cause::Overflow),
            vec![
                Change::EndQueueLeg(LegEnd::Overflowed, None),
                Change::StartQueueLeg(q2, Cause::Overflow)
            ]
        );
        // From an agent to another queue.
        assert_eq!(
            changes(at(Stage::Handling, Q1, Some(ANA)), at(Stage::Waiting, Q2, None), Cause::Transfer),
            vec![Change::EndAgentLeg, Change::StartQueueLeg(q2, Cause::Transfer)]
        );
        // Waiting for the customer (capacity released), then a revive by another agent.
        assert_eq!(
            changes(
                at(Stage::Handling, Q1, Some(ANA)),
                at(Stage::Elsewhere, Q1, Some(ANA)),
                Cause::Routed
            ),
            vec![Change::EndAgentLeg]
        );
        assert_eq!(
            changes(
                at(Stage::Elsewhere, Q1, Some(ANA)),
                at(Stage::Handling, Q1, Some(BO)),
                Cause::Routed
            ),
            vec![Change::StartAgentLeg(Uuid::from_u128(BO), Some(Uuid::from_u128(Q1)))]
        );
    }

    #[test]
    fn service_level_and_abandon_rate_count_answered_and_abandoned_only() {
        let t = QueueTotals {
            answered: 3,
            answered_within: 2,
            abandoned: 1,
        };
        assert_eq!(t.service_level(), Some(0.5));
        assert_eq!(t.abandon_rate(), Some(0.25));
        assert_eq!(QueueTotals::default().service_level(), None);
    }
}
