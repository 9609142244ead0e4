//! Twilio's Content API (`https://content.twilio.com/v1/ContentAndApprovals`): templates with
//! their WhatsApp approval status, paginated through `meta.next_page_url`.

use serde::{Deserialize, Serialize};
use switchboard_domain::template::ApprovalStatus;

/// One page of `GET /v1/ContentAndApprovals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentPage {
    /// Templates on this page.
    #[serde(default)]
    pub contents: Vec<ContentItem>,
    /// Paging.
    #[serde(default)]
    pub meta: PageMeta,
}

/// Paging information.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // Twilio's own field names
pub struct PageMeta {
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub first_page_url: Option<String>,
    pub previous_page_url: Option<String>,
    pub url: Option<String>,
    pub next_page_url: Option<String>,
    pub key: Option<String>,
}

/// One Content template with its approval requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // Twilio's own field names
pub struct ContentItem {
    pub sid: String,
    pub account_sid: Option<String>,
    pub friendly_name: Option<String>,
    pub language: Option<String>,
    pub variables: Option<serde_json::Value>,
    pub types: Option<serde_json::Value>,
    pub approval_requests: Option<serde_json::Value>,
    pub date_created: Option<String>,
    pub date_updated: Option<String>,
}

impl ContentItem {
    /// Returns the template's text: the `body` of its `twilio/text` type, else of its richest
    /// type, else any type's `body` (a card's `title` when it has none).
    pub fn text(&self) -> Option<String> {
        let types = self.types.as_ref()?.as_object()?;
        let field = |name: &'static str| move |v: &serde_json::Value| v.get(name).and_then(|b| b.as_str()).map(str::to_owned);
        types
            .get("twilio/text")
            .and_then(field("body"))
            .or_else(|| self.content().and_then(|(_, c)| field("body")(c).or_else(|| field("title")(c))))
            .or_else(|| types.values().find_map(field("body")))
    }

    /// Returns the richest WhatsApp type the template has (`twilio/card` over
    /// `twilio/list-picker` over `twilio/quick-reply` over `twilio/call-to-action` over
    /// `twilio/media` over `twilio/text`) with that type's fields.
    pub fn content(&self) -> Option<(&str, &serde_json::Value)> {
        let types = self.types.as_ref()?.as_object()?;
        let kind = switchboard_domain::template::ContentKind::richest(types.keys().map(String::as_str));
        types.get_key_value(kind.as_twilio()).map(|(k, v)| (k.as_str(), v))
    }

    /// Returns the WhatsApp approval status (`approval_requests.status`, or
    /// `approval_requests.whatsapp.status` in the per-template endpoint's shape).
    pub fn whatsapp_status(&self) -> ApprovalStatus {
        let Some(requests) = self.approval_requests.as_ref() else {
            return ApprovalStatus::Unsubmitted;
        };
        let status = requests
            .get("status")
            .or_else(|| requests.get("whatsapp").and_then(|w| w.get("status")));
        status
            .and_then(|s| s.as_str())
            .map_or(ApprovalStatus::Unsubmitted, ApprovalStatus::from_twilio)
    }

    /// Returns the WhatsApp template name, falling back to the friendly name.
    pub fn name(&self) -> String {
        let requests = self.approval_requests.as_ref();
        let name = requests
            .and_then(|r| r.get("name").or_else(|| r.get("whatsapp").and_then(|w| w.get("name"))))
            .and_then(|n| n.as_str());
        name.filter(|n| !n.is_empty())
            .or(self.friendly_name.as_deref())
            .unwrap_or(&self.sid)
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_status_and_name_in_both_shapes() {
        let page: ContentPage = serde_json::from_str(
            r#"{"contents":[
                {"sid":"HX0123456789abcdef0123456789abcdef","friendly_name":"order_update","language":"en",
                 "variables":{"1":"name"},"types":{"twilio/text":{"body":"Hi {{1}}, your order shipped"}},
                 "approval_requests":{"name":"order_update","category":"UTILITY","status":"approved","rejection_reason":""}},
                {"sid":"HXfedcba9876543210fedcba9876543210","friendly_name":"promo","language":"pt_BR",
                 "types":{"twilio/media":{"body":"Oferta {{1}}","media":["https://x/y.jpg"]}},
                 "approval_requests":{"whatsapp":{"name":"promo_br","status":"rejected","rejection_reason":"INVALID_FORMAT"}}},
                {"sid":"HX00000000000000000000000000000000","types":{}}
            ],"meta":{"page":0,"page_size":50,"next_page_url":"https://content.twilio.com/v1/ContentAndApprovals?PageSize=50&Page=1&PageToken=PT1"}}"#,
        )
        .unwrap();
        assert_eq!(page.contents[0].text().as_deref(), Some("Hi {{1}}, your order shipped"));
        assert_eq!(page.contents[0].whatsapp_status(), ApprovalStatus::Approved);
        assert_eq!(page.contents[1].whatsapp_status(), ApprovalStatus::Rejected);
        assert_eq!(page.contents[1].name(), "promo_br");
        assert_eq!(page.contents[1].text().as_deref(), Some("Oferta {{1}}"));
        assert_eq!(page.contents[2].whatsapp_status(), ApprovalStatus::Unsubmitted);
        assert!(page.contents[2].text().is_none());
        assert!(page.meta.next_page_url.unwrap().contains("Page=1"));
    }

    #[test]
    fn the_richest_type_gives_the_kind_and_the_text() {
        let item: ContentItem = serde_json::from_value(serde_json::json!({
            "sid": "HX11111111111111111111111111111111",
            "types": {
                "twilio/text": { "body": "Pick a slot" },
                "twilio/quick-reply": { "body": "Pick a slot, {{1}}", "actions": [{ "title": "Morning", "id": "am" }] }
            }
        }))
        .unwrap();
        let (kind, content) = item.content().unwrap();
        assert_eq!(kind, "twilio/quick-reply");
        assert_eq!(content["actions"][0]["id"], "am");
        assert_eq!(item.text().as_deref(), Some("Pick a slot"), "twilio/text wins for the text");
        let card: ContentItem = serde_json::from_value(serde_json::json!({
            "sid": "HX22222222222222222222222222222222",
            "types": { "twilio/card": { "title": "Your order {{1}}", "actions": [] } }
        }))
        .unwrap();
        assert_eq!(card.text().as_deref(), Some("Your order {{1}}"));
    }
}
