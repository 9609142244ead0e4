//! The emulated Twilio endpoints and the [`Emulator`] handle.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use switchboard_domain::WhatsAppAddress;
use switchboard_twilio::messages::MessageResource;
use time::OffsetDateTime;

use crate::admin;
use crate::answers::{authenticate, authenticated_account, outage_answer, twilio_error};
use crate::handle::Emulator;
use crate::model::{Fault, SentMessage};

/// Builds the router of the "CDN" host media redirects to.
pub fn cdn_router(emulator: Emulator) -> Router {
    Router::new().route("/cdn/{media_sid}", get(cdn_media)).with_state(emulator)
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
        .route("/v1/Services", get(crate::messaging_services::list))
        .route("/v1/Services/{sid}", post(crate::messaging_services::update))
        .route("/v1/Services/{sid}/ChannelSenders", get(crate::messaging_services::channel_senders))
        .route(
            "/emulator/accounts/{account_sid}/messaging-services",
            put(crate::messaging_services::put_service),
        )
        .route("/v1/Webhooks/SharedKeys", post(crate::webhooks_api::create_shared_key))
        .route("/v1/Webhooks/SharedKeys/{id}", delete(crate::webhooks_api::delete_shared_key))
        .route("/v1/Webhooks/Settings", post(crate::webhooks_api::create_setting))
        .route("/v1/Webhooks/Settings/{id}", delete(crate::webhooks_api::delete_setting))
        .route(
            "/v1/Webhooks/Rules",
            post(crate::webhooks_api::create_rule).get(crate::webhooks_api::list_rules),
        )
        .route(
            "/v1/Webhooks/Rules/{id}",
            patch(crate::webhooks_api::patch_rule).delete(crate::webhooks_api::delete_rule),
        )
        .route("/v1/Webhooks/Operations/{id}", get(crate::webhooks_api::get_operation))
        .route("/emulator/webhooks/propagation", put(crate::webhooks_api::put_propagation))
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
