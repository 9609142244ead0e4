//! Twilio's Senders API for WhatsApp (`/v2/Channels/Senders` on messaging.twilio.com): each
//! number of an account is an `ONLINE` sender whose webhook configuration is where the emulator
//! really posts, so updating it through the API moves the webhooks, as at Twilio.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_twilio::senders::{Sender, SenderWebhook};

use crate::answers::{authenticated_account, twilio_error};
use crate::handle::Emulator;
use crate::state::NumberUrls;

/// A number's sender SID: stable, derived from its digits.
pub(crate) fn sid_of(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    format!("XE{digits:0>32}")
}

fn sender(phone: &str, urls: &NumberUrls) -> Sender {
    let post = || Some("POST".to_owned());
    Sender {
        sid: sid_of(phone),
        status: Some("ONLINE".into()),
        sender_id: format!("whatsapp:{phone}"),
        webhook: Some(SenderWebhook {
            callback_url: Some(urls.inbound.clone()),
            callback_method: post(),
            fallback_url: urls.fallback.clone(),
            fallback_method: urls.fallback.as_ref().and_then(|_| post()),
            status_callback_url: urls.status_callback.clone(),
            status_callback_method: urls.status_callback.as_ref().and_then(|_| post()),
        }),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "Channel")]
    channel: Option<String>,
}

pub(crate) async fn list(State(em): State<Emulator>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    if q.channel.as_deref() != Some("whatsapp") {
        em.lock().refused += 1;
        return twilio_error(StatusCode::BAD_REQUEST, 20001, "Channel must be whatsapp or rcs");
    }
    let senders: Vec<Sender> = em
        .lock()
        .accounts
        .get(&user)
        .map(|a| a.numbers.iter().map(|(phone, urls)| sender(phone, urls)).collect())
        .unwrap_or_default();
    let url = format!("{}/v2/Channels/Senders?Channel=whatsapp", em.inner.api_base);
    Json(serde_json::json!({
        "senders": senders,
        "meta": { "page": 0, "page_size": senders.len(), "first_page_url": url, "previous_page_url": null,
                  "url": url, "next_page_url": null, "key": "senders" }
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateBody {
    webhook: Option<SenderWebhook>,
}

pub(crate) async fn update(State(em): State<Emulator>, headers: HeaderMap, Path(sid): Path<String>, body: Bytes) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let Ok(body) = serde_json::from_slice::<UpdateBody>(&body) else {
        em.lock().refused += 1;
        return twilio_error(StatusCode::BAD_REQUEST, 20001, "Invalid JSON body");
    };
    let mut state = em.lock();
    let Some((phone, urls)) = state
        .accounts
        .get_mut(&user)
        .and_then(|a| a.numbers.iter_mut().find(|(phone, _)| sid_of(phone) == sid))
    else {
        state.refused += 1;
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    if let Some(webhook) = body.webhook {
        if let Some(url) = webhook.callback_url.filter(|u| !u.is_empty()) {
            urls.inbound = url;
        }
        urls.fallback = webhook.fallback_url.filter(|u| !u.is_empty());
        urls.status_callback = webhook.status_callback_url.filter(|u| !u.is_empty());
    }
    (StatusCode::ACCEPTED, Json(sender(phone, urls))).into_response()
}
