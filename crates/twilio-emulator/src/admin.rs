//! The emulator's own control API (not Twilio's): set up accounts, make customers write, inject
//! faults, tune callbacks, read what was sent. Served under `/emulator/…`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::handle::Emulator;
use crate::model::{AccountSetup, CallbackSettings, CustomerMessage, Fault, OpenWindows, SentMessage, Stats};

pub(crate) async fn put_account(State(em): State<Emulator>, Json(setup): Json<AccountSetup>) -> Response {
    em.setup_account(setup);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn post_customer_message(State(em): State<Emulator>, Json(message): Json<CustomerMessage>) -> Response {
    match em.customer_message(message).await {
        Ok(result) => Json(result).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": format!("{error:#}") }))).into_response(),
    }
}

pub(crate) async fn put_windows(State(em): State<Emulator>, Json(open): Json<OpenWindows>) -> Response {
    let business = match switchboard_domain::PhoneNumber::parse(&open.business) {
        Ok(n) => n.as_str().to_owned(),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": format!("business: {e}") })),
            )
                .into_response();
        }
    };
    let now = em.now();
    let mut state = em.lock();
    for customer in &open.customers {
        match switchboard_domain::PhoneNumber::parse(customer) {
            Ok(c) => {
                state.windows.insert((business.clone(), c.as_str().to_owned()), now);
            }
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({ "error": format!("{customer}: {e}") })),
                )
                    .into_response();
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn post_fault(State(em): State<Emulator>, Json(fault): Json<Fault>) -> Response {
    em.inject(fault);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn put_callbacks(State(em): State<Emulator>, Json(settings): Json<CallbackSettings>) -> Response {
    em.set_callbacks(settings);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn get_messages(State(em): State<Emulator>) -> Json<Vec<SentMessage>> {
    Json(em.sent())
}

pub(crate) async fn get_stats(State(em): State<Emulator>) -> Json<Stats> {
    Json(em.stats())
}
