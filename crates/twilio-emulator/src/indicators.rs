//! Twilio's Typing Indicators API for WhatsApp (`POST /v2/Indicators/Typing.json` on
//! messaging.twilio.com): form `channel=whatsapp&messageId=SM…`, the SID of a message a customer
//! sent. It answers `{"success": true}`; the customer sees "typing…" and the message (with those
//! before it) read. The emulator records each indicator for tests to read at
//! `GET /emulator/indicators`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::answers::{authenticated_account, twilio_error};
use crate::handle::Emulator;
use crate::model::{Indicators, TypingIndicator};

pub(crate) async fn typing(State(em): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match authenticated_account(&em, &headers) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let refuse = |status: StatusCode, code: u32, message: &str| {
        em.lock().refused += 1;
        twilio_error(status, code, message)
    };
    match form.get("channel").map(String::as_str) {
        Some("whatsapp") => {}
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                20001,
                "Typing indicators are supported for the whatsapp channel only",
            );
        }
        None => return refuse(StatusCode::BAD_REQUEST, 20001, "Missing required parameter channel"),
    }
    let Some(sid) = form.get("messageId").filter(|s| !s.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, 20001, "Missing required parameter messageId");
    };
    let at_ms = i64::try_from(em.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let mut state = em.lock();
    let Some(inbound) = state.inbound.get(sid).filter(|i| i.account_sid == user).cloned() else {
        state.refused += 1;
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    state.indicators.push(TypingIndicator {
        message_sid: sid.clone(),
        account_sid: user,
        customer: inbound.customer,
        at_ms,
    });
    axum::Json(serde_json::json!({ "success": true })).into_response()
}

pub(crate) async fn get_indicators(State(em): State<Emulator>) -> axum::Json<Indicators> {
    axum::Json(em.indicators())
}

impl Emulator {
    /// Returns the typing indicators accepted so far, and which customer messages are read.
    pub fn indicators(&self) -> Indicators {
        let state = self.lock();
        let read = state
            .inbound
            .iter()
            .map(|(sid, inbound)| {
                // WhatsApp marks a message read with every earlier message of the same customer.
                let read = state.indicators.iter().any(|i| {
                    i.account_sid == inbound.account_sid
                        && i.customer == inbound.customer
                        && state.inbound.get(&i.message_sid).is_some_and(|named| named.order >= inbound.order)
                });
                (sid.clone(), read)
            })
            .collect();
        Indicators {
            indicators: state.indicators.clone(),
            read,
        }
    }
}
