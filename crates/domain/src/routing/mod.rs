//! Unified-routing rules, Dynamics 365 style, with no I/O: conditions over conversation facts,
//! classification rulesets, route-to-queue with percentage splits and overflow, operating hours,
//! agent presence, and choosing the agent for a work item.

pub mod assign;
pub mod classify;
pub mod conditions;
pub mod config;
pub mod hours;
pub mod offer;
pub mod presence;
pub mod report;
pub mod route;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How a workstream hands out work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistributionMode {
    /// Offered to one agent at a time.
    Push,
    /// Agents take items from the open list.
    Pick,
}

/// An agent's presence (Dynamics' base statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Available,
    Busy,
    BusyDnd,
    Away,
    Offline,
}

impl Presence {
    /// Every presence.
    pub const ALL: [Presence; 5] = [Self::Available, Self::Busy, Self::BusyDnd, Self::Away, Self::Offline];

    /// Returns the snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::BusyDnd => "busy_dnd",
            Self::Away => "away",
            Self::Offline => "offline",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// Presences an agent sets by hand that stay until they change them.
    pub fn is_sticky(self) -> bool {
        matches!(self, Self::Offline | Self::Away | Self::BusyDnd)
    }
}

crate::sql_text::sql_text!(Presence, |text| Presence::parse(text)
    .ok_or_else(|| format!("presence {text:?} is unknown")));

/// How a queue picks among eligible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMethod {
    /// Most free capacity first; ties round robin (Dynamics' default).
    #[default]
    HighestCapacity,
    /// Longest since their last assignment first.
    RoundRobin,
    /// Longest since they last freed capacity first.
    LeastActive,
}

/// How required skills are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillMatching {
    /// Every required skill at or above the required rating.
    #[default]
    Exact,
    /// Closest first: exact, then over-qualified, then under-qualified (even none).
    Closest,
}

/// Whether an agent's capacity stays held while they wrap up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WrapUpCapacity {
    /// Held until the conversation closes (Dynamics' default).
    #[default]
    Always,
    /// Released when wrap-up starts.
    Never,
    /// Released after this many minutes (Dynamics allows 30 s to 60 min).
    Minutes {
        /// How long the capacity stays held after wrap-up starts.
        minutes: u32,
    },
}

/// A required skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkillRequirement {
    /// Skill.
    pub skill_id: Uuid,
    /// Lowest acceptable rating (1–10).
    pub min_rating: u8,
}

/// What to do when a queue overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum OverflowAction {
    /// Put it in the queue all the same.
    #[default]
    AssignAnyway,
    /// Close the conversation ("End conversation due to overflow").
    EndConversation,
    /// Move it to another queue.
    TransferToQueue {
        /// The queue.
        queue_id: Uuid,
    },
}

/// A queue's overflow settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowRules {
    /// Pre-queue: more open items than this (1–100) → action.
    pub work_item_limit: Option<LimitRule>,
    /// Pre-queue: outside operating hours → action (assign anyway by default).
    #[serde(default)]
    pub out_of_hours: OverflowAction,
    /// In-queue: waiting longer than this (1 minute – 2 days) → action.
    pub wait_time: Option<WaitRule>,
}

/// "Work item limit exceeds".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRule {
    /// Open items allowed.
    pub limit: u32,
    /// What then.
    pub action: OverflowAction,
}

/// "Waiting time in queue exceeds".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRule {
    /// How long an item may wait in the queue before the rule fires.
    pub seconds: u64,
    /// What then (assign anyway is not allowed here).
    pub action: OverflowAction,
}

impl OverflowRules {
    /// Returns the first rule the settings break.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(l) = &self.work_item_limit
            && !(1..=100).contains(&l.limit)
        {
            return Err("the work item limit must be between 1 and 100".into());
        }
        if let Some(w) = &self.wait_time {
            if !(60..=172_800).contains(&w.seconds) {
                return Err("the waiting-time overflow must be between 1 minute and 2 days".into());
            }
            if w.action == OverflowAction::AssignAnyway {
                return Err("the waiting-time overflow must end the conversation or transfer it".into());
            }
        }
        Ok(())
    }
}
