//! A small client of the Switchboard REST API (and the emulator's control API) for the
//! `admin`, `agent`, `simulate` and `dev --demo` commands. Errors are turned into messages that
//! say what failed and what to do.

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

/// An answer other than 2xx.
#[derive(Debug)]
pub struct CallError {
    /// The HTTP status.
    pub status: u16,
    text: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CallError {}

/// The HTTP status of a failed call (`None`: no answer at all).
pub fn status_of(error: &anyhow::Error) -> Option<u16> {
    error.downcast_ref::<CallError>().map(|e| e.status)
}

/// A REST client with an API key.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl ApiClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8088`).
    pub fn new(base: &str, key: Option<String>) -> anyhow::Result<Self> {
        crate::install_crypto();
        Ok(Self {
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// The same client with another key.
    pub fn with_key(&self, key: &str) -> Self {
        Self {
            key: Some(key.to_owned()),
            ..self.clone()
        }
    }

    /// Calls `method path` (under `/api/v1` unless `path` is absolute) with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.request(method, path, |request| match body {
            Some(body) => request.json(body),
            None => request,
        })
        .await
    }

    /// `POST` of raw bytes of `content_type` (a file upload).
    pub async fn post_bytes(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        self.request(Method::POST, path, |request| {
            request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes)
        })
        .await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<Value> {
        let url = if path.starts_with("/api/") || path.starts_with("/emulator/") {
            format!("{}{path}", self.base)
        } else {
            format!("{}/api/v1{path}", self.base)
        };
        let mut request = self.http.request(method.clone(), &url);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        request = body(request);
        let response = request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach {url}: {e}\n  is `switchboard dev` running? (set --api-url or SWITCHBOARD_API_URL if it listens elsewhere)"
            )
        })?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let code = value.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| value.pointer("/error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| value.to_string());
        let hint = match status.as_u16() {
            401 => "\n  pass an API key with --api-key or SWITCHBOARD_API_KEY (`switchboard dev` prints one)",
            403 => "\n  this key's role may not do that: use an admin key, or the key of the agent concerned",
            _ => "",
        };
        let details = value
            .pointer("/error/details")
            .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()));
        let text = match details {
            Some(d) => format!("{method} {path} failed: {status} {code}: {message}\n  details: {d}{hint}"),
            None => format!("{method} {path} failed: {status} {code}: {message}{hint}"),
        };
        Err(CallError {
            status: status.as_u16(),
            text,
        }
        .into())
    }

    /// `GET`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PUT` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(Method::PUT, path, Some(body)).await
    }
}

/// Reads a string field of a JSON object.
/// The `id` of `item`, an API answer naming a `what`, as a typed id.
pub fn id_of<T: std::str::FromStr>(item: &Value, what: &str) -> anyhow::Result<T> {
    field(item, "id")
        .parse()
        .map_err(|_| anyhow::anyhow!("the API answered a {what} without a valid id"))
}

pub fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or("")
}
