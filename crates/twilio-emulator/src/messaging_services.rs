//! Twilio's Messaging Services (`/v1/Services` on messaging.twilio.com): list them, list a
//! service's WhatsApp senders (`ChannelSenders`), update a service's webhook URLs (form
//! fields). A service is made here with `PUT /emulator/accounts/{sid}/messaging-services`;
//! where a customer's message goes follows from it (`Account::inbound_urls`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_twilio::messaging_services::{ChannelSender, MessagingService};

use crate::answers::{authenticated_account, twilio_error};
use crate::handle::Emulator;
use crate::model::MessagingServiceSetup;
use crate::state::Service;

fn view(sid: &str, s: &Service) -> MessagingService {
    let post = || Some("POST".to_owned());
    MessagingService {
        sid: sid.to_owned(),
        friendly_name: Some(s.friendly_name.clone()),
        inbound_request_url: s.inbound_url.clone(),
        inbound_method: post(),
        fallback_url: s.fallback_url.clone(),
        fallback_method: post(),
        status_callback: s.status_callback.clone(),
        use_inbound_webhook_on_number: Some(s.use_number_webhook),
    }
}

fn page<T: serde::Serialize>(em: &Emulator, key: &str, path: &str, items: &[T]) -> Response {
    let url = format!("{}{path}", em.inner.api_base);
    Json(serde_json::json!({
        key: items,
        "meta": { "page": 0, "page_size": items.len(), "first_page_url": url, "previous_page_url": null,
                  "url": url, "next_page_url": null, "key": key }
    }))
    .into_response()
}

pub(crate) async fn list(State(em): State<Emulator>, headers: HeaderMap) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let services: Vec<MessagingService> = em
        .lock()
        .accounts
        .get(&user)
        .map(|a| a.services.iter().map(|(sid, s)| view(sid, s)).collect())
        .unwrap_or_default();
    page(&em, "services", "/v1/Services", &services)
}

pub(crate) async fn channel_senders(State(em): State<Emulator>, headers: HeaderMap, Path(sid): Path<String>) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let phones = em
        .lock()
        .accounts
        .get(&user)
        .and_then(|a| a.services.get(&sid))
        .map(|s| s.phones.clone());
    let Some(phones) = phones else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    let senders: Vec<ChannelSender> = phones
        .iter()
        .map(|phone| ChannelSender {
            sid: crate::senders::sid_of(phone),
            sender: format!("whatsapp:{phone}"),
            sender_type: Some("WhatsApp".into()),
            messaging_service_sid: Some(sid.clone()),
        })
        .collect();
    page(&em, "senders", &format!("/v1/Services/{sid}/ChannelSenders"), &senders)
}

pub(crate) async fn update(State(em): State<Emulator>, headers: HeaderMap, Path(sid): Path<String>, body: Bytes) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let mut state = em.lock();
    let Some(service) = state.accounts.get_mut(&user).and_then(|a| a.services.get_mut(&sid)) else {
        state.refused += 1;
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    for (key, value) in form_urlencoded::parse(&body) {
        let url = (!value.is_empty()).then(|| value.to_string());
        match key.as_ref() {
            "InboundRequestUrl" => service.inbound_url = url,
            "FallbackUrl" => service.fallback_url = url,
            "StatusCallback" => service.status_callback = url,
            "FriendlyName" => service.friendly_name = value.to_string(),
            "UseInboundWebhookOnNumber" => service.use_number_webhook = value.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    Json(view(&sid, service)).into_response()
}

/// `PUT /emulator/accounts/{sid}/messaging-services`.
pub(crate) async fn put_service(
    State(em): State<Emulator>,
    Path(account): Path<String>,
    Json(setup): Json<MessagingServiceSetup>,
) -> Response {
    if !switchboard_twilio::is_sid(&setup.sid, "MG") {
        return (StatusCode::BAD_REQUEST, "sid is MG followed by 32 hex digits").into_response();
    }
    if em.put_messaging_service(&account, setup) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

impl Emulator {
    /// Creates or replaces a Messaging Service of account `account_sid`; its numbers leave any
    /// other service. Returns false when there is no such account.
    pub fn put_messaging_service(&self, account_sid: &str, setup: MessagingServiceSetup) -> bool {
        let mut state = self.lock();
        let Some(account) = state.accounts.get_mut(account_sid) else {
            return false;
        };
        for service in account.services.values_mut() {
            service.phones.retain(|p| !setup.numbers.contains(p));
        }
        let service = Service {
            friendly_name: setup.friendly_name,
            inbound_url: setup.inbound_request_url.filter(|u| !u.is_empty()),
            fallback_url: setup.fallback_url.filter(|u| !u.is_empty()),
            status_callback: None,
            use_number_webhook: setup.use_inbound_webhook_on_number,
            phones: setup.numbers.into_iter().collect(),
        };
        account.services.insert(setup.sid, service);
        true
    }
}
