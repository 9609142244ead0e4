//! Answers and checks every emulated Twilio API shares: Twilio's error body, an injected outage,
//! HTTP Basic authentication.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use switchboard_twilio::messages::ErrorBody;

use crate::handle::Emulator;

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
