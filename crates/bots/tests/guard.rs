//! The bot client cannot be turned against our own network: names resolving to loopback or
//! private addresses are refused after DNS, redirects are not followed, answers are capped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use reqwest::dns::Resolve;
use switchboard_bots::guard::{self, GuardedResolver, MAX_ANSWER_BYTES};
use switchboard_test_support::bind_local;

async fn serve(app: axum::Router) -> String {
    let listener = bind_local().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_unless_development_allows_it() {
    let refused = GuardedResolver { allow_loopback: false }
        .resolve("localhost".parse().unwrap())
        .await
        .err()
        .expect("localhost refused");
    assert!(refused.to_string().contains("loopback"), "{refused}");
    let allowed: Vec<_> = GuardedResolver { allow_loopback: true }
        .resolve("localhost".parse().unwrap())
        .await
        .unwrap()
        .collect();
    assert!(allowed.iter().all(|a| a.ip().is_loopback()) && !allowed.is_empty());

    // Through the client: a request to a loopback name fails before anything is sent.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = serve(axum::Router::new().route("/", axum::routing::post(|| async { "{}" }))).await;
    let by_name = url.replace("127.0.0.1", "localhost");
    let strict = guard::client(false).unwrap();
    assert!(strict.post(&by_name).send().await.is_err(), "refused after DNS");
    assert!(guard::check_literal(&url, false).is_err(), "a loopback literal is refused");
    assert!(guard::check_literal("https://169.254.169.254/latest/meta-data", true).is_err());
    assert!(guard::check_literal("https://[fd00::1]/bot", true).is_err());
    assert!(guard::check_literal("https://bots.example.com/turn", false).is_ok());
}

#[tokio::test]
async fn redirects_are_not_followed_and_answers_are_capped() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = serve(axum::Router::new().route("/", axum::routing::post(|| async { "followed" }))).await;
    let location = format!("{target}/");
    let redirecting = serve(axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let location = location.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response() }
        }),
    ))
    .await;
    let client = guard::client(true).unwrap();
    let answer = client.post(format!("{redirecting}/")).send().await.unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::TEMPORARY_REDIRECT,
        "the redirect is returned, not followed"
    );

    let huge = serve(axum::Router::new().route("/", axum::routing::post(|| async { vec![b'x'; MAX_ANSWER_BYTES + 1] }))).await;
    let answer = client.post(format!("{huge}/")).send().await.unwrap();
    let read = guard::read_capped(answer).await;
    assert!(read.unwrap_err().contains("larger than"));
    let small = serve(axum::Router::new().route("/", axum::routing::post(|| async { "{\"replies\":[]}" }))).await;
    let answer = client.post(format!("{small}/")).send().await.unwrap();
    assert_eq!(guard::read_capped(answer).await.unwrap(), b"{\"replies\":[]}");
}
