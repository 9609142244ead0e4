//! Choosing the agent for a work item (Dynamics §3.6–3.9): an affinity agent first (the one who
//! had it, regardless of capacity), else the eligible agents (allowed presence, enough free
//! capacity in units and in every profile the item needs, not declined too often, skills per the
//! matching rule), ordered by closeness of skills (closest matching) and then by the queue's
//! assignment method.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::ids::AgentId;

use super::{AssignmentMethod, Presence, SkillMatching, SkillRequirement};

/// An agent as the assignment sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Agent.
    pub agent_id: AgentId,
    /// Current presence.
    pub presence: Presence,
    /// Free capacity units (may be negative).
    pub free_units: i32,
    /// Free work items per capacity profile the agent has.
    pub profile_free: BTreeMap<Uuid, i32>,
    /// Skill → rating.
    pub skills: BTreeMap<Uuid, u8>,
    /// Last assignment from any queue (ordering key; smaller is longer ago, `i64::MIN` never).
    pub last_assigned: i64,
    /// The agent's turn in this item's queue: their last assignment from it, else when they
    /// joined it (round robin is kept per queue, as Dynamics keeps it; smaller goes first).
    pub queue_turn: i64,
    /// Last capacity release (ordering key for least active).
    pub last_released: i64,
}

/// What a work item needs.
#[derive(Debug, Clone)]
pub struct Needs<'a> {
    /// Capacity units per item.
    pub units: i32,
    /// Capacity profiles the item consumes.
    pub profiles: &'a [Uuid],
    /// Skills an agent needs to be offered it (and at what level).
    pub skills: &'a [SkillRequirement],
    /// Presences the workstream accepts.
    pub allowed: &'a [Presence],
    /// Skill matching.
    pub matching: SkillMatching,
    /// Declines per agent so far.
    pub declined: &'a BTreeMap<AgentId, u32>,
    /// Declines after which an agent is no longer offered this item.
    pub max_declines: u32,
    /// The agent to keep (agent affinity), if any.
    pub affinity: Option<AgentId>,
    /// Agents who declined or missed this item within the workstream's cool-down.
    pub cooling: &'a [AgentId],
}

/// (missing skills, extra skills): (0, 0) exact, (0, n) over-qualified, (m, _) under-qualified.
fn closeness(required: &[SkillRequirement], agent: &BTreeMap<Uuid, u8>) -> (usize, usize) {
    let missing = required
        .iter()
        .filter(|r| agent.get(&r.skill_id).is_none_or(|rating| *rating < r.min_rating))
        .count();
    let extra = agent.keys().filter(|k| !required.iter().any(|r| r.skill_id == **k)).count();
    (missing, extra)
}

/// Returns whether `candidate` can take the item.
pub fn eligible(needs: &Needs<'_>, c: &Candidate) -> bool {
    needs.allowed.contains(&c.presence)
        && needs.declined.get(&c.agent_id).copied().unwrap_or(0) < needs.max_declines
        && !needs.cooling.contains(&c.agent_id)
        && c.free_units >= needs.units
        && needs.profiles.iter().all(|p| c.profile_free.get(p).is_some_and(|free| *free >= 1))
        && (needs.matching == SkillMatching::Closest || closeness(needs.skills, &c.skills).0 == 0)
}

/// Returns the index of the agent to offer the item to, if any.
pub fn choose(needs: &Needs<'_>, candidates: &[Candidate], method: AssignmentMethod) -> Option<usize> {
    if let Some(agent) = needs.affinity
        && let Some(i) = candidates.iter().position(|c| c.agent_id == agent)
    {
        let c = &candidates[i];
        if c.presence != Presence::Offline
            && needs.declined.get(&agent).copied().unwrap_or(0) < needs.max_declines
            && !needs.cooling.contains(&agent)
        {
            return Some(i);
        }
    }
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| eligible(needs, c))
        .min_by_key(|(_, c)| {
            let skill_rank = if needs.matching == SkillMatching::Closest {
                closeness(needs.skills, &c.skills)
            } else {
                (0, 0)
            };
            // Ties go round robin (the queue's turn, then the longest since any assignment).
            let method_rank = match method {
                AssignmentMethod::HighestCapacity => (-i64::from(c.free_units), c.queue_turn, c.last_assigned),
                AssignmentMethod::RoundRobin => (c.queue_turn, c.last_assigned, 0),
                AssignmentMethod::LeastActive => (c.last_released, c.queue_turn, c.last_assigned),
            };
            (skill_rank, method_rank, c.agent_id)
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: [Presence; 2] = [Presence::Available, Presence::Busy];

    fn agent(n: u128, free: i32, last_assigned: i64) -> Candidate {
        Candidate {
            agent_id: AgentId::from(Uuid::from_u128(n)),
            presence: Presence::Available,
            free_units: free,
            profile_free: BTreeMap::new(),
            skills: BTreeMap::new(),
            last_assigned,
            queue_turn: last_assigned,
            last_released: 0,
        }
    }

    #[test]
    fn round_robin_follows_the_queues_own_turns_not_assignments_from_other_queues() {
        let declined = BTreeMap::new();
        let n = needs(&[], &declined, SkillMatching::Exact);
        // Agent 1 was assigned from this queue at 10 and from another queue at 30; agent 2 from
        // this queue at 20. In this queue it is agent 1's turn.
        let mut one = agent(1, 3, 30);
        one.queue_turn = 10;
        let mut two = agent(2, 3, 20);
        two.queue_turn = 20;
        assert_eq!(pick(&n, &[one.clone(), two.clone()], AssignmentMethod::RoundRobin), Some(1));
        // Equal turns: the longest since any assignment.
        two.queue_turn = 10;
        assert_eq!(pick(&n, &[one, two], AssignmentMethod::RoundRobin), Some(2));
    }

    fn needs<'a>(skills: &'a [SkillRequirement], declined: &'a BTreeMap<AgentId, u32>, matching: SkillMatching) -> Needs<'a> {
        Needs {
            units: 1,
            profiles: &[],
            skills,
            allowed: &ALLOWED,
            matching,
            declined,
            max_declines: 3,
            affinity: None,
            cooling: &[],
        }
    }

    fn pick(n: &Needs<'_>, c: &[Candidate], m: AssignmentMethod) -> Option<u128> {
        choose(n, c, m).map(|i| c[i].agent_id.uuid().as_u128())
    }

    #[test]
    fn highest_capacity_then_round_robin_on_ties() {
        let none = BTreeMap::new();
        let n = needs(&[], &none, SkillMatching::Exact);
        assert_eq!(
            pick(
                &n,
                &[agent(1, 1, 0), agent(2, 3, 5), agent(3, 2, 0)],
                AssignmentMethod::HighestCapacity
            ),
            Some(2)
        );
        assert_eq!(
            pick(&n, &[agent(1, 2, 9), agent(2, 2, 4)], AssignmentMethod::HighestCapacity),
            Some(2),
            "tie: longest since assigned"
        );
    }

    #[test]
    fn round_robin_and_least_active() {
        let none = BTreeMap::new();
        let n = needs(&[], &none, SkillMatching::Exact);
        let agents = [agent(1, 5, 30), agent(2, 1, 10), agent(3, 9, i64::MIN)];
        assert_eq!(
            pick(&n, &agents, AssignmentMethod::RoundRobin),
            Some(3),
            "never assigned goes first"
        );
        let mut least = [agent(1, 5, 0), agent(2, 5, 0)];
        least[0].last_released = 100;
        least[1].last_released = 50;
        assert_eq!(pick(&n, &least, AssignmentMethod::LeastActive), Some(2));
    }

    #[test]
    fn capacity_presence_profiles_and_declines_exclude() {
        let mut declined = BTreeMap::new();
        declined.insert(AgentId::from(Uuid::from_u128(1)), 3);
        let n = needs(&[], &declined, SkillMatching::Exact);
        let mut away = agent(2, 5, 0);
        away.presence = Presence::Away;
        let full = agent(3, 0, 0);
        assert_eq!(pick(&n, &[agent(1, 5, 0), away, full], AssignmentMethod::HighestCapacity), None);
        let profile = Uuid::from_u128(77);
        let empty = BTreeMap::new();
        let with_profile = Needs {
            profiles: std::slice::from_ref(&profile),
            ..needs(&[], &empty, SkillMatching::Exact)
        };
        let mut has = agent(4, 1, 0);
        has.profile_free.insert(profile, 1);
        let mut exhausted = agent(5, 9, 0);
        exhausted.profile_free.insert(profile, 0);
        assert_eq!(
            pick(&with_profile, &[agent(6, 9, 0), exhausted, has], AssignmentMethod::HighestCapacity),
            Some(4)
        );
    }

    #[test]
    fn exact_and_closest_skill_matching() {
        let (s1, s2) = (Uuid::from_u128(100), Uuid::from_u128(200));
        let required = [SkillRequirement {
            skill_id: s1,
            min_rating: 5,
        }];
        let none = BTreeMap::new();
        let mut exact = agent(1, 1, 0);
        exact.skills.insert(s1, 6);
        let mut over = agent(2, 9, 0);
        over.skills.insert(s1, 9);
        over.skills.insert(s2, 9);
        let mut under = agent(3, 9, 0);
        under.skills.insert(s1, 2);
        let nobody = agent(4, 9, 0);
        let agents = [over.clone(), under.clone(), nobody.clone(), exact.clone()];
        let e = needs(&required, &none, SkillMatching::Exact);
        assert_eq!(
            pick(&e, &agents, AssignmentMethod::HighestCapacity),
            Some(2),
            "exact: only rated agents; then most capacity"
        );
        assert_eq!(
            pick(&e, &[under.clone(), nobody.clone()], AssignmentMethod::HighestCapacity),
            None,
            "exact: nobody qualifies, item waits"
        );
        let c = needs(&required, &none, SkillMatching::Closest);
        assert_eq!(
            pick(&c, &agents, AssignmentMethod::HighestCapacity),
            Some(1),
            "closest: exact skill set first"
        );
        assert_eq!(
            pick(&c, &[under.clone(), over.clone()], AssignmentMethod::HighestCapacity),
            Some(2),
            "then over-qualified"
        );
        assert_eq!(
            pick(&c, &[nobody, under], AssignmentMethod::HighestCapacity),
            Some(3),
            "then under-qualified, even without the skill"
        );
    }

    #[test]
    fn affinity_wins_regardless_of_capacity_unless_declined_or_offline() {
        let none = BTreeMap::new();
        let previous = AgentId::from(Uuid::from_u128(9));
        let n = Needs {
            affinity: Some(previous),
            cooling: &[],
            ..needs(&[], &none, SkillMatching::Exact)
        };
        let mut busy = agent(9, 0, 0);
        busy.presence = Presence::BusyDnd;
        assert_eq!(
            pick(&n, &[agent(1, 5, 0), busy.clone()], AssignmentMethod::HighestCapacity),
            Some(9)
        );
        busy.presence = Presence::Offline;
        assert_eq!(pick(&n, &[agent(1, 5, 0), busy], AssignmentMethod::HighestCapacity), Some(1));
    }

    #[test]
    fn an_agent_cooling_down_after_a_decline_is_passed_over_even_with_affinity() {
        let none = BTreeMap::new();
        let cooling = [AgentId::from(Uuid::from_u128(9))];
        let n = Needs {
            affinity: Some(AgentId::from(Uuid::from_u128(9))),
            cooling: &cooling,
            ..needs(&[], &none, SkillMatching::Exact)
        };
        assert_eq!(
            pick(&n, &[agent(9, 5, 0), agent(1, 1, 0)], AssignmentMethod::HighestCapacity),
            Some(1)
        );
        assert_eq!(pick(&n, &[agent(9, 5, 0)], AssignmentMethod::HighestCapacity), None);
    }
}
