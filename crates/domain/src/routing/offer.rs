//! The offer and work-item state machine: who may accept or end an offer, and where the item
//! goes when an offer ends without an accept. Routing loads the rows, asks here, and persists
//! what this decides.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::AgentId;
use time::OffsetDateTime;

/// After this many declines in total an item is no longer offered; it waits to be picked.
pub const MAX_TOTAL_DECLINES: i32 = 100;

/// An offer's state, as stored in `routing.offers.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferState {
    /// Made, waiting for the agent.
    Pending,
    Accepted,
    Declined,
    /// Nobody answered in time (a "missed" offer).
    Expired,
    /// Taken back: the agent disconnected, or the conversation moved on.
    Cancelled,
}

impl OfferState {
    /// Every state.
    pub const ALL: [OfferState; 5] = [Self::Pending, Self::Accepted, Self::Declined, Self::Expired, Self::Cancelled];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "declined" => Self::Declined,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A stored state that is not one of [`OfferState`] or [`ItemState`] (the tables' CHECK
/// constraints allow none, so this is a corrupt row, refused rather than guessed at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stored state {0:?}")]
pub struct UnknownState(pub String);

impl TryFrom<String> for OfferState {
    type Error = UnknownState;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or(UnknownState(raw))
    }
}

crate::sql_text::sql_text!(OfferState, |text| OfferState::try_from(text.to_owned()));

impl fmt::Display for OfferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A work item's state, as stored in `routing.work_items.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Not classified into a queue yet, or no queue takes it.
    Unrouted,
    /// Waiting in its queue to be offered (or picked, in a pick workstream).
    Queued,
    /// Offered to one agent.
    Offered,
    /// An agent works it.
    Assigned,
    WrapUp,
    /// Waiting on the customer.
    Waiting,
    /// A bot has it.
    Bot,
    /// Declined too often to be offered again: waits to be picked.
    PickOnly,
}

impl ItemState {
    /// Every state.
    pub const ALL: [ItemState; 8] = [
        Self::Unrouted,
        Self::Queued,
        Self::Offered,
        Self::Assigned,
        Self::WrapUp,
        Self::Waiting,
        Self::Bot,
        Self::PickOnly,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unrouted => "unrouted",
            Self::Queued => "queued",
            Self::Offered => "offered",
            Self::Assigned => "assigned",
            Self::WrapUp => "wrap_up",
            Self::Waiting => "waiting",
            Self::Bot => "bot",
            Self::PickOnly => "pick_only",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "unrouted" => Self::Unrouted,
            "queued" => Self::Queued,
            "offered" => Self::Offered,
            "assigned" => Self::Assigned,
            "wrap_up" => Self::WrapUp,
            "waiting" => Self::Waiting,
            "bot" => Self::Bot,
            "pick_only" => Self::PickOnly,
            _ => return None,
        })
    }
}

impl TryFrom<String> for ItemState {
    type Error = UnknownState;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or(UnknownState(raw))
    }
}

crate::sql_text::sql_text!(ItemState, |text| ItemState::try_from(text.to_owned()));

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a pending offer ended without an accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferEnd {
    /// The agent declined it.
    Declined(AgentId),
    /// Nobody answered in time (a "missed" offer).
    Expired,
    /// Taken back: the agent disconnected.
    Withdrawn,
}

impl OfferEnd {
    /// The outcome, as metrics and events name it.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Declined(_) => "declined",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// The offer's state after it.
    pub fn state(self) -> OfferState {
        match self {
            Self::Declined(_) => OfferState::Declined,
            Self::Expired => OfferState::Expired,
            Self::Withdrawn => OfferState::Cancelled,
        }
    }

    /// Whether it counts against the agent (a decline or a miss does; a withdrawal, because
    /// they disconnected, does not).
    pub fn counts(self) -> bool {
        self != Self::Withdrawn
    }
}

/// What routing knows of an offer when someone acts on it.
#[derive(Debug, Clone, Copy)]
pub struct OfferFacts {
    /// The agent it was made to.
    pub agent: AgentId,
    pub state: OfferState,
    pub expires_at: OffsetDateTime,
}

/// Why an action on an offer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefusal {
    /// Someone else's offer (a permission matter, not a state one).
    #[error("this offer was made to another agent")]
    OtherAgent,
    #[error("the offer is no longer pending (it was {0})")]
    NotPending(OfferState),
    #[error("the offer expired")]
    Expired,
}

/// May `agent` accept the offer at `now`?
pub fn check_accept(offer: &OfferFacts, agent: AgentId, now: OffsetDateTime) -> Result<(), OfferRefusal> {
    if offer.agent != agent {
        return Err(OfferRefusal::OtherAgent);
    }
    if offer.state != OfferState::Pending {
        return Err(OfferRefusal::NotPending(offer.state));
    }
    if offer.expires_at <= now {
        return Err(OfferRefusal::Expired);
    }
    Ok(())
}

/// May the offer end as `end`? Only its own agent declines it, and only a pending offer ends
/// (an expiry past the deadline is how it ends, so the deadline is not checked here).
pub fn check_end(offer: &OfferFacts, end: OfferEnd) -> Result<(), OfferRefusal> {
    if let OfferEnd::Declined(agent) = end
        && agent != offer.agent
    {
        return Err(OfferRefusal::OtherAgent);
    }
    if offer.state != OfferState::Pending {
        return Err(OfferRefusal::NotPending(offer.state));
    }
    Ok(())
}

/// Where an item goes when its offer ends without an accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    pub state: ItemState,
    /// Declines per agent, this one counted.
    pub declines: BTreeMap<AgentId, u32>,
    pub total_declines: i32,
    /// Whether this end counted against the agent.
    pub counted: bool,
}

/// The item after `end` of an offer made to `agent`: back in its queue, or pick-only once
/// [`MAX_TOTAL_DECLINES`] declines and misses have added up.
pub fn requeue(end: OfferEnd, agent: AgentId, mut declines: BTreeMap<AgentId, u32>, total_declines: i32) -> Requeue {
    let counted = end.counts();
    if counted {
        *declines.entry(agent).or_insert(0) += 1;
    }
    let total_declines = total_declines + i32::from(counted);
    Requeue {
        state: if total_declines >= MAX_TOTAL_DECLINES {
            ItemState::PickOnly
        } else {
            ItemState::Queued
        },
        declines,
        total_declines,
        counted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: u128) -> AgentId {
        AgentId::from(uuid::Uuid::from_u128(n))
    }

    fn offer(state: OfferState) -> OfferFacts {
        OfferFacts {
            agent: agent(1),
            state,
            expires_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(60),
        }
    }

    #[test]
    fn only_the_offered_agent_accepts_a_pending_offer_before_its_deadline() {
        let (ana, bo) = (agent(1), agent(2));
        let before = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(59);
        let at_deadline = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(60);
        assert_eq!(check_accept(&offer(OfferState::Pending), ana, before), Ok(()));
        assert_eq!(check_accept(&offer(OfferState::Pending), bo, before), Err(OfferRefusal::OtherAgent));
        assert_eq!(
            check_accept(&offer(OfferState::Pending), ana, at_deadline),
            Err(OfferRefusal::Expired)
        );
        assert_eq!(
            check_accept(&offer(OfferState::Declined), ana, before),
            Err(OfferRefusal::NotPending(OfferState::Declined))
        );
        assert_eq!(
            OfferRefusal::NotPending(OfferState::Accepted).to_string(),
            "the offer is no longer pending (it was accepted)"
        );
    }

    #[test]
    fn only_the_offered_agent_declines_and_only_a_pending_offer_ends() {
        let (ana, bo) = (agent(1), agent(2));
        assert_eq!(check_end(&offer(OfferState::Pending), OfferEnd::Declined(ana)), Ok(()));
        assert_eq!(
            check_end(&offer(OfferState::Pending), OfferEnd::Declined(bo)),
            Err(OfferRefusal::OtherAgent)
        );
        assert_eq!(check_end(&offer(OfferState::Pending), OfferEnd::Expired), Ok(()));
        assert_eq!(
            check_end(&offer(OfferState::Accepted), OfferEnd::Withdrawn),
            Err(OfferRefusal::NotPending(OfferState::Accepted))
        );
    }

    #[test]
    fn declines_and_misses_count_withdrawals_do_not_and_enough_of_them_make_an_item_pick_only() {
        let ana = agent(1);
        let declined = requeue(OfferEnd::Declined(ana), ana, BTreeMap::new(), 0);
        assert_eq!(declined.state, ItemState::Queued);
        assert_eq!(
            (declined.declines.get(&ana), declined.total_declines, declined.counted),
            (Some(&1), 1, true)
        );
        let missed = requeue(OfferEnd::Expired, ana, declined.declines, 1);
        assert_eq!((missed.declines.get(&ana), missed.total_declines), (Some(&2), 2));
        let withdrawn = requeue(OfferEnd::Withdrawn, ana, missed.declines.clone(), 2);
        assert_eq!(
            (withdrawn.declines, withdrawn.total_declines, withdrawn.counted),
            (missed.declines, 2, false)
        );
        assert_eq!(
            requeue(OfferEnd::Expired, ana, BTreeMap::new(), MAX_TOTAL_DECLINES - 2).state,
            ItemState::Queued
        );
        assert_eq!(
            requeue(OfferEnd::Expired, ana, BTreeMap::new(), MAX_TOTAL_DECLINES - 1).state,
            ItemState::PickOnly
        );
        assert_eq!(
            requeue(OfferEnd::Withdrawn, ana, BTreeMap::new(), MAX_TOTAL_DECLINES - 1).state,
            ItemState::Queued
        );
    }

    #[test]
    fn stored_states_round_trip_and_a_corrupt_one_is_refused() {
        for s in ["pending", "accepted", "declined", "expired", "cancelled"] {
            assert_eq!(OfferState::try_from(s.to_owned()).unwrap().as_str(), s);
        }
        for s in [
            "unrouted",
            "queued",
            "offered",
            "assigned",
            "wrap_up",
            "waiting",
            "bot",
            "pick_only",
        ] {
            assert_eq!(ItemState::try_from(s.to_owned()).unwrap().as_str(), s);
        }
        assert_eq!(OfferState::try_from("Pending".to_owned()), Err(UnknownState("Pending".into())));
        assert!(ItemState::parse("closed").is_none());
    }
}
