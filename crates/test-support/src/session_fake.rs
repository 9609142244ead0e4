//! A fake of session's `SessionService` for the services that call session (routing, sender), so
//! their tests need no real session.
//!
//! Conversations live in memory and move by the same lifecycle rules session applies
//! (`domain::conversation::apply`, `domain::automated::trigger_for`). Each change reaches the bus
//! as session's would: a customer message that opens or reopens a conversation publishes
//! `conversation.opened.v1`, a transition publishes `conversation.status_changed.v1`. Every
//! operation runs under one lock held across its publish, so the events of a conversation leave
//! in the order its changes were made, as session's outbox keeps them. Automated messages are
//! recorded by trigger (session renders the text; these tests care which message was asked for),
//! and templates synced by sender are kept per channel. Calls it does not model answer
//! UNIMPLEMENTED.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use switchboard_bus::events::{ConversationOpenedV1, ConversationStatusChangedV1};
use switchboard_bus::{Envelope, Publisher};
use switchboard_domain::Clock;
use switchboard_domain::automated::trigger_for;
use switchboard_domain::conversation::{ConversationStatus, StatusReason, Transition, apply};
use switchboard_domain::ids::{AgentId, BotId, ChannelId, ConversationId, CustomerId, NumberId, QueueId, WorkstreamId};
use switchboard_proto::common::v1::PageInfo;
use switchboard_proto::session::v1 as pb;
use switchboard_proto::session::v1::session_service_server::{SessionService, SessionServiceServer};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

/// One conversation as the fake keeps it.
#[derive(Debug, Clone)]
struct Conversation {
    id: ConversationId,
    customer_id: CustomerId,
    phone: String,
    status: ConversationStatus,
    reason: StatusReason,
    agent_id: Option<AgentId>,
    bot_id: Option<BotId>,
    queue_id: Option<QueueId>,
    workstream_id: Option<WorkstreamId>,
    first_message: String,
    transfer_pending: bool,
    transfer_count: u32,
}

/// An automated message routing (or a transition) asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automated {
    /// The trigger (`overflow_end`, `holiday`, `agent_joined`, …).
    pub trigger: String,
    /// The agent name it was asked to carry.
    pub agent_name: String,
    /// The queue name it was asked to carry.
    pub queue_name: String,
}

#[derive(Default)]
struct State {
    conversations: Vec<Conversation>,
    automated: HashMap<ConversationId, Vec<Automated>>,
    templates: HashMap<String, Vec<pb::SyncedTemplate>>,
    workstream_id: Option<WorkstreamId>,
}

/// The fake session; clones share their state.
#[derive(Clone)]
pub struct FakeSession {
    state: Arc<Mutex<State>>,
    publisher: Publisher,
    clock: Arc<dyn Clock>,
    channel_id: ChannelId,
    number_id: NumberId,
}

fn parse<T: FromStr>(raw: &str, what: &str) -> Result<T, Status> {
    raw.parse().map_err(|_| Status::invalid_argument(format!("{what} must be a UUID")))
}

/// An optional id of a request: empty is none.
fn non_empty<T: FromStr>(raw: &str, what: &str) -> Result<Option<T>, Status> {
    (!raw.is_empty()).then(|| parse(raw, what)).transpose()
}

impl FakeSession {
    /// A fake for one channel and number, publishing through `publisher` (connected by the
    /// caller), stamping events with `clock`.
    pub fn new(publisher: Publisher, clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::default(),
            publisher,
            clock,
            channel_id: ChannelId::generate(),
            number_id: NumberId::generate(),
        }
    }

    /// The channel every conversation is on.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The number every conversation is on.
    pub fn number_id(&self) -> NumberId {
        self.number_id
    }

    /// Points the number at `workstream_id`: conversations opened from now on carry it.
    pub async fn set_workstream(&self, workstream_id: WorkstreamId) {
        self.state.lock().await.workstream_id = Some(workstream_id);
    }

    /// Serves the fake on a local port until the test ends; returns its URL.
    pub async fn serve(&self) -> String {
        let listener = crate::bind_local().await;
        let url = format!("http://{}", listener.local_addr().expect("a bound listener has an address"));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(SessionServiceServer::new(self.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        url
    }

    /// The customer `phone` writes `body`, as session stores an inbound message: a live
    /// conversation continues (no event), a Waiting one is reopened, otherwise a new one opens.
    /// Returns the conversation's id once its event (if any) is confirmed by the broker.
    pub async fn customer_writes(&self, phone: &str, body: &str) -> ConversationId {
        let mut state = self.state.lock().await;
        let workstream_id = state.workstream_id;
        let live = state
            .conversations
            .iter_mut()
            .find(|c| c.phone == phone && c.status != ConversationStatus::Closed);
        let (conversation, reopened, previous_agent) = match live {
            Some(c) if c.status == ConversationStatus::Waiting => {
                let (status, reason) = apply(c.status, Transition::CustomerMessage).expect("Waiting reopens");
                let previous = c.agent_id;
                (c.status, c.reason, c.agent_id) = (status, reason, None);
                (c.clone(), true, previous)
            }
            Some(c) => return c.id,
            None => {
                let customer_id = state
                    .conversations
                    .iter()
                    .find(|c| c.phone == phone)
                    .map_or_else(CustomerId::generate, |c| c.customer_id);
                let c = Conversation {
                    id: ConversationId::generate(),
                    customer_id,
                    phone: phone.to_owned(),
                    status: ConversationStatus::Open,
                    reason: StatusReason::AwaitingAgentAssignment,
                    agent_id: None,
                    bot_id: None,
                    queue_id: None,
                    workstream_id,
                    first_message: body.to_owned(),
                    transfer_pending: false,
                    transfer_count: 0,
                };
                state.conversations.push(c.clone());
                (c, false, None)
            }
        };
        let now = self.clock.now();
        let event = ConversationOpenedV1 {
            conversation_id: conversation.id,
            channel_id: self.channel_id,
            number_id: self.number_id,
            workstream_id: conversation.workstream_id,
            customer_id: conversation.customer_id,
            customer_phone: Some(phone.to_owned()),
            customer_bsuid: None,
            profile_name: None,
            language: "en".into(),
            first_message: body.to_owned(),
            button_payload: None,
            attributes: BTreeMap::new(),
            reopened,
            previous_agent_id: previous_agent,
            last_customer_message_at: now,
        };
        self.publish(Envelope::new(event)).await;
        conversation.id
    }

    /// The automated messages asked for on `conversation`, in order.
    pub async fn automated(&self, conversation: ConversationId) -> Vec<Automated> {
        self.state.lock().await.automated.get(&conversation).cloned().unwrap_or_default()
    }

    /// The templates last synced for `channel_id`.
    pub async fn synced_templates(&self, channel_id: &str) -> Vec<pb::SyncedTemplate> {
        self.state.lock().await.templates.get(channel_id).cloned().unwrap_or_default()
    }

    async fn publish<T: switchboard_bus::Event>(&self, envelope: Envelope<T>) {
        self.publisher
            .publish_event(&envelope, true)
            .await
            .expect("the fake session's event is confirmed");
    }

    fn view(&self, c: &Conversation) -> pb::Conversation {
        pb::Conversation {
            id: c.id.to_string(),
            channel_id: self.channel_id.to_string(),
            number_id: self.number_id.to_string(),
            workstream_id: c.workstream_id.map(|id| id.to_string()).unwrap_or_default(),
            customer: Some(pb::Customer {
                id: c.customer_id.to_string(),
                phone: c.phone.clone(),
                ..Default::default()
            }),
            status: c.status.as_str().into(),
            status_code: switchboard_proto::closed_sets::code(c.status),
            status_reason: c.reason.name(),
            agent_id: c.agent_id.map(|id| id.to_string()).unwrap_or_default(),
            queue_id: c.queue_id.map(|id| id.to_string()).unwrap_or_default(),
            first_message: c.first_message.clone(),
            bot_id: c.bot_id.map(|id| id.to_string()).unwrap_or_default(),
            transfer_count: c.transfer_count,
            window_open: true,
            ..Default::default()
        }
    }

    /// Session's `transition_locked`, on the fake's state: the same rules for who holds the
    /// conversation afterwards, the same event and automated message.
    fn transition(
        &self,
        state: &mut State,
        request: &pb::TransitionRequest,
    ) -> Result<(pb::Conversation, ConversationStatusChangedV1), Status> {
        let id: ConversationId = parse(&request.conversation_id, "conversation_id")?;
        let requested_agent: Option<AgentId> = non_empty(&request.agent_id, "agent_id")?;
        let requested_bot: Option<BotId> = non_empty(&request.bot_id, "bot_id")?;
        let requested_queue: Option<QueueId> = non_empty(&request.queue_id, "queue_id")?;
        let requested_workstream: Option<WorkstreamId> = non_empty(&request.workstream_id, "workstream_id")?;
        let transition = Transition::requested(&request.transition)
            .ok_or_else(|| Status::invalid_argument(format!("unknown transition {:?}", request.transition)))?;
        let c = state
            .conversations
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| Status::not_found("conversation not found"))?;
        let from = c.status;
        let (to, reason) = apply(from, transition).map_err(|e| Status::failed_precondition(e.to_string()))?;
        let previous_agent = c.agent_id;
        let (agent, bot) = match transition {
            Transition::Accept | Transition::Pick | Transition::SupervisorAssign => match (requested_agent, requested_bot) {
                (Some(agent), _) => (Some(agent), None),
                (None, Some(bot)) => (None, Some(bot)),
                (None, None) => {
                    return Err(Status::invalid_argument(
                        "agent_id (or bot_id) is required to accept, pick or assign",
                    ));
                }
            },
            Transition::Revive => (requested_agent.or(c.agent_id), None),
            Transition::ReleaseToQueue => (None, None),
            _ => (c.agent_id, c.bot_id),
        };
        let transfer = request.transfer && transition == Transition::ReleaseToQueue;
        let trigger = trigger_for(transition, to, agent.is_some(), c.transfer_pending);
        (c.status, c.reason, c.agent_id, c.bot_id) = (to, reason, agent, bot);
        c.queue_id = requested_queue.or(c.queue_id);
        c.workstream_id = requested_workstream.or(c.workstream_id);
        if transfer {
            c.transfer_count += 1;
        }
        c.transfer_pending = transfer || (to != ConversationStatus::Active && c.transfer_pending);
        let event = ConversationStatusChangedV1 {
            conversation_id: c.id,
            number_id: self.number_id,
            workstream_id: c.workstream_id,
            from,
            to,
            transition: transition.name().into(),
            reason: reason.name(),
            agent_id: c.agent_id.or(previous_agent),
            queue_id: c.queue_id,
            at: self.clock.now(),
        };
        let view = self.view(c);
        if let Some(trigger) = trigger {
            state.automated.entry(id).or_default().push(Automated {
                trigger: trigger.as_str().into(),
                agent_name: request.agent_name.clone(),
                queue_name: request.queue_name.clone(),
            });
        }
        Ok((view, event))
    }
}

#[tonic::async_trait]
impl SessionService for FakeSession {
    async fn get_conversation(&self, request: Request<pb::GetByIdRequest>) -> Result<Response<pb::Conversation>, Status> {
        let id = parse(&request.into_inner().id, "id")?;
        let state = self.state.lock().await;
        let c = state
            .conversations
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Status::not_found("conversation not found"))?;
        Ok(Response::new(self.view(c)))
    }

    async fn transition_conversation(&self, request: Request<pb::TransitionRequest>) -> Result<Response<pb::Conversation>, Status> {
        let mut state = self.state.lock().await;
        let (view, event) = self.transition(&mut state, request.get_ref())?;
        self.publish(Envelope::new(event)).await;
        drop(state);
        Ok(Response::new(view))
    }

    async fn send_automated_message(
        &self,
        request: Request<pb::SendAutomatedMessageRequest>,
    ) -> Result<Response<pb::SendAutomatedMessageResponse>, Status> {
        let request = request.into_inner();
        let id = parse(&request.conversation_id, "conversation_id")?;
        let mut state = self.state.lock().await;
        if !state.conversations.iter().any(|c| c.id == id) {
            return Err(Status::not_found("conversation not found"));
        }
        state.automated.entry(id).or_default().push(Automated {
            trigger: request.trigger,
            agent_name: request.agent_name,
            queue_name: request.queue_name,
        });
        Ok(Response::new(pb::SendAutomatedMessageResponse {
            sent: true,
            reason: String::new(),
            message_id: switchboard_domain::ids::MessageId::generate().to_string(),
        }))
    }

    async fn list_channels(&self, _: Request<pb::ListChannelsRequest>) -> Result<Response<pb::ListChannelsResponse>, Status> {
        Ok(Response::new(pb::ListChannelsResponse {
            channels: vec![pb::Channel {
                id: self.channel_id.to_string(),
                name: "fake".into(),
                active: true,
                ..Default::default()
            }],
            page: Some(PageInfo::default()),
        }))
    }

    async fn sync_templates(&self, request: Request<pb::SyncTemplatesRequest>) -> Result<Response<pb::SyncTemplatesResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state.lock().await;
        let before = state
            .templates
            .insert(request.channel_id, request.templates.clone())
            .unwrap_or_default();
        let known = |t: &pb::SyncedTemplate| before.iter().any(|b| b.content_sid == t.content_sid);
        let updated = request.templates.iter().filter(|t| known(t)).count();
        let created = request.templates.len() - updated;
        Ok(Response::new(pb::SyncTemplatesResponse {
            created: u32::try_from(created).unwrap_or(u32::MAX),
            updated: u32::try_from(updated).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_proto::session::v1::session_service_client::SessionServiceClient;

    use super::*;
    use crate::TestBus;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn the_fake_moves_conversations_by_the_domain_rules_and_publishes_each_change_as_session_does() {
        let bus = TestBus::new();
        bus.declare().await;
        let mut tap = bus.tap(&["conversation.#"]).await;
        let publisher = bus.publisher();
        publisher.connect().await.expect("broker up");
        let fake = FakeSession::new(publisher, Arc::new(switchboard_domain::SystemClock));
        let workstream = WorkstreamId::generate();
        fake.set_workstream(workstream).await;
        let ana = AgentId::generate();
        let mut client = SessionServiceClient::connect(fake.serve().await).await.expect("the fake serves");

        let id = fake.customer_writes("+5511900000001", "hello").await;
        let opened: Envelope<ConversationOpenedV1> = tap.expect(WAIT, "opened", |e: &ConversationOpenedV1| e.conversation_id == id).await;
        assert_eq!((opened.payload.workstream_id, opened.payload.reopened), (Some(workstream), false));
        assert_eq!(
            fake.customer_writes("+5511900000001", "more").await,
            id,
            "a live conversation continues"
        );

        let transition = |name: &str, agent: &str| pb::TransitionRequest {
            conversation_id: id.to_string(),
            transition: name.into(),
            agent_id: agent.into(),
            ..Default::default()
        };
        let refused = client.transition_conversation(transition("accept", "")).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "accept needs an agent");
        let active = client
            .transition_conversation(transition("accept", &ana.to_string()))
            .await
            .expect("accept")
            .into_inner();
        assert_eq!((active.status.as_str(), active.agent_id), ("active", ana.to_string()));
        let changed: Envelope<ConversationStatusChangedV1> = tap
            .expect(WAIT, "status changed", |e: &ConversationStatusChangedV1| {
                e.to == ConversationStatus::Active
            })
            .await;
        assert_eq!(
            (changed.payload.from, changed.payload.reason.as_str()),
            (ConversationStatus::Open, "in_conversation")
        );
        let wrong = client.transition_conversation(transition("revive", "")).await.unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::FailedPrecondition, "only Waiting revives");

        client
            .transition_conversation(transition("close_session", ""))
            .await
            .expect("close");
        assert_eq!(fake.customer_writes("+5511900000001", "back").await, id, "a reopen keeps the id");
        let reopened: Envelope<ConversationOpenedV1> = tap.expect(WAIT, "reopened", |e: &ConversationOpenedV1| e.reopened).await;
        assert_eq!(reopened.payload.previous_agent_id, Some(ana));
        assert_eq!(
            fake.automated(id).await[0].trigger,
            "agent_joined",
            "session's automated message on accept"
        );
    }
}
