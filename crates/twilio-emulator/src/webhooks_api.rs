//! Twilio's Webhooks configuration API (`/v1/Webhooks/…`, public beta): SharedKeys, Settings,
//! Rules and Operations, per account. A Rule change is not live at once: it takes effect after
//! the emulator's propagation delay (`PUT /emulator/webhooks/propagation`, default 0; Twilio says
//! 30–60 s), and until then the old Settings apply and its Operation is `RUNNING`; changes can be
//! made to fail instead (the Operation ends `FAILED` and the Rule stays as it was). When a webhook
//! goes out, its URL picks a Rule as Twilio's evaluation order does (exact matches longest
//! first, then prefixes longest first, then the default), and the live Setting signs it with its
//! SharedKey and sets its connection, which takes precedence over the URL's `#…` overrides.
//! What is in use cannot be deleted (409): a SharedKey a Setting names, a Setting a Rule applies.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_twilio::shared_key::Algorithm;
use switchboard_twilio::webhooks_config::{NewSetting, NewSharedKey, Operation, Rule, RuleChange, Setting, SettingReference};

use crate::answers::authenticated_account;
use crate::handle::Emulator;
use crate::webhook_rules::{LiveRule, WebhooksConfig};

/// An RFC 7807 problem, as the Webhooks API answers errors.
fn problem(status: StatusCode, code: u32, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("https://www.twilio.com/docs/errors/{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    (status, [(header::CONTENT_TYPE, "application/problem+json")], Json(body)).into_response()
}

fn new_id(kind: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("webhooks_{kind}_{}", &hex[..26])
}

/// How Rule changes go: live after `delay`, or failed then (those of the Rules under `fail`).
#[derive(Debug, Clone)]
struct Changes {
    delay: Duration,
    fail: Option<String>,
}

impl Changes {
    fn fails(&self, rule: &Rule) -> bool {
        let url = rule.prefix.as_deref().or(rule.value.as_deref()).unwrap_or_default();
        self.fail.as_deref().is_some_and(|under| url.starts_with(under))
    }
}

/// Runs `f` on the caller's configuration, or answers 401.
fn with_config(em: &Emulator, headers: &HeaderMap, f: impl FnOnce(&mut WebhooksConfig, Changes) -> Response) -> Response {
    let account = match authenticated_account(em, headers) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let mut state = em.lock();
    let changes = Changes {
        delay: state.webhooks_propagation,
        fail: state.webhooks_fail_changes.clone(),
    };
    match state.accounts.get_mut(&account) {
        Some(a) => f(&mut a.webhooks, changes),
        None => problem(StatusCode::UNAUTHORIZED, 20003, "Authenticate"),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| Box::new(problem(StatusCode::BAD_REQUEST, 20001, &format!("Invalid JSON body: {e}"))))
}

pub(crate) async fn create_shared_key(State(em): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let new: NewSharedKey = match parse(&body) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    with_config(&em, &headers, |config, _| {
        let id = new_id("sharedkey");
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        config.shared_keys.insert(id.clone(), (new.friendly_name.clone(), secret.clone()));
        let answer = serde_json::json!({ "id": id, "friendlyName": new.friendly_name, "secret": secret });
        (StatusCode::CREATED, Json(answer)).into_response()
    })
}

pub(crate) async fn delete_shared_key(State(em): State<Emulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    with_config(&em, &headers, |config, _| {
        if !config.shared_keys.contains_key(&id) {
            return problem(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
        }
        let used = config
            .settings
            .values()
            .any(|s| s.signature.as_ref().and_then(|g| g.shared_key_id.as_deref()) == Some(id.as_str()));
        if used {
            return problem(StatusCode::CONFLICT, 59201, "The SharedKey is used by a Setting");
        }
        config.shared_keys.remove(&id);
        StatusCode::NO_CONTENT.into_response()
    })
}

pub(crate) async fn create_setting(State(em): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let new: NewSetting = match parse(&body) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    with_config(&em, &headers, |config, _| {
        if !new.auth.is_object() {
            return problem(StatusCode::BAD_REQUEST, 20001, "auth is required");
        }
        if let Some(signature) = new.signature.as_ref().filter(|s| !s.kind.eq_ignore_ascii_case("none")) {
            if !signature.shared_key_id.as_ref().is_some_and(|k| config.shared_keys.contains_key(k)) {
                return problem(
                    StatusCode::BAD_REQUEST,
                    20001,
                    "signature.sharedKeyId names no SharedKey of the account",
                );
            }
            if signature.algorithm.as_deref().and_then(Algorithm::parse).is_none() {
                return problem(StatusCode::BAD_REQUEST, 20001, "signature.algorithm is HMAC_SHA1 or HMAC_SHA256");
            }
        }
        let setting = Setting {
            id: new_id("setting"),
            kind: Some("CUSTOMER".into()),
            friendly_name: new.friendly_name.clone(),
            signature: new.signature.clone(),
            connection: new.connection.clone(),
        };
        config.settings.insert(setting.id.clone(), setting.clone());
        (StatusCode::CREATED, Json(setting)).into_response()
    })
}

pub(crate) async fn delete_setting(State(em): State<Emulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    with_config(&em, &headers, |config, _| {
        if !config.settings.contains_key(&id) {
            return problem(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
        }
        let now = Instant::now();
        let used = config.rules.values_mut().any(|r| {
            r.settle(now);
            let names = |refs: &[SettingReference]| refs.iter().any(|s| s.setting_id == id);
            names(&r.rule.settings) || r.live.as_deref().is_some_and(names)
        });
        if used {
            return problem(StatusCode::CONFLICT, 59201, "The Setting is applied by a Rule");
        }
        config.settings.remove(&id);
        StatusCode::NO_CONTENT.into_response()
    })
}

/// Checks a Rule's settings: one or two existing Settings whose shares add up to 100.
fn check_references(config: &WebhooksConfig, settings: &[SettingReference]) -> Result<(), Box<Response>> {
    let total: u32 = settings.iter().map(|s| u32::from(s.percentage)).sum();
    if settings.is_empty() || settings.len() > 2 || total != 100 {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            20001,
            "settings holds one or two Settings whose percentages add up to 100",
        )));
    }
    match settings.iter().find(|s| !config.settings.contains_key(&s.setting_id)) {
        Some(missing) => Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            20001,
            &format!("no Setting {}", missing.setting_id),
        ))),
        None => Ok(()),
    }
}

fn operation_view(id: &str, rule: &str, ends_at: Instant, fails: bool, now: Instant) -> Operation {
    let status = match (now >= ends_at, fails) {
        (false, _) => "RUNNING",
        (true, false) => "COMPLETED",
        (true, true) => "FAILED",
    };
    Operation {
        id: id.to_owned(),
        status: status.into(),
        status_url: Some(format!("/v1/Webhooks/Operations/{id}")),
        error: (status == "FAILED").then(|| serde_json::json!({ "code": 59300, "message": "The Rule change could not be propagated" })),
        resource_id: Some(rule.to_owned()),
    }
}

/// Answers a Rule change: 202 with its Operation and the Rule as asked for.
fn accepted(config: &mut WebhooksConfig, rule: Rule, ends_at: Instant, fails: bool) -> Response {
    let op = new_id("operation");
    config.operations.insert(op.clone(), (rule.id.clone(), ends_at, fails));
    let change = RuleChange {
        operation: operation_view(&op, &rule.id, ends_at, fails, Instant::now()),
        rule: Some(rule),
    };
    let mut response = (StatusCode::ACCEPTED, Json(change)).into_response();
    if let Ok(location) = header::HeaderValue::from_str(&format!("/v1/Webhooks/Operations/{op}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub(crate) async fn create_rule(State(em): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let mut rule: Rule = match parse(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    with_config(&em, &headers, |config, changes| {
        if let Err(r) = check_references(config, &rule.settings) {
            return *r;
        }
        let valid = match rule.match_type.as_str() {
            "PREFIX_MATCH" => rule.prefix.as_deref().is_some_and(|p| p.ends_with('/')),
            "EXACT_MATCH" => rule.value.as_deref().is_some_and(|v| !v.is_empty() && !v.ends_with('/')),
            "DEFAULT" => true,
            _ => false,
        };
        if !valid {
            return problem(
                StatusCode::BAD_REQUEST,
                20001,
                "a PREFIX_MATCH needs a prefix ending in /, an EXACT_MATCH a value not ending in /",
            );
        }
        let taken = config
            .rules
            .values()
            .any(|r| r.rule.match_type == rule.match_type && r.rule.prefix == rule.prefix && r.rule.value == rule.value);
        if taken {
            return problem(StatusCode::CONFLICT, 59200, "A Rule already matches that URL pattern");
        }
        rule.id = new_id("rule");
        let now = Instant::now();
        let answer = rule.clone();
        let fails = changes.fails(&rule);
        if !fails {
            let mut live = LiveRule {
                rule,
                live: None,
                effective_at: now + changes.delay,
            };
            live.settle(now);
            config.rules.insert(answer.id.clone(), live);
        }
        accepted(config, answer, now + changes.delay, fails)
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct RulePatch {
    settings: Option<Vec<SettingReference>>,
}

pub(crate) async fn patch_rule(State(em): State<Emulator>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    let patch: RulePatch = match parse(&body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    with_config(&em, &headers, |config, changes| {
        let Some(settings) = patch.settings else {
            return problem(StatusCode::BAD_REQUEST, 20001, "nothing to change");
        };
        if let Err(r) = check_references(config, &settings) {
            return *r;
        }
        let now = Instant::now();
        let Some(rule) = config.rules.get_mut(&id) else {
            return problem(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
        };
        // What was live stays live until the change propagates (for good, when it fails).
        rule.settle(now);
        let mut answer = rule.rule.clone();
        answer.settings.clone_from(&settings);
        let fails = changes.fails(&rule.rule);
        if !fails {
            rule.rule.settings = settings;
            rule.effective_at = now + changes.delay;
            rule.settle(now);
        }
        accepted(config, answer, now + changes.delay, fails)
    })
}

pub(crate) async fn delete_rule(State(em): State<Emulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    with_config(&em, &headers, |config, _| match config.rules.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => problem(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    })
}

pub(crate) async fn list_rules(State(em): State<Emulator>, headers: HeaderMap) -> Response {
    with_config(&em, &headers, |config, _| {
        let rules: Vec<Rule> = config.rules.values().map(|r| r.rule.clone()).collect();
        let answer = serde_json::json!({ "rules": rules, "meta": { "key": "rules", "pageSize": rules.len(), "nextToken": null } });
        Json(answer).into_response()
    })
}

pub(crate) async fn get_operation(State(em): State<Emulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    with_config(&em, &headers, |config, _| match config.operations.get(&id) {
        Some((rule, at, fails)) => Json(operation_view(&id, rule, *at, *fails, Instant::now())).into_response(),
        None => problem(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct Propagation {
    ms: u64,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    only_under: Option<String>,
}

/// `PUT /emulator/webhooks/propagation` `{"ms": …, "fail": false, "only_under": null}`: how
/// long Rule changes take to go live, and whether they fail instead (only those of the Rules
/// whose URL prefix starts with `only_under`, when given).
pub(crate) async fn put_propagation(State(em): State<Emulator>, Json(p): Json<Propagation>) -> StatusCode {
    em.set_webhooks_propagation(Duration::from_millis(p.ms));
    em.lock().webhooks_fail_changes = p.fail.then(|| p.only_under.unwrap_or_default());
    StatusCode::NO_CONTENT
}

impl Emulator {
    /// The SharedKeys account `account_sid` has at "Twilio": (id, secret), by id.
    pub fn webhooks_shared_keys(&self, account_sid: &str) -> Vec<(String, String)> {
        self.lock()
            .accounts
            .get(account_sid)
            .map(|a| {
                a.webhooks
                    .shared_keys
                    .iter()
                    .map(|(id, (_, secret))| (id.clone(), secret.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The ids of account `account_sid`'s Webhook Settings.
    pub fn webhooks_settings(&self, account_sid: &str) -> Vec<String> {
        self.lock()
            .accounts
            .get(account_sid)
            .map(|a| a.webhooks.settings.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Rule changes accepted from now on fail at the end of their propagation, changing nothing
    /// (`false`: they go live).
    pub fn fail_webhook_changes(&self, fail: bool) {
        self.lock().webhooks_fail_changes = fail.then(String::new);
    }

    /// Like [`Emulator::fail_webhook_changes`], for the Rules whose URL prefix starts with
    /// `under` only (`None`: changes go live).
    pub fn fail_webhook_changes_under(&self, under: Option<&str>) {
        self.lock().webhooks_fail_changes = under.map(str::to_owned);
    }

    /// Removes account `account_sid`'s Rule for `url` (its prefix or exact URL), as someone
    /// deleting it in Twilio's console would; returns whether there was one.
    pub fn remove_webhook_rule(&self, account_sid: &str, url: &str) -> bool {
        let mut state = self.lock();
        let Some(account) = state.accounts.get_mut(account_sid) else {
            return false;
        };
        let before = account.webhooks.rules.len();
        account
            .webhooks
            .rules
            .retain(|_, r| r.rule.prefix.as_deref().or(r.rule.value.as_deref()) != Some(url));
        account.webhooks.rules.len() < before
    }

    /// Gives account `account_sid` a live PREFIX_MATCH Rule for `prefix` applying `setting`, as
    /// an earlier configuration (or someone in Twilio's console) would have made it; returns its
    /// id.
    pub fn add_webhook_rule(&self, account_sid: &str, prefix: &str, setting: &str) -> Option<String> {
        let mut state = self.lock();
        let account = state.accounts.get_mut(account_sid)?;
        let settings = vec![SettingReference {
            setting_id: setting.to_owned(),
            percentage: 100,
        }];
        let mut rule = Rule::prefix("added by a test", prefix, setting);
        rule.id = new_id("rule");
        let id = rule.id.clone();
        let live = LiveRule {
            rule,
            live: Some(settings),
            effective_at: Instant::now(),
        };
        account.webhooks.rules.insert(id.clone(), live);
        Some(id)
    }

    /// Account `account_sid`'s Rules: (prefix or exact URL, the ids of the Settings live for it
    /// now), by prefix.
    pub fn webhooks_rules(&self, account_sid: &str) -> Vec<(String, Vec<String>)> {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(account) = state.accounts.get_mut(account_sid) else {
            return Vec::new();
        };
        let mut rules: Vec<(String, Vec<String>)> = account
            .webhooks
            .rules
            .values_mut()
            .map(|r| {
                r.settle(now);
                let url = r.rule.prefix.clone().or_else(|| r.rule.value.clone()).unwrap_or_default();
                let live = r.live.iter().flatten().map(|s| s.setting_id.clone()).collect();
                (url, live)
            })
            .collect();
        rules.sort();
        rules
    }

    /// Rule changes go live `delay` after they are accepted.
    pub fn set_webhooks_propagation(&self, delay: Duration) {
        self.lock().webhooks_propagation = delay;
    }
}
