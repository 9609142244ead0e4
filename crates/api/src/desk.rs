//! The web desk: the agent desk, the supervisor view and the admin console, served by the api
//! itself as a few static files written here (`crates/api/desk/`), embedded in the binary. The
//! pages use only the public REST API and the stream, signed in with the session cookie.

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};

const INDEX: &str = include_str!("../desk/index.html");
const DESK_JS: &str = include_str!("../desk/desk.js");
const ADMIN_JS: &str = include_str!("../desk/admin.js");
const CSS: &str = include_str!("../desk/desk.css");

/// Only this origin's scripts, styles and connections; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `/desk` and its files; `/` leads there.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/desk") }))
        .route("/desk", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/desk/desk.js", get(|| async { asset("text/javascript; charset=utf-8", DESK_JS) }))
        .route(
            "/desk/admin.js",
            get(|| async { asset("text/javascript; charset=utf-8", ADMIN_JS) }),
        )
        .route("/desk/desk.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
}
