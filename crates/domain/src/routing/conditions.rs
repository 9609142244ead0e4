//! Conditions over a conversation's facts (its attributes, context variables and built-ins such
//! as `language`, `number_id`, `first_message`, `customer.phone`, `customer.bsuid`, `button.payload`). String
//! comparisons ignore case.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The facts a condition looks at.
pub type Facts = BTreeMap<String, String>;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    /// Any of the comma-separated values.
    In,
    /// A regular expression.
    Regex,
    Exists,
    NotExists,
    GreaterThan,
    LessThan,
}

/// `attribute op value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The fact's name.
    pub attribute: String,
    /// The comparison.
    pub op: Op,
    /// The value compared with (unused by exists / not exists).
    #[serde(default)]
    pub value: String,
}

impl Condition {
    /// Returns whether `facts` satisfy the condition.
    pub fn holds(&self, facts: &Facts) -> bool {
        let fact = facts.get(&self.attribute);
        let lower = |s: &str| s.to_lowercase();
        match (self.op, fact) {
            (Op::Exists, f) => f.is_some_and(|v| !v.is_empty()),
            (Op::NotExists, f) => f.is_none_or(String::is_empty),
            (Op::NotEquals, None) | (Op::NotContains, None) => true,
            (_, None) => false,
            (Op::Equals, Some(v)) => lower(v) == lower(&self.value),
            (Op::NotEquals, Some(v)) => lower(v) != lower(&self.value),
            (Op::Contains, Some(v)) => lower(v).contains(&lower(&self.value)),
            (Op::NotContains, Some(v)) => !lower(v).contains(&lower(&self.value)),
            (Op::StartsWith, Some(v)) => lower(v).starts_with(&lower(&self.value)),
            (Op::In, Some(v)) => self.value.split(',').any(|c| lower(c.trim()) == lower(v)),
            (Op::Regex, Some(v)) => regex::Regex::new(&self.value).is_ok_and(|r| r.is_match(v)),
            (Op::GreaterThan, Some(v)) => numbers(v, &self.value).is_some_and(|(a, b)| a > b),
            (Op::LessThan, Some(v)) => numbers(v, &self.value).is_some_and(|(a, b)| a < b),
        }
    }

    /// Returns why the condition can never work (bad regex, non-numeric comparison).
    pub fn validate(&self) -> Result<(), String> {
        if self.attribute.trim().is_empty() {
            return Err("a condition needs an attribute".into());
        }
        match self.op {
            Op::Regex => regex::Regex::new(&self.value)
                .map(|_| ())
                .map_err(|e| format!("invalid regular expression {:?}: {e}", self.value)),
            Op::GreaterThan | Op::LessThan if self.value.trim().parse::<f64>().is_err() => Err(format!("{:?} is not a number", self.value)),
            _ => Ok(()),
        }
    }
}

fn numbers(a: &str, b: &str) -> Option<(f64, f64)> {
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Returns whether every condition holds (an empty list always holds).
pub fn all_hold(conditions: &[Condition], facts: &Facts) -> bool {
    conditions.iter().all(|c| c.holds(facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(attribute: &str, op: Op, value: &str) -> Condition {
        Condition {
            attribute: attribute.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn comparisons() {
        let facts: Facts = [
            ("language".to_owned(), "pt_BR".to_owned()),
            ("first_message".to_owned(), "Quero CANCELAR meu pedido".to_owned()),
            ("score".to_owned(), "7".to_owned()),
        ]
        .into();
        assert!(c("language", Op::Equals, "PT_br").holds(&facts));
        assert!(c("first_message", Op::Contains, "cancelar").holds(&facts));
        assert!(c("language", Op::In, "en, pt_BR").holds(&facts));
        assert!(c("first_message", Op::Regex, r"(?i)cancel").holds(&facts));
        assert!(c("score", Op::GreaterThan, "5").holds(&facts) && !c("score", Op::LessThan, "5").holds(&facts));
        assert!(c("vip", Op::NotExists, "").holds(&facts) && !c("vip", Op::Exists, "").holds(&facts));
        assert!(
            c("vip", Op::NotEquals, "true").holds(&facts),
            "a missing fact is not equal to anything"
        );
        assert!(!c("vip", Op::Equals, "").holds(&facts));
        assert!(all_hold(&[], &facts));
    }

    #[test]
    fn validation() {
        assert!(c("x", Op::Regex, "(").validate().is_err());
        assert!(c("x", Op::GreaterThan, "many").validate().is_err());
        assert!(c("", Op::Equals, "x").validate().is_err());
        assert!(c("x", Op::Equals, "y").validate().is_ok());
    }
}
