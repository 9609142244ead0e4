//! WhatsApp message templates as Twilio Content templates: a name, a default language, and per
//! language the approved text (with `{{1}}`/`{{name}}` placeholders), its Content SID (`HX…`)
//! and its WhatsApp approval status. Sending outside the 24-hour window needs one of these.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most variables Twilio allows in one template.
pub const MAX_VARIABLES: usize = 100;
/// Longest variable name Twilio allows.
pub const MAX_VARIABLE_NAME: usize = 16;
/// Longest variable value Twilio allows.
pub const MAX_VARIABLE_VALUE: usize = 1_600;
/// Longest rendered template WhatsApp accepts (error 63021 above it).
pub const MAX_RENDERED_CHARS: usize = 1_024;

/// A template definition or value that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Not `HX` + 32 hex digits.
    #[error("{0:?} is not a Content SID (HX followed by 32 hex digits)")]
    BadContentSid(String),
    /// Not a language code such as `en`, `pt_BR` or `en-US`.
    #[error("{0:?} is not a language code (like en, pt_BR or en-US)")]
    BadLanguage(String),
    /// A `{{…}}` that is not a valid placeholder.
    #[error("malformed placeholder near {0:?}: use {{{{1}}}} or {{{{name}}}} (letters, digits, _; at most 16)")]
    BadPlaceholder(String),
    /// More placeholders than Twilio allows.
    #[error("a template may have at most {MAX_VARIABLES} variables")]
    TooManyVariables,
    /// The template has no text for the language asked for.
    #[error("template {template:?} has no approved text in {language}")]
    NoSuchLanguage {
        /// Template name.
        template: String,
        /// Language asked for.
        language: String,
    },
    /// An empty name or text.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// A Twilio Content SID: `HX` followed by 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentSid(String);

impl ContentSid {
    /// Parses a Content SID.
    pub fn parse(raw: &str) -> Result<Self, TemplateError> {
        let ok = raw.len() == 34 && raw.starts_with("HX") && raw[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(TemplateError::BadContentSid(raw.to_owned()))
        }
    }

    /// Returns the SID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContentSid {
    type Error = TemplateError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ContentSid> for String {
    fn from(value: ContentSid) -> Self {
        value.0
    }
}

/// A language code as WhatsApp and Twilio write them (`en`, `pt_BR`, `en-US`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Parses `ll`, `lll`, `ll_RR` or `ll-RR` (region 2 to 4 letters or digits).
    pub fn parse(raw: &str) -> Result<Self, TemplateError> {
        let (lang, region) = match raw.split_once(['_', '-']) {
            Some((l, r)) => (l, Some(r)),
            None => (raw, None),
        };
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()));
        if lang_ok && region_ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(TemplateError::BadLanguage(raw.to_owned()))
        }
    }

    /// Returns the code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = TemplateError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Language> for String {
    fn from(value: Language) -> Self {
        value.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// WhatsApp's verdict on a template in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Created but not submitted to WhatsApp.
    Unsubmitted,
    /// Submitted, waiting for review.
    Pending,
    /// Can be sent.
    Approved,
    /// Refused by WhatsApp.
    Rejected,
    /// Paused after negative feedback; cannot be sent.
    Paused,
    /// Disabled for policy reasons; cannot be sent.
    Disabled,
}

impl ApprovalStatus {
    /// Parses Twilio's status strings (`approved`, `pending`, `received`, `rejected`, …).
    pub fn from_twilio(raw: &str) -> Self {
        match raw.to_ascii_lowercase().as_str() {
            "approved" => Self::Approved,
            "pending" | "received" | "in_review" | "pending_review" => Self::Pending,
            "rejected" => Self::Rejected,
            "paused" => Self::Paused,
            "disabled" => Self::Disabled,
            _ => Self::Unsubmitted,
        }
    }

    /// Returns the lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsubmitted => "unsubmitted",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }
}

/// A Content template's type, as Twilio names it (`twilio/quick-reply`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentKind {
    /// `twilio/text`.
    #[default]
    Text,
    /// `twilio/media`.
    Media,
    /// `twilio/quick-reply`: up to 10 reply buttons.
    QuickReply,
    /// `twilio/list-picker`: a menu of up to 10 items. WhatsApp does not approve these, so they
    /// reach a customer only inside their 24-hour window.
    ListPicker,
    /// `twilio/call-to-action`: URL or phone buttons.
    CallToAction,
    /// `twilio/card`: title, media and buttons.
    Card,
    /// Any other type.
    Other,
}

impl ContentKind {
    /// All of Twilio's WhatsApp content types, the richest first (a template with several types
    /// is shown as its richest).
    const ORDER: [(Self, &'static str); 6] = [
        (Self::Card, "twilio/card"),
        (Self::ListPicker, "twilio/list-picker"),
        (Self::QuickReply, "twilio/quick-reply"),
        (Self::CallToAction, "twilio/call-to-action"),
        (Self::Media, "twilio/media"),
        (Self::Text, "twilio/text"),
    ];

    /// Parses Twilio's name.
    pub fn from_twilio(name: &str) -> Self {
        Self::ORDER.iter().find(|(_, n)| *n == name).map_or(Self::Other, |(k, _)| *k)
    }

    /// Twilio's name (`twilio/other` for anything else).
    pub fn as_twilio(self) -> &'static str {
        Self::ORDER.iter().find(|(k, _)| *k == self).map_or("twilio/other", |(_, n)| n)
    }

    /// The richest of the type names a Content template has.
    pub fn richest<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let names: Vec<&str> = names.into_iter().collect();
        Self::ORDER
            .iter()
            .find(|(_, n)| names.contains(n))
            .map_or(if names.is_empty() { Self::Text } else { Self::Other }, |(k, _)| *k)
    }

    /// WhatsApp delivers it only inside the customer's 24-hour window, approved or not.
    pub fn session_only(self) -> bool {
        self == Self::ListPicker
    }
}

/// The template in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localization {
    /// The approved text, with placeholders.
    pub text: String,
    /// The Content SID to send, once known.
    pub content_sid: Option<ContentSid>,
    /// WhatsApp's approval status.
    pub status: ApprovalStatus,
    /// Its Content type.
    #[serde(default)]
    pub kind: ContentKind,
}

/// A message template with its languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Name (unique per number).
    pub name: String,
    /// Language used when a send names none.
    pub default_language: Language,
    /// Text, SID and status per language.
    pub localizations: BTreeMap<Language, Localization>,
}

impl Template {
    /// Returns the localization for `language` (or the default language).
    pub fn localization(&self, language: Option<&Language>) -> Result<(&Language, &Localization), TemplateError> {
        let wanted = language.unwrap_or(&self.default_language);
        self.localizations
            .get_key_value(wanted)
            .ok_or_else(|| TemplateError::NoSuchLanguage {
                template: self.name.clone(),
                language: wanted.to_string(),
            })
    }

    /// Checks the name and every text's placeholders.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.name.trim().is_empty() {
            return Err(TemplateError::Empty("template name"));
        }
        for localization in self.localizations.values() {
            if localization.text.trim().is_empty() {
                return Err(TemplateError::Empty("template text"));
            }
            placeholders(&localization.text)?;
        }
        Ok(())
    }
}

/// Returns the distinct placeholder names of `text`, in order of first use.
pub fn placeholders(text: &str) -> Result<Vec<String>, TemplateError> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::BadPlaceholder(snippet(&rest[start..])))?;
        let name = after[..end].trim();
        let valid = !name.is_empty() && name.len() <= MAX_VARIABLE_NAME && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(TemplateError::BadPlaceholder(snippet(&rest[start..])));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    if names.len() > MAX_VARIABLES {
        return Err(TemplateError::TooManyVariables);
    }
    Ok(names)
}

fn snippet(s: &str) -> String {
    s.chars().take(24).collect()
}

/// Replaces each `{{name}}` in `text` with its value (missing ones are left as they are).
pub fn render(text: &str, variables: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match variables.get(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Returns the `ContentVariables` JSON string Twilio expects (`{"1":"12/1","2":"3pm"}`).
pub fn content_variables_json(variables: &BTreeMap<String, String>) -> String {
    serde_json::to_string(variables).unwrap_or_else(|_| "{}".into())
}

/// The variables of a send compared with a template text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VariableCheck {
    /// Placeholders with no value.
    pub missing: Vec<String>,
    /// Values for no placeholder.
    pub unexpected: Vec<String>,
}

/// Compares `variables` with the placeholders of `text`.
pub fn compare_variables(text: &str, variables: &BTreeMap<String, String>) -> Result<VariableCheck, TemplateError> {
    let wanted: BTreeSet<String> = placeholders(text)?.into_iter().collect();
    let given: BTreeSet<&String> = variables.keys().collect();
    Ok(VariableCheck {
        missing: wanted.iter().filter(|w| !given.contains(w)).cloned().collect(),
        unexpected: given.iter().filter(|g| !wanted.contains(**g)).map(|g| (*g).clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn finds_placeholders_in_order_without_repeats() {
        let t = "Your {{1}} order of {{2}} has shipped and should be delivered on {{3}}. Details: {{4}} ({{1}})";
        assert_eq!(placeholders(t).unwrap(), vec!["1", "2", "3", "4"]);
        assert_eq!(placeholders("Hi {{ name }}, code {{otp_code}}").unwrap(), vec!["name", "otp_code"]);
        assert!(placeholders("no variables").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_placeholders() {
        for bad in ["{{}}", "{{1}", "{{a b}}", "{{12345678901234567}}", "{{é}}"] {
            assert!(placeholders(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_and_reports_missing_and_extra() {
        let text = "Your appointment is coming up on {{1}} at {{2}}";
        assert_eq!(
            render(text, &vars(&[("1", "2025/7/15"), ("2", "3:00p.m.")])),
            "Your appointment is coming up on 2025/7/15 at 3:00p.m."
        );
        let check = compare_variables(text, &vars(&[("1", "x"), ("3", "y")])).unwrap();
        assert_eq!(check.missing, vec!["2"]);
        assert_eq!(check.unexpected, vec!["3"]);
        assert_eq!(render("{{1}} and {{9}}", &vars(&[("1", "a")])), "a and {{9}}");
    }

    #[test]
    fn content_variables_are_a_json_string() {
        assert_eq!(
            content_variables_json(&vars(&[("1", "12/1"), ("2", "3pm")])),
            r#"{"1":"12/1","2":"3pm"}"#
        );
    }

    #[test]
    fn sids_languages_and_statuses() {
        assert!(ContentSid::parse("HX0123456789abcdef0123456789abcdef").is_ok());
        assert!(ContentSid::parse("HXnotvalid").is_err());
        assert!(ContentSid::parse("MG0123456789abcdef0123456789abcdef").is_err());
        for ok in ["en", "pt_BR", "en-US", "es_419", "fil"] {
            assert!(Language::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "EN", "english", "en_", "en US"] {
            assert!(Language::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ApprovalStatus::from_twilio("APPROVED"), ApprovalStatus::Approved);
        assert_eq!(ApprovalStatus::from_twilio("received"), ApprovalStatus::Pending);
        assert_eq!(ApprovalStatus::from_twilio("something-new"), ApprovalStatus::Unsubmitted);
    }

    #[test]
    fn localization_falls_back_to_the_default_language() {
        let en = Language::parse("en").unwrap();
        let t = Template {
            name: "shipping".into(),
            default_language: en.clone(),
            localizations: [(
                en.clone(),
                Localization {
                    text: "Shipped {{1}}".into(),
                    content_sid: None,
                    status: ApprovalStatus::Approved,
                    kind: ContentKind::Text,
                },
            )]
            .into(),
        };
        assert_eq!(t.localization(None).unwrap().0, &en);
        assert!(matches!(
            t.localization(Some(&Language::parse("pt_BR").unwrap())),
            Err(TemplateError::NoSuchLanguage { .. })
        ));
        assert!(t.validate().is_ok());
    }
}
