//! What may be sent to a customer, decided on the server (the peers decide it in the browser and
//! meet error 63016 in production). Inside the 24-hour window: free text and allowed media;
//! outside it: only an approved template. Every refusal names its rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::attachment::{AttachmentSettings, base_type, is_allowed_type};
use crate::template::{self, ApprovalStatus, ContentSid, Language, MAX_RENDERED_CHARS, MAX_VARIABLE_VALUE, Template};
use crate::window::ServiceWindow;

/// Longest free-form body Twilio accepts (error 21617).
pub const MAX_BODY_CHARS: usize = 1_600;

/// Longest client message id a sender may give (it is a unique-index key).
pub const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 128;

/// Longest outbound media URL accepted (the length browsers and Twilio's fetcher handle).
pub const MAX_MEDIA_URL_CHARS: usize = 2_048;

/// Checks the lengths of a send's client message id and media URL, naming the one too long.
pub fn check_lengths(client_message_id: Option<&str>, media_url: Option<&str>) -> Result<(), String> {
    if client_message_id.is_some_and(|id| id.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS) {
        return Err(format!("client_message_id is longer than {MAX_CLIENT_MESSAGE_ID_CHARS} characters"));
    }
    if media_url.is_some_and(|url| url.chars().count() > MAX_MEDIA_URL_CHARS) {
        return Err(format!("the media URL is longer than {MAX_MEDIA_URL_CHARS} characters"));
    }
    Ok(())
}

/// Who is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    /// A human agent.
    Agent,
    /// A bot on the workstream.
    Bot,
    /// An automated message or survey.
    Automated,
}

impl Author {
    /// The stored and wire name (`agent`, `bot`, `automated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Bot => "bot",
            Self::Automated => "automated",
        }
    }

    /// Parses a wire name; an empty one is an agent (the API's sends).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "" | "agent" => Ok(Self::Agent),
            "bot" => Ok(Self::Bot),
            "automated" => Ok(Self::Automated),
            other => Err(format!("author_kind {other:?} must be agent, bot or automated")),
        }
    }
}

/// A message someone wants to send.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundContent {
    /// Free-form text.
    Text {
        /// The text.
        body: String,
    },
    /// One media file, with an optional caption (images only).
    Media {
        /// Where Twilio fetches it (`http(s)://`).
        url: String,
        /// Its MIME type.
        content_type: String,
        /// Its size, when known.
        size_bytes: Option<u64>,
        /// Caption text.
        caption: Option<String>,
    },
    /// An approved template.
    Template {
        /// The template, as configured on the number.
        template: Template,
        /// Language; the template's default when absent.
        language: Option<Language>,
        /// Values for its placeholders.
        variables: BTreeMap<String, String>,
    },
}

/// What the sender will send: the policy's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Approved {
    /// `Body`.
    Text {
        /// The text.
        body: String,
    },
    /// `MediaUrl` (+ `Body` as caption).
    Media {
        /// Media URL.
        url: String,
        /// MIME type.
        content_type: String,
        /// Text shown under the media; none: the media alone.
        caption: Option<String>,
    },
    /// `ContentSid` + `ContentVariables`.
    Template {
        /// Template name.
        name: String,
        /// Content SID to send.
        content_sid: ContentSid,
        /// Language sent.
        language: Language,
        /// The `ContentVariables` JSON string.
        variables_json: String,
        /// The text the customer will read (for the transcript).
        rendered: String,
    },
}

impl Approved {
    /// Returns the text to show in the transcript.
    pub fn transcript_text(&self) -> &str {
        match self {
            Self::Text { body } => body,
            Self::Media { caption, .. } => caption.as_deref().unwrap_or(""),
            Self::Template { rendered, .. } => rendered,
        }
    }
}

/// Why a message may not be sent. [`PolicyDenial::rule`] is a stable machine-readable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyDenial {
    /// The 24-hour window is closed: only templates.
    #[error("the customer's 24-hour window is closed{}: only an approved template can be sent until the customer writes again", .expired_at.map(|t| format!(" (since {t})")).unwrap_or_default())]
    OutsideWindow {
        /// When it closed (`None` when the customer never wrote).
        expired_at: Option<OffsetDateTime>,
    },
    /// Nothing to send.
    #[error("the message is empty")]
    EmptyMessage,
    /// Text over 1,600 characters.
    #[error("the text has {chars} characters; WhatsApp through Twilio takes at most {max}")]
    BodyTooLong {
        /// Its length.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// This number does not let agents send files.
    #[error("agent attachments are turned off for this number")]
    AgentAttachmentsDisabled,
    /// A file type the channel does not carry.
    #[error(
        "files of type {content_type} cannot be sent on this channel (allowed: {})",
        crate::attachment::allowed_list()
    )]
    MediaTypeNotAllowed {
        /// The type.
        content_type: String,
    },
    /// A file over the cap.
    #[error("the file has {size} bytes; the limit for this type on this number is {limit}")]
    MediaTooLarge {
        /// Its size.
        size: u64,
        /// The number's cap for this media type, within WhatsApp's own limit.
        limit: u64,
    },
    /// WhatsApp ignores captions on non-image media; we refuse instead of losing the text.
    #[error("WhatsApp shows a caption only with images; send the text of this {content_type} as its own message")]
    CaptionNotSupported {
        /// The media type.
        content_type: String,
    },
    /// Not an `http(s)://` URL.
    #[error("the media URL must start with https:// or http://")]
    InvalidMediaUrl,
    /// An upload without a byte.
    #[error("the file is empty")]
    EmptyFile,
    /// An upload whose bytes are not of the type it declares.
    #[error("the file's contents are not a {content_type} file")]
    FileContentMismatch {
        /// The declared type.
        content_type: String,
    },
    /// The template has no text in that language.
    #[error("template {template:?} has no text in {language}")]
    TemplateLanguageMissing {
        /// The template's name.
        template: String,
        /// Language asked for.
        language: String,
    },
    /// Not approved by WhatsApp in that language.
    #[error("template {template:?} is {status} in {language}, not approved by WhatsApp")]
    TemplateNotApproved {
        /// The template's name.
        template: String,
        /// The language asked for (as WhatsApp names it: `en`, `pt_BR`).
        language: String,
        /// Its status.
        status: &'static str,
    },
    /// A type WhatsApp delivers only inside the 24-hour window (list pickers), outside it.
    #[error("template {template:?} is a {kind}, which WhatsApp delivers only inside the customer's 24-hour window")]
    TemplateSessionOnly {
        /// The template's name.
        template: String,
        /// Its Content type.
        kind: &'static str,
    },
    /// Approved text without a Content SID cannot be sent (Body matching was removed by Twilio).
    #[error("template {template:?} in {language} has no Twilio Content SID; sync templates or add the HX… SID")]
    TemplateWithoutContentSid {
        /// The template's name.
        template: String,
        /// The language asked for (as WhatsApp names it: `en`, `pt_BR`).
        language: String,
    },
    /// Placeholders without values.
    #[error("template variables missing: {}", .missing.join(", "))]
    TemplateVariablesMissing {
        /// Their names.
        missing: Vec<String>,
    },
    /// Values for no placeholder.
    #[error("template has no variables named: {}", .unexpected.join(", "))]
    TemplateVariablesUnexpected {
        /// Their names.
        unexpected: Vec<String>,
    },
    /// A value WhatsApp would refuse.
    #[error("template variable {name:?} {reason}")]
    TemplateVariableInvalid {
        /// Variable.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The rendered template is too long for WhatsApp.
    #[error("the filled-in template has {chars} characters; WhatsApp takes at most {MAX_RENDERED_CHARS}")]
    TemplateTooLong {
        /// Its length.
        chars: usize,
    },
    /// The template's text is malformed.
    #[error("template is malformed: {0}")]
    TemplateMalformed(String),
}

impl PolicyDenial {
    /// Returns the rule's stable name.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::OutsideWindow { .. } => "outside_24h_window",
            Self::EmptyMessage => "empty_message",
            Self::BodyTooLong { .. } => "body_too_long",
            Self::AgentAttachmentsDisabled => "agent_attachments_disabled",
            Self::MediaTypeNotAllowed { .. } => "media_type_not_allowed",
            Self::MediaTooLarge { .. } => "media_too_large",
            Self::CaptionNotSupported { .. } => "caption_not_supported",
            Self::InvalidMediaUrl => "invalid_media_url",
            Self::EmptyFile => "empty_file",
            Self::FileContentMismatch { .. } => "file_content_mismatch",
            Self::TemplateLanguageMissing { .. } => "template_language_missing",
            Self::TemplateNotApproved { .. } => "template_not_approved",
            Self::TemplateSessionOnly { .. } => "template_session_only",
            Self::TemplateWithoutContentSid { .. } => "template_without_content_sid",
            Self::TemplateVariablesMissing { .. } => "template_variables_missing",
            Self::TemplateVariablesUnexpected { .. } => "template_variables_unexpected",
            Self::TemplateVariableInvalid { .. } => "template_variable_invalid",
            Self::TemplateTooLong { .. } => "template_too_long",
            Self::TemplateMalformed(_) => "template_malformed",
        }
    }
}

/// Decides whether `content` may be sent at `now`.
pub fn evaluate(
    now: OffsetDateTime,
    window: &ServiceWindow,
    attachments: &AttachmentSettings,
    content: &OutboundContent,
) -> Result<Approved, PolicyDenial> {
    match content {
        OutboundContent::Template {
            template,
            language,
            variables,
        } => approve_template(template, language.as_ref(), variables, window.is_open(now)),
        OutboundContent::Text { body } => {
            let body = body.trim_end();
            if body.trim().is_empty() {
                return Err(PolicyDenial::EmptyMessage);
            }
            check_window(now, window)?;
            check_body(body)?;
            Ok(Approved::Text { body: body.to_owned() })
        }
        OutboundContent::Media {
            url,
            content_type,
            size_bytes,
            caption,
        } => {
            check_window(now, window)?;
            // Agents and bots alike follow the number's "agents can send files" switch.
            if !attachments.agent_attachments {
                return Err(PolicyDenial::AgentAttachmentsDisabled);
            }
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(PolicyDenial::InvalidMediaUrl);
            }
            if !is_allowed_type(content_type) {
                return Err(PolicyDenial::MediaTypeNotAllowed {
                    content_type: base_type(content_type),
                });
            }
            let limit = attachments.cap_for(content_type);
            if let Some(size) = *size_bytes
                && size > limit
            {
                return Err(PolicyDenial::MediaTooLarge { size, limit });
            }
            let caption = caption.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
            if let Some(c) = &caption {
                if !base_type(content_type).starts_with("image/") {
                    return Err(PolicyDenial::CaptionNotSupported {
                        content_type: base_type(content_type),
                    });
                }
                check_body(c)?;
            }
            Ok(Approved::Media {
                url: url.clone(),
                content_type: base_type(content_type),
                caption,
            })
        }
    }
}

/// The most bytes an agent may upload of `content_type` on a number with `attachments`, or why
/// no file of that type may go at all (known before the first byte arrives).
pub fn upload_cap(attachments: &AttachmentSettings, content_type: &str) -> Result<u64, PolicyDenial> {
    if !attachments.agent_attachments {
        return Err(PolicyDenial::AgentAttachmentsDisabled);
    }
    if !is_allowed_type(content_type) {
        return Err(PolicyDenial::MediaTypeNotAllowed {
            content_type: base_type(content_type),
        });
    }
    Ok(attachments.cap_for(content_type))
}

/// Decides whether an agent may upload a file of `content_type` and `size` bytes, whose first
/// bytes are `head`, to send on a number with `attachments`: the same switch, types and per-type
/// cap as sending one, and bytes that are what the type says. Checked when the file arrives, so
/// a file that could never be sent is not kept.
pub fn check_upload(attachments: &AttachmentSettings, content_type: &str, size: u64, head: &[u8]) -> Result<(), PolicyDenial> {
    let limit = upload_cap(attachments, content_type)?;
    if size == 0 {
        return Err(PolicyDenial::EmptyFile);
    }
    if size > limit {
        return Err(PolicyDenial::MediaTooLarge { size, limit });
    }
    if !crate::attachment::content_matches(content_type, head) {
        return Err(PolicyDenial::FileContentMismatch {
            content_type: base_type(content_type),
        });
    }
    Ok(())
}

fn check_window(now: OffsetDateTime, window: &ServiceWindow) -> Result<(), PolicyDenial> {
    if window.is_open(now) {
        Ok(())
    } else {
        Err(PolicyDenial::OutsideWindow {
            expired_at: window.expires_at(),
        })
    }
}

fn check_body(body: &str) -> Result<(), PolicyDenial> {
    let chars = body.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(PolicyDenial::BodyTooLong {
            chars,
            max: MAX_BODY_CHARS,
        });
    }
    Ok(())
}

/// Outside the window only an approved template of a type WhatsApp approves goes; inside it,
/// any Content template goes as a session message, approved or not (Twilio needs no approval
/// there), unless WhatsApp rejected, paused or disabled it.
fn approve_template(
    template: &Template,
    language: Option<&Language>,
    variables: &BTreeMap<String, String>,
    window_open: bool,
) -> Result<Approved, PolicyDenial> {
    let (language, localization) = template.localization(language).map_err(|_| PolicyDenial::TemplateLanguageMissing {
        template: template.name.clone(),
        language: language.unwrap_or(&template.default_language).to_string(),
    })?;
    let refused = matches!(
        localization.status,
        ApprovalStatus::Rejected | ApprovalStatus::Paused | ApprovalStatus::Disabled
    );
    if !window_open && localization.kind.session_only() {
        return Err(PolicyDenial::TemplateSessionOnly {
            template: template.name.clone(),
            kind: localization.kind.as_twilio(),
        });
    }
    if refused || (!window_open && localization.status != ApprovalStatus::Approved) {
        return Err(PolicyDenial::TemplateNotApproved {
            template: template.name.clone(),
            language: language.to_string(),
            status: localization.status.as_str(),
        });
    }
    let content_sid = localization
        .content_sid
        .clone()
        .ok_or_else(|| PolicyDenial::TemplateWithoutContentSid {
            template: template.name.clone(),
            language: language.to_string(),
        })?;
    let check = template::compare_variables(&localization.text, variables).map_err(|e| PolicyDenial::TemplateMalformed(e.to_string()))?;
    if !check.missing.is_empty() {
        return Err(PolicyDenial::TemplateVariablesMissing { missing: check.missing });
    }
    if !check.unexpected.is_empty() {
        return Err(PolicyDenial::TemplateVariablesUnexpected {
            unexpected: check.unexpected,
        });
    }
    for (name, value) in variables {
        let reason = if value.trim().is_empty() {
            Some("is empty (Twilio error 21656)")
        } else if value.contains(['\n', '\r', '\t']) {
            Some("contains a newline or tab, which WhatsApp refuses in template values")
        } else if value.chars().count() > MAX_VARIABLE_VALUE {
            Some("is longer than 1,600 characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(PolicyDenial::TemplateVariableInvalid {
                name: name.clone(),
                reason,
            });
        }
    }
    let rendered = template::render(&localization.text, variables);
    let chars = rendered.chars().count();
    if chars > MAX_RENDERED_CHARS {
        return Err(PolicyDenial::TemplateTooLong { chars });
    }
    Ok(Approved::Template {
        name: template.name.clone(),
        content_sid,
        language: language.clone(),
        variables_json: template::content_variables_json(variables),
        rendered,
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
