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

/// How a webhook to `url` goes out: its `X-Twilio-Signature`, the settings header when a shared
/// key signed it, and the connection of the Setting a Webhooks API Rule applies to it (which
/// takes precedence over the URL's overrides). A live Rule comes first, then a key set with
/// `PUT /emulator/accounts/{sid}/shared-key`, then the auth token.
pub(crate) fn sign(em: &Emulator, token: &str, url: &str, params: &[(String, String)]) -> Signed {
    let account = params.iter().find(|(k, _)| k == "AccountSid").map(|(_, v)| v.as_str());
    let (applied, key) = {
        let mut state = em.lock();
        match account.and_then(|a| state.accounts.get_mut(a)) {
            Some(acc) => (acc.webhooks.applied(url, std::time::Instant::now()), acc.shared_key.clone()),
            None => (None, None),
        }
    };
    let connection = applied.as_ref().and_then(|a| a.connection.clone());
    let signer = match applied.and_then(|a| a.signer) {
        Some(signer) => Some(signer),
        None => key.and_then(|k| Algorithm::parse(&k.algorithm).map(|alg| (k.key, k.secret, alg))),
    };
    match signer {
        Some((key, secret, algorithm)) => Signed {
            signature: shared_key::compute(algorithm, &secret, url, params),
            settings: Some(SignatureSettings { key, algorithm }.header()),
            connection,
        },
        None => Signed {
            signature: switchboard_twilio::signature::compute(token, url, params),
            settings: None,
            connection,
        },
    }
}

/// What [`sign`] decided for one webhook.
pub(crate) struct Signed {
    pub signature: String,
    pub settings: Option<String>,
    pub connection: Option<switchboard_twilio::overrides::ConnectionOverrides>,
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
