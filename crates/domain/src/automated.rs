//! Automated messages (Dynamics' catalogue, the triggers that apply to WhatsApp) and their
//! rendering: `{AgentName}`, `{QueueName}` slugs and `{$Var$}` context variables (letters,
//! digits and `_`, case-sensitive; an unknown one renders as nothing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conversation::{ConversationStatus, Transition};

/// When an automated message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// First message on a new conversation.
    Greeting,
    /// An agent was assigned.
    AgentAssigned,
    /// The agent accepted and joined.
    AgentJoined,
    /// No agent could be assigned because of a system failure (not "no agent available").
    AgentUnavailable,
    /// The agent disconnected.
    AgentDisconnected,
    /// The agent pressed End.
    AgentEnded,
    /// The agent ended and closed the session.
    SessionEnded,
    /// The conversation started outside the queue's operating hours.
    OutOfOperatingHours,
    /// The conversation started on a holiday.
    Holiday,
    /// Overflow action "end conversation".
    OverflowEnd,
    /// A transfer to another agent was accepted.
    TransferAccepted,
}

impl Trigger {
    /// Every trigger, in display order.
    pub const ALL: [Trigger; 11] = [
        Self::Greeting,
        Self::AgentAssigned,
        Self::AgentJoined,
        Self::AgentUnavailable,
        Self::AgentDisconnected,
        Self::AgentEnded,
        Self::SessionEnded,
        Self::OutOfOperatingHours,
        Self::Holiday,
        Self::OverflowEnd,
        Self::TransferAccepted,
    ];

    /// Returns the snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::AgentAssigned => "agent_assigned",
            Self::AgentJoined => "agent_joined",
            Self::AgentUnavailable => "agent_unavailable",
            Self::AgentDisconnected => "agent_disconnected",
            Self::AgentEnded => "agent_ended",
            Self::SessionEnded => "session_ended",
            Self::OutOfOperatingHours => "out_of_operating_hours",
            Self::Holiday => "holiday",
            Self::OverflowEnd => "overflow_end",
            Self::TransferAccepted => "transfer_accepted",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Returns the out-of-the-box text.
    pub fn default_text(self) -> &'static str {
        match self {
            Self::Greeting => "Thanks for contacting us. An agent will be with you shortly.",
            Self::AgentAssigned => "{AgentName} will be helping you today.",
            Self::AgentJoined => "{AgentName} has joined the conversation.",
            Self::AgentUnavailable => "Sorry, we couldn't connect you to an agent. Please try again later.",
            Self::AgentDisconnected => "{AgentName} was disconnected. We'll reconnect you as soon as possible.",
            Self::AgentEnded => "{AgentName} has ended the conversation.",
            Self::SessionEnded => "This conversation has ended. Thank you for contacting us.",
            Self::OutOfOperatingHours => "We're currently closed. We'll get back to you during our business hours.",
            Self::Holiday => "We're closed for a holiday. We'll get back to you when we reopen.",
            Self::OverflowEnd => "All our agents are busy right now. Please try again later.",
            Self::TransferAccepted => "{AgentName} has joined the conversation.",
        }
    }
}

impl Trigger {
    /// Whether a deactivated message of this trigger is still sent, with the default text:
    /// Dynamics does so for the overflow and closed-queue messages, which tell the customer
    /// why nobody will answer.
    pub fn falls_back_when_inactive(self) -> bool {
        matches!(self, Self::OverflowEnd | Self::OutOfOperatingHours | Self::Holiday)
    }
}

/// The automated message a lifecycle transition sends, if any. `with_agent`: the conversation
/// now has an agent (not a bot); `transfer_pending`: it was transferred and this is the
/// transfer's accept.
pub fn trigger_for(transition: Transition, to: ConversationStatus, with_agent: bool, transfer_pending: bool) -> Option<Trigger> {
    match (transition, to) {
        (Transition::Accept | Transition::Pick | Transition::SupervisorAssign, ConversationStatus::Active)
            if with_agent && transfer_pending =>
        {
            Some(Trigger::TransferAccepted)
        }
        // The agent accepted (or took) it: they joined.
        (Transition::Accept | Transition::Pick, ConversationStatus::Active) if with_agent => Some(Trigger::AgentJoined),
        // A supervisor gave it to an agent, who did not accept anything: it was assigned.
        (Transition::SupervisorAssign, ConversationStatus::Active) if with_agent => Some(Trigger::AgentAssigned),
        (Transition::End, ConversationStatus::WrapUp) => Some(Trigger::AgentEnded),
        (Transition::CloseSession, ConversationStatus::Closed) => Some(Trigger::SessionEnded),
        // Closed by overflow, or because the queue has no agents at all: both are the overflow
        // "end conversation" message.
        (Transition::OverflowEnd | Transition::NoAgents, ConversationStatus::Closed) => Some(Trigger::OverflowEnd),
        _ => None,
    }
}

/// The languages to look for an automated message in, best first: the customer's (a `language`
/// context variable, set by a bot or a classification rule), the workstream's default, the
/// number's default. Blank and repeated ones are dropped.
pub fn preferred_languages(customer: Option<&str>, workstream: Option<&str>, number: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for language in [customer, workstream, Some(number)].into_iter().flatten() {
        let language = language.trim();
        if !language.is_empty() && !out.iter().any(|l| l.eq_ignore_ascii_case(language)) {
            out.push(language.to_owned());
        }
    }
    out
}

/// Values available when rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderContext {
    /// The agent's display name.
    pub agent_name: Option<String>,
    /// The queue's name.
    pub queue_name: Option<String>,
    /// Context variables (bot outputs, classification attributes).
    pub variables: BTreeMap<String, String>,
}

/// Renders `text`: `{AgentName}`, `{QueueName}` and `{$Var$}`; unknown ones become "".
pub fn render(text: &str, ctx: &RenderContext) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("{$")
            && let Some(end) = after.find("$}")
            && is_variable_name(&after[..end])
        {
            out.push_str(ctx.variables.get(&after[..end]).map(String::as_str).unwrap_or(""));
            rest = &after[end + 2..];
            continue;
        }
        let (slug, value) = if tail.starts_with("{AgentName}") {
            ("{AgentName}", ctx.agent_name.as_deref())
        } else if tail.starts_with("{QueueName}") {
            ("{QueueName}", ctx.queue_name.as_deref())
        } else {
            out.push('{');
            rest = &tail[1..];
            continue;
        };
        out.push_str(value.unwrap_or(""));
        rest = &tail[slug.len()..];
    }
    out.push_str(rest);
    out
}

/// Returns whether `name` is a valid context-variable name.
pub fn is_variable_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_slugs_and_variables() {
        let ctx = RenderContext {
            agent_name: Some("Ana".into()),
            queue_name: Some("Billing".into()),
            variables: [("OrderId".to_owned(), "123".to_owned())].into(),
        };
        assert_eq!(
            render("{AgentName} from {QueueName} is on order {$OrderId$}.", &ctx),
            "Ana from Billing is on order 123."
        );
        assert_eq!(
            render("Unknown {$Missing$} and {$orderid$}!", &ctx),
            "Unknown  and !",
            "case-sensitive, unknown → empty"
        );
        assert_eq!(render("{AgentName} joined", &RenderContext::default()), " joined");
        assert_eq!(render("braces {stay} and {$bad name$}", &ctx), "braces {stay} and {$bad name$}");
    }

    #[test]
    fn transitions_send_the_messages_dynamics_sends() {
        use ConversationStatus::{Active, Closed, Open, WrapUp};
        assert_eq!(trigger_for(Transition::Accept, Active, true, false), Some(Trigger::AgentJoined));
        assert_eq!(trigger_for(Transition::Accept, Active, false, false), None, "a bot took it");
        assert_eq!(
            trigger_for(Transition::SupervisorAssign, Active, true, false),
            Some(Trigger::AgentAssigned)
        );
        assert_eq!(trigger_for(Transition::Accept, Active, true, true), Some(Trigger::TransferAccepted));
        assert_eq!(
            trigger_for(Transition::SupervisorAssign, Active, true, true),
            Some(Trigger::TransferAccepted)
        );
        assert_eq!(trigger_for(Transition::End, WrapUp, true, false), Some(Trigger::AgentEnded));
        assert_eq!(trigger_for(Transition::NoAgents, Closed, false, false), Some(Trigger::OverflowEnd));
        assert_eq!(
            trigger_for(Transition::OverflowEnd, Closed, false, false),
            Some(Trigger::OverflowEnd)
        );
        assert_eq!(trigger_for(Transition::ReleaseToQueue, Open, false, false), None);
    }

    #[test]
    fn languages_are_the_customers_then_the_workstreams_then_the_numbers() {
        assert_eq!(preferred_languages(Some("pt-BR"), Some("es"), "en"), ["pt-BR", "es", "en"]);
        assert_eq!(preferred_languages(None, Some(" "), "en"), ["en"]);
        assert_eq!(preferred_languages(Some("EN"), None, "en"), ["EN"]);
        assert!(Trigger::OverflowEnd.falls_back_when_inactive());
        assert!(!Trigger::Greeting.falls_back_when_inactive());
    }

    #[test]
    fn every_trigger_has_a_default_and_a_name() {
        for t in Trigger::ALL {
            assert!(!t.default_text().is_empty());
            assert_eq!(Trigger::parse(t.as_str()), Some(t));
        }
    }
}
