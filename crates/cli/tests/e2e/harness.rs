use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_cli::client::ApiClient;
use switchboard_cli::stack::{Ports, Stack, StackOptions};
use switchboard_domain::ManualClock;
use switchboard_test_support::{TestBus, TestDb};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const WAIT: Duration = Duration::from_secs(20);
pub const ACCOUNT: &str = "AC00000000000000000000000000000e2e";
pub const TOKEN: &str = "e2e0auth0token0e2e0auth0token0e2";
pub const BUSINESS: &str = "+14155550123";
pub const ADMIN_KEY: &str = "sb_e2e_admin_key_0123456789abcdefghijklmnop";

pub struct World {
    pub db: TestDb,
    pub _bus: TestBus,
    pub clock: ManualClock,
    pub stack: Stack,
    pub admin: ApiClient,
    pub channel_id: String,
    pub number_id: String,
    pub queue_id: String,
    pub workstream_id: String,
    pub ana: Agent,
    pub bo: Agent,
}

pub struct Agent {
    pub id: String,
    pub api: ApiClient,
    pub key: String,
}

impl World {
    /// Starts everything and configures it through the API as an admin would.
    pub async fn start() -> Self {
        Self::start_with(json!({})).await
    }

    /// Like [`World::start`], with `extra` settings per service (e.g. `{"api": {...}}`).
    pub async fn start_with(extra: Value) -> Self {
        Self::start_on(extra, TestBus::new(), Default::default()).await
    }

    /// Like [`World::start_with`], on `bus` (its topology declared or not), each service on the
    /// broker URL `amqp_urls` gives it, if any.
    pub async fn start_on(extra: Value, bus: TestBus, amqp_urls: std::collections::BTreeMap<String, String>) -> Self {
        let mut overrides = json!({ "session": { "auto_close_interval_secs": 1 } });
        if let (Some(all), Some(extra)) = (overrides.as_object_mut(), extra.as_object()) {
            for (service, settings) in extra.iter().filter(|(key, _)| key.as_str() != "fallback_ingress") {
                let entry = all.entry(service.clone()).or_insert_with(|| json!({}));
                if let (Some(entry), Some(settings)) = (entry.as_object_mut(), settings.as_object()) {
                    entry.extend(settings.clone());
                }
            }
        }
        // `{"fallback_ingress": true}` runs a second ingress as every channel's fallback URL.
        let fallback_ingress = extra.get("fallback_ingress").and_then(Value::as_bool).unwrap_or(false);
        switchboard_cli::install_crypto();
        let db = TestDb::new().await;
        // Every service logs in as a role limited to its own schema, as in production.
        let mut service_database_urls = std::collections::BTreeMap::new();
        for service in switchboard_storage::roles::SERVICES {
            service_database_urls.insert(service.to_owned(), db.login_for(service).await);
        }
        let clock = ManualClock::new();
        let stack = Stack::start(StackOptions {
            host: "127.0.0.1".parse().unwrap(),
            ports: Ports::ANY,
            clock: Arc::new(clock.clone()),
            emulator: true,
            database_url: Some(db.url.clone()),
            service_database_urls,
            service_amqp_urls: amqp_urls,
            amqp_url: Some(bus.url().to_owned()),
            bus: Some(bus.config.clone()),
            public_base_url: None,
            fallback_ingress,
            admin_api_key: Some(ADMIN_KEY.into()),
            config_file: None,
            overrides,
        })
        .await
        .unwrap();
        let admin = ApiClient::new(&stack.urls.api, Some(ADMIN_KEY.into())).unwrap();
        switchboard_cli::wait_for_api(&admin, WAIT).await.unwrap();

        let channel = admin
            .post("/channels", &json!({ "name": "Acme", "account_sid": ACCOUNT, "auth_token": TOKEN }))
            .await
            .unwrap();
        let channel_id = channel["id"].as_str().unwrap().to_owned();
        assert!(
            channel["inbound_url"]
                .as_str()
                .unwrap()
                .contains(&format!("/v1/twilio/{channel_id}/inbound#"))
        );
        assert!(channel.get("auth_token").is_none(), "the token is never returned");
        let number = admin
            .post(
                "/numbers",
                // The emulator learns the number from Switchboard only once it is saved, so a world
                // that turns the save-time sender check on still gets its first number.
                &json!({ "channel_id": channel_id, "phone": BUSINESS, "display_name": "Acme", "skip_sender_check": true }),
            )
            .await
            .unwrap();
        let number_id = number["id"].as_str().unwrap().to_owned();
        let ana = admin
            .post("/agents", &json!({ "name": "Ana", "definition": { "capacity_units": 5 } }))
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let bo = admin
            .post("/agents", &json!({ "name": "Bo", "definition": { "capacity_units": 1 } }))
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let queue_id = admin
            .post(
                "/queues",
                &json!({ "name": "General", "definition": { "priority": 1, "assignment": "highest_capacity", "members": [ana, bo] } }),
            )
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let workstream = admin
            .post(
                "/workstreams",
                &json!({ "name": "Support", "definition": { "mode": "push", "fallback_queue_id": queue_id, "offer_timeout_secs": 120 } }),
            )
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        admin
            .call(
                reqwest::Method::PATCH,
                &format!("/numbers/{number_id}"),
                Some(&json!({ "settings": { "workstream_id": workstream, "customer_attachments": true, "agent_attachments": true } })),
            )
            .await
            .unwrap();
        admin
            .put(
                &format!("/numbers/{number_id}/survey"),
                &json!({ "enabled": true, "url": "https://survey.example.com/s", "message": "How did we do?" }),
            )
            .await
            .unwrap();
        let key_for = |agent: String, name: &'static str| {
            let admin = admin.clone();
            async move {
                let key = admin
                    .post("/api-keys", &json!({ "name": name, "role": "agent", "agent_id": agent }))
                    .await
                    .unwrap()["key"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let api = admin.with_key(&key);
                api.put("/me/presence", &json!({ "presence": "available" })).await.unwrap();
                Agent { id: agent, api, key }
            }
        };
        let ana = key_for(ana, "ana").await;
        let bo = key_for(bo, "bo").await;
        stack.sync_emulator().await.unwrap();
        Self {
            db,
            _bus: bus,
            clock,
            stack,
            admin,
            channel_id,
            number_id,
            queue_id,
            workstream_id: workstream,
            ana,
            bo,
        }
    }

    pub fn emulator(&self) -> &switchboard_twilio_emulator::Emulator {
        self.stack.emulator.as_ref().unwrap()
    }

    /// A customer writes through the emulator (a signed webhook to ingress).
    pub async fn customer_writes(&self, from: &str, body: Value) -> Value {
        let emulator = ApiClient::new(self.stack.urls.emulator.as_ref().unwrap(), None).unwrap();
        let mut message = json!({ "from": from, "to": BUSINESS });
        message.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        let result = emulator.post("/emulator/customers/messages", &message).await.unwrap();
        assert_eq!(result["webhook_status"], 200, "{result}");
        result
    }

    /// Waits until `customer` has been sent a message starting with `text`.
    pub async fn customer_gets(&self, customer: &str, text: &str) {
        let to = format!("whatsapp:{customer}");
        switchboard_test_support::wait_until(WAIT, &format!("{customer} is sent {text:?}"), || async {
            self.emulator()
                .sent()
                .iter()
                .any(|m| m.to == to && m.body.as_deref().is_some_and(|b| b.starts_with(text)))
        })
        .await;
    }

    /// A whole conversation through every service: `customer` writes, the offer reaches Ana's
    /// stream, she accepts and replies `reply`, and the reply is delivered (the emulator's
    /// callbacks). Returns the conversation's id.
    pub async fn conversation_with_ana(&self, customer: &str, reply: &str) -> String {
        let mut stream = Stream::open(&self.stack.urls.api, &self.ana.key, None).await;
        self.customer_writes(customer, json!({ "body": "hello" })).await;
        let offer = stream.expect("offer.created.v1", |d| d["agent_id"] == self.ana.id.as_str()).await;
        let offer_id = offer["data"]["offer_id"].as_str().unwrap().to_owned();
        let conversation = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
        self.ana.api.post(&format!("/offers/{offer_id}/accept"), &json!({})).await.unwrap();
        let path = format!("/conversations/{conversation}/messages");
        self.ana
            .api
            .post(
                &path,
                &json!({ "text": reply, "client_message_id": format!("reply-{conversation}") }),
            )
            .await
            .unwrap();
        switchboard_test_support::wait_until(WAIT, "the reply delivered", || async {
            let messages = self.ana.api.get(&path).await.unwrap();
            messages
                .as_array()
                .unwrap()
                .iter()
                // The emulator reports it delivered, then read, within milliseconds.
                .any(|m| m["body"] == reply && (m["status"] == "delivered" || m["status"] == "read"))
        })
        .await;
        stream.close().await;
        conversation
    }

    /// `customer` writes; the offer reaches `agent`'s `stream` and the agent accepts it.
    /// Returns the conversation's id.
    pub async fn taken_by(&self, agent: &Agent, stream: &mut Stream, customer: &str) -> String {
        self.customer_writes(customer, json!({ "body": "hello" })).await;
        let offer = stream.expect("offer.created.v1", |d| d["agent_id"] == agent.id.as_str()).await;
        accept(agent, &offer).await;
        offer["data"]["conversation_id"].as_str().unwrap().to_owned()
    }

    /// Replaces the world's workstream ("Support") with `definition`, as an admin does, and waits
    /// until session's copy satisfies `check` (an SQL condition on `session.workstreams`).
    pub async fn replace_workstream(&self, definition: Value, check: &str) {
        self.admin
            .put(
                &format!("/workstreams/{}", self.workstream_id),
                &json!({ "name": "Support", "definition": definition }),
            )
            .await
            .unwrap();
        self.until_session_workstream(&self.workstream_id, check).await;
    }

    /// Waits until session's copy of workstream `id` (which routing's `workstream.updated.v1`
    /// keeps) satisfies `check`, an SQL condition on `session.workstreams`.
    pub async fn until_session_workstream(&self, id: &str, check: &str) {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM session.workstreams WHERE id = $1::uuid AND {check})");
        switchboard_test_support::wait_until(WAIT, &format!("session's workstream {check}"), || async {
            sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_one(&self.db.pool)
                .await
                .unwrap()
        })
        .await;
    }

    /// Syncs the number's templates from the emulator's Content API and waits for them.
    pub async fn sync_templates(&self) {
        self.admin
            .post(&format!("/channels/{}/templates/sync", self.channel_id), &json!({}))
            .await
            .unwrap();
        switchboard_test_support::wait_until(WAIT, "templates synced", || async {
            self.ana
                .api
                .get(&format!("/templates?number_id={}", self.number_id))
                .await
                .is_ok_and(|t| t.as_array().is_some_and(|a| a.iter().any(|t| t["name"] == "follow_up")))
        })
        .await;
    }

    pub async fn stop(self) {
        self.stack.stop().await.unwrap();
    }
}

/// `agent` accepts the offer of an `offer.created.v1` frame.
pub async fn accept(agent: &Agent, offer: &Value) {
    let path = format!("/offers/{}/accept", offer["data"]["offer_id"].as_str().unwrap());
    agent.api.post(&path, &json!({})).await.unwrap();
}

/// Sends one API request as-is (`key` as a bearer token); returns the status and the JSON body.
pub async fn raw(method: reqwest::Method, url: String, key: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The WebSocket upgrade request of `/api/v1/stream` with `key`.
pub fn stream_request(api: &str, key: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("{}/api/v1/stream", api.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// A WebSocket client of `/api/v1/stream`.
pub struct Stream {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    pub last_id: i64,
    /// Frames read but not yet expected: on a resume, the missed events come before
    /// `stream.ready` (which says the client has caught up).
    buffered: std::collections::VecDeque<Value>,
}

impl Stream {
    pub async fn open(api: &str, key: &str, after: Option<i64>) -> Self {
        let url = format!(
            "{}/api/v1/stream{}",
            api.replace("http://", "ws://"),
            after.map(|a| format!("?after={a}")).unwrap_or_default()
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        Self::open_request(request, after).await
    }

    /// Opens a stream with `request` as it is (a browser's cookie, say), resuming `after`.
    pub async fn open_request(request: tokio_tungstenite::tungstenite::handshake::client::Request, after: Option<i64>) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut stream = Self {
            socket,
            last_id: after.unwrap_or(0),
            buffered: std::collections::VecDeque::new(),
        };
        let mut caught_up = Vec::new();
        loop {
            let frame = stream.next_frame("stream.ready").await;
            if frame["type"] == "stream.ready" {
                break;
            }
            caught_up.push(frame);
        }
        stream.buffered.extend(caught_up);
        stream
    }

    async fn next_frame(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no {kind} frame within {WAIT:?}"))
                .expect("stream open")
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if let Some(id) = value["id"].as_i64() {
                self.last_id = id;
            }
            return value;
        }
    }

    /// Waits for a frame of type `kind` matching `pred`; frames before it are skipped.
    pub async fn expect(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        while let Some(value) = self.buffered.pop_front() {
            if value["type"] == kind && pred(&value["data"]) {
                return value;
            }
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = tokio::time::timeout_at(deadline, self.next_frame(kind))
                .await
                .unwrap_or_else(|_| panic!("no {kind} frame within {WAIT:?}"));
            if value["type"] == kind && pred(&value["data"]) {
                return value;
            }
        }
    }

    /// Waits for the server to close the stream; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("the stream was not closed within {WAIT:?}"));
            match frame {
                Some(Ok(Message::Close(Some(close)))) => return (close.code.into(), close.reason.to_string()),
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("stream error before a close: {error}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.send(Message::Close(None)).await;
    }
}
