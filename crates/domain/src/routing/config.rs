//! Routing configuration objects, as admins define them. Each is stored as a validated JSON
//! definition under a kind and an id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::classify::{self, Ruleset};
use super::hours::OperatingHours;
use super::route::{self, RouteRule};
use super::{AssignmentMethod, DistributionMode, OverflowRules, Presence, SkillMatching, WrapUpCapacity};

fn en() -> String {
    "en".into()
}
fn day() -> i64 {
    86_400
}
fn one() -> i32 {
    1
}
fn yes() -> bool {
    true
}
fn two_minutes() -> u32 {
    120
}
fn three() -> u32 {
    3
}
fn half_hour() -> i64 {
    1_800
}
fn three_units() -> i32 {
    3
}
fn working() -> Vec<Presence> {
    vec![Presence::Available, Presence::Busy]
}

/// A workstream: how conversations from its WhatsApp numbers are classified, queued and offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkstreamDef {
    /// Push or pick; cannot change after creation.
    pub mode: DistributionMode,
    /// Default language.
    #[serde(default = "en")]
    pub default_language: String,
    /// Waiting conversations close after this long without activity (seconds).
    #[serde(default = "day")]
    pub waiting_auto_close_secs: i64,
    /// Auto-close for Open, Active and Wrap-up conversations (seconds); none: Dynamics'
    /// defaults for WhatsApp (30 days, 30 days, 1 day).
    #[serde(default)]
    pub auto_close: AutoCloseTimes,
    /// Context variables it declares, each text or number (Dynamics' workstream context
    /// variables): set by bots and classification rules, used in rules and automated messages.
    #[serde(default)]
    pub context_variables: Vec<ContextVariable>,
    /// Capacity units each conversation takes.
    #[serde(default = "one")]
    pub capacity_units: i32,
    /// A capacity profile each conversation also takes.
    #[serde(default)]
    pub capacity_profile_id: Option<Uuid>,
    /// Presences in which agents get offers.
    #[serde(default = "working")]
    pub allowed_presences: Vec<Presence>,
    /// Whether capacity stays held during wrap-up.
    #[serde(default)]
    pub wrap_up: WrapUpCapacity,
    /// Keep the same agent for the whole conversation (push only).
    #[serde(default = "yes")]
    pub agent_affinity: bool,
    /// How long an agent has to accept an offer (30–300 s).
    #[serde(default = "two_minutes")]
    pub offer_timeout_secs: u32,
    /// Declines (or missed offers) after which an agent is not offered an item again (1–5).
    #[serde(default = "three")]
    pub max_declines: u32,
    /// After declining or missing an item, an agent is not offered it again for this long
    /// (Dynamics' "assign work item after decline"; 0: at once).
    #[serde(default)]
    pub decline_cooldown_secs: u32,
    /// The presence an agent is put in after missing an offer (e.g. `away`, Dynamics'
    /// Inactive); none: unchanged.
    #[serde(default)]
    pub presence_after_missed: Option<Presence>,
    /// The presence an agent is put in after declining an offer (e.g. `busy_dnd`); none:
    /// unchanged.
    #[serde(default)]
    pub presence_after_declined: Option<Presence>,
    /// Offers are accepted on the agent's behalf at once (Dynamics' auto-accept).
    #[serde(default)]
    pub auto_accept: bool,
    /// Skill matching.
    #[serde(default)]
    pub matching: SkillMatching,
    /// Where items go when no route-to-queue rule matches.
    pub fallback_queue_id: Uuid,
    /// Classification rulesets, in order.
    #[serde(default)]
    pub classification: Vec<Ruleset>,
    /// Route-to-queue rules, in order.
    #[serde(default)]
    pub route_to_queue: Vec<RouteRule>,
    /// A bot that answers first (push only).
    #[serde(default)]
    pub bot_id: Option<Uuid>,
    /// A bot-only conversation closes after this long without activity (seconds).
    #[serde(default = "half_hour")]
    pub bot_inactivity_secs: i64,
    /// When the customer sees their messages read (and the agent typing): `on_open`,
    /// `on_typing` (the default) or `never`.
    #[serde(default)]
    pub read_receipts: crate::indicators::ReadReceipts,
    /// A template sent on its own when an agent's message fails because the customer's window
    /// closed while it was in flight (63016), to reach them again; none: only the agent is told.
    #[serde(default)]
    pub window_template: Option<WindowTemplate>,
}

/// The template a workstream sends when the window closed under an agent's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTemplate {
    /// The template's name on the number (the customer's language is chosen when sent).
    pub name: String,
    /// Values for its placeholders; each may use `{$Var$}` (context variables), `{AgentName}`.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
}

impl WorkstreamDef {
    /// Returns the first rule the definition breaks.
    pub fn validate(&self) -> Result<(), String> {
        if !(30..=300).contains(&self.offer_timeout_secs) {
            return Err("offer_timeout_secs must be between 30 and 300".into());
        }
        if !(1..=5).contains(&self.max_declines) {
            return Err("max_declines must be between 1 and 5".into());
        }
        if self.capacity_units < 0 {
            return Err("capacity_units cannot be negative".into());
        }
        if self.decline_cooldown_secs > 86_400 {
            return Err("decline_cooldown_secs is at most 86400 (a day)".into());
        }
        if self.auto_accept && self.mode == DistributionMode::Pick {
            return Err("auto_accept works only on push workstreams".into());
        }
        if let Some(t) = &self.window_template {
            if t.name.trim().is_empty() || t.name.chars().count() > 200 {
                return Err("window_template.name has 1 to 200 characters".into());
            }
            if t.variables.values().any(|v| v.chars().count() > 1_000) {
                return Err("window_template.variables values have at most 1000 characters".into());
            }
        }
        if self.waiting_auto_close_secs < 60 {
            return Err("waiting_auto_close_secs must be at least 60".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for v in &self.context_variables {
            if !crate::automated::is_variable_name(&v.name) {
                return Err(format!(
                    "context variable {:?}: letters, digits and _ only, 1 to 100 of them",
                    v.name
                ));
            }
            if !names.insert(v.name.as_str()) {
                return Err(format!("context variable {:?} is declared twice", v.name));
            }
        }
        for rule in self.classification.iter().flat_map(|r| &r.rules) {
            for (name, value) in &rule.outputs.attributes {
                check_variable(&self.context_variables, name, value).map_err(|e| format!("rule {:?}: {e}", rule.name))?;
            }
        }
        for (state, secs) in [
            ("open", self.auto_close.open_secs),
            ("active", self.auto_close.active_secs),
            ("wrap_up", self.auto_close.wrap_up_secs),
        ] {
            if secs.is_some_and(|s| !(60..=90 * 86_400).contains(&s)) {
                return Err(format!("auto_close.{state}_secs must be between 60 and 7776000 (90 days)"));
            }
        }
        if self.allowed_presences.is_empty() {
            return Err("allowed_presences needs at least one presence".into());
        }
        if let WrapUpCapacity::Minutes { minutes } = self.wrap_up
            && !(1..=60).contains(&minutes)
        {
            return Err("the wrap-up capacity block is 1 to 60 minutes".into());
        }
        if self.mode == DistributionMode::Pick && (self.bot_id.is_some() || self.agent_affinity) {
            return Err("bots and agent affinity work only on push workstreams".into());
        }
        crate::template::Language::parse(&self.default_language).map_err(|e| e.to_string())?;
        classify::validate(&self.classification)?;
        route::validate(&self.route_to_queue)
    }

    /// Returns every queue the definition names.
    pub fn queues(&self) -> Vec<Uuid> {
        let mut q: Vec<Uuid> = self
            .route_to_queue
            .iter()
            .flat_map(|r| r.targets.iter().map(|t| t.queue_id))
            .collect();
        q.push(self.fallback_queue_id);
        q.sort_unstable();
        q.dedup();
        q
    }
}

/// The type of a context variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    /// Any text (at most 4,000 characters).
    Text,
    /// A number (decimal, finite).
    Number,
}

impl VariableKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
        }
    }

    /// Parses a name.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Text, Self::Number].into_iter().find(|k| k.as_str() == raw)
    }
}

/// A context variable a workstream declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextVariable {
    /// Case-sensitive name: letters, digits and `_` (the `{$Name$}` of automated messages).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: VariableKind,
}

/// Checks a value given to a context variable against the declarations: a declared number
/// must be a finite decimal number. An undeclared name is accepted (a bot's own context).
pub fn check_variable(declared: &[ContextVariable], name: &str, value: &str) -> Result<(), String> {
    match declared.iter().find(|v| v.name == name).map(|v| v.kind) {
        Some(VariableKind::Number) if !value.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            Err(format!("context variable {name:?} is a number, not {value:?}"))
        }
        _ => Ok(()),
    }
}

/// Per-state auto-close times of a workstream (Waiting has `waiting_auto_close_secs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoCloseTimes {
    /// Open (waiting in a queue).
    #[serde(default)]
    pub open_secs: Option<i64>,
    /// Active (with an agent).
    #[serde(default)]
    pub active_secs: Option<i64>,
    /// Wrap-up.
    #[serde(default)]
    pub wrap_up_secs: Option<i64>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDef {
    /// Lower number, higher priority (≥ 1).
    pub priority: i32,
    /// How agents are picked.
    #[serde(default)]
    pub assignment: AssignmentMethod,
    /// Opening times (none: always open).
    #[serde(default)]
    pub operating_hours_id: Option<Uuid>,
    /// Overflow handling.
    #[serde(default)]
    pub overflow: OverflowRules,
    /// Agents in the queue.
    #[serde(default)]
    pub members: Vec<Uuid>,
    /// Dynamics' "service level threshold": a conversation answered within this many seconds
    /// of entering the queue counts towards its service level (60 by default, 1 s to 24 h).
    #[serde(default = "sixty")]
    pub service_level_secs: u32,
}

fn sixty() -> u32 {
    60
}

impl QueueDef {
    /// Returns the first rule the definition breaks.
    pub fn validate(&self) -> Result<(), String> {
        if self.priority < 1 {
            return Err("priority must be 1 or more (lower is higher priority)".into());
        }
        if !(1..=86_400).contains(&self.service_level_secs) {
            return Err("service_level_secs is 1 to 86400".into());
        }
        self.overflow.validate()
    }
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDef {
    /// Unit capacity.
    #[serde(default = "three_units")]
    pub capacity_units: i32,
    /// Skill → rating (1–10).
    #[serde(default)]
    pub skills: BTreeMap<Uuid, u8>,
    /// Capacity profiles, with an optional personal limit instead of the profile's.
    #[serde(default)]
    pub capacity_profiles: BTreeMap<Uuid, Option<i32>>,
    /// Presence when created.
    #[serde(default = "available")]
    pub default_presence: Presence,
}

fn available() -> Presence {
    Presence::Available
}

impl AgentDef {
    /// Returns the first rule the definition breaks.
    pub fn validate(&self) -> Result<(), String> {
        if !(0..=100).contains(&self.capacity_units) {
            return Err("capacity_units must be between 0 and 100".into());
        }
        if self.skills.values().any(|r| !(1..=10).contains(r)) {
            return Err("skill ratings are 1 to 10".into());
        }
        if self.capacity_profiles.values().flatten().any(|l| !(0..=100).contains(l)) {
            return Err("a personal capacity limit is 0 to 100".into());
        }
        Ok(())
    }
}

/// How often a capacity profile's use resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetFrequency {
    /// Freed when the work ends.
    #[default]
    Immediate,
    /// Freed at the end of the day.
    Daily,
}

/// A capacity profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityProfileDef {
    /// Work items at once (0–100).
    pub max_items: i32,
    /// Reaching the limit stops assignment.
    #[serde(default = "yes")]
    pub blocking: bool,
    /// When use resets (cannot change after creation).
    #[serde(default)]
    pub reset: ResetFrequency,
}

impl CapacityProfileDef {
    /// Returns the first rule the definition breaks.
    pub fn validate(&self) -> Result<(), String> {
        if !(0..=100).contains(&self.max_items) {
            Err("max_items must be between 0 and 100".into())
        } else {
            Ok(())
        }
    }
}

/// A skill (its name is the object's name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillDef {
    /// What it means.
    #[serde(default)]
    pub description: String,
}

/// The kinds of routing configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Workstream,
    Queue,
    OperatingHours,
    Skill,
    CapacityProfile,
    Agent,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Self::Workstream,
        Self::Queue,
        Self::OperatingHours,
        Self::Skill,
        Self::CapacityProfile,
        Self::Agent,
    ];

    /// Returns the snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workstream => "workstream",
            Self::Queue => "queue",
            Self::OperatingHours => "operating_hours",
            Self::Skill => "skill",
            Self::CapacityProfile => "capacity_profile",
            Self::Agent => "agent",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Parses and validates a definition of this kind; returns it normalized.
    pub fn validate(self, definition: &serde_json::Value) -> Result<serde_json::Value, String> {
        fn check<T: Serialize + for<'de> Deserialize<'de>>(
            v: &serde_json::Value,
            validate: impl Fn(&T) -> Result<(), String>,
        ) -> Result<serde_json::Value, String> {
            let parsed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
            validate(&parsed)?;
            serde_json::to_value(parsed).map_err(|e| e.to_string())
        }
        match self {
            Self::Workstream => check::<WorkstreamDef>(definition, WorkstreamDef::validate),
            Self::Queue => check::<QueueDef>(definition, QueueDef::validate),
            Self::OperatingHours => check::<OperatingHours>(definition, OperatingHours::validate),
            Self::Skill => check::<SkillDef>(definition, |_| Ok(())),
            Self::CapacityProfile => check::<CapacityProfileDef>(definition, CapacityProfileDef::validate),
            Self::Agent => check::<AgentDef>(definition, AgentDef::validate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_dynamics_and_validation_names_the_problem() {
        let ws: WorkstreamDef = serde_json::from_value(serde_json::json!({ "mode": "push", "fallback_queue_id": Uuid::nil() })).unwrap();
        assert_eq!((ws.offer_timeout_secs, ws.max_declines, ws.capacity_units), (120, 3, 1));
        assert_eq!(ws.allowed_presences, vec![Presence::Available, Presence::Busy]);
        assert_eq!(ws.wrap_up, WrapUpCapacity::Always);
        assert!(ws.validate().is_ok());
        let err = Kind::Workstream
            .validate(&serde_json::json!({ "mode": "push", "fallback_queue_id": Uuid::nil(), "offer_timeout_secs": 10 }))
            .unwrap_err();
        assert!(err.contains("30 and 300"), "{err}");
        assert!(
            Kind::Workstream
                .validate(&serde_json::json!({ "mode": "pick", "fallback_queue_id": Uuid::nil(), "agent_affinity": true }))
                .is_err()
        );
        assert!(Kind::Queue.validate(&serde_json::json!({ "priority": 0 })).is_err());
        assert!(
            Kind::Agent
                .validate(&serde_json::json!({ "skills": { Uuid::nil().to_string(): 11 } }))
                .is_err()
        );
        assert!(
            Kind::Queue
                .validate(&serde_json::json!({ "priority": 1, "surprise": true }))
                .is_ok(),
            "unknown fields are ignored"
        );
    }

    #[test]
    fn context_variables_are_named_once_and_rules_give_them_values_of_their_type() {
        let base = |extra: serde_json::Value| {
            let mut ws = serde_json::json!({ "mode": "push", "fallback_queue_id": Uuid::nil() });
            ws.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Kind::Workstream.validate(&ws)
        };
        let vars = serde_json::json!([{ "name": "Amount", "type": "number" }, { "name": "Reason", "type": "text" }]);
        assert!(base(serde_json::json!({ "context_variables": vars })).is_ok());
        let twice = base(serde_json::json!({ "context_variables": [{ "name": "A", "type": "text" }, { "name": "A", "type": "number" }] }));
        assert!(twice.unwrap_err().contains("declared twice"));
        assert!(base(serde_json::json!({ "context_variables": [{ "name": "bad name", "type": "text" }] })).is_err());
        let rule = |value: &str| {
            serde_json::json!({ "context_variables": vars, "classification": [{ "name": "r", "rules": [
                { "name": "big", "outputs": { "attributes": { "Amount": value } } }
            ] }] })
        };
        assert!(base(rule("100")).is_ok());
        let err = base(rule("lots")).unwrap_err();
        assert!(err.contains("Amount") && err.contains("number"), "{err}");
        let declared: Vec<ContextVariable> = serde_json::from_value(vars).unwrap();
        assert!(check_variable(&declared, "Amount", "-3.5e2").is_ok());
        assert!(check_variable(&declared, "Amount", "NaN").is_err());
        assert!(check_variable(&declared, "Anything", "x").is_ok());
    }
}
