//! The emulated Twilio endpoints and the [`Emulator`] handle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use switchboard_domain::{Clock, WhatsAppAddress};
use switchboard_twilio::messages::{ErrorBody, MessageResource};
use time::OffsetDateTime;

use crate::admin::{self, Fault, SentMessage, Stats};
use crate::state::{Account, CallbackSettings, NumberUrls, Shared, State as EmulatorState, default_templates};

/// A running emulator's handle (cheap to clone).
#[derive(Clone)]
pub struct Emulator {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub state: Shared,
    pub clock: Arc<dyn Clock>,
    pub api_base: String,
    pub cdn_base: String,
    pub http: reqwest::Client,
}

/// Builds the router for the API host (Twilio's endpoints and `/emulator/…`).
pub fn router(emulator: Emulator) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(create_message).get(crate::list::list_messages),
        )
        .route("/2010-04-01/Accounts/{account_sid}/Messages/{file}", get(fetch_message))
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}",
            get(fetch_media),
        )
        .route("/v1/ContentAndApprovals", get(content_and_approvals))
        .route("/v2/Indicators/Typing.json", post(crate::indicators::typing))
        .route("/v2/Channels/Senders", get(crate::senders::list))
        .route("/v2/Channels/Senders/{sid}", post(crate::senders::update))
        .route("/emulator/indicators", get(crate::indicators::get_indicators))
        .route("/emulator/accounts", put(admin::put_account))
        .route(
            "/emulator/accounts/{account_sid}/shared-key",
            put(crate::signing::put_shared_key).delete(crate::signing::delete_shared_key),
        )
        .route("/emulator/customers/messages", post(admin::post_customer_message))
        .route("/emulator/faults", post(admin::post_fault))
        .route("/emulator/windows", put(admin::put_windows))
        .route("/emulator/callbacks", put(admin::put_callbacks))
        .route("/emulator/messages", get(admin::get_messages))
        .route("/emulator/stats", get(admin::get_stats))
        .with_state(emulator)
}

impl Emulator {
    /// An emulator reachable at `api_base`, redirecting media to `cdn_base` (another host:port).
    pub fn new(api_base: &str, cdn_base: &str, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent("TwilioProxy/1.1")
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                state: Shared::new(EmulatorState::default()),
                clock,
                api_base: api_base.trim_end_matches('/').to_owned(),
                cdn_base: cdn_base.trim_end_matches('/').to_owned(),
                http,
            }),
        })
    }

    /// Returns the API base URL (what the sender's `twilio_api_base` points at).
    pub fn api_base(&self) -> &str {
        &self.inner.api_base
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, EmulatorState> {
        self.inner.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates or replaces an account.
    pub fn setup_account(&self, setup: admin::AccountSetup) {
        let numbers: BTreeMap<String, NumberUrls> = setup
            .numbers
            .into_iter()
            .map(|n| {
                let urls = NumberUrls {
                    inbound: n.inbound_url,
                    fallback: n.fallback_url.filter(|url| !url.is_empty()),
                    status_callback: None,
                };
                (n.phone, urls)
            })
            .collect();
        let account = Account {
            auth_token: setup.auth_token,
            numbers,
            sandbox_join_code: setup.sandbox_join_code,
            templates: setup.templates.unwrap_or_else(default_templates),
            shared_key: None,
        };
        self.lock().accounts.insert(setup.account_sid, account);
    }

    /// Applies an account as Switchboard has it configured (development's mirror): the same
    /// configuration mirrored again, by any mirror, changes nothing, so what was changed at
    /// "Twilio" since (a sender's URLs, a revoked token) stays until Switchboard's side changes.
    pub fn mirror_account(&self, setup: admin::AccountSetup) {
        let fingerprint = serde_json::to_string(&setup).unwrap_or_default();
        {
            let mut state = self.lock();
            if state.mirrored.get(&setup.account_sid) == Some(&fingerprint) {
                return;
            }
            state.mirrored.insert(setup.account_sid.clone(), fingerprint);
        }
        self.setup_account(setup);
    }

    /// The auth token the emulator holds for `account_sid`, if it knows the account.
    pub fn account_token(&self, account_sid: &str) -> Option<String> {
        self.lock().accounts.get(account_sid).map(|a| a.auth_token.clone())
    }

    /// Takes Switchboard's channels as the accounts Twilio has (development, where
    /// `emulator_sync` mirrors them here): until an account is mirrored, a request naming it
    /// authenticates with any token, so a channel's credential check passes as it would at
    /// Twilio with the real token. Mirrored accounts are checked as usual.
    pub fn adopt_unknown_accounts(&self) {
        self.lock().adopt_unknown = true;
    }

    /// Queues a fault for the next Messages API requests.
    pub fn inject(&self, fault: Fault) {
        let mut state = self.lock();
        match fault {
            Fault::Outage { status, code, secs } => {
                state.outage = Some((std::time::Instant::now() + Duration::from_secs(secs), status, code));
            }
            other => state.faults.push_back(other),
        }
    }

    /// Sets how status callbacks are sent.
    pub fn set_callbacks(&self, settings: CallbackSettings) {
        self.lock().callbacks = settings;
    }

    /// Returns every message sent so far.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Returns send counts, with the busiest one-second window per sender.
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        let mut by_sender: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for m in &state.sent {
            by_sender.entry(m.from.clone()).or_default().push(m.received_ms);
        }
        let max_per_second = by_sender
            .into_iter()
            .map(|(from, mut times)| {
                times.sort_unstable();
                let (mut best, mut start) = (0, 0);
                for end in 0..times.len() {
                    while times[end] - times[start] >= 1_000 {
                        start += 1;
                    }
                    best = best.max(end - start + 1);
                }
                (from, best)
            })
            .collect();
        Stats {
            sent: state.sent.len(),
            refused: state.refused,
            webhook_attempts: state.webhook_attempts,
            max_per_second,
        }
    }

    /// Returns the router of the "CDN" host media redirects to.
    pub fn cdn_router(&self) -> Router {
        Router::new().route("/cdn/{media_sid}", get(cdn_media)).with_state(self.clone())
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }
}

pub(crate) fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        axum::Json(ErrorBody::new(code, status.as_u16(), message)),
    )
        .into_response()
}

/// Checks HTTP Basic auth against the account; returns its token on success.
/// The answer every Messages API request gets while an injected outage lasts (reads too: an
/// outage at Twilio does not spare the list and fetch endpoints).
pub(crate) fn outage_answer(em: &Emulator) -> Option<Response> {
    let (until, status, code) = em.lock().outage?;
    (std::time::Instant::now() < until).then(|| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        twilio_error(status, code, "injected outage")
    })
}

pub(crate) fn authenticate(em: &Emulator, account_sid: &str, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let unauthorized = || {
        em.lock().refused += 1;
        let mut r = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        r
    };
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return Err(Box::new(unauthorized()));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(Box::new(unauthorized()));
    };
    let (token, adopt) = {
        let state = em.lock();
        (state.accounts.get(account_sid).map(|a| a.auth_token.clone()), state.adopt_unknown)
    };
    match token {
        Some(token) if user == account_sid && password == token => Ok(token),
        // A channel being saved in development, before the mirror has brought its account
        // here: Twilio would know the account, so its own token is taken as the right one.
        None if adopt && user == account_sid && switchboard_twilio::is_account_sid(account_sid) => Ok(password.to_owned()),
        _ => Err(Box::new(unauthorized())),
    }
}

/// Authenticates a request to an API with no account in its path (Content, Messaging v2): the
/// account is whoever HTTP Basic auth names. Returns its SID.
pub(crate) fn authenticated_account(em: &Emulator, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|d| d.split_once(':').map(|(u, _)| u.to_owned()))
        .unwrap_or_default();
    authenticate(em, &user, headers)?;
    Ok(user)
}

fn bad(em: &Emulator, code: u32, message: &str) -> Response {
    em.lock().refused += 1;
    twilio_error(StatusCode::BAD_REQUEST, code, message)
}

async fn create_message(State(em): State<Emulator>, Path(account_sid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if !switchboard_twilio::is_account_sid(&account_sid) {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    }
    let token = match authenticate(&em, &account_sid, &headers) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        em.lock().refused += 1;
        return twilio_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            20001,
            "Supported content types: application/x-www-form-urlencoded",
        );
    }
    let mut fail_with = None;
    let mut lose_response = false;
    let fault = {
        let mut state = em.lock();
        match state.outage {
            Some((until, status, code)) if std::time::Instant::now() < until => Some(Fault::Status {
                status,
                code,
                retry_after_secs: None,
                count: 1,
            }),
            _ => {
                state.outage = None;
                let fault = state.faults.front_mut().map(|f| {
                    if let Some(count) = f.count_mut() {
                        *count = count.saturating_sub(1);
                    }
                    f.clone()
                });
                if state.faults.front_mut().is_some_and(|f| f.count_mut().is_none_or(|c| *c == 0)) {
                    state.faults.pop_front();
                }
                fault
            }
        }
    };
    match fault {
        Some(Fault::Status {
            status,
            code,
            retry_after_secs,
            ..
        }) => {
            em.lock().refused += 1;
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = twilio_error(status, code, "Injected failure");
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            }
            return response;
        }
        Some(Fault::Slow { ms, .. }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::FailWith { code, .. }) => fail_with = Some(code),
        Some(Fault::LoseResponse { .. }) => lose_response = true,
        Some(Fault::Outage { .. }) | None => {}
    }
    let params = switchboard_twilio::signature::form_params(&body);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let media_urls: Vec<String> = params.iter().filter(|(k, _)| k == "MediaUrl").map(|(_, v)| v.clone()).collect();
    let Some(to) = get("To") else {
        return bad(&em, 21604, "A 'To' phone number is required.");
    };
    let Some(from) = get("From") else {
        return bad(&em, 21603, "A 'From' phone number is required.");
    };
    if WhatsAppAddress::parse(&to).is_err() {
        return bad(&em, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    let sender = from.strip_prefix("whatsapp:").unwrap_or_default().to_owned();
    let owns_sender = em
        .lock()
        .accounts
        .get(&account_sid)
        .is_some_and(|a| a.numbers.contains_key(&sender));
    if !from.starts_with("whatsapp:") || !owns_sender {
        return bad(&em, 63007, "Twilio could not find a Channel with the specified From address");
    }
    if to == from {
        return bad(&em, 63031, "Channel message cannot have same From and To");
    }
    let (body_text, content_sid, variables) = (get("Body"), get("ContentSid"), get("ContentVariables"));
    if body_text.is_none() && media_urls.is_empty() && content_sid.is_none() {
        return bad(&em, 21619, "A text message body or media URL must be specified.");
    }
    if variables.is_some() && content_sid.is_none() {
        return bad(&em, 21654, "ContentSid Required");
    }
    if body_text.as_ref().is_some_and(|b| b.chars().count() > 1_600) {
        return bad(&em, 21617, "The concatenated message body exceeds the 1600 character limit.");
    }
    if media_urls.len() > 10 {
        return bad(&em, 21623, "Number of media files exceeds allowed limit.");
    }
    if media_urls.iter().any(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
        return bad(&em, 21620, "Invalid media URL(s).");
    }
    let template = match &content_sid {
        Some(sid) => {
            let found = em
                .lock()
                .accounts
                .get(&account_sid)
                .and_then(|a| a.templates.iter().find(|t| &t.sid == sid).cloned());
            let Some(template) = found else {
                return bad(&em, 21655, "The Content SID is invalid.");
            };
            if let Some(vars) = &variables {
                let valid = serde_json::from_str::<BTreeMap<String, String>>(vars).is_ok_and(|m| m.values().all(|v| !v.trim().is_empty()));
                if !valid {
                    return bad(&em, 21656, "The Content Variables parameter is invalid.");
                }
            }
            Some(template)
        }
        None => None,
    };
    let status_callback = get("StatusCallback");
    if status_callback.as_ref().is_some_and(|u| url_host(u).is_none()) {
        return bad(&em, 21609, "Invalid StatusCallback");
    }

    // Accepted. Decide how it ends, as WhatsApp would.
    let now = em.now();
    let customer = to.strip_prefix("whatsapp:").unwrap_or_default().to_owned();
    let window_open = em
        .lock()
        .windows
        .get(&(sender.clone(), customer.clone()))
        .is_some_and(|at| now - *at < time::Duration::hours(24));
    let sandbox_blocked = sender == crate::SANDBOX_NUMBER && !em.lock().sandbox_joined.contains(&customer);
    let error_code = if let Some(code) = fail_with {
        Some(code)
    } else if sandbox_blocked {
        Some(63015)
    } else {
        match &template {
            Some(t) if t.status == "approved" => None,
            Some(t) if window_open => (t.status == "rejected").then_some(63040),
            Some(_) => Some(63016),
            None if window_open => None,
            None => Some(63016),
        }
    };
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    let sent = SentMessage {
        sid: sid.clone(),
        account_sid: account_sid.clone(),
        from: from.clone(),
        to: to.clone(),
        body: body_text.clone(),
        media_urls: media_urls.clone(),
        content_sid,
        content_variables: variables,
        status_callback: status_callback.clone(),
        status: "queued".into(),
        error_code: None,
        received_ms: i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
        created_unix: now.unix_timestamp(),
        media: Vec::new(),
    };
    em.lock().sent.push(sent);
    let num_media = media_urls.len();
    let (em2, sid2, account2, from2, to2) = (em.clone(), sid.clone(), account_sid.clone(), from.clone(), to.clone());
    // Twilio downloads the media before the message goes on; the callbacks follow.
    tokio::spawn(async move {
        let mut error_code = error_code;
        if !media_urls.is_empty() {
            let (fetched, failed) = crate::media::fetch_all(&em2, &media_urls).await;
            error_code = error_code.or(failed);
            if let Some(m) = em2.lock().sent.iter_mut().find(|m| m.sid == sid2) {
                m.media = fetched;
            }
        }
        if let Some(url) = status_callback {
            crate::callbacks::schedule(em2, sid2, account2, token, url, from2, to2, error_code);
        }
    });
    let date = now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    let resource = MessageResource {
        sid: Some(sid.clone()),
        account_sid: Some(account_sid.clone()),
        api_version: Some("2010-04-01".into()),
        body: body_text.or_else(|| template.map(|t| t.body)),
        date_created: Some(date.clone()),
        date_updated: Some(date),
        direction: Some("outbound-api".into()),
        from: Some(from),
        to: Some(to),
        num_media: Some(num_media.to_string()),
        num_segments: Some("1".into()),
        status: Some("queued".into()),
        uri: Some(format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")),
        ..Default::default()
    };
    if lose_response {
        // The message exists and goes out; the answer breaks off after its status line.
        let broken = futures_util::stream::once(async { Err::<axum::body::Bytes, _>(std::io::Error::other("connection lost")) });
        return (StatusCode::CREATED, axum::body::Body::from_stream(broken)).into_response();
    }
    (StatusCode::CREATED, axum::Json(resource)).into_response()
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && !host.contains('_')).then(|| host.to_owned())
}

async fn fetch_message(State(em): State<Emulator>, Path((account_sid, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(response) = authenticate(&em, &account_sid, &headers) {
        return *response;
    }
    if let Some(answer) = outage_answer(&em) {
        return answer;
    }
    let sid = file.trim_end_matches(".json");
    let found = em
        .lock()
        .sent
        .iter()
        .find(|m| m.sid == sid && m.account_sid == account_sid)
        .cloned();
    match found {
        Some(m) => axum::Json(MessageResource {
            sid: Some(m.sid),
            account_sid: Some(m.account_sid),
            from: Some(m.from),
            to: Some(m.to),
            body: m.body,
            status: Some(m.status),
            error_code: m.error_code.map(i64::from),
            direction: Some("outbound-api".into()),
            ..Default::default()
        })
        .into_response(),
        None => twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    }
}

async fn fetch_media(
    State(em): State<Emulator>,
    Path((account_sid, _message, media_sid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authenticate(&em, &account_sid, &headers) {
        return *response;
    }
    if em.lock().media.get(&media_sid).is_none_or(|(owner, _, _)| owner != &account_sid) {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    }
    // Twilio answers with a redirect to its media CDN, a different host.
    let location = format!("{}/cdn/{media_sid}", em.inner.cdn_base);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn cdn_media(State(em): State<Emulator>, Path(media_sid): Path<String>, headers: HeaderMap) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        // Credentials must never follow a redirect to another host.
        return (StatusCode::BAD_REQUEST, "credentials were forwarded to the CDN").into_response();
    }
    let found = em.lock().media.get(&media_sid).map(|(_, ct, bytes)| (ct.clone(), bytes.clone()));
    match found {
        Some((content_type, bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct PageQuery {
    #[serde(rename = "PageSize")]
    page_size: Option<usize>,
    #[serde(rename = "Page")]
    page: Option<usize>,
}

async fn content_and_approvals(State(em): State<Emulator>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let templates = em.lock().accounts.get(&user).map(|a| a.templates.clone()).unwrap_or_default();
    let size = q.page_size.unwrap_or(50).clamp(1, 1_000);
    let page = q.page.unwrap_or(0);
    let contents: Vec<serde_json::Value> = templates
        .iter()
        .skip(page * size)
        .take(size)
        .map(|t| {
            serde_json::json!({
                "sid": t.sid, "account_sid": user, "friendly_name": t.name, "language": t.language,
                "variables": {}, "types": t.types(),
                "approval_requests": { "name": t.name, "category": "UTILITY", "status": t.status, "rejection_reason": "" }
            })
        })
        .collect();
    let next = ((page + 1) * size < templates.len())
        .then(|| format!("{}/v1/ContentAndApprovals?PageSize={size}&Page={}", em.inner.api_base, page + 1));
    axum::Json(serde_json::json!({
        "contents": contents,
        "meta": { "page": page, "page_size": size, "next_page_url": next, "key": "contents",
                  "url": format!("{}/v1/ContentAndApprovals?PageSize={size}&Page={page}", em.inner.api_base) }
    }))
    .into_response()
}
