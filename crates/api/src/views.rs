//! The JSON shapes of the API's resources, converted from the services' gRPC messages.
//! Timestamps are RFC 3339 strings; absent values are `null`, never empty strings.

use serde::{Deserialize, Serialize};
use switchboard_proto::common::v1 as cpb;
use switchboard_proto::routing::v1 as rpb;
use switchboard_proto::session::v1 as spb;
use utoipa::{IntoParams, ToSchema};

/// Formats a protobuf timestamp as RFC 3339.
pub fn rfc3339(ts: &prost_types::Timestamp) -> Option<String> {
    switchboard_proto::time::datetime(ts)?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A protobuf timestamp, when present, as RFC 3339.
pub fn timestamp(value: Option<&prost_types::Timestamp>) -> Option<String> {
    value.and_then(rfc3339)
}

pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Pagination: `page_size` (1–200) and the `page_token` a previous page returned.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 50, at most 200).
    #[serde(default, deserialize_with = "page_size")]
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// Deserializes `page_size`, refusing values outside 1–200.
pub(crate) fn page_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let size = Option::<u32>::deserialize(d)?;
    match size {
        Some(n) if !(1..=200).contains(&n) => Err(serde::de::Error::custom("page_size must be between 1 and 200")),
        _ => Ok(size),
    }
}

impl PageQuery {
    /// The gRPC page request.
    pub fn to_pb(&self) -> cpb::PageRequest {
        cpb::PageRequest {
            page_size: self.page_size.unwrap_or(50).clamp(1, 200),
            page_token: self.page_token.clone().unwrap_or_default(),
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `page_token` for the next page; `null` on the last page.
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    /// A page from items and the gRPC page info.
    pub fn new(items: Vec<T>, info: Option<cpb::PageInfo>) -> Self {
        Self {
            items,
            next_page_token: info.and_then(|p| non_empty(p.next_page_token)),
        }
    }
}

/// A Twilio account connected to Switchboard. Its auth token is never returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub account_sid: String,
    pub sandbox: bool,
    pub sandbox_join_code: Option<String>,
    pub active: bool,
    /// Paste into the Twilio console as "When a message comes in".
    pub inbound_url: String,
    /// Paste into the Twilio console as "Status callback URL".
    pub status_url: String,
    /// Paste into the Twilio console as "Fallback URL" (a second ingress), when configured.
    pub fallback_url: Option<String>,
    pub created_at: Option<String>,
    /// What the sandbox does not do (shown when `sandbox`).
    pub sandbox_notes: Option<String>,
    /// The periodic check: `unknown`, `healthy` or `unhealthy`.
    pub health: String,
    /// Why it is not healthy.
    pub health_reason: Option<String>,
    pub health_checked_at: Option<String>,
}

impl From<spb::Channel> for Channel {
    fn from(c: spb::Channel) -> Self {
        Self {
            created_at: timestamp(c.created_at.as_ref()),
            health_checked_at: timestamp(c.health_checked_at.as_ref()),
            health: c.health,
            health_reason: non_empty(c.health_reason),
            id: c.id,
            name: c.name,
            account_sid: c.account_sid,
            sandbox: c.sandbox,
            sandbox_join_code: non_empty(c.sandbox_join_code),
            active: c.active,
            inbound_url: c.inbound_url,
            status_url: c.status_url,
            fallback_url: non_empty(c.fallback_url),
            sandbox_notes: non_empty(c.sandbox_notes),
        }
    }
}

/// Settings of a WhatsApp number.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct NumberSettings {
    /// BCP 47 language of automated messages and templates (e.g. `en-US`).
    pub default_language: String,
    /// Customers may send files.
    pub customer_attachments: bool,
    /// Agents may send files.
    pub agent_attachments: bool,
    /// Largest file, bytes (WhatsApp: 16 MB).
    pub max_attachment_bytes: u64,
    /// Workstream its conversations enter.
    pub workstream_id: Option<String>,
    /// Messages per second Twilio may be sent from this number.
    pub send_rate_per_second: f64,
    /// Send the survey link when a conversation is closed.
    pub survey_enabled: bool,
    /// Survey URL; the conversation id is appended as `conversation_id`.
    pub survey_url: Option<String>,
    /// Survey invitation text, inside the 24-hour window.
    pub survey_message: Option<String>,
    /// Approved template for the survey outside the window.
    pub survey_template_id: Option<String>,
}

impl From<spb::NumberSettings> for NumberSettings {
    fn from(s: spb::NumberSettings) -> Self {
        Self {
            default_language: s.default_language,
            customer_attachments: s.customer_attachments,
            agent_attachments: s.agent_attachments,
            max_attachment_bytes: s.max_attachment_bytes,
            workstream_id: non_empty(s.workstream_id),
            send_rate_per_second: s.send_rate_per_second,
            survey_enabled: s.survey_enabled,
            survey_url: non_empty(s.survey_url),
            survey_message: non_empty(s.survey_message),
            survey_template_id: non_empty(s.survey_template_id),
        }
    }
}

impl From<NumberSettings> for spb::NumberSettings {
    fn from(s: NumberSettings) -> Self {
        Self {
            default_language: s.default_language,
            customer_attachments: s.customer_attachments,
            agent_attachments: s.agent_attachments,
            max_attachment_bytes: s.max_attachment_bytes,
            workstream_id: s.workstream_id.unwrap_or_default(),
            send_rate_per_second: s.send_rate_per_second,
            survey_enabled: s.survey_enabled,
            survey_url: s.survey_url.unwrap_or_default(),
            survey_message: s.survey_message.unwrap_or_default(),
            survey_template_id: s.survey_template_id.unwrap_or_default(),
        }
    }
}

/// A WhatsApp sender number of a channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct Number {
    pub id: String,
    pub channel_id: String,
    /// E.164.
    pub phone: String,
    pub display_name: String,
    pub active: bool,
    pub settings: NumberSettings,
    pub created_at: Option<String>,
}

impl From<spb::Number> for Number {
    fn from(n: spb::Number) -> Self {
        Self {
            created_at: timestamp(n.created_at.as_ref()),
            id: n.id,
            channel_id: n.channel_id,
            phone: n.phone,
            display_name: n.display_name,
            active: n.active,
            settings: n.settings.map(Into::into).unwrap_or_default(),
        }
    }
}

/// One language of a template.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateLocalization {
    pub language: String,
    /// Text with `{{1}}`-style variables.
    pub text: String,
    /// Twilio Content SID (`HX…`).
    pub content_sid: String,
    /// approved, pending, rejected, paused, disabled.
    #[serde(default)]
    pub status: String,
    /// `twilio/text` (the default), `twilio/media`, `twilio/quick-reply`, `twilio/list-picker`
    /// (sent only inside the customer's 24-hour window), `twilio/call-to-action`, `twilio/card`.
    #[serde(default)]
    pub content_type: String,
    /// That type's own fields as Twilio has them (buttons, list items, media); synced templates
    /// only, ignored on input.
    #[serde(default, skip_deserializing)]
    #[schema(value_type = Object)]
    pub content: Option<serde_json::Value>,
}

/// A WhatsApp message template.
#[derive(Debug, Serialize, ToSchema)]
pub struct Template {
    pub id: String,
    pub number_id: String,
    pub name: String,
    pub default_language: String,
    pub localizations: Vec<TemplateLocalization>,
}

impl From<spb::Template> for Template {
    fn from(t: spb::Template) -> Self {
        Self {
            id: t.id,
            number_id: t.number_id,
            name: t.name,
            default_language: t.default_language,
            localizations: t
                .localizations
                .into_iter()
                .map(|l| TemplateLocalization {
                    language: l.language,
                    text: l.text,
                    content_sid: l.content_sid,
                    status: l.status,
                    content_type: l.content_type,
                    content: serde_json::from_str(&l.content_json).ok(),
                })
                .collect(),
        }
    }
}

/// An automated message (greeting, queue closed, agent assigned, …).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutomatedMessage {
    pub channel_id: String,
    /// Only for this number; every number of the channel when absent.
    #[serde(default)]
    pub number_id: Option<String>,
    /// The trigger (e.g. `customer_in_queue`, `agent_assigned`, `conversation_ended_by_agent`).
    pub trigger: String,
    pub language: String,
    /// Text; `{AgentName}` and `{QueueName}` are replaced.
    pub text: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// `default` or `custom`.
    #[serde(default, skip_deserializing)]
    pub source: String,
}

fn yes() -> bool {
    true
}

impl From<spb::AutomatedMessage> for AutomatedMessage {
    fn from(m: spb::AutomatedMessage) -> Self {
        Self {
            channel_id: m.channel_id,
            number_id: non_empty(m.number_id),
            trigger: m.trigger,
            language: m.language,
            text: m.text,
            active: m.active,
            source: m.source,
        }
    }
}

/// The customer of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: String,
    pub phone: Option<String>,
    /// WhatsApp business-scoped user id, for customers known by username.
    pub bsuid: Option<String>,
    pub profile_name: Option<String>,
}

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    pub channel_id: String,
    pub number_id: String,
    pub workstream_id: Option<String>,
    pub customer: Option<Customer>,
    /// open, active, waiting, wrap_up, closed.
    pub status: String,
    pub status_reason: Option<String>,
    pub agent_id: Option<String>,
    /// The bot handling it, while a bot does.
    pub bot_id: Option<String>,
    pub queue_id: Option<String>,
    pub opened_at: Option<String>,
    pub last_customer_message_at: Option<String>,
    /// Free-form messages are allowed until then; templates only afterwards.
    pub window_expires_at: Option<String>,
    pub window_open: bool,
    pub closed_at: Option<String>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub first_message: String,
    /// Transfers so far (to a queue or an agent).
    pub transfer_count: u32,
}

impl From<spb::Conversation> for Conversation {
    fn from(c: spb::Conversation) -> Self {
        Self {
            opened_at: timestamp(c.opened_at.as_ref()),
            last_customer_message_at: timestamp(c.last_customer_message_at.as_ref()),
            window_expires_at: timestamp(c.window_expires_at.as_ref()),
            closed_at: timestamp(c.closed_at.as_ref()),
            id: c.id,
            channel_id: c.channel_id,
            number_id: c.number_id,
            workstream_id: non_empty(c.workstream_id),
            customer: c.customer.map(|u| Customer {
                id: u.id,
                phone: non_empty(u.phone),
                bsuid: non_empty(u.bsuid),
                profile_name: non_empty(u.profile_name),
            }),
            status: c.status,
            status_reason: non_empty(c.status_reason),
            agent_id: non_empty(c.agent_id),
            bot_id: non_empty(c.bot_id),
            queue_id: non_empty(c.queue_id),
            window_open: c.window_open,
            attributes: c.attributes.into_iter().map(|a| (a.key, a.value)).collect(),
            first_message: c.first_message,
            transfer_count: c.transfer_count,
        }
    }
}

/// A file of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Media {
    /// For a customer's file and an uploaded one: the API path that streams it (through
    /// session); for a file sent by URL: that URL.
    pub url: String,
    pub content_type: String,
    /// An uploaded file: its id, name and size.
    pub file_id: Option<String>,
    pub file_name: Option<String>,
    pub size_bytes: Option<u64>,
}

/// A message of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// Order within the conversation.
    pub seq: i64,
    /// inbound, outbound.
    pub direction: String,
    /// customer, agent, bot, system.
    pub author_kind: String,
    pub author_id: Option<String>,
    pub body: String,
    pub media: Vec<Media>,
    /// received, pending, queued, sent, delivered, read, failed, undelivered.
    pub status: String,
    pub error_code: Option<u32>,
    pub error_message: Option<String>,
    pub twilio_sid: Option<String>,
    pub created_at: Option<String>,
    /// Location, button reply, template used, … as JSON.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The W3C `traceparent` the message was handled in. Send it as the `traceparent` header of
    /// the reply to this message, and the reply continues this message's trace.
    pub traceparent: Option<String>,
    /// Inbound: when the customer was shown it read (the workstream's `read_receipts`).
    pub read_at: Option<String>,
}

impl From<spb::Message> for Message {
    fn from(m: spb::Message) -> Self {
        let inbound = m.direction == "inbound";
        let media = m
            .media
            .into_iter()
            .enumerate()
            .map(|(i, item)| Media {
                url: if inbound || !item.file_id.is_empty() {
                    format!("/api/v1/conversations/{}/messages/{}/media/{i}", m.conversation_id, m.id)
                } else {
                    item.url
                },
                content_type: item.content_type,
                size_bytes: (item.size_bytes > 0).then_some(item.size_bytes),
                file_id: non_empty(item.file_id),
                file_name: non_empty(item.file_name),
            })
            .collect();
        Self {
            created_at: timestamp(m.created_at.as_ref()),
            details: serde_json::from_str(&m.details_json).unwrap_or_else(|_| serde_json::json!({})),
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            direction: m.direction,
            author_kind: m.author_kind,
            author_id: non_empty(m.author_id),
            body: m.body,
            media,
            status: m.status,
            error_code: (m.error_code != 0).then_some(m.error_code),
            error_message: non_empty(m.error_message),
            twilio_sid: non_empty(m.twilio_sid),
            traceparent: non_empty(m.traceparent),
            read_at: timestamp(m.read_at.as_ref()),
        }
    }
}

/// An offer of a conversation to an agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Offer {
    pub id: String,
    pub conversation_id: String,
    pub agent_id: String,
    pub queue_id: Option<String>,
    pub workstream_id: Option<String>,
    pub created_at: Option<String>,
    /// Accept before this, or it goes to the next agent.
    pub expires_at: Option<String>,
    /// pending, accepted, declined, expired, cancelled.
    pub state: String,
}

impl From<rpb::Offer> for Offer {
    fn from(o: rpb::Offer) -> Self {
        Self {
            created_at: timestamp(o.created_at.as_ref()),
            expires_at: timestamp(o.expires_at.as_ref()),
            id: o.id,
            conversation_id: o.conversation_id,
            agent_id: o.agent_id,
            queue_id: non_empty(o.queue_id),
            workstream_id: non_empty(o.workstream_id),
            state: o.state,
        }
    }
}

/// A conversation's place in routing.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkItem {
    pub conversation_id: String,
    pub workstream_id: Option<String>,
    pub queue_id: Option<String>,
    /// unrouted, queued, offered, assigned, wrap_up, waiting, bot, pick_only.
    pub state: String,
    pub priority: i32,
    pub agent_id: Option<String>,
    pub offer_id: Option<String>,
    pub enqueued_at: Option<String>,
    pub last_customer_message_at: Option<String>,
    pub total_declines: i32,
    /// Attributes classification set.
    pub facts: std::collections::BTreeMap<String, String>,
    /// Skills the item needs, as JSON.
    #[schema(value_type = Object)]
    pub skills: serde_json::Value,
}

impl From<rpb::WorkItem> for WorkItem {
    fn from(w: rpb::WorkItem) -> Self {
        Self {
            enqueued_at: timestamp(w.enqueued_at.as_ref()),
            last_customer_message_at: timestamp(w.last_customer_message_at.as_ref()),
            skills: serde_json::from_str(&w.skills_json).unwrap_or(serde_json::Value::Null),
            conversation_id: w.conversation_id,
            workstream_id: non_empty(w.workstream_id),
            queue_id: non_empty(w.queue_id),
            state: w.state,
            priority: w.priority,
            agent_id: non_empty(w.agent_id),
            offer_id: non_empty(w.offer_id),
            total_declines: w.total_declines,
            facts: w.facts.into_iter().map(|a| (a.key, a.value)).collect(),
        }
    }
}

/// An agent's presence and load.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentStatus {
    pub agent_id: String,
    pub name: String,
    /// What the agent shows now: available, busy, busy_dnd, away, offline.
    pub presence: String,
    /// What the agent last chose.
    pub chosen_presence: String,
    pub capacity_units: i32,
    pub used_units: i32,
    pub active_items: i32,
    pub queue_ids: Vec<String>,
}

impl From<rpb::AgentStatus> for AgentStatus {
    fn from(a: rpb::AgentStatus) -> Self {
        Self {
            agent_id: a.agent_id,
            name: a.name,
            presence: a.presence,
            chosen_presence: a.chosen_presence,
            capacity_units: a.capacity_units,
            used_units: a.used_units,
            active_items: a.active_items,
            queue_ids: a.queue_ids,
        }
    }
}

/// Live figures of a queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStat {
    pub queue_id: String,
    pub name: String,
    pub priority: i32,
    pub waiting: u32,
    pub offered: u32,
    pub assigned: u32,
    pub longest_wait_seconds: u64,
    pub members: u32,
    pub agents_available: u32,
    /// Inside its operating hours.
    pub open: bool,
}

impl From<rpb::QueueStat> for QueueStat {
    fn from(q: rpb::QueueStat) -> Self {
        Self {
            queue_id: q.queue_id,
            name: q.name,
            priority: q.priority,
            waiting: q.waiting,
            offered: q.offered,
            assigned: q.assigned,
            longest_wait_seconds: q.longest_wait_seconds,
            members: q.members,
            agents_available: q.agents_available,
            open: q.open,
        }
    }
}

/// A routing configuration object (workstream, queue, operating hours, skill, capacity profile
/// or agent).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigObject {
    pub id: String,
    pub name: String,
    /// The kind's definition, validated by routing (an error names the field at fault).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<rpb::ConfigObject> for ConfigObject {
    fn from(c: rpb::ConfigObject) -> Self {
        Self {
            created_at: timestamp(c.created_at.as_ref()),
            updated_at: timestamp(c.updated_at.as_ref()),
            definition: serde_json::from_str(&c.definition_json).unwrap_or(serde_json::Value::Null),
            id: c.id,
            name: c.name,
        }
    }
}
