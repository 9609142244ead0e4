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
    /// Returns the template's text: the `body` of its `twilio/text` type, else of any type.
    pub fn text(&self) -> Option<String> {
        let types = self.types.as_ref()?.as_object()?;
        let body = |v: &serde_json::Value| v.get("body").and_then(|b| b.as_str()).map(str::to_owned);
        types.get("twilio/text").and_then(body).or_else(|| types.values().find_map(body))
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
}
