//! Work classification: ordered rulesets; inside a ruleset the first rule whose conditions hold
//! fires, then the next ruleset runs, seeing the outputs of the earlier ones (Dynamics §3.2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SkillRequirement;
use super::conditions::{Condition, Facts, all_hold};

/// Most rulesets per workstream.
pub const MAX_RULESETS: usize = 10;
/// Most rules per ruleset.
pub const MAX_RULES: usize = 100;
/// Most outputs per rule.
pub const MAX_OUTPUTS: usize = 5;

/// What a rule sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Outputs {
    /// Attributes (later rulesets and the route-to-queue rules can use them).
    pub attributes: BTreeMap<String, String>,
    /// Skills the work item needs.
    pub skills: Vec<SkillRequirement>,
    /// Priority (lower is more urgent).
    pub priority: Option<i32>,
    /// A capacity profile the work item also consumes.
    pub capacity_profile_id: Option<Uuid>,
}

impl Outputs {
    fn count(&self) -> usize {
        self.attributes.len() + self.skills.len() + usize::from(self.priority.is_some()) + usize::from(self.capacity_profile_id.is_some())
    }
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Shown in the routing diagnostics as the rule that fired.
    pub name: String,
    /// All must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What it sets.
    #[serde(default)]
    pub outputs: Outputs,
}

/// An ordered list of rules, first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Shown in the routing diagnostics with the rule that fired.
    pub name: String,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// The result of classifying a work item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    /// The facts after every ruleset (inputs plus attribute outputs).
    pub facts: Facts,
    /// Skills needed (the highest rating asked for each skill).
    pub skills: Vec<SkillRequirement>,
    /// Priority (0 when no rule set one).
    pub priority: i32,
    /// Extra capacity profiles.
    pub profiles: Vec<Uuid>,
    /// (ruleset, rule) that fired.
    pub fired: Vec<(String, String)>,
}

/// Runs `rulesets` over `facts`.
pub fn classify(rulesets: &[Ruleset], facts: Facts) -> Classification {
    let mut out = Classification {
        facts,
        ..Classification::default()
    };
    for ruleset in rulesets {
        let Some(rule) = ruleset.rules.iter().find(|r| all_hold(&r.conditions, &out.facts)) else {
            continue;
        };
        out.fired.push((ruleset.name.clone(), rule.name.clone()));
        out.facts.extend(rule.outputs.attributes.clone());
        for skill in &rule.outputs.skills {
            match out.skills.iter_mut().find(|s| s.skill_id == skill.skill_id) {
                Some(existing) => existing.min_rating = existing.min_rating.max(skill.min_rating),
                None => out.skills.push(*skill),
            }
        }
        if let Some(p) = rule.outputs.priority {
            out.priority = p;
        }
        if let Some(profile) = rule.outputs.capacity_profile_id
            && !out.profiles.contains(&profile)
        {
            out.profiles.push(profile);
        }
    }
    out
}

/// Returns the first limit or rule the rulesets break.
pub fn validate(rulesets: &[Ruleset]) -> Result<(), String> {
    if rulesets.len() > MAX_RULESETS {
        return Err(format!("at most {MAX_RULESETS} classification rulesets per workstream"));
    }
    for rs in rulesets {
        if rs.rules.len() > MAX_RULES {
            return Err(format!("ruleset {:?} has more than {MAX_RULES} rules", rs.name));
        }
        for rule in &rs.rules {
            if rule.outputs.count() > MAX_OUTPUTS {
                return Err(format!("rule {:?} sets more than {MAX_OUTPUTS} outputs", rule.name));
            }
            if rule.outputs.skills.iter().any(|s| !(1..=10).contains(&s.min_rating)) {
                return Err(format!("rule {:?}: skill ratings are 1 to 10", rule.name));
            }
            for c in &rule.conditions {
                c.validate().map_err(|e| format!("rule {:?}: {e}", rule.name))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::conditions::Op;
    use super::*;

    fn rule(name: &str, attribute: &str, value: &str, outputs: Outputs) -> Rule {
        Rule {
            name: name.into(),
            conditions: vec![Condition {
                attribute: attribute.into(),
                op: Op::Equals,
                value: value.into(),
            }],
            outputs,
        }
    }

    #[test]
    fn first_match_per_ruleset_and_rulesets_chain() {
        let billing = Uuid::from_u128(1);
        let vip = Uuid::from_u128(2);
        let rulesets = vec![
            Ruleset {
                name: "intent".into(),
                rules: vec![
                    rule(
                        "billing",
                        "topic",
                        "billing",
                        Outputs {
                            attributes: [("team".into(), "money".into())].into(),
                            skills: vec![SkillRequirement {
                                skill_id: billing,
                                min_rating: 5,
                            }],
                            ..Outputs::default()
                        },
                    ),
                    rule(
                        "also billing",
                        "topic",
                        "billing",
                        Outputs {
                            priority: Some(99),
                            ..Outputs::default()
                        },
                    ),
                ],
            },
            Ruleset {
                name: "routing".into(),
                rules: vec![rule(
                    "money team",
                    "team",
                    "money",
                    Outputs {
                        priority: Some(1),
                        capacity_profile_id: Some(vip),
                        ..Outputs::default()
                    },
                )],
            },
        ];
        let out = classify(&rulesets, [("topic".to_owned(), "billing".to_owned())].into());
        assert_eq!(
            out.fired,
            vec![("intent".into(), "billing".into()), ("routing".into(), "money team".into())]
        );
        assert_eq!(out.priority, 1, "the second rule of the first ruleset never fired");
        assert_eq!(
            out.skills,
            vec![SkillRequirement {
                skill_id: billing,
                min_rating: 5
            }]
        );
        assert_eq!(out.profiles, vec![vip]);
        assert_eq!(out.facts.get("team").map(String::as_str), Some("money"));
        assert!(classify(&rulesets, Facts::new()).fired.is_empty());
    }

    #[test]
    fn limits() {
        let many = Outputs {
            attributes: (0..6).map(|i| (format!("a{i}"), "x".into())).collect(),
            ..Outputs::default()
        };
        assert!(
            validate(&[Ruleset {
                name: "r".into(),
                rules: vec![rule("too many", "x", "y", many)]
            }])
            .is_err()
        );
        assert!(
            validate(&vec![
                Ruleset {
                    name: "r".into(),
                    rules: vec![]
                };
                11
            ])
            .is_err()
        );
    }
}
