//! Conversions between session models and `session.v1` messages.

use std::collections::BTreeMap;
use switchboard_proto::closed_sets::code;

use switchboard_domain::template::Template;
use switchboard_proto::common::v1::{Attribute, PageInfo, PageRequest};
use switchboard_proto::session::v1 as pb;
use time::OffsetDateTime;

use crate::channels::{Channel, sandbox_notes};
use crate::conversations::{ConversationView, reason_name};
use crate::error::SessionError;
use crate::messages::MessageRow;
use crate::numbers::{Number, NumberSettings};
use crate::templates::{StoredTemplate, build_template};

pub use switchboard_proto::time::timestamp;

pub use switchboard_service_kit::optional_id;

/// Returns (page size, token) with defaults and a cap.
pub fn page(request: Option<&PageRequest>) -> (i64, String) {
    let size = request.map_or(50, |p| p.page_size).clamp(1, 500);
    (
        i64::from(if size == 0 { 50 } else { size }),
        request.map(|p| p.page_token.clone()).unwrap_or_default(),
    )
}

/// Returns the page info for `items` of which the last id is the next token (when full).
pub fn page_info(count: usize, limit: i64, last: Option<impl std::fmt::Display>) -> Option<PageInfo> {
    let full = i64::try_from(count).unwrap_or(i64::MAX) >= limit;
    Some(PageInfo {
        next_page_token: if full {
            last.map(|l| l.to_string()).unwrap_or_default()
        } else {
            String::new()
        },
        total: 0,
    })
}

pub fn channel(c: &Channel, inbound_url: String, status_url: String, fallback_url: Option<String>) -> pb::Channel {
    pb::Channel {
        id: c.id.to_string(),
        name: c.name.clone(),
        account_sid: c.account_sid.clone(),
        sandbox: c.sandbox,
        sandbox_join_code: c.sandbox_join_code.clone(),
        active: c.active,
        inbound_url,
        status_url,
        created_at: Some(timestamp(c.created_at)),
        sandbox_notes: sandbox_notes(c),
        fallback_url: fallback_url.unwrap_or_default(),
        health: c.health.clone(),
        health_reason: c.health_reason.clone().unwrap_or_default(),
        health_checked_at: c.health_checked_at.map(timestamp),
    }
}

pub fn settings(s: &NumberSettings) -> pb::NumberSettings {
    pb::NumberSettings {
        default_language: s.default_language.clone(),
        customer_attachments: s.customer_attachments,
        agent_attachments: s.agent_attachments,
        max_attachment_bytes: u64::try_from(s.max_attachment_bytes).unwrap_or(0),
        workstream_id: s.workstream_id.map(|w| w.to_string()).unwrap_or_default(),
        send_rate_per_second: s.send_rate_per_second,
        survey_enabled: s.survey_enabled,
        survey_url: s.survey_url.clone(),
        survey_message: s.survey_message.clone(),
        survey_template_id: s.survey_template_id.map(|t| t.to_string()).unwrap_or_default(),
    }
}

pub fn settings_from(p: Option<pb::NumberSettings>) -> Result<NumberSettings, SessionError> {
    let Some(p) = p else {
        return Ok(NumberSettings::default());
    };
    Ok(NumberSettings {
        default_language: if p.default_language.is_empty() {
            "en".into()
        } else {
            p.default_language
        },
        customer_attachments: p.customer_attachments,
        agent_attachments: p.agent_attachments,
        max_attachment_bytes: if p.max_attachment_bytes == 0 {
            NumberSettings::default().max_attachment_bytes
        } else {
            i64::try_from(p.max_attachment_bytes).map_err(|_| SessionError::invalid("max_attachment_bytes is too large"))?
        },
        workstream_id: optional_id(&p.workstream_id, "workstream_id")?,
        send_rate_per_second: p.send_rate_per_second,
        survey_enabled: p.survey_enabled,
        survey_url: p.survey_url,
        survey_message: p.survey_message,
        survey_template_id: optional_id(&p.survey_template_id, "survey_template_id")?,
    })
}

pub fn number(n: &Number) -> pb::Number {
    pb::Number {
        id: n.id.to_string(),
        channel_id: n.channel_id.to_string(),
        phone: n.phone.clone(),
        display_name: n.display_name.clone(),
        active: n.active,
        settings: Some(settings(&n.settings)),
        created_at: Some(timestamp(n.created_at)),
    }
}

pub fn template(t: &StoredTemplate) -> pb::Template {
    pb::Template {
        id: t.id.to_string(),
        number_id: t.number_id.to_string(),
        name: t.template.name.clone(),
        default_language: t.template.default_language.to_string(),
        localizations: t
            .template
            .localizations
            .iter()
            .map(|(lang, l)| pb::TemplateLocalization {
                language: lang.to_string(),
                text: l.text.clone(),
                content_sid: l.content_sid.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                status: l.status.as_str().into(),
                content_type: l.kind.as_twilio().into(),
                content_json: t.contents.get(lang.as_str()).map(ToString::to_string).unwrap_or_default(),
            })
            .collect(),
    }
}

pub fn template_from(input: &pb::TemplateInput) -> Result<Template, SessionError> {
    let rows: Vec<(String, String, String, String, String)> = input
        .localizations
        .iter()
        .map(|l| {
            (
                l.language.clone(),
                l.text.clone(),
                l.content_sid.clone(),
                l.status.clone(),
                l.content_type.clone(),
            )
        })
        .collect();
    build_template(&input.name, &input.default_language, &rows)
}

pub fn attributes(map: &BTreeMap<String, String>) -> Vec<Attribute> {
    map.iter()
        .map(|(k, v)| Attribute {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

pub fn conversation(v: &ConversationView, now: OffsetDateTime) -> pb::Conversation {
    let c = &v.row;
    let window = v.window();
    pb::Conversation {
        id: c.id.to_string(),
        channel_id: c.channel_id.to_string(),
        number_id: c.number_id.to_string(),
        workstream_id: c.workstream_id.map(|w| w.to_string()).unwrap_or_default(),
        customer: Some(pb::Customer {
            id: c.customer_id.to_string(),
            phone: v.customer_phone.clone().unwrap_or_default(),
            bsuid: v.customer_bsuid.clone().unwrap_or_default(),
            profile_name: v.customer_profile_name.clone().unwrap_or_default(),
        }),
        status: c.status.as_str().into(),
        status_code: code(c.status),
        status_reason: reason_name(c.status_reason),
        agent_id: c.agent_id.map(|a| a.to_string()).unwrap_or_default(),
        queue_id: c.queue_id.map(|q| q.to_string()).unwrap_or_default(),
        opened_at: Some(timestamp(c.opened_at)),
        last_customer_message_at: c.last_customer_message_at.map(timestamp),
        window_expires_at: window.expires_at().map(timestamp),
        window_open: window.is_open(now),
        closed_at: c.closed_at.map(timestamp),
        attributes: attributes(&c.attributes()),
        first_message: c.first_message.clone(),
        transfer_count: u32::try_from(c.transfer_count).unwrap_or(0),
        bot_id: c.bot_id.map(|b| b.to_string()).unwrap_or_default(),
    }
}

pub fn message(m: &MessageRow) -> pb::Message {
    let media = m
        .media
        .as_array()
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let text = |key: &str| item.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    let file_id = text("file_id");
                    // Inbound media is served by our proxy, and so is an uploaded file (its
                    // signed URL expires); other outbound media URLs are the sender's own.
                    let url = if item.get("twilio_url").is_some() || !file_id.is_empty() {
                        format!("/api/v1/messages/{}/media/{i}", m.id)
                    } else {
                        text("url")
                    };
                    pb::Media {
                        url,
                        content_type: text("content_type"),
                        file_name: text("file_name"),
                        size_bytes: item.get("size_bytes").and_then(serde_json::Value::as_u64).unwrap_or(0),
                        file_id,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    pb::Message {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        seq: m.seq,
        direction: m.direction.as_str().into(),
        author_kind: m.author_kind.as_str().into(),
        direction_code: code(m.direction),
        author_kind_code: code(m.author_kind),
        author_id: m.author_id.map(|a| a.to_string()).unwrap_or_default(),
        body: m.body.clone(),
        media,
        status: m.status.clone(),
        error_code: m.error_code.and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        error_message: m.error_message.clone().unwrap_or_default(),
        twilio_sid: m.twilio_sid.clone().unwrap_or_default(),
        created_at: Some(timestamp(m.created_at)),
        details_json: m.details.to_string(),
        traceparent: m.traceparent.clone().unwrap_or_default(),
        read_at: m.read_at.map(timestamp),
    }
}

fn webhook_urls(w: Option<&switchboard_twilio::senders::SenderWebhook>) -> pb::SenderWebhookUrls {
    let url = |v: Option<&Option<String>>| v.and_then(Clone::clone).unwrap_or_default();
    pb::SenderWebhookUrls {
        callback_url: url(w.map(|w| &w.callback_url)),
        fallback_url: url(w.map(|w| &w.fallback_url)),
        status_callback_url: url(w.map(|w| &w.status_callback_url)),
    }
}

/// A channel's webhook report.
pub fn webhooks(report: &[crate::channel_webhooks::NumberWebhooks]) -> pb::ChannelWebhooksResponse {
    pb::ChannelWebhooksResponse {
        numbers: report
            .iter()
            .map(|n| pb::NumberWebhooks {
                number_id: n.number_id.to_string(),
                phone: n.phone.clone(),
                sender_sid: n.sender.as_ref().map(|s| s.sid.clone()).unwrap_or_default(),
                sender_status: n.sender.as_ref().and_then(|s| s.status.clone()).unwrap_or_default(),
                configured: Some(webhook_urls(n.sender.as_ref().and_then(|s| s.webhook.as_ref()))),
                expected: Some(webhook_urls(Some(&n.expected))),
                matches: n.matches,
                messaging_service: n.held_by.as_ref().map(|h| pb::MessagingServiceWebhooks {
                    sid: h.service.sid.clone(),
                    friendly_name: h.service.friendly_name.clone().unwrap_or_default(),
                    overrides_sender: h.service.overrides_senders(),
                    urls: Some(pb::SenderWebhookUrls {
                        callback_url: h.service.inbound_request_url.clone().unwrap_or_default(),
                        fallback_url: h.service.fallback_url.clone().unwrap_or_default(),
                        status_callback_url: h.service.status_callback.clone().unwrap_or_default(),
                    }),
                    other_senders: h.other_senders.clone(),
                }),
            })
            .collect(),
    }
}

/// A webhook shared key, without its secret.
pub fn webhook_key(k: &crate::webhook_keys::WebhookKey) -> pb::WebhookKey {
    pb::WebhookKey {
        key: k.key_sid.clone(),
        created_at: Some(timestamp(k.created_at)),
    }
}

/// A bot, without its secret.
pub fn bot(b: &crate::bots::Bot) -> pb::Bot {
    pb::Bot {
        id: b.id.to_string(),
        name: b.name.clone(),
        endpoint: b.endpoint.clone(),
        timeout_ms: u32::try_from(b.timeout_ms).unwrap_or(0),
        max_attempts: u32::try_from(b.max_attempts).unwrap_or(0),
        active: b.active,
        created_at: Some(timestamp(b.created_at)),
        updated_at: Some(timestamp(b.updated_at)),
        secret_hint: b.secret_hint.clone(),
    }
}
