//! How the emulator signs its webhooks: with the account's auth token (HMAC-SHA1), or, once a
//! shared key is set for the account (as a Twilio Webhook Setting with a SharedKey would), with
//! that key's secret and algorithm, naming them in `X-Twilio-Webhooks-Signature-Settings`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchboard_twilio::shared_key::{self, Algorithm, SignatureSettings};

use crate::handle::Emulator;
use crate::model::SharedKeySetup;

/// The headers a webhook carries: `X-Twilio-Signature`, and the settings header when a shared key
/// signed it.
pub(crate) fn sign(em: &Emulator, token: &str, url: &str, params: &[(String, String)]) -> (String, Option<String>) {
    let account = params.iter().find(|(k, _)| k == "AccountSid").map(|(_, v)| v.as_str());
    let key = account.and_then(|a| em.lock().accounts.get(a).and_then(|acc| acc.shared_key.clone()));
    match key.and_then(|k| Algorithm::parse(&k.algorithm).map(|alg| (k, alg))) {
        Some((k, algorithm)) => {
            let settings = SignatureSettings { key: k.key, algorithm };
            (shared_key::compute(algorithm, &k.secret, url, params), Some(settings.header()))
        }
        None => (switchboard_twilio::signature::compute(token, url, params), None),
    }
}

impl Emulator {
    /// Signs account `account_sid`'s webhooks with `key` from now on (none: the auth token).
    /// Returns false when there is no such account.
    pub fn set_shared_key(&self, account_sid: &str, key: Option<SharedKeySetup>) -> bool {
        match self.lock().accounts.get_mut(account_sid) {
            Some(account) => {
                account.shared_key = key;
                true
            }
            None => false,
        }
    }
}

/// `PUT /emulator/accounts/{sid}/shared-key`.
pub(crate) async fn put_shared_key(State(em): State<Emulator>, Path(sid): Path<String>, Json(key): Json<SharedKeySetup>) -> Response {
    if Algorithm::parse(&key.algorithm).is_none() {
        return (StatusCode::BAD_REQUEST, "algorithm is HMAC_SHA1 or HMAC_SHA256").into_response();
    }
    if em.set_shared_key(&sid, Some(key)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// `DELETE /emulator/accounts/{sid}/shared-key`: back to the auth token.
pub(crate) async fn delete_shared_key(State(em): State<Emulator>, Path(sid): Path<String>) -> Response {
    if em.set_shared_key(&sid, None) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
