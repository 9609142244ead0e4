//! What Switchboard POSTs to a bot and what the bot answers (`docs/bots.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_bus::events::{BotCustomer, BotMessage, BotTurnV1};
use switchboard_domain::ids::{BotId, ChannelId, ConversationId, QueueId, TurnId, WorkstreamId};

/// The request body of one turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BotRequest {
    /// The same on every attempt of this turn: a bot can recognise a repeated call.
    pub turn_id: TurnId,
    pub bot_id: BotId,
    pub conversation: ConversationInfo,
    pub customer: BotCustomer,
    /// The customer messages to answer, oldest first.
    pub messages: Vec<BotMessage>,
    /// Context variables so far (set by earlier turns, classification and the channel).
    pub context: BTreeMap<String, String>,
}

/// The conversation, as a bot sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationInfo {
    pub id: ConversationId,
    pub channel_id: ChannelId,
    /// The business number (E.164).
    pub number: String,
    pub workstream_id: Option<WorkstreamId>,
    pub language: String,
    /// Free-form replies are allowed until then; afterwards only approved templates.
    #[serde(with = "time::serde::rfc3339::option")]
    pub window_expires_at: Option<time::OffsetDateTime>,
}

impl From<&BotTurnV1> for BotRequest {
    fn from(t: &BotTurnV1) -> Self {
        Self {
            turn_id: t.turn_id,
            bot_id: t.bot_id,
            conversation: ConversationInfo {
                id: t.conversation_id,
                channel_id: t.channel_id,
                number: t.number.clone(),
                workstream_id: t.workstream_id,
                language: t.language.clone(),
                window_expires_at: t.window_expires_at,
            },
            customer: t.customer.clone(),
            messages: t.messages.clone(),
            context: t.context.clone(),
        }
    }
}

/// A bot's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotResponse {
    /// Messages to send, in order (none is fine).
    #[serde(default)]
    pub replies: Vec<Reply>,
    /// Context variables to set on the conversation.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// What happens next; absent: the bot keeps the conversation.
    #[serde(default)]
    pub action: Option<Action>,
}

/// One reply: exactly one of its fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub text: Option<String>,
    pub media: Option<MediaReply>,
    pub template: Option<TemplateReply>,
    /// Quick replies: sent as text with numbered options (WhatsApp's interactive buttons need a
    /// Content template; a bot that has one sends it as `template`).
    pub buttons: Option<ButtonsReply>,
}

/// A file Twilio fetches from a public HTTPS URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaReply {
    pub url: String,
    pub content_type: String,
    #[serde(default)]
    pub caption: String,
}

/// An approved template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateReply {
    pub name: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub variables: std::collections::HashMap<String, String>,
}

/// A question with options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ButtonsReply {
    pub text: String,
    pub options: Vec<String>,
}

/// What the bot decided.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Hand the conversation to people.
    Escalate {
        /// A queue to use instead of the route-to-queue rules.
        #[serde(default)]
        queue_id: Option<QueueId>,
        /// Skills to require, `[{"skill_id": "…", "min_rating": 5}]`.
        #[serde(default)]
        skills: Vec<serde_json::Value>,
        /// Why (recorded in the transcript).
        #[serde(default)]
        reason: String,
    },
    /// Close the conversation, optionally with a last message.
    End {
        #[serde(default)]
        message: Option<String>,
    },
}

impl Reply {
    /// Checks that exactly one kind of content is given and it is not empty.
    pub fn validate(&self) -> Result<(), String> {
        let given = [
            self.text.is_some(),
            self.media.is_some(),
            self.template.is_some(),
            self.buttons.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err("each reply needs exactly one of text, media, template, buttons".into());
        }
        if let Some(b) = &self.buttons
            && (b.options.is_empty() || b.options.len() > 10)
        {
            return Err("buttons need 1 to 10 options".into());
        }
        Ok(())
    }
}

impl BotResponse {
    /// Parses and validates a bot's answer.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let response: Self = serde_json::from_slice(bytes).map_err(|e| format!("the answer is not valid: {e}"))?;
        for reply in &response.replies {
            reply.validate()?;
        }
        if response.replies.len() > 10 {
            return Err("at most 10 replies per turn".into());
        }
        Ok(response)
    }
}

/// Renders quick replies as text.
pub fn render_buttons(b: &ButtonsReply) -> String {
    let mut text = b.text.clone();
    text.push('\n');
    for (i, option) in b.options.iter().enumerate() {
        text.push_str(&format!("\n{}. {option}", i + 1));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_validated() {
        let ok = BotResponse::parse(
            br#"{"replies":[{"text":"hi"},{"buttons":{"text":"Pick","options":["A","B"]}}],"action":{"type":"escalate","reason":"asked"}}"#,
        )
        .unwrap();
        assert_eq!(ok.replies.len(), 2);
        assert!(matches!(ok.action, Some(Action::Escalate { .. })));
        assert_eq!(render_buttons(ok.replies[1].buttons.as_ref().unwrap()), "Pick\n\n1. A\n2. B");
        assert!(BotResponse::parse(br#"{"replies":[{"text":"a","template":{"name":"x"}}]}"#).is_err());
        assert!(BotResponse::parse(br#"{"replies":[{}]}"#).is_err());
        assert!(BotResponse::parse(br#"{"reply":"typo"}"#).is_err());
        assert!(BotResponse::parse(b"<html>").is_err());
        assert!(BotResponse::parse(br#"{"action":{"type":"dance"}}"#).is_err());
        assert!(BotResponse::parse(b"{}").unwrap().replies.is_empty());
    }
}
