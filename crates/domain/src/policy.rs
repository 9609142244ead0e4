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
        /// Caption.
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
        /// The limit.
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
    /// The template has no text in that language.
    #[error("template {template:?} has no text in {language}")]
    TemplateLanguageMissing {
        /// Template.
        template: String,
        /// Language asked for.
        language: String,
    },
    /// Not approved by WhatsApp in that language.
    #[error("template {template:?} is {status} in {language}, not approved by WhatsApp")]
    TemplateNotApproved {
        /// Template.
        template: String,
        /// Language.
        language: String,
        /// Its status.
        status: &'static str,
    },
    /// A type WhatsApp delivers only inside the 24-hour window (list pickers), outside it.
    #[error("template {template:?} is a {kind}, which WhatsApp delivers only inside the customer's 24-hour window")]
    TemplateSessionOnly {
        /// Template.
        template: String,
        /// Its Content type.
        kind: &'static str,
    },
    /// Approved text without a Content SID cannot be sent (Body matching was removed by Twilio).
    #[error("template {template:?} in {language} has no Twilio Content SID; sync templates or add the HX… SID")]
    TemplateWithoutContentSid {
        /// Template.
        template: String,
        /// Language.
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
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::template::{ContentKind, Localization};

    fn t0() -> OffsetDateTime {
        datetime!(2026-11-26 10:00 UTC)
    }

    fn template(status: ApprovalStatus, sid: bool) -> Template {
        let en = Language::parse("en").unwrap();
        Template {
            name: "appointment".into(),
            default_language: en.clone(),
            localizations: [(
                en,
                Localization {
                    text: "Your appointment is coming up on {{1}} at {{2}}".into(),
                    content_sid: sid.then(|| ContentSid::parse("HX0123456789abcdef0123456789abcdef").unwrap()),
                    status,
                    kind: ContentKind::Text,
                },
            )]
            .into(),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn text(s: &str) -> OutboundContent {
        OutboundContent::Text { body: s.into() }
    }

    fn eval(now: OffsetDateTime, content: &OutboundContent) -> Result<Approved, PolicyDenial> {
        let on = AttachmentSettings {
            customer_attachments: true,
            agent_attachments: true,
            ..Default::default()
        };
        evaluate(now, &ServiceWindow::opened_at(t0()), &on, content)
    }

    #[test]
    fn free_text_inside_the_window_refused_at_24h_with_the_rule_named() {
        assert!(eval(t0() + Duration::hours(23) + Duration::minutes(59), &text("hello")).is_ok());
        let denied = eval(t0() + Duration::hours(24), &text("hello")).unwrap_err();
        assert_eq!(denied.rule(), "outside_24h_window");
        assert_eq!(
            denied,
            PolicyDenial::OutsideWindow {
                expired_at: Some(t0() + Duration::hours(24))
            }
        );
        assert!(denied.to_string().contains("approved template"));
        let never = evaluate(t0(), &ServiceWindow::default(), &AttachmentSettings::default(), &text("hi")).unwrap_err();
        assert_eq!(never, PolicyDenial::OutsideWindow { expired_at: None });
    }

    #[test]
    fn an_approved_template_goes_through_outside_the_window() {
        let content = OutboundContent::Template {
            template: template(ApprovalStatus::Approved, true),
            language: None,
            variables: vars(&[("1", "12/1"), ("2", "3pm")]),
        };
        let approved = eval(t0() + Duration::days(3), &content).unwrap();
        match approved {
            Approved::Template {
                content_sid,
                variables_json,
                rendered,
                ..
            } => {
                assert_eq!(content_sid.as_str(), "HX0123456789abcdef0123456789abcdef");
                assert_eq!(variables_json, r#"{"1":"12/1","2":"3pm"}"#);
                assert_eq!(rendered, "Your appointment is coming up on 12/1 at 3pm");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inside_the_window_any_content_goes_and_a_list_picker_only_there() {
        let inside = t0() + Duration::hours(1);
        let outside = t0() + Duration::days(3);
        let ok_vars = vars(&[("1", "a"), ("2", "b")]);
        let send = |now, status, kind| {
            let mut t = template(status, true);
            if let Some(l) = t.localizations.values_mut().next() {
                l.kind = kind;
            }
            eval(
                now,
                &OutboundContent::Template {
                    template: t,
                    language: None,
                    variables: ok_vars.clone(),
                },
            )
            .map_err(|e| e.rule())
        };
        assert!(
            send(inside, ApprovalStatus::Unsubmitted, ContentKind::QuickReply).is_ok(),
            "a session message"
        );
        assert!(send(inside, ApprovalStatus::Unsubmitted, ContentKind::ListPicker).is_ok());
        assert_eq!(
            send(outside, ApprovalStatus::Unsubmitted, ContentKind::ListPicker).unwrap_err(),
            "template_session_only"
        );
        assert_eq!(
            send(outside, ApprovalStatus::Approved, ContentKind::ListPicker).unwrap_err(),
            "template_session_only"
        );
        assert!(send(outside, ApprovalStatus::Approved, ContentKind::CallToAction).is_ok());
        assert_eq!(
            send(inside, ApprovalStatus::Rejected, ContentKind::Card).unwrap_err(),
            "template_not_approved",
            "WhatsApp refuses a rejected template even inside the window"
        );
        assert_eq!(ContentKind::from_twilio("twilio/list-picker"), ContentKind::ListPicker);
        assert_eq!(ContentKind::richest(["twilio/text", "twilio/quick-reply"]), ContentKind::QuickReply);
        assert_eq!(ContentKind::richest(["whatsapp/authentication"]), ContentKind::Other);
    }

    #[test]
    fn templates_must_be_approved_have_a_sid_and_the_right_variables() {
        let later = t0() + Duration::days(3);
        let send = |t: Template, v: &[(&str, &str)], lang: Option<&str>| {
            eval(
                later,
                &OutboundContent::Template {
                    template: t,
                    language: lang.map(|l| Language::parse(l).unwrap()),
                    variables: vars(v),
                },
            )
            .unwrap_err()
            .rule()
        };
        let ok_vars = [("1", "a"), ("2", "b")];
        assert_eq!(
            send(template(ApprovalStatus::Pending, true), &ok_vars, None),
            "template_not_approved"
        );
        assert_eq!(
            send(template(ApprovalStatus::Rejected, true), &ok_vars, None),
            "template_not_approved"
        );
        assert_eq!(
            send(template(ApprovalStatus::Approved, false), &ok_vars, None),
            "template_without_content_sid"
        );
        assert_eq!(
            send(template(ApprovalStatus::Approved, true), &ok_vars, Some("pt_BR")),
            "template_language_missing"
        );
        assert_eq!(
            send(template(ApprovalStatus::Approved, true), &[("1", "a")], None),
            "template_variables_missing"
        );
        assert_eq!(
            send(
                template(ApprovalStatus::Approved, true),
                &[("1", "a"), ("2", "b"), ("3", "c")],
                None
            ),
            "template_variables_unexpected"
        );
        assert_eq!(
            send(template(ApprovalStatus::Approved, true), &[("1", "a"), ("2", " ")], None),
            "template_variable_invalid"
        );
        assert_eq!(
            send(template(ApprovalStatus::Approved, true), &[("1", "a"), ("2", "b\nc")], None),
            "template_variable_invalid"
        );
        assert_eq!(
            send(
                template(ApprovalStatus::Approved, true),
                &[("1", &"x".repeat(1_000)), ("2", "b")],
                None
            ),
            "template_too_long"
        );
    }

    #[test]
    fn text_limits() {
        let now = t0() + Duration::hours(1);
        assert_eq!(eval(now, &text("   ")).unwrap_err().rule(), "empty_message");
        assert!(eval(now, &text(&"é".repeat(1_600))).is_ok(), "1,600 characters, not bytes");
        assert_eq!(eval(now, &text(&"a".repeat(1_601))).unwrap_err().rule(), "body_too_long");
    }

    #[test]
    fn media_rules() {
        let now = t0() + Duration::hours(1);
        let media = |ct: &str, size: Option<u64>, caption: Option<&str>| OutboundContent::Media {
            url: "https://files.example.com/f".into(),
            content_type: ct.into(),
            size_bytes: size,
            caption: caption.map(Into::into),
        };
        assert!(eval(now, &media("image/jpeg", Some(1_000), Some("your receipt"))).is_ok());
        assert!(eval(now, &media("application/pdf", Some(1_000), None)).is_ok());
        assert_eq!(
            eval(now, &media("application/pdf", None, Some("see attached"))).unwrap_err().rule(),
            "caption_not_supported"
        );
        assert_eq!(
            eval(now, &media("application/zip", None, None)).unwrap_err().rule(),
            "media_type_not_allowed"
        );
        assert_eq!(
            eval(now, &media("image/png", Some(6 * 1024 * 1024), None)).unwrap_err().rule(),
            "media_too_large"
        );
        assert_eq!(
            eval(t0() + Duration::days(2), &media("image/png", None, None)).unwrap_err().rule(),
            "outside_24h_window"
        );
        let off = evaluate(
            now,
            &ServiceWindow::opened_at(t0()),
            &AttachmentSettings::default(),
            &media("image/png", None, None),
        );
        assert_eq!(off.unwrap_err().rule(), "agent_attachments_disabled");
        let bad_url = OutboundContent::Media {
            url: "file:///etc/passwd".into(),
            content_type: "image/png".into(),
            size_bytes: None,
            caption: None,
        };
        assert_eq!(eval(now, &bad_url).unwrap_err().rule(), "invalid_media_url");
    }
}
