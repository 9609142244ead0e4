//! Twilio's Webhooks configuration API (`webhooks.twilio.com/v1/Webhooks`, public beta since
//! 2026-09): **SharedKeys** (a signing secret Twilio returns once), **Settings** (immutable: how a
//! webhook is signed and delivered), **Rules** (which URLs a Setting applies to; their changes
//! propagate asynchronously and are tracked by **Operations**). JSON bodies with camelCase
//! fields, token pagination (`meta.nextToken`), an `Idempotency-Key` (a UUIDv7) on each create.
//! Shapes from twilio-python 9.13 and twilio-node 6.3 (`rest/webhooks/v1`) and Twilio's pages
//! webhook-configuration, webhook-settings, webhook-rules and webhook-shared-keys (2026-09-07).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::client::{Credentials, TwilioClient, TwilioError};
use crate::overrides::{ConnectionOverrides, RetryOn};

/// The SharedKeys collection.
pub const SHARED_KEYS: &str = "/v1/Webhooks/SharedKeys";
/// The Settings collection.
pub const SETTINGS: &str = "/v1/Webhooks/Settings";
/// The Rules collection.
pub const RULES: &str = "/v1/Webhooks/Rules";
/// The Operations collection.
pub const OPERATIONS: &str = "/v1/Webhooks/Operations";

/// A new SharedKey.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSharedKey {
    /// A name to know it by.
    #[serde(default)]
    pub friendly_name: Option<String>,
}

/// A SharedKey as Twilio answers its creation: the secret is in this answer only.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSharedKey {
    /// `webhooks_sharedkey_…`: the `key=` of `X-Twilio-Webhooks-Signature-Settings`.
    pub id: String,
    /// The signing secret.
    pub secret: SecretString,
}

impl std::fmt::Debug for CreatedSharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedSharedKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// How a Setting signs (`type` is `SHARED_KEY`, or `none` for no signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureSetting {
    /// The signing kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The SharedKey that signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_key_id: Option<String>,
    /// `HMAC_SHA1` or `HMAC_SHA256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
}

/// When Twilio retries a webhook of a Setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retry_count: u32,
    /// `HTTP_4XX`, `HTTP_5XX`, `CONNECTION_TIMEOUT`, `READ_TIMEOUT` or `ALL`.
    pub retry_on: Vec<String>,
}

/// A Setting's connection: timeouts and retries. It takes precedence over the URL's `#…`
/// connection overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSetting {
    /// 100 ms – 15 s.
    pub connect_timeout_ms: u32,
    /// 100 ms – 15 s.
    pub read_timeout_ms: u32,
    /// All attempts together, 100 ms – 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_timeout_ms: Option<u32>,
    /// None: no retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

fn retry_name(on: RetryOn) -> &'static str {
    match on {
        RetryOn::Connect => "CONNECTION_TIMEOUT",
        RetryOn::Read => "READ_TIMEOUT",
        RetryOn::ServerError => "HTTP_5XX",
        RetryOn::ClientError => "HTTP_4XX",
        RetryOn::All => "ALL",
    }
}

impl ConnectionSetting {
    /// The same timeouts and retries as URL connection overrides.
    pub fn from_overrides(o: &ConnectionOverrides) -> Self {
        Self {
            connect_timeout_ms: o.connect_timeout_ms,
            read_timeout_ms: o.read_timeout_ms,
            total_timeout_ms: Some(o.total_timeout_ms),
            retry_policy: (o.retries > 0).then(|| RetryPolicy {
                retry_count: o.retries,
                retry_on: o.retry_on.iter().map(|r| retry_name(*r).to_owned()).collect(),
            }),
        }
    }

    /// As connection overrides (what a delivery applies).
    pub fn to_overrides(&self) -> ConnectionOverrides {
        let retry_on = self.retry_policy.as_ref().map_or_else(Vec::new, |p| {
            let kinds = [
                RetryOn::Connect,
                RetryOn::Read,
                RetryOn::ServerError,
                RetryOn::ClientError,
                RetryOn::All,
            ];
            kinds
                .into_iter()
                .filter(|r| p.retry_on.iter().any(|n| n == retry_name(*r)))
                .collect()
        });
        ConnectionOverrides {
            connect_timeout_ms: self.connect_timeout_ms,
            read_timeout_ms: self.read_timeout_ms,
            total_timeout_ms: self.total_timeout_ms.unwrap_or(60_000),
            retries: self.retry_policy.as_ref().map_or(0, |p| p.retry_count),
            retry_on,
        }
    }
}

/// A Setting to create. `auth` is Twilio's authentication object towards the endpoint
/// (`{"source": "INLINE", "value": {"scheme": …}}` or an AuthProfile reference), passed as given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSetting {
    /// A name to know it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How Twilio authenticates to the endpoint.
    pub auth: serde_json::Value,
    /// How Twilio signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureSetting>,
    /// Timeouts and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionSetting>,
}

/// A Setting (the fields used here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    /// `webhooks_setting_…`.
    pub id: String,
    /// `CUSTOMER` or `SYSTEM`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Its name.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// How it signs.
    #[serde(default)]
    pub signature: Option<SignatureSetting>,
    /// Its timeouts and retries.
    #[serde(default)]
    pub connection: Option<ConnectionSetting>,
}

/// A Setting a Rule applies, with its share of the traffic (the shares add up to 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingReference {
    /// The Setting.
    pub setting_id: String,
    /// Percent of the matching webhooks.
    pub percentage: u8,
}

/// A Rule: `EXACT_MATCH` on `value` (no trailing `/`), `PREFIX_MATCH` on `prefix` (ending in
/// `/`), or `DEFAULT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// `webhooks_rule_…` (absent in a request).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// `EXACT_MATCH`, `PREFIX_MATCH` or `DEFAULT`.
    pub match_type: String,
    /// For `PREFIX_MATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// For `EXACT_MATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The Settings applied.
    #[serde(default)]
    pub settings: Vec<SettingReference>,
}

impl Rule {
    /// A prefix rule applying one Setting to every URL under `prefix`.
    pub fn prefix(friendly_name: &str, prefix: &str, setting_id: &str) -> Self {
        Self {
            id: String::new(),
            friendly_name: Some(friendly_name.to_owned()),
            match_type: "PREFIX_MATCH".into(),
            prefix: Some(prefix.to_owned()),
            value: None,
            settings: vec![SettingReference {
                setting_id: setting_id.to_owned(),
                percentage: 100,
            }],
        }
    }
}

/// A Rule change Twilio is propagating (typically 30–60 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Its id, to poll.
    pub id: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED` or `FAILED`.
    pub status: String,
    /// Where to poll.
    #[serde(default)]
    pub status_url: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// The Rule changed.
    #[serde(default)]
    pub resource_id: Option<String>,
}

impl Operation {
    /// The change is live everywhere.
    pub fn completed(&self) -> bool {
        self.status == "COMPLETED"
    }

    /// The change will never be live.
    pub fn abandoned(&self) -> bool {
        matches!(self.status.as_str(), "FAILED" | "CANCELLED")
    }
}

/// Twilio's answer to a Rule change (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChange {
    /// The propagation to follow.
    pub operation: Operation,
    /// The Rule as accepted.
    #[serde(default)]
    pub rule: Option<Rule>,
}

/// A page of a token-paginated list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenMeta {
    /// The list's field.
    #[serde(default)]
    pub key: Option<String>,
    /// Items per page.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// The next page's `pageToken`.
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RulePage {
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    meta: TokenMeta,
}

/// The most pages read (a guard against a pagination loop).
const MAX_PAGES: usize = 20;

/// An id Twilio gave us, safe to put in a path.
fn checked_id(id: &str) -> Result<&str, TwilioError> {
    if !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(TwilioError::Decode(format!("{id:?} is not a Webhooks API id")))
    }
}

impl TwilioClient {
    async fn webhooks_send(
        &self,
        creds: &Credentials,
        method: reqwest::Method,
        path: &str,
        template: &'static str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, TwilioError> {
        let url = format!("{}{path}", self.webhooks_base());
        let mut request = self
            .http()
            .request(method.clone(), url)
            .basic_auth(&creds.username, Some(creds.password.expose_secret()));
        if method == reqwest::Method::POST {
            request = request.header("Idempotency-Key", uuid::Uuid::now_v7().to_string());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, template)
            .await
            .map_err(|e| TwilioError::Network(crate::client::redact(&e)))
    }

    /// Sends a request to the Webhooks API and decodes its JSON answer.
    async fn webhooks_call<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        method: reqwest::Method,
        path: &str,
        template: &'static str,
        body: Option<serde_json::Value>,
    ) -> Result<T, TwilioError> {
        let response = self.webhooks_send(creds, method, path, template, body).await?;
        crate::client::json_or_error(response).await
    }

    /// Deletes a Webhooks API resource (Twilio answers 204 with no body).
    async fn webhooks_delete(&self, creds: &Credentials, path: &str, template: &'static str) -> Result<(), TwilioError> {
        let response = self.webhooks_send(creds, reqwest::Method::DELETE, path, template, None).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(crate::client::api_error(response).await)
        }
    }

    /// Creates a SharedKey; its secret is in this answer only.
    pub async fn create_shared_key(&self, creds: &Credentials, friendly_name: &str) -> Result<CreatedSharedKey, TwilioError> {
        let body = serde_json::to_value(NewSharedKey {
            friendly_name: Some(friendly_name.to_owned()),
        })
        .map_err(|e| TwilioError::Decode(e.to_string()))?;
        self.webhooks_call(creds, reqwest::Method::POST, SHARED_KEYS, SHARED_KEYS, Some(body))
            .await
    }

    /// Deletes a SharedKey (Twilio refuses while a Setting names it).
    pub async fn delete_shared_key(&self, creds: &Credentials, id: &str) -> Result<(), TwilioError> {
        let path = format!("{SHARED_KEYS}/{}", checked_id(id)?);
        self.webhooks_delete(creds, &path, "/v1/Webhooks/SharedKeys/{id}").await
    }

    /// Creates a Setting (Settings are immutable: a change is a new Setting).
    pub async fn create_setting(&self, creds: &Credentials, setting: &NewSetting) -> Result<Setting, TwilioError> {
        let body = serde_json::to_value(setting).map_err(|e| TwilioError::Decode(e.to_string()))?;
        self.webhooks_call(creds, reqwest::Method::POST, SETTINGS, SETTINGS, Some(body))
            .await
    }

    /// Deletes a Setting (Twilio refuses while a Rule applies it).
    pub async fn delete_setting(&self, creds: &Credentials, id: &str) -> Result<(), TwilioError> {
        let path = format!("{SETTINGS}/{}", checked_id(id)?);
        self.webhooks_delete(creds, &path, "/v1/Webhooks/Settings/{id}").await
    }

    /// Deletes a Rule: webhooks to its URLs then go out with no Setting (the default Rule's, if
    /// any).
    pub async fn delete_rule(&self, creds: &Credentials, id: &str) -> Result<(), TwilioError> {
        let path = format!("{RULES}/{}", checked_id(id)?);
        self.webhooks_delete(creds, &path, "/v1/Webhooks/Rules/{id}").await
    }

    /// Lists the account's Rules.
    pub async fn webhook_rules(&self, creds: &Credentials) -> Result<Vec<Rule>, TwilioError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query = {
                let mut query = form_urlencoded::Serializer::new(String::new());
                query.append_pair("pageSize", "100");
                if let Some(t) = &token {
                    query.append_pair("pageToken", t);
                }
                query.finish()
            };
            let path = format!("{RULES}?{query}");
            let page: RulePage = self.webhooks_call(creds, reqwest::Method::GET, &path, RULES, None).await?;
            all.extend(page.rules);
            match page.meta.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(all)
    }

    /// Creates a Rule; it takes effect when its Operation completes.
    pub async fn create_rule(&self, creds: &Credentials, rule: &Rule) -> Result<RuleChange, TwilioError> {
        let body = serde_json::to_value(rule).map_err(|e| TwilioError::Decode(e.to_string()))?;
        self.webhooks_call(creds, reqwest::Method::POST, RULES, RULES, Some(body)).await
    }

    /// Points Rule `id` at `settings`; the change takes effect when its Operation completes.
    pub async fn update_rule_settings(
        &self,
        creds: &Credentials,
        id: &str,
        settings: Vec<SettingReference>,
    ) -> Result<RuleChange, TwilioError> {
        let path = format!("{RULES}/{}", checked_id(id)?);
        let body = serde_json::json!({ "settings": settings });
        self.webhooks_call(creds, reqwest::Method::PATCH, &path, "/v1/Webhooks/Rules/{id}", Some(body))
            .await
    }

    /// Reads an Operation.
    pub async fn webhook_operation(&self, creds: &Credentials, id: &str) -> Result<Operation, TwilioError> {
        let path = format!("{OPERATIONS}/{}", checked_id(id)?);
        self.webhooks_call(creds, reqwest::Method::GET, &path, "/v1/Webhooks/Operations/{id}", None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_setting_carries_the_same_retries_as_the_url_overrides() {
        let overrides = ConnectionOverrides::switchboard();
        let setting = ConnectionSetting::from_overrides(&overrides);
        let json = serde_json::to_value(&setting).unwrap();
        assert_eq!(
            json["retryPolicy"]["retryOn"],
            serde_json::json!(["CONNECTION_TIMEOUT", "READ_TIMEOUT", "HTTP_5XX"])
        );
        assert_eq!(json["connectTimeoutMs"], 2_000);
        assert_eq!(setting.to_overrides(), overrides);
        let none = ConnectionSetting {
            retry_policy: None,
            ..setting
        };
        assert_eq!(none.to_overrides().retries, 0);
    }

    #[test]
    fn the_secret_of_a_created_key_never_reaches_debug_output() {
        let key: CreatedSharedKey =
            serde_json::from_str(r#"{"id":"webhooks_sharedkey_01","friendlyName":"x","secret":"very-secret-value"}"#).unwrap();
        assert!(!format!("{key:?}").contains("very-secret"));
        assert_eq!(key.secret.expose_secret(), "very-secret-value");
    }

    #[test]
    fn ids_that_could_leave_the_path_are_refused() {
        assert!(checked_id("webhooks_rule_01hx").is_ok());
        for bad in ["", "../Settings", "a/b", "a?b=1"] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
    }
}
