//! Tests of the outbound policy: the window, media, templates and their variables.

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

#[test]
fn an_upload_follows_the_numbers_switch_types_and_caps_and_its_bytes_match_its_type() {
    let pdf = b"%PDF-1.7\n";
    let on = AttachmentSettings {
        agent_attachments: true,
        ..Default::default()
    };
    assert_eq!(check_upload(&on, "application/pdf", 2048, pdf), Ok(()));
    let off = AttachmentSettings::default();
    assert_eq!(
        check_upload(&off, "application/pdf", 2048, pdf).map_err(|d| d.rule()),
        Err("agent_attachments_disabled")
    );
    let rule = |ct: &str, size: u64, head: &[u8]| check_upload(&on, ct, size, head).map_err(|d| d.rule());
    assert_eq!(rule("text/html", 10, b"<html>"), Err("media_type_not_allowed"));
    assert_eq!(rule("application/pdf", 0, b""), Err("empty_file"));
    assert_eq!(rule("application/pdf", on.max_bytes + 1, pdf), Err("media_too_large"));
    assert_eq!(rule("image/png", 2048, pdf), Err("file_content_mismatch"));
    // Images stop at WhatsApp's 5 MB even where the number allows 16 MB for the rest.
    let big = AttachmentSettings {
        agent_attachments: true,
        max_bytes: crate::attachment::WHATSAPP_MAX_MEDIA_BYTES,
        ..Default::default()
    };
    let png = b"\x89PNG\r\n\x1a\n";
    let six_mb = 6 * 1024 * 1024;
    assert_eq!(
        check_upload(&big, "image/png", six_mb, png).map_err(|d| d.rule()),
        Err("media_too_large")
    );
    assert_eq!(check_upload(&big, "application/pdf", six_mb, pdf), Ok(()));
}

#[test]
fn authors_parse_from_their_wire_names_and_an_empty_one_is_an_agent() {
    for author in [Author::Agent, Author::Bot, Author::Automated] {
        assert_eq!(Author::parse(author.as_str()), Ok(author));
    }
    assert_eq!(Author::parse(""), Ok(Author::Agent));
    assert!(Author::parse("customer").unwrap_err().contains("customer"));
    assert!(Author::parse("Agent").is_err(), "names are exact");
}
