//! The browser session cookie and the checks a cookie-authenticated request passes: its
//! `Origin`, when sent, is this host (a page elsewhere cannot use the cookie, WebSocket upgrades
//! included), and a state-changing request carries the session's CSRF token in `X-CSRF-Token`.

use std::time::Duration;

use http::request::Parts;
use http::{HeaderValue, Method};
use subtle::ConstantTimeEq;
use switchboard_service_kit::ErrorCode;

use crate::error::ApiError;

/// The session cookie's name.
pub const COOKIE: &str = "sb_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token the request's cookies carry.
pub fn session_token(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for a new session: HttpOnly, Secure, SameSite=Strict, for the whole site.
pub fn set_cookie(token: &str, max_age: Duration) -> HeaderValue {
    let value = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| clear_cookie())
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("sb_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Refuses a cookie-authenticated request from another origin, and a state-changing one
/// without the session's CSRF token.
pub fn check(parts: &Parts, csrf: &str) -> Result<(), ApiError> {
    if let Some(origin) = parts.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        let hosts = [http::header::HOST.as_str(), "x-forwarded-host"];
        let same = hosts
            .iter()
            .filter_map(|h| parts.headers.get(*h).and_then(|v| v.to_str().ok()))
            .any(|host| host.eq_ignore_ascii_case(origin_host));
        if !same {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                "a signed-in request must come from this site's own pages",
            ));
        }
    }
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
    if bool::from(sent.ct_eq(csrf.as_bytes())) && !csrf.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "missing or wrong X-CSRF-Token (read it from POST /auth/sign-in or GET /auth/me)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder().method(method).uri("/api/v1/x");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let p = parts(Method::GET, &[("cookie", "a=1; sb_session=tok; b=2")]);
        assert_eq!(session_token(&p.headers).as_deref(), Some("tok"));
        assert_eq!(session_token(&parts(Method::GET, &[("cookie", "sb_session=")]).headers), None);
        let cookie = set_cookie("tok", Duration::from_secs(60));
        let cookie = cookie.to_str().expect("ascii");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=60"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
    }

    #[test]
    fn writes_need_the_token_and_every_request_its_own_origin() {
        let host = ("host", "desk.example.com");
        assert!(check(&parts(Method::GET, &[host]), "c").is_ok());
        assert!(check(&parts(Method::POST, &[host]), "c").is_err(), "no token");
        assert!(
            check(&parts(Method::POST, &[host, ("x-csrf-token", "d")]), "c").is_err(),
            "wrong token"
        );
        assert!(check(&parts(Method::POST, &[host, ("x-csrf-token", "c")]), "c").is_ok());
        let elsewhere = ("origin", "https://evil.example.net");
        assert!(check(&parts(Method::GET, &[host, elsewhere]), "c").is_err(), "cross-site upgrade");
        let here = ("origin", "https://desk.example.com");
        assert!(check(&parts(Method::DELETE, &[host, here, ("x-csrf-token", "c")]), "c").is_ok());
    }
}
