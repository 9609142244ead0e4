//! Users of the web desk (#17): invitation, choosing a password, signing in with a cookie
//! session, CSRF on every write, the same access rules as an API key, password change and
//! reset, disabling, the failed sign-in limits, and a stream opened with the cookie.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_test_support::wait_until;

use crate::harness::*;

const PASSWORD: &str = "correct horse battery staple";

/// What a browser holds after signing in: the session cookie and the CSRF token.
struct Browser {
    api: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(api: &str, email: &str, password: &str) -> Result<Self, (u16, Value)> {
        let response = reqwest::Client::new()
            .post(format!("{api}/api/v1/auth/sign-in"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let set_cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err((status, body));
        }
        let set_cookie = set_cookie.expect("a session cookie");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        Ok(Self {
            api: api.to_owned(),
            cookie: set_cookie.split(';').next().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        })
    }

    /// A request with the cookie; `csrf` adds the token header.
    async fn call(&self, method: Method, path: &str, body: Option<Value>, csrf: bool) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/api/v1{path}", self.api))
            .header("cookie", &self.cookie);
        if csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

async fn setup(api: &str, token: &str, password: &str) -> u16 {
    raw(
        Method::POST,
        format!("{api}/api/v1/auth/setup"),
        None,
        Some(&json!({ "token": token, "password": password }).to_string()),
    )
    .await
    .0
}

#[tokio::test]
async fn an_invited_agent_signs_in_with_a_cookie_and_acts_only_as_that_agent() {
    let w = World::start().await;
    let api = w.stack.urls.api.clone();
    let invited = w
        .admin
        .post(
            "/users",
            &json!({ "email": "Ana@Example.com", "name": "Ana", "role": "agent", "agent_id": w.ana.id }),
        )
        .await
        .unwrap();
    let token = invited["setup_token"].as_str().unwrap().to_owned();
    assert_eq!(invited["user"]["active"], false, "no password yet");
    assert!(invited["user"].get("password_hash").is_none());
    let again = raw(
        Method::POST,
        format!("{api}/api/v1/users"),
        Some(ADMIN_KEY),
        Some(&json!({ "email": "ana@example.com", "name": "Ana 2", "role": "admin" }).to_string()),
    )
    .await;
    assert_eq!(again.0, 409, "emails are unique in any case: {again:?}");

    // Before a password is chosen nobody signs in; a short password is refused; the token works once.
    assert_eq!(Browser::sign_in(&api, "ana@example.com", PASSWORD).await.err().unwrap().0, 401);
    assert_eq!(setup(&api, &token, "short").await, 400);
    assert_eq!(setup(&api, &token, PASSWORD).await, 204);
    assert_eq!(setup(&api, &token, "another long password").await, 401, "spent");

    let ana = Browser::sign_in(&api, "ANA@example.com", PASSWORD).await.unwrap();
    let (status, me) = ana.call(Method::GET, "/auth/me", None, false).await;
    assert_eq!((status, me["user"]["agent_id"].as_str()), (200, Some(w.ana.id.as_str())));
    assert_eq!(me["csrf_token"].as_str(), Some(ana.csrf.as_str()));

    // Writes need the CSRF token; requests from another site are refused outright.
    let presence = json!({ "presence": "busy" });
    assert_eq!(ana.call(Method::PUT, "/me/presence", Some(presence.clone()), false).await.0, 403);
    assert_eq!(ana.call(Method::PUT, "/me/presence", Some(presence.clone()), true).await.0, 200);
    let foreign = reqwest::Client::new()
        .get(format!("{api}/api/v1/me"))
        .header("cookie", &ana.cookie)
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status().as_u16(), 403);

    // The same rules as an agent key: no admin or supervisor surface.
    assert_eq!(ana.call(Method::GET, "/channels", None, false).await.0, 403);
    assert_eq!(ana.call(Method::GET, "/stats/queues", None, false).await.0, 403);
    assert_eq!(ana.call(Method::GET, "/users", None, false).await.0, 403);

    // A customer's message is offered to Ana's session over the stream opened with the cookie.
    ana.call(Method::PUT, "/me/presence", Some(json!({ "presence": "available" })), true)
        .await;
    let mut request = stream_request(&api, "no key");
    request.headers_mut().remove("authorization");
    request.headers_mut().insert("cookie", ana.cookie.parse().unwrap());
    let mut stream = Stream::open_request(request, None).await;
    w.customer_writes("+5511966665555", json!({ "body": "hi desk" })).await;
    let offer = stream.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await;
    let offer_id = offer["data"]["offer_id"].as_str().unwrap();
    assert_eq!(
        ana.call(Method::POST, &format!("/offers/{offer_id}/accept"), Some(json!({})), true)
            .await
            .0,
        200
    );

    // Changing the password ends the other sessions, keeps this one.
    let other = Browser::sign_in(&api, "ana@example.com", PASSWORD).await.unwrap();
    let change = |current: &str, new: &str| json!({ "current_password": current, "new_password": new });
    assert_eq!(
        ana.call(
            Method::POST,
            "/auth/password",
            Some(change("wrong one here", "a new long password")),
            true
        )
        .await
        .0,
        403
    );
    assert_eq!(
        ana.call(Method::POST, "/auth/password", Some(change(PASSWORD, "a new long password")), true)
            .await
            .0,
        204
    );
    assert_eq!(other.call(Method::GET, "/auth/me", None, false).await.0, 401);
    assert_eq!(ana.call(Method::GET, "/auth/me", None, false).await.0, 200);
    assert_eq!(Browser::sign_in(&api, "ana@example.com", PASSWORD).await.err().unwrap().0, 401);

    // Signing out ends the session and its open stream.
    let (status, _) = ana.call(Method::POST, "/auth/sign-out", None, true).await;
    assert_eq!(status, 204);
    assert_eq!(ana.call(Method::GET, "/auth/me", None, false).await.0, 401);
    let (code, reason) = stream.closed().await;
    assert_eq!((code, reason.as_str()), (1008, "the session ended"));

    // An admin resets the password: the new one is chosen with a new token.
    let user_id = invited["user"]["id"].as_str().unwrap();
    let reset = w.admin.post(&format!("/users/{user_id}/reset-password"), &json!({})).await.unwrap();
    assert_eq!(
        Browser::sign_in(&api, "ana@example.com", "a new long password")
            .await
            .err()
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        setup(&api, reset["setup_token"].as_str().unwrap(), "the third long password").await,
        204
    );
    let again = Browser::sign_in(&api, "ana@example.com", "the third long password").await.unwrap();
    // Disabling signs the user out and keeps them out.
    w.admin
        .call(Method::PATCH, &format!("/users/{user_id}"), Some(&json!({ "disabled": true })))
        .await
        .unwrap();
    wait_until(WAIT, "the disabled user's session ends", || async {
        again.call(Method::GET, "/auth/me", None, false).await.0 == 401
    })
    .await;
    assert_eq!(
        Browser::sign_in(&api, "ana@example.com", "the third long password")
            .await
            .err()
            .unwrap()
            .0,
        401
    );
    w.stop().await;
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_out_whatever_the_address() {
    let w = World::start_with(json!({
        "api": { "limits": { "failed_auth_per_minute": 3.0, "trusted_proxies": ["127.0.0.0/8"] } }
    }))
    .await;
    let api = w.stack.urls.api.clone();
    let invited = w
        .admin
        .post(
            "/users",
            &json!({ "email": "sup@example.com", "name": "Sam", "role": "supervisor" }),
        )
        .await
        .unwrap();
    assert_eq!(setup(&api, invited["setup_token"].as_str().unwrap(), PASSWORD).await, 204);
    let attempt = |password: &'static str, from: String| {
        let api = api.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{api}/api/v1/auth/sign-in"))
                .header("x-forwarded-for", from)
                .json(&json!({ "email": "sup@example.com", "password": password }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Three guesses, each from another address.
    for n in 0..3 {
        assert_eq!(attempt("not the password", format!("203.0.113.{n}")).await, 401);
    }
    // The account is locked for everyone, the right password included.
    assert_eq!(attempt(PASSWORD, "198.51.100.7".into()).await, 429);
    // Other accounts are not.
    let admin_invite = w
        .admin
        .post("/users", &json!({ "email": "root@example.com", "name": "Root", "role": "admin" }))
        .await
        .unwrap();
    assert_eq!(setup(&api, admin_invite["setup_token"].as_str().unwrap(), PASSWORD).await, 204);
    let root = Browser::sign_in(&api, "root@example.com", PASSWORD).await.unwrap();
    assert_eq!(root.call(Method::GET, "/users", None, false).await.0, 200);
    w.stop().await;
}
