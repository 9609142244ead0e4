//! The JSON shapes of the API's resources, converted from the services' gRPC messages.
//! Timestamps are RFC 3339 strings; absent values are `null`, never empty strings.

use serde::{Deserialize, Serialize};
use switchboard_domain::ids::{ChannelId, NumberId, TemplateId, WorkstreamId};
use switchboard_proto::common::v1 as cpb;
use switchboard_proto::session::v1 as spb;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

mod work;
pub use work::{AgentStatus, ConfigObject, Conversation, Customer, Media, Message, Offer, QueueStat, WorkItem};

pub use crate::timefmt::{rfc3339, timestamp};

pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// An id a service answered with, typed. A malformed one is the service's fault, answered 500.
pub(crate) fn wire<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::internal(format!("a service answered a malformed {what}: {raw:?}")))
}

/// The values of a comma-separated query parameter (`status=open,active`), trimmed; none when
/// it is absent.
pub(crate) fn comma_list(param: Option<String>) -> Vec<String> {
    param
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default()
}

/// A closed set a service answered with (its typed field, or its text from an older replica).
/// A value outside the set is the service's fault, answered 500.
pub(crate) fn closed<T: switchboard_proto::closed_sets::WireEnum>(code: i32, text: &str, what: &str) -> Result<T, ApiError> {
    switchboard_proto::closed_sets::read(code, text).map_err(|e| ApiError::internal(format!("a service answered a malformed {what}: {e}")))
}

/// Like [`wire`], for an id that may be absent (empty).
pub(crate) fn wire_opt<T: std::str::FromStr>(raw: &str, what: &str) -> Result<Option<T>, ApiError> {
    if raw.is_empty() { Ok(None) } else { wire(raw, what).map(Some) }
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
    /// This page's items, in the list's order.
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
    #[schema(value_type = Option<String>, format = Uuid)]
    pub workstream_id: Option<WorkstreamId>,
    /// Messages per second Twilio may be sent from this number.
    pub send_rate_per_second: f64,
    /// Send the survey link when a conversation is closed.
    pub survey_enabled: bool,
    /// Survey URL; the conversation id is appended as `conversation_id`.
    pub survey_url: Option<String>,
    /// Survey invitation text, inside the 24-hour window.
    pub survey_message: Option<String>,
    /// Approved template for the survey outside the window.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub survey_template_id: Option<TemplateId>,
}

impl TryFrom<spb::NumberSettings> for NumberSettings {
    type Error = ApiError;

    fn try_from(s: spb::NumberSettings) -> Result<Self, ApiError> {
        Ok(Self {
            default_language: s.default_language,
            customer_attachments: s.customer_attachments,
            agent_attachments: s.agent_attachments,
            max_attachment_bytes: s.max_attachment_bytes,
            workstream_id: wire_opt(&s.workstream_id, "workstream id")?,
            send_rate_per_second: s.send_rate_per_second,
            survey_enabled: s.survey_enabled,
            survey_url: non_empty(s.survey_url),
            survey_message: non_empty(s.survey_message),
            survey_template_id: wire_opt(&s.survey_template_id, "template id")?,
        })
    }
}

impl From<NumberSettings> for spb::NumberSettings {
    fn from(s: NumberSettings) -> Self {
        Self {
            default_language: s.default_language,
            customer_attachments: s.customer_attachments,
            agent_attachments: s.agent_attachments,
            max_attachment_bytes: s.max_attachment_bytes,
            workstream_id: s.workstream_id.map(|w| w.to_string()).unwrap_or_default(),
            send_rate_per_second: s.send_rate_per_second,
            survey_enabled: s.survey_enabled,
            survey_url: s.survey_url.unwrap_or_default(),
            survey_message: s.survey_message.unwrap_or_default(),
            survey_template_id: s.survey_template_id.map(|t| t.to_string()).unwrap_or_default(),
        }
    }
}

/// A WhatsApp sender number of a channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct Number {
    pub id: NumberId,
    pub channel_id: ChannelId,
    /// E.164.
    pub phone: String,
    pub display_name: String,
    pub active: bool,
    pub settings: NumberSettings,
    pub created_at: Option<String>,
}

impl TryFrom<spb::Number> for Number {
    type Error = ApiError;

    fn try_from(n: spb::Number) -> Result<Self, ApiError> {
        Ok(Self {
            created_at: timestamp(n.created_at.as_ref()),
            id: wire(&n.id, "number id")?,
            channel_id: wire(&n.channel_id, "channel id")?,
            phone: n.phone,
            display_name: n.display_name,
            active: n.active,
            settings: n.settings.map(TryInto::try_into).transpose()?.unwrap_or_default(),
        })
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
    pub number_id: NumberId,
    pub name: String,
    pub default_language: String,
    pub localizations: Vec<TemplateLocalization>,
}

impl TryFrom<spb::Template> for Template {
    type Error = ApiError;

    fn try_from(t: spb::Template) -> Result<Self, ApiError> {
        Ok(Self {
            number_id: wire(&t.number_id, "number id")?,
            id: t.id,
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
        })
    }
}

/// An automated message (greeting, queue closed, agent assigned, …).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutomatedMessage {
    pub channel_id: ChannelId,
    /// Only for this number; every number of the channel when absent.
    #[serde(default)]
    pub number_id: Option<NumberId>,
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

impl TryFrom<spb::AutomatedMessage> for AutomatedMessage {
    type Error = ApiError;

    fn try_from(m: spb::AutomatedMessage) -> Result<Self, ApiError> {
        Ok(Self {
            channel_id: wire(&m.channel_id, "channel id")?,
            number_id: wire_opt(&m.number_id, "number id")?,
            trigger: m.trigger,
            language: m.language,
            text: m.text,
            active: m.active,
            source: m.source,
        })
    }
}
