//! The `routing.v1.RoutingService` server: decode, call the application, encode.

use std::sync::Arc;
use switchboard_domain::routing::offer::ItemState;
use switchboard_proto::closed_sets::{code, read, read_filter};

use switchboard_domain::ids::AgentId;
use switchboard_domain::routing::Presence;
use switchboard_domain::routing::config::{AgentDef, Kind, QueueDef};
use switchboard_domain::routing::hours::{Openness, OperatingHours};
use switchboard_proto::common::v1::{Attribute, Empty};
use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::routing_service_server::RoutingService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::{ItemRow, Routing};
use crate::catalog::{ConfigRow, parse_kind};
use crate::error::{RoutingError, optional_id, parse_id};
use crate::work::OfferRow;

/// The gRPC face of routing.
pub struct RoutingGrpc {
    routing: Arc<Routing>,
}

impl RoutingGrpc {
    /// Serves `routing`.
    pub fn new(routing: Arc<Routing>) -> Self {
        Self { routing }
    }
}

type Reply<T> = Result<Response<T>, Status>;

use switchboard_proto::time::timestamp as ts;

fn config(row: &ConfigRow) -> pb::ConfigObject {
    pb::ConfigObject {
        kind: row.kind.clone(),
        id: row.id.to_string(),
        name: row.name.clone(),
        definition_json: row.definition.to_string(),
        created_at: Some(ts(row.created_at)),
        updated_at: Some(ts(row.updated_at)),
    }
}

fn item(i: &ItemRow) -> pb::WorkItem {
    let s = |v: Option<Uuid>| v.map(|x| x.to_string()).unwrap_or_default();
    pb::WorkItem {
        conversation_id: i.conversation_id.to_string(),
        workstream_id: s(i.workstream()),
        queue_id: s(i.queue()),
        state: i.state.as_str().into(),
        state_code: code(i.state),
        priority: i.priority,
        agent_id: s(i.agent()),
        offer_id: s(i.offer_id.map(Uuid::from)),
        enqueued_at: Some(ts(i.enqueued_at)),
        last_customer_message_at: Some(ts(i.last_customer_message_at)),
        total_declines: i.total_declines,
        facts: i.facts().into_iter().map(|(key, value)| Attribute { key, value }).collect(),
        skills_json: i.skills.to_string(),
    }
}

fn offer(o: &OfferRow) -> pb::Offer {
    pb::Offer {
        id: o.id.to_string(),
        conversation_id: o.conversation_id.to_string(),
        agent_id: o.agent_id.to_string(),
        queue_id: o.queue_id.map(|q| q.to_string()).unwrap_or_default(),
        workstream_id: o.workstream_id.map(|w| w.to_string()).unwrap_or_default(),
        created_at: Some(ts(o.created_at)),
        expires_at: Some(ts(o.expires_at)),
        state: o.state.as_str().into(),
        state_code: code(o.state),
    }
}

impl RoutingGrpc {
    async fn status(&self, agent_id: AgentId) -> Result<pb::AgentStatus, RoutingError> {
        let mut conn = self.routing.pool.acquire().await?;
        let state = crate::store::agents::get(&mut *conn, agent_id)
            .await?
            .ok_or(RoutingError::NotFound("agent"))?;
        let defs = self
            .routing
            .config
            .definitions::<AgentDef>(&mut conn, Kind::Agent, &[agent_id.uuid()])
            .await?;
        let (name, def) = defs.get(&agent_id.uuid()).cloned().ok_or(RoutingError::NotFound("agent"))?;
        let queues = self.routing.config.agent_queues(&mut conn, agent_id).await?;
        Ok(pb::AgentStatus {
            agent_id: agent_id.to_string(),
            name,
            presence: state.presence.as_str().into(),
            chosen_presence: state.chosen_presence.as_str().into(),
            presence_code: code(state.presence),
            chosen_presence_code: code(state.chosen_presence),
            capacity_units: def.capacity_units,
            used_units: state.used_units,
            active_items: state.active_items,
            queue_ids: queues.iter().map(Uuid::to_string).collect(),
        })
    }
}

#[tonic::async_trait]
impl RoutingService for RoutingGrpc {
    async fn put_config(&self, request: Request<pb::PutConfigRequest>) -> Reply<pb::ConfigObject> {
        let r = request.into_inner();
        let row = self
            .routing
            .put_config(parse_kind(&r.kind)?, optional_id(&r.id, "id")?, &r.name, &r.definition_json)
            .await?;
        Ok(Response::new(config(&row)))
    }

    async fn get_config(&self, request: Request<pb::ConfigRef>) -> Reply<pb::ConfigObject> {
        let r = request.get_ref();
        Ok(Response::new(config(
            &self.routing.get_config(parse_kind(&r.kind)?, parse_id(&r.id, "id")?).await?,
        )))
    }

    async fn get_names(&self, request: Request<pb::NamesRequest>) -> Reply<pb::Names> {
        let r = request.get_ref();
        let (agent, queue) = (optional_id(&r.agent_id, "agent_id")?, optional_id(&r.queue_id, "queue_id")?);
        let (agent_name, queue_name) = self.routing.names(agent, queue).await?;
        Ok(Response::new(pb::Names { agent_name, queue_name }))
    }

    async fn list_config(&self, request: Request<pb::ListConfigRequest>) -> Reply<pb::ListConfigResponse> {
        let rows = self.routing.list_config(parse_kind(&request.get_ref().kind)?).await?;
        Ok(Response::new(pb::ListConfigResponse {
            objects: rows.iter().map(config).collect(),
        }))
    }

    async fn delete_config(&self, request: Request<pb::ConfigRef>) -> Reply<Empty> {
        let r = request.get_ref();
        self.routing.delete_config(parse_kind(&r.kind)?, parse_id(&r.id, "id")?).await?;
        Ok(Response::new(Empty {}))
    }

    async fn set_presence(&self, request: Request<pb::SetPresenceRequest>) -> Reply<pb::AgentStatus> {
        let r = request.get_ref();
        let agent = parse_id(&r.agent_id, "agent_id")?;
        let presence: Presence = read(r.presence_code, &r.presence).map_err(|_| {
            RoutingError::Invalid(format!(
                "unknown presence {:?}; one of available, busy, busy_dnd, away, offline",
                r.presence
            ))
        })?;
        self.routing.set_presence(agent.into(), presence).await?;
        Ok(Response::new(self.status(agent.into()).await?))
    }

    async fn agent_connections(&self, request: Request<pb::AgentConnectionsRequest>) -> Reply<Empty> {
        let r = request.get_ref();
        let pairs = |list: &[pb::AgentConnection]| -> Result<Vec<(Uuid, Uuid)>, RoutingError> {
            list.iter()
                .map(|c| Ok((parse_id(&c.agent_id, "agent_id")?, parse_id(&c.connection_id, "connection_id")?)))
                .collect()
        };
        self.routing.agent_connections(&pairs(&r.alive)?, &pairs(&r.closed)?).await?;
        Ok(Response::new(Empty {}))
    }

    async fn get_agent_status(&self, request: Request<pb::AgentRef>) -> Reply<pb::AgentStatus> {
        Ok(Response::new(
            self.status(parse_id(&request.get_ref().agent_id, "agent_id")?.into()).await?,
        ))
    }

    async fn list_agent_statuses(&self, _request: Request<Empty>) -> Reply<pb::ListAgentStatusesResponse> {
        let ids = crate::store::agents::ids(&self.routing.pool).await.map_err(RoutingError::from)?;
        let mut agents = Vec::with_capacity(ids.len());
        for id in ids {
            agents.push(self.status(id).await?);
        }
        Ok(Response::new(pb::ListAgentStatusesResponse { agents }))
    }

    async fn list_offers(&self, request: Request<pb::AgentRef>) -> Reply<pb::ListOffersResponse> {
        let agent = parse_id(&request.get_ref().agent_id, "agent_id")?;
        let rows = crate::store::offers::open_for(&self.routing.pool, agent, self.routing.now())
            .await
            .map_err(RoutingError::from)?;
        Ok(Response::new(pb::ListOffersResponse {
            offers: rows.iter().map(offer).collect(),
        }))
    }

    async fn accept_offer(&self, request: Request<pb::OfferAction>) -> Reply<pb::WorkItem> {
        let r = request.get_ref();
        let i = self
            .routing
            .accept_offer(parse_id(&r.offer_id, "offer_id")?.into(), parse_id(&r.agent_id, "agent_id")?.into())
            .await?;
        Ok(Response::new(item(&i)))
    }

    async fn decline_offer(&self, request: Request<pb::OfferAction>) -> Reply<pb::WorkItem> {
        let r = request.get_ref();
        let i = self
            .routing
            .decline_offer(parse_id(&r.offer_id, "offer_id")?.into(), parse_id(&r.agent_id, "agent_id")?.into())
            .await?;
        Ok(Response::new(item(&i)))
    }

    async fn list_pickable(&self, request: Request<pb::AgentRef>) -> Reply<pb::ListWorkItemsResponse> {
        let agent = parse_id(&request.get_ref().agent_id, "agent_id")?;
        let rows = crate::store::items::pickable_by(&self.routing.pool, agent)
            .await
            .map_err(RoutingError::from)?;
        Ok(Response::new(pb::ListWorkItemsResponse {
            items: rows.iter().map(item).collect(),
            page: None,
        }))
    }

    async fn pick(&self, request: Request<pb::ConversationAgent>) -> Reply<pb::WorkItem> {
        let r = request.get_ref();
        let i = self
            .routing
            .pick(
                parse_id(&r.conversation_id, "conversation_id")?.into(),
                parse_id(&r.agent_id, "agent_id")?.into(),
            )
            .await?;
        Ok(Response::new(item(&i)))
    }

    async fn assign_by_supervisor(&self, request: Request<pb::ConversationAgent>) -> Reply<pb::WorkItem> {
        let r = request.get_ref();
        let i = self
            .routing
            .assign_by_supervisor(
                parse_id(&r.conversation_id, "conversation_id")?.into(),
                parse_id(&r.agent_id, "agent_id")?.into(),
            )
            .await?;
        Ok(Response::new(item(&i)))
    }

    async fn transfer_to_queue(&self, request: Request<pb::TransferToQueueRequest>) -> Reply<pb::WorkItem> {
        let r = request.get_ref();
        let i = self
            .routing
            .transfer(
                parse_id(&r.conversation_id, "conversation_id")?,
                Some(parse_id(&r.queue_id, "queue_id")?),
                None,
                &r.note,
            )
            .await?;
        Ok(Response::new(item(&i)))
    }

    async fn escalate_from_bot(&self, request: Request<pb::EscalateRequest>) -> Reply<pb::WorkItem> {
        let r = request.into_inner();
        let skills = if r.skills_json.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&r.skills_json).map_err(|e| Status::invalid_argument(format!("skills_json: {e}")))?
        };
        let queue_id = if r.queue_id.is_empty() {
            None
        } else {
            Some(parse_id(&r.queue_id, "queue_id")?)
        };
        let escalation = crate::bots::Escalation {
            context: r.context.into_iter().map(|a| (a.key, a.value)).collect(),
            queue_id,
            skills,
            note: r.note,
        };
        let escalated = self
            .routing
            .escalate(parse_id(&r.conversation_id, "conversation_id")?, escalation)
            .await?;
        Ok(Response::new(match escalated {
            crate::bots::Escalated::Routed(i) => item(&i),
            crate::bots::Escalated::Closed(i) => pb::WorkItem {
                state: "closed".into(),
                ..item(&i)
            },
        }))
    }

    async fn transfer_to_agent(&self, request: Request<pb::ConversationAgent>) -> Reply<pb::WorkItem> {
        let r = request.get_ref();
        let i = self
            .routing
            .transfer(
                parse_id(&r.conversation_id, "conversation_id")?,
                None,
                Some(parse_id(&r.agent_id, "agent_id")?),
                "Transferred to another agent.",
            )
            .await?;
        Ok(Response::new(item(&i)))
    }

    async fn get_work_item(&self, request: Request<pb::ConversationRef>) -> Reply<pb::WorkItem> {
        let id = parse_id(&request.get_ref().conversation_id, "conversation_id")?;
        let row = crate::store::items::get(&self.routing.pool, id)
            .await
            .map_err(RoutingError::from)?
            .ok_or(RoutingError::NotFound("work item"))?;
        Ok(Response::new(item(&row)))
    }

    async fn list_work_items(&self, request: Request<pb::ListWorkItemsRequest>) -> Reply<pb::ListWorkItemsResponse> {
        let r = request.get_ref();
        let queue = optional_id(&r.queue_id, "queue_id")?;
        let limit = i64::from(r.page.as_ref().map_or(100, |p| p.page_size).clamp(1, 500));
        let after = optional_id(r.page.as_ref().map_or("", |p| p.page_token.as_str()), "page_token")?;
        let states = read_filter::<ItemState>(&r.state_codes, &r.states).map_err(RoutingError::Invalid)?;
        let rows = crate::store::items::page(&self.routing.pool, queue, &states, after, limit)
            .await
            .map_err(RoutingError::from)?;
        let next = if i64::try_from(rows.len()).unwrap_or(0) >= limit {
            rows.last().map(|r| r.conversation_id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListWorkItemsResponse {
            items: rows.iter().map(item).collect(),
            page: Some(switchboard_proto::common::v1::PageInfo {
                next_page_token: next,
                total: 0,
            }),
        }))
    }

    async fn queue_report(&self, request: Request<pb::ReportRequest>) -> Reply<pb::QueueReportResponse> {
        let (from, to, ids) = crate::report::period(request.get_ref())?;
        let threshold = i32::try_from(request.get_ref().service_level_secs).ok().filter(|t| *t > 0);
        let rows = self.routing.queue_report(from, to, threshold, ids.as_deref()).await?;
        Ok(Response::new(pb::QueueReportResponse {
            queues: rows.iter().map(Into::into).collect(),
        }))
    }

    async fn agent_report(&self, request: Request<pb::ReportRequest>) -> Reply<pb::AgentReportResponse> {
        let (from, to, ids) = crate::report::period(request.get_ref())?;
        let rows = self.routing.agent_report(from, to, ids.as_deref()).await?;
        Ok(Response::new(pb::AgentReportResponse {
            agents: rows.iter().map(Into::into).collect(),
        }))
    }

    async fn conversation_report(&self, request: Request<pb::ConversationRef>) -> Reply<pb::ConversationFigures> {
        let id = parse_id(&request.get_ref().conversation_id, "conversation_id")?;
        let figures = self.routing.conversation_report(id).await?;
        Ok(Response::new(crate::report::conversation_figures(id, &figures)))
    }

    async fn queue_stats(&self, _request: Request<Empty>) -> Reply<pb::QueueStatsResponse> {
        let now = self.routing.now();
        let mut conn = self.routing.pool.acquire().await.map_err(RoutingError::from)?;
        let queues = self.routing.list_config(Kind::Queue).await?;
        let hours_ids: Vec<Uuid> = queues
            .iter()
            .filter_map(|q| {
                serde_json::from_value::<QueueDef>(q.definition.clone())
                    .ok()
                    .and_then(|d| d.operating_hours_id)
            })
            .collect();
        let hours = self
            .routing
            .config
            .definitions::<OperatingHours>(&mut conn, Kind::OperatingHours, &hours_ids)
            .await?;
        let mut out = Vec::new();
        for q in &queues {
            let def: QueueDef = serde_json::from_value(q.definition.clone()).map_err(|e| RoutingError::Internal(e.into()))?;
            let (waiting, offered, assigned, oldest): (i64, i64, i64, Option<time::OffsetDateTime>) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE state IN ('queued', 'pick_only')), count(*) FILTER (WHERE state = 'offered'), \
                 count(*) FILTER (WHERE state = 'assigned'), min(enqueued_at) FILTER (WHERE state IN ('queued', 'pick_only')) FROM routing.work_items WHERE queue_id = $1",
            )
            .bind(q.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(RoutingError::from)?;
            let (members, available): (i64, i64) = sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE s.presence IN ('available', 'busy')) FROM routing.queue_members m JOIN routing.agent_state s ON s.agent_id = m.agent_id WHERE m.queue_id = $1",
            )
            .bind(q.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(RoutingError::from)?;
            let open = def
                .operating_hours_id
                .and_then(|h| hours.get(&h))
                .is_none_or(|(_, h)| h.openness(now) == Openness::Open);
            let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
            out.push(pb::QueueStat {
                queue_id: q.id.to_string(),
                name: q.name.clone(),
                priority: def.priority,
                waiting: n(waiting),
                offered: n(offered),
                assigned: n(assigned),
                longest_wait_seconds: oldest.map_or(0, |t| u64::try_from((now - t).whole_seconds()).unwrap_or(0)),
                members: n(members),
                agents_available: n(available),
                open,
            });
        }
        Ok(Response::new(pb::QueueStatsResponse { queues: out }))
    }
}
