//! A small Twilio REST client: send a message, fetch one, list content templates, fetch media.
//! Base URLs are configurable so the emulator can stand in for Twilio. Credentials are sent as
//! HTTP Basic and only to the configured Twilio hosts; they never appear in errors or logs.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::content::ContentPage;
use crate::errors::{self, Retry};
use crate::messages::{CreateMessage, ErrorBody, MessagePage, MessageResource};

/// An account's credentials: Account SID (or API key SID) and auth token (or key secret).
#[derive(Clone)]
pub struct Credentials {
    /// Basic-auth user: the Account SID (or an `SK…` API key).
    pub username: String,
    /// Basic-auth password.
    pub password: SecretString,
    /// The account the resources belong to.
    pub account_sid: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Account SID + auth token.
    pub fn account(account_sid: &str, auth_token: SecretString) -> Self {
        Self {
            username: account_sid.to_owned(),
            password: auth_token,
            account_sid: account_sid.to_owned(),
        }
    }
}

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error.
    #[error("Twilio answered {status} (code {code:?}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Twilio error code.
        code: Option<u32>,
        /// Twilio's message or the catalogue's explanation.
        message: String,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// No answer (connect, TLS, timeout).
    #[error("could not reach Twilio: {0}")]
    Network(String),
    /// The request went out but its answer was lost (a timeout or a connection cut after
    /// sending, or an accepted answer that broke off): Twilio may have acted on it.
    #[error("Twilio's answer was lost, the outcome is unknown: {0}")]
    Lost(String),
    /// An answer that does not parse.
    #[error("unexpected answer from Twilio: {0}")]
    Decode(String),
    /// The URL is not on a Twilio host we may send credentials to.
    #[error("refusing to send credentials to {0}")]
    ForeignHost(String),
}

impl TwilioError {
    /// Returns whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, code, .. } => errors::classify(*status, *code) == Retry::Retryable,
            Self::Network(_) | Self::Lost(_) => true,
            Self::Decode(_) | Self::ForeignHost(_) => false,
        }
    }

    /// Returns the Twilio error code, if any.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// Returns `Retry-After`, if Twilio sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Twilio's answer to a typing indicator.
#[derive(Debug, serde::Deserialize)]
struct TypingAnswer {
    success: bool,
}

/// A Twilio REST client.
#[derive(Debug, Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    api_base: String,
    content_base: String,
    messaging_base: String,
    webhooks_base: String,
}

impl TwilioClient {
    /// A client for `api_base` (e.g. `https://api.twilio.com`) and `content_base`
    /// (`https://content.twilio.com`). Needs a rustls crypto provider installed.
    pub fn new(api_base: &str, content_base: &str, timeout: Duration) -> Result<Self, TwilioError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Network(e.to_string()))?;
        Ok(Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            content_base: content_base.trim_end_matches('/').to_owned(),
            messaging_base: "https://messaging.twilio.com".into(),
            webhooks_base: "https://webhooks.twilio.com".into(),
        })
    }

    /// The Messaging v2 API's base URL.
    pub fn messaging_base(&self) -> &str {
        &self.messaging_base
    }

    /// The Webhooks configuration API's base URL.
    pub fn webhooks_base(&self) -> &str {
        &self.webhooks_base
    }

    /// Uses `base` for the Webhooks configuration API instead of `https://webhooks.twilio.com`.
    pub fn with_webhooks_base(mut self, base: &str) -> Self {
        base.trim_end_matches('/').clone_into(&mut self.webhooks_base);
        self
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Uses `base` for the Messaging v2 API (typing indicators) instead of
    /// `https://messaging.twilio.com`.
    pub fn with_messaging_base(mut self, base: &str) -> Self {
        base.trim_end_matches('/').clone_into(&mut self.messaging_base);
        self
    }

    /// Shows "typing…" to the customer who sent inbound message `message_sid`, and marks it
    /// (and their earlier messages) read: Twilio's Typing Indicators API, WhatsApp only.
    pub async fn typing_indicator(&self, creds: &Credentials, message_sid: &str) -> Result<(), TwilioError> {
        let url = format!("{}/v2/Indicators/Typing.json", self.messaging_base);
        let request = self
            .http
            .post(url)
            .basic_auth(&creds.username, Some(creds.password.expose_secret()))
            .form(&[("channel", "whatsapp"), ("messageId", message_sid)]);
        let response = self
            .send(request, "/v2/Indicators/Typing.json")
            .await
            .map_err(|e| TwilioError::Network(redact(&e)))?;
        let answer: TypingAnswer = json_or_error(response).await?;
        if answer.success {
            Ok(())
        } else {
            Err(TwilioError::Decode("the typing indicator was not accepted (success: false)".into()))
        }
    }

    /// Returns the Messages API base URL.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// Creates (sends) a message.
    pub async fn create_message(&self, creds: &Credentials, message: &CreateMessage) -> Result<MessageResource, TwilioError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.api_base, creds.account_sid);
        let request = self
            .http
            .post(url)
            .basic_auth(&creds.username, Some(creds.password.expose_secret()))
            .form(&message.form());
        let response = self.send(request, MESSAGES).await.map_err(|e| {
            // A failed connect never reached Twilio; anything later may have.
            if e.is_connect() {
                TwilioError::Network(redact(&e))
            } else {
                TwilioError::Lost(redact(&e))
            }
        })?;
        let status = response.status();
        match json_or_error(response).await {
            // Accepted, but the answer broke off or does not parse: the message exists.
            Err(TwilioError::Network(e) | TwilioError::Decode(e)) if status.is_success() => Err(TwilioError::Lost(e)),
            other => other,
        }
    }

    /// Lists the messages from `from` to `to` sent on or after `since` (a day, UTC), newest
    /// first, following `next_page_uri` for at most `max_pages` pages of 1,000.
    pub async fn list_messages(
        &self,
        creds: &Credentials,
        to: &str,
        from: &str,
        since: time::Date,
        max_pages: usize,
    ) -> Result<Vec<MessageResource>, TwilioError> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to)
            .append_pair("From", from)
            .append_pair(
                "DateSent>",
                &format!("{:04}-{:02}-{:02}", since.year(), u8::from(since.month()), since.day()),
            )
            .append_pair("PageSize", "1000")
            .finish();
        let mut url = format!("{}/2010-04-01/Accounts/{}/Messages.json?{query}", self.api_base, creds.account_sid);
        let mut all = Vec::new();
        for _ in 0..max_pages.max(1) {
            let page: MessagePage = self.get_json(creds, &url, MESSAGES).await?;
            all.extend(page.messages);
            match page.next_page_uri {
                Some(next) if next.starts_with('/') => url = format!("{}{next}", self.api_base),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Fetches a message by SID.
    pub async fn fetch_message(&self, creds: &Credentials, sid: &str) -> Result<MessageResource, TwilioError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages/{sid}.json", self.api_base, creds.account_sid);
        self.get_json(creds, &url, "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json")
            .await
    }

    /// Checks that Twilio accepts `creds`: reads one message of the account's list (no side
    /// effect; a revoked or wrong token gets 401, code 20003).
    pub async fn check_credentials(&self, creds: &Credentials) -> Result<(), TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json?PageSize=1",
            self.api_base, creds.account_sid
        );
        self.get_json::<serde_json::Value>(creds, &url, MESSAGES).await.map(|_| ())
    }

    /// GETs `url` with the account's credentials and decodes the JSON answer.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        creds: &Credentials,
        url: &str,
        template: &'static str,
    ) -> Result<T, TwilioError> {
        let request = self.http.get(url).basic_auth(&creds.username, Some(creds.password.expose_secret()));
        let response = self.send(request, template).await.map_err(|e| TwilioError::Network(redact(&e)))?;
        json_or_error(response).await
    }

    /// Fetches one page of templates with approvals; `next` is a `next_page_url` from a
    /// previous page (it must be on the content host).
    pub async fn content_and_approvals(&self, creds: &Credentials, next: Option<&str>) -> Result<ContentPage, TwilioError> {
        let url = match next {
            Some(next) if next.starts_with(&self.content_base) => next.to_owned(),
            Some(next) => return Err(TwilioError::ForeignHost(host_of(next))),
            None => format!("{}/v1/ContentAndApprovals?PageSize=100", self.content_base),
        };
        self.get_json(creds, &url, "/v1/ContentAndApprovals").await
    }

    /// Starts downloading an inbound media URL with the account's credentials. Only URLs on
    /// the configured API host get credentials; redirects to other hosts (Twilio's CDN) are
    /// followed by reqwest without the `Authorization` header.
    pub async fn fetch_media(&self, creds: &Credentials, url: &str) -> Result<reqwest::Response, TwilioError> {
        if !url.starts_with(&format!("{}/", self.api_base)) {
            return Err(TwilioError::ForeignHost(host_of(url)));
        }
        let request = self.http.get(url).basic_auth(&creds.username, Some(creds.password.expose_secret()));
        let response = self
            .send(request, "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}")
            .await
            .map_err(|e| TwilioError::Network(redact(&e)))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }
}

/// The Messages list resource's URL template.
const MESSAGES: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";

impl TwilioClient {
    /// Sends `request` inside an HTTP client span (`{method} {url.template}`, OpenTelemetry's
    /// HTTP client convention, with the host it goes to): the span times the call to Twilio up
    /// to its answer's headers.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, template: &'static str) -> Result<reqwest::Response, reqwest::Error> {
        use tracing::Instrument as _;
        let request = request.build()?;
        let method = request.method().as_str();
        let span = tracing::info_span!(
            "twilio.request",
            otel.name = %format_args!("{method} {template}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = method,
            url.template = template,
            server.address = request.url().host_str().unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let result = self.http.execute(request).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(response) => Ok(response.status().as_u16()),
            Err(error) if error.is_timeout() => Err("timeout"),
            Err(error) if error.is_connect() => Err("connect"),
            Err(_) => Err("transport"),
        };
        switchboard_telemetry::propagation::record_http_client_outcome(&span, outcome);
        result
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "an invalid URL".into())
}

pub(crate) fn redact(error: &reqwest::Error) -> String {
    // reqwest errors name the URL; ours never carry credentials in URLs, but strip them anyway.
    error.to_string().split(" for url").next().unwrap_or("request failed").to_owned()
}

pub(crate) async fn json_or_error<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, TwilioError> {
    if !response.status().is_success() {
        return Err(api_error(response).await);
    }
    let bytes = response.bytes().await.map_err(|e| TwilioError::Network(redact(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| TwilioError::Decode(e.to_string()))
}

pub(crate) async fn api_error(response: reqwest::Response) -> TwilioError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(err) => {
            let message = err
                .code
                .map_or_else(|| err.message.clone(), |c| errors::explain(c, Some(&err.message)));
            TwilioError::Api {
                status,
                code: err.code,
                message,
                retry_after,
            }
        }
        // The newer APIs (Webhooks configuration) answer RFC 7807 problem details.
        Err(_) => match serde_json::from_slice::<Problem>(&body) {
            Ok(problem) => TwilioError::Api {
                status,
                code: problem.code,
                message: problem.detail.or(problem.title).unwrap_or_else(|| format!("HTTP {status}")),
                retry_after,
            },
            Err(_) => TwilioError::Api {
                status,
                code: None,
                message: format!("HTTP {status}"),
                retry_after,
            },
        },
    }
}

/// An RFC 7807 problem (`type`, `title`, `status`, `detail`, `code`).
#[derive(serde::Deserialize)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    code: Option<u32>,
}
