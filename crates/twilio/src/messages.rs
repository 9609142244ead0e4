//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: the request form and the Message
//! resource Twilio answers with (every field nullable, counts as strings, RFC 2822 dates).

use serde::{Deserialize, Serialize};

/// A message to send. `Body` for free text, `MediaUrl` (repeated) for media, `ContentSid` +
/// `ContentVariables` for a template (then no `Body` or `MediaUrl`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMessage {
    /// `whatsapp:+…` or `whatsapp:CC.…` of the customer.
    pub to: String,
    /// `whatsapp:+…` of our number.
    pub from: String,
    /// Text (or caption).
    pub body: Option<String>,
    /// Public URLs Twilio fetches the media from before sending (at most one for WhatsApp).
    pub media_urls: Vec<String>,
    /// Template SID.
    pub content_sid: Option<String>,
    /// Template variables, a JSON string.
    pub content_variables: Option<String>,
    /// Where Twilio posts status callbacks.
    pub status_callback: Option<String>,
}

impl CreateMessage {
    /// Returns the form fields, `MediaUrl` repeated once per URL.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", self.to.clone()), ("From", self.from.clone())];
        if let Some(sid) = &self.content_sid {
            form.push(("ContentSid", sid.clone()));
            if let Some(vars) = &self.content_variables {
                form.push(("ContentVariables", vars.clone()));
            }
        } else {
            if let Some(body) = &self.body {
                form.push(("Body", body.clone()));
            }
            for url in &self.media_urls {
                form.push(("MediaUrl", url.clone()));
            }
        }
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.clone()));
        }
        form
    }

    /// Returns the form body, URL-encoded.
    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(self.form()).finish()
    }
}

/// The Message resource (`api.v2010.account.message`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Twilio's own field names
pub struct MessageResource {
    pub sid: Option<String>,
    pub account_sid: Option<String>,
    pub api_version: Option<String>,
    pub body: Option<String>,
    pub date_created: Option<String>,
    pub date_sent: Option<String>,
    pub date_updated: Option<String>,
    pub direction: Option<String>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub num_media: Option<String>,
    pub num_segments: Option<String>,
    pub price: Option<String>,
    pub price_unit: Option<String>,
    pub status: Option<String>,
    pub uri: Option<String>,
    pub subresource_uris: Option<serde_json::Value>,
}

/// One page of the Messages list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagePage {
    /// The messages, newest first.
    #[serde(default)]
    pub messages: Vec<MessageResource>,
    /// The next page, relative to the API host; `None` on the last.
    pub next_page_uri: Option<String>,
}

/// Twilio's error body: `{"code","message","more_info","status"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Twilio error code (e.g. 21211).
    pub code: Option<u32>,
    /// Twilio's own explanation of the error.
    pub message: String,
    /// Link to the error's documentation.
    pub more_info: Option<String>,
    /// HTTP status.
    pub status: u16,
}

impl ErrorBody {
    /// Builds the body Twilio sends for `code` with HTTP `status`.
    pub fn new(code: u32, status: u16, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            message: message.into(),
            more_info: Some(format!("https://www.twilio.com/docs/errors/{code}")),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_repeat_and_templates_drop_body_and_media() {
        let m = CreateMessage {
            to: "whatsapp:+1555".into(),
            from: "whatsapp:+14155238886".into(),
            media_urls: vec!["https://e.com/a.jpg".into(), "https://e.com/b.png".into()],
            ..Default::default()
        };
        assert_eq!(
            m.encode(),
            "To=whatsapp%3A%2B1555&From=whatsapp%3A%2B14155238886&MediaUrl=https%3A%2F%2Fe.com%2Fa.jpg&MediaUrl=https%3A%2F%2Fe.com%2Fb.png"
        );
        let t = CreateMessage {
            content_sid: Some("HX0123456789abcdef0123456789abcdef".into()),
            content_variables: Some(r#"{"1":"12/1"}"#.into()),
            body: Some("ignored".into()),
            status_callback: Some("https://cc.example.com/v1/twilio/ch/status".into()),
            ..m
        };
        let form = t.form();
        assert!(form.iter().all(|(k, _)| *k != "Body" && *k != "MediaUrl"));
        assert!(form.contains(&("ContentVariables", r#"{"1":"12/1"}"#.to_owned())));
        assert!(form.iter().any(|(k, _)| *k == "StatusCallback"));
    }

    #[test]
    fn parses_twilios_success_example() {
        let json = r#"{"account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","api_version":"2010-04-01","body":"Hi","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api","error_code":null,"error_message":null,"from":"whatsapp:+15555238886","num_media":"0","num_segments":"1","price":null,"price_unit":null,"messaging_service_sid":"MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","sid":"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"queued","subresource_uris":{"media":"/x"},"to":"whatsapp:+15557770006","uri":"/y"}"#;
        let m: MessageResource = serde_json::from_str(json).unwrap();
        assert_eq!(m.sid.as_deref(), Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert_eq!(m.status.as_deref(), Some("queued"));
        let e: ErrorBody = serde_json::from_str(
            r#"{"code":20001,"message":"Bad request","more_info":"https://www.twilio.com/docs/errors/20001","status":400}"#,
        )
        .unwrap();
        assert_eq!(e, ErrorBody::new(20001, 400, "Bad request"));
    }
}
