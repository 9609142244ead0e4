use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchboard_domain::ManualClock;
use switchboard_proto::routing::v1 as rpb;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::session::v1 as spb;
use switchboard_proto::session::v1::session_service_client::SessionServiceClient;
use switchboard_test_support::session_fake::FakeSession;
use switchboard_test_support::{TestBus, TestDb, bind_local, wait_for};
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(30);

pub type Routing = RoutingServiceClient<tonic::transport::Channel>;
pub type Session = SessionServiceClient<tonic::transport::Channel>;

pub struct Harness {
    pub db: TestDb,
    pub bus: TestBus,
    pub clock: ManualClock,
    /// Session as routing sees it: conversations, their lifecycle and events (test-support's
    /// fake, moved by the domain's rules), and a client to it for the tests' own transitions.
    pub fake: FakeSession,
    pub session: Session,
    pub routing: Vec<Routing>,
    session_url: String,
    stops: Vec<(CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

async fn connect(url: &str) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).unwrap();
    wait_for(WAIT, "gRPC up", || {
        let endpoint = endpoint.clone();
        async move { endpoint.connect().await.ok() }
    })
    .await
}

impl Harness {
    pub async fn start(routing_replicas: usize) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = TestDb::new().await;
        let bus = TestBus::new();
        bus.declare().await;
        let clock = ManualClock::new();
        // One connected publisher for the fake's events: tests that write from many tasks at
        // once would otherwise open a broker connection per message.
        let publisher = bus.publisher();
        publisher.connect().await.unwrap();
        let fake = FakeSession::new(publisher, Arc::new(clock.clone()));
        let session_url = fake.serve().await;
        let session = SessionServiceClient::new(connect(&session_url).await);
        let mut h = Self {
            db,
            bus,
            clock,
            fake,
            session,
            routing: Vec::new(),
            session_url,
            stops: Vec::new(),
        };
        for _ in 0..routing_replicas {
            h.add_routing().await;
        }
        h
    }

    async fn add_routing(&mut self) {
        let grpc = bind_local().await;
        let url = format!("http://{}", grpc.local_addr().unwrap());
        let config = switchboard_routing::Config {
            database_url: SecretString::from(self.db.url.clone()),
            amqp_url: SecretString::from(self.bus.url().to_owned()),
            bus: self.bus.config.clone(),
            grpc_tls: Default::default(),
            routing: switchboard_routing::config::RoutingSettings {
                grpc_listen: "127.0.0.1:0".parse().unwrap(),
                http_listen: "127.0.0.1:0".parse().unwrap(),
                session_url: self.session_url.clone(),
                db_max_connections: 8,
                cycle_batch: 100,
                scheduler_interval_ms: 200,
                event_concurrency: 4,
                outbox_batch: 200,
                outbox_poll_ms: 50,
                drain_timeout_ms: 5_000,
            },
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(switchboard_routing::run(
            config,
            Arc::new(self.clock.clone()),
            grpc,
            bind_local().await,
            stop.clone(),
        ));
        self.routing.push(RoutingServiceClient::new(connect(&url).await));
        self.stops.push((stop, task));
    }

    pub fn routing(&self) -> Routing {
        self.routing[0].clone()
    }

    pub async fn stop(self) {
        for (stop, task) in self.stops.into_iter().rev() {
            stop.cancel();
            task.await.unwrap().unwrap();
        }
    }

    pub async fn put(&self, kind: &str, name: &str, definition: serde_json::Value) -> String {
        self.routing()
            .put_config(rpb::PutConfigRequest {
                kind: kind.into(),
                id: String::new(),
                name: name.into(),
                definition_json: definition.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
            .into_inner()
            .id
    }

    /// Points the number at a workstream.
    pub async fn feed(&self, workstream_id: &str) {
        self.fake.set_workstream(workstream_id.parse().expect("a workstream id")).await;
    }

    /// A customer writes; returns the conversation id (a reopen keeps its id).
    pub async fn customer_writes(&self, from: &str, body: &str) -> String {
        self.fake.customer_writes(from, body).await.to_string()
    }

    /// The triggers of the automated messages routing asked session to send on `conversation`.
    pub async fn automated(&self, conversation: &str) -> Vec<String> {
        self.fake
            .automated(conversation.parse().expect("a conversation id"))
            .await
            .into_iter()
            .map(|a| a.trigger)
            .collect()
    }

    /// `agent` accepts `offer`.
    pub async fn accept(&self, offer: &rpb::Offer, agent: &str) -> rpb::WorkItem {
        self.routing()
            .accept_offer(rpb::OfferAction {
                offer_id: offer.id.clone(),
                agent_id: agent.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The agent closes the session of `conversation` without ending it (Active → Waiting).
    pub async fn close_session(&self, conversation: &str) {
        self.transition(conversation, "close_session").await;
    }

    /// Applies a lifecycle `transition` to `conversation` in session, as its agent would.
    pub async fn transition(&self, conversation: &str, transition: &str) {
        self.session
            .clone()
            .transition_conversation(spb::TransitionRequest {
                conversation_id: conversation.into(),
                transition: transition.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    pub async fn offers(&self, agent: &str) -> Vec<rpb::Offer> {
        self.routing()
            .list_offers(rpb::AgentRef { agent_id: agent.into() })
            .await
            .unwrap()
            .into_inner()
            .offers
    }

    /// Waits until `agent` has an offer for `conversation`.
    pub async fn offer_for(&self, agent: &str, conversation: &str) -> rpb::Offer {
        wait_for(WAIT, "an offer", || async {
            self.offers(agent).await.into_iter().find(|o| o.conversation_id == conversation)
        })
        .await
    }

    pub async fn conversation(&self, id: &str) -> spb::Conversation {
        self.session
            .clone()
            .get_conversation(spb::GetByIdRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn agent(&self, id: &str) -> rpb::AgentStatus {
        self.routing()
            .get_agent_status(rpb::AgentRef { agent_id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn item(&self, conversation: &str) -> Option<rpb::WorkItem> {
        self.routing()
            .get_work_item(rpb::ConversationRef {
                conversation_id: conversation.into(),
            })
            .await
            .ok()
            .map(tonic::Response::into_inner)
    }
}

impl Harness {
    /// Sets every one of `agents` busy, through the replicas in turn: each replica reacts with
    /// cycles of its own.
    pub async fn stir_presence(&self, agents: &[String]) {
        for (i, agent) in agents.iter().enumerate() {
            let mut routing = self.routing[i % self.routing.len()].clone();
            routing
                .set_presence(rpb::SetPresenceRequest {
                    agent_id: agent.clone(),
                    // Typed only: routing reads the code when it is set.
                    presence_code: rpb::Presence::Busy as i32,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    }

    /// Pending offers in the database.
    pub async fn pending_offers(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM routing.offers WHERE state = 'pending'")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// The routing guarantees, read from the database: at most one live offer per conversation,
    /// no agent over `capacity` units, and each agent's recorded load equal to the work items
    /// holding their capacity. Each check is one statement, so it reads one snapshot and can run
    /// while routing works.
    pub async fn guarantees_broken(&self, agents: &[String], capacity: i32) -> Option<String> {
        let doubled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT conversation_id FROM routing.offers WHERE state = 'pending' GROUP BY conversation_id HAVING count(*) > 1) d",
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        if doubled > 0 {
            return Some(format!("{doubled} conversations offered twice"));
        }
        let loads: Vec<(String, i32, i64)> = sqlx::query_as(
            "SELECT s.agent_id::text, s.used_units, COALESCE(h.n, 0) FROM routing.agent_state s \
             LEFT JOIN (SELECT agent_id, count(*) AS n FROM routing.work_items WHERE capacity_held GROUP BY agent_id) h USING (agent_id)",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap();
        for (agent, used, held) in loads.into_iter().filter(|(a, _, _)| agents.contains(a)) {
            if used > capacity {
                return Some(format!("{agent} holds {used} units of {capacity}"));
            }
            if i64::from(used) != held {
                return Some(format!("{agent} records {used} units but holds {held} items"));
            }
        }
        None
    }

    /// Asserts [`Harness::guarantees_broken`] finds nothing.
    pub async fn assert_no_double_offer_or_overfill(&self, agents: &[String], capacity: i32) {
        if let Some(broken) = self.guarantees_broken(agents, capacity).await {
            panic!("{broken}");
        }
    }
}

/// A push workstream falling back to `queue` with extra settings merged in.
pub fn workstream(queue: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut ws = serde_json::json!({ "mode": "push", "fallback_queue_id": queue, "offer_timeout_secs": 30 });
    if let (Some(base), Some(more)) = (ws.as_object_mut(), extra.as_object()) {
        base.extend(more.clone());
    }
    ws
}
