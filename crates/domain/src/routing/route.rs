//! Route-to-queue: rules in order; the first matching rule whose (split-chosen) queue is not
//! overflowing wins; if every matched queue overflows the first one is used and its overflow
//! action runs; no match sends the item to the workstream's fallback queue, where overflow is
//! ignored (Dynamics §3.3).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::conditions::{Condition, Facts, all_hold};

/// Most route-to-queue rules per workstream.
pub const MAX_RULES: usize = 200;

/// A queue and its share of a rule's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitTarget {
    /// The queue.
    pub queue_id: Uuid,
    /// Percent (all targets of a rule add up to 100).
    pub percent: u8,
}

/// A route-to-queue rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRule {
    /// Shown in the routing diagnostics as the rule that matched.
    pub name: String,
    /// All must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// One queue, or up to five sharing the items by percentage.
    pub targets: Vec<SplitTarget>,
}

/// Where a work item goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOutcome {
    /// The queue.
    pub queue_id: Uuid,
    /// The rule that chose it (`None`: the fallback queue).
    pub rule: Option<String>,
    /// The queue overflows: its overflow action must run.
    pub overflowing: bool,
}

/// Returns the split bucket (0–99) of a work item: stable, so a reroute keeps its queue.
pub fn bucket(key: &str) -> u8 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u8::try_from(hash % 100).unwrap_or(0)
}

fn split(targets: &[SplitTarget], bucket: u8) -> Option<Uuid> {
    let mut upto = 0u16;
    for t in targets {
        upto += u16::from(t.percent);
        if u16::from(bucket) < upto {
            return Some(t.queue_id);
        }
    }
    targets.last().map(|t| t.queue_id)
}

/// Routes a work item with key `key` (its conversation id) and `facts`.
pub fn route(rules: &[RouteRule], facts: &Facts, key: &str, fallback: Uuid, overflowing: impl Fn(Uuid) -> bool) -> RouteOutcome {
    let b = bucket(key);
    let mut first_overflowing = None;
    for rule in rules.iter().filter(|r| all_hold(&r.conditions, facts)) {
        let Some(queue_id) = split(&rule.targets, b) else { continue };
        if !overflowing(queue_id) {
            return RouteOutcome {
                queue_id,
                rule: Some(rule.name.clone()),
                overflowing: false,
            };
        }
        first_overflowing.get_or_insert(RouteOutcome {
            queue_id,
            rule: Some(rule.name.clone()),
            overflowing: true,
        });
    }
    first_overflowing.unwrap_or(RouteOutcome {
        queue_id: fallback,
        rule: None,
        overflowing: false,
    })
}

/// Returns the first limit or rule the rules break.
pub fn validate(rules: &[RouteRule]) -> Result<(), String> {
    if rules.len() > MAX_RULES {
        return Err(format!("at most {MAX_RULES} route-to-queue rules per workstream"));
    }
    for rule in rules {
        if rule.targets.is_empty() || rule.targets.len() > 5 {
            return Err(format!("rule {:?} must name 1 to 5 queues", rule.name));
        }
        let total: u32 = rule.targets.iter().map(|t| u32::from(t.percent)).sum();
        if total != 100 {
            return Err(format!("rule {:?}: the queue percentages add up to {total}, not 100", rule.name));
        }
        for c in &rule.conditions {
            c.validate().map_err(|e| format!("rule {:?}: {e}", rule.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::conditions::Op;
    use super::*;

    fn q(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn when(attribute: &str, value: &str) -> Vec<Condition> {
        vec![Condition {
            attribute: attribute.into(),
            op: Op::Equals,
            value: value.into(),
        }]
    }

    #[test]
    fn first_matching_rule_wins_and_no_match_falls_back() {
        let rules = vec![
            RouteRule {
                name: "pt".into(),
                conditions: when("language", "pt_BR"),
                targets: vec![SplitTarget {
                    queue_id: q(1),
                    percent: 100,
                }],
            },
            RouteRule {
                name: "all".into(),
                conditions: vec![],
                targets: vec![SplitTarget {
                    queue_id: q(2),
                    percent: 100,
                }],
            },
        ];
        let pt: Facts = [("language".to_owned(), "pt_BR".to_owned())].into();
        assert_eq!(route(&rules, &pt, "c1", q(9), |_| false).queue_id, q(1));
        assert_eq!(route(&rules, &Facts::new(), "c1", q(9), |_| false).queue_id, q(2));
        assert_eq!(
            route(&rules[..1], &Facts::new(), "c1", q(9), |_| false),
            RouteOutcome {
                queue_id: q(9),
                rule: None,
                overflowing: false
            }
        );
    }

    #[test]
    fn an_overflowing_queue_is_skipped_and_if_all_overflow_the_first_is_flagged() {
        let rules = vec![
            RouteRule {
                name: "a".into(),
                conditions: vec![],
                targets: vec![SplitTarget {
                    queue_id: q(1),
                    percent: 100,
                }],
            },
            RouteRule {
                name: "b".into(),
                conditions: vec![],
                targets: vec![SplitTarget {
                    queue_id: q(2),
                    percent: 100,
                }],
            },
        ];
        assert_eq!(route(&rules, &Facts::new(), "c", q(9), |queue| queue == q(1)).queue_id, q(2));
        let all = route(&rules, &Facts::new(), "c", q(9), |_| true);
        assert_eq!((all.queue_id, all.overflowing), (q(1), true));
    }

    #[test]
    fn percentage_split_is_within_tolerance_over_10000_items() {
        let rule = RouteRule {
            name: "split".into(),
            conditions: vec![],
            targets: vec![
                SplitTarget {
                    queue_id: q(1),
                    percent: 50,
                },
                SplitTarget {
                    queue_id: q(2),
                    percent: 30,
                },
                SplitTarget {
                    queue_id: q(3),
                    percent: 20,
                },
            ],
        };
        let mut counts = [0u32; 3];
        for i in 0..10_000 {
            let out = route(
                std::slice::from_ref(&rule),
                &Facts::new(),
                &Uuid::from_u128(i * 7_919 + 13).to_string(),
                q(9),
                |_| false,
            );
            counts[usize::try_from(out.queue_id.as_u128() - 1).unwrap()] += 1;
        }
        for (got, want) in counts.iter().zip([5_000, 3_000, 2_000]) {
            assert!(got.abs_diff(want) <= 250, "{counts:?}");
        }
        assert_eq!(
            route(std::slice::from_ref(&rule), &Facts::new(), "same", q(9), |_| false),
            route(&[rule], &Facts::new(), "same", q(9), |_| false),
            "stable per item"
        );
    }

    #[test]
    fn validation() {
        let bad = RouteRule {
            name: "x".into(),
            conditions: vec![],
            targets: vec![
                SplitTarget {
                    queue_id: q(1),
                    percent: 60,
                },
                SplitTarget {
                    queue_id: q(2),
                    percent: 30,
                },
            ],
        };
        assert!(validate(&[bad]).unwrap_err().contains("90"));
        let six = RouteRule {
            name: "x".into(),
            conditions: vec![],
            targets: (0..6)
                .map(|i| SplitTarget {
                    queue_id: q(i),
                    percent: if i == 0 { 50 } else { 10 },
                })
                .collect(),
        };
        assert!(validate(&[six]).is_err());
    }
}
