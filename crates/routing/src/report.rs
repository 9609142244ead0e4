//! Historical reporting: each move of a work item is booked as queue and agent legs
//! (`domain::routing::report` decides which), in the transaction that moves it; the legs feed the
//! conversation's figures, the per-queue and per-agent aggregates the API serves, and the
//! OpenTelemetry metrics of the same figures.

use switchboard_domain::routing::report::{Cause, Change, LegEnd, Place, QueueTotals, Stage, changes};
use time::OffsetDateTime;
use uuid::Uuid;

use switchboard_proto::routing::v1 as pb;
use switchboard_proto::time::{datetime, timestamp};

use crate::app::{ItemRow, Routing};
use crate::error::{RoutingError, parse_id};

/// The longest period a report covers.
const MAX_PERIOD: time::Duration = time::Duration::days(366);

/// Where `item` is, for reporting.
pub fn place(item: &ItemRow) -> Place {
    Place {
        stage: Stage::of(item.state.as_str()),
        queue: item.queue(),
        agent: item.agent(),
    }
}

/// One queue's figures over a period.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct QueueFigures {
    pub queue_id: Uuid,
    pub name: String,
    pub service_level_secs: i32,
    /// Waits that started in the period.
    pub incoming: i64,
    pub answered: i64,
    pub answered_within: i64,
    pub abandoned: i64,
    pub transferred: i64,
    pub overflowed: i64,
    /// Still waiting.
    pub waiting: i64,
    pub average_speed_of_answer_secs: Option<f64>,
    /// Agent legs from this queue accepted in the period and finished.
    pub handled: i64,
    pub average_handle_secs: Option<f64>,
    pub average_wrap_up_secs: Option<f64>,
}

impl QueueFigures {
    /// The counts behind the rates.
    pub fn totals(&self) -> QueueTotals {
        QueueTotals {
            answered: self.answered,
            answered_within: self.answered_within,
            abandoned: self.abandoned,
        }
    }
}

/// One agent's figures over a period.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AgentFigures {
    pub agent_id: Uuid,
    pub name: String,
    /// Conversations they took in the period and finished.
    pub handled: i64,
    pub average_handle_secs: Option<f64>,
    pub average_wrap_up_secs: Option<f64>,
    pub offered: i64,
    pub accepted: i64,
    pub declined: i64,
    pub missed: i64,
}

/// One conversation's figures.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ConversationFigures {
    pub first_queued_at: Option<OffsetDateTime>,
    pub first_wait_secs: Option<f64>,
    pub handle_secs: Option<f64>,
    pub wrap_up_secs: Option<f64>,
    pub abandoned: bool,
    pub transfers: i64,
    pub overflows: i64,
    pub agents: i64,
}

impl Routing {
    /// Books the move of `conversation_id`'s work item from `before` to where it is now.
    pub(crate) async fn track(
        &self,
        tx: &mut sqlx::PgConnection,
        conversation_id: Uuid,
        before: Option<Place>,
        cause: Cause,
    ) -> Result<(), RoutingError> {
        self.track_at(tx, conversation_id, before, cause, self.now()).await
    }

    /// Books a move that happened `at` (session's time, for a move session reported).
    pub(crate) async fn track_at(
        &self,
        tx: &mut sqlx::PgConnection,
        conversation_id: Uuid,
        before: Option<Place>,
        cause: Cause,
        at: OffsetDateTime,
    ) -> Result<(), RoutingError> {
        let after = sqlx::query_as::<_, (String, Option<Uuid>, Option<Uuid>)>(
            "SELECT state, queue_id, agent_id FROM routing.work_items WHERE conversation_id = $1",
        )
        .bind(conversation_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|(state, queue, agent)| Place {
            stage: Stage::of(&state),
            queue,
            agent,
        });
        self.book(tx, conversation_id, (before, after), cause, at).await
    }

    /// Books a move from `before` to `after`, now.
    pub(crate) async fn track_to(
        &self,
        tx: &mut sqlx::PgConnection,
        conversation_id: Uuid,
        before: Option<Place>,
        after: Option<Place>,
        cause: Cause,
    ) -> Result<(), RoutingError> {
        self.book(tx, conversation_id, (before, after), cause, self.now()).await
    }

    /// A wrap-up session reported after the close that followed it (events are consumed
    /// concurrently): its start goes on the agent leg it belongs to.
    pub(crate) async fn late_wrap_up(&self, conversation_id: Uuid, at: OffsetDateTime) -> Result<(), RoutingError> {
        sqlx::query(
            "UPDATE routing.agent_legs SET wrap_started_at = $2 WHERE id = (SELECT id FROM routing.agent_legs \
             WHERE conversation_id = $1 AND accepted_at <= $2 ORDER BY accepted_at DESC LIMIT 1) \
             AND wrap_started_at IS NULL AND ended_at >= $2",
        )
        .bind(conversation_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Books a move from `before` to `after` that happened `at` (the caller knows where the
    /// item is: it wrote it).
    pub(crate) async fn book(
        &self,
        tx: &mut sqlx::PgConnection,
        conversation_id: Uuid,
        (before, after): (Option<Place>, Option<Place>),
        cause: Cause,
        now: OffsetDateTime,
    ) -> Result<(), RoutingError> {
        for change in changes(before, after, cause) {
            match change {
                Change::EndQueueLeg(end, agent) => {
                    // The queue's name and threshold (for the metrics) come back with the row: no
                    // second round trip on the accept path.
                    let ended: Option<(OffsetDateTime, Option<String>, Option<i32>)> = sqlx::query_as(
                        "UPDATE routing.queue_legs l SET ended_at = $2, outcome = $3, agent_id = $4 \
                         WHERE conversation_id = $1 AND ended_at IS NULL RETURNING entered_at, \
                         (SELECT name FROM routing.config WHERE kind = 'queue' AND id = l.queue_id), \
                         (SELECT COALESCE((definition->>'service_level_secs')::int, 60) FROM routing.config WHERE kind = 'queue' AND id = l.queue_id)",
                    )
                    .bind(conversation_id)
                    .bind(now)
                    .bind(end.as_str())
                    .bind(agent)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((entered, name, threshold)) = ended {
                        let waited = (now - entered).as_seconds_f64().max(0.0);
                        let within = end == LegEnd::Answered && threshold.is_some_and(|t| waited <= f64::from(t));
                        crate::metrics::queue_leg_ended(name.as_deref().unwrap_or_default(), end, waited, within);
                    }
                }
                Change::StartQueueLeg(queue, cause) => {
                    sqlx::query(
                        "INSERT INTO routing.queue_legs (id, conversation_id, queue_id, cause, entered_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (conversation_id) WHERE ended_at IS NULL DO NOTHING",
                    )
                    .bind(Uuid::now_v7())
                    .bind(conversation_id)
                    .bind(queue)
                    .bind(cause.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::EndAgentLeg => {
                    let ended: Option<(Option<String>, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
                        "UPDATE routing.agent_legs l SET ended_at = $2 WHERE conversation_id = $1 AND ended_at IS NULL \
                         RETURNING (SELECT name FROM routing.config WHERE kind = 'queue' AND id = l.queue_id), accepted_at, wrap_started_at",
                    )
                    .bind(conversation_id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((name, accepted, wrap)) = ended {
                        let handle = (wrap.unwrap_or(now) - accepted).as_seconds_f64().max(0.0);
                        let wrap_up = wrap.map(|w| (now - w).as_seconds_f64().max(0.0));
                        crate::metrics::agent_leg_ended(name.as_deref().unwrap_or_default(), handle, wrap_up);
                    }
                }
                Change::StartAgentLeg(agent, queue) => {
                    sqlx::query(
                        "INSERT INTO routing.agent_legs (id, conversation_id, agent_id, queue_id, accepted_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (conversation_id) WHERE ended_at IS NULL DO NOTHING",
                    )
                    .bind(Uuid::now_v7())
                    .bind(conversation_id)
                    .bind(agent)
                    .bind(queue)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::StartWrapUp => {
                    sqlx::query(
                        "UPDATE routing.agent_legs SET wrap_started_at = COALESCE(wrap_started_at, $2) WHERE conversation_id = $1 AND ended_at IS NULL",
                    )
                        .bind(conversation_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Each queue's figures for waits that started in `[from, to)`, answered within `threshold`
    /// seconds (each queue's own `service_level_secs` when `None`); every queue when `queues` is
    /// `None`.
    pub async fn queue_report(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        threshold: Option<i32>,
        queues: Option<&[Uuid]>,
    ) -> Result<Vec<QueueFigures>, RoutingError> {
        Ok(sqlx::query_as::<_, QueueFigures>(
            "WITH legs AS ( \
               SELECT queue_id, outcome, extract(epoch FROM ended_at - entered_at)::float8 AS waited \
               FROM routing.queue_legs WHERE entered_at >= $1 AND entered_at < $2 AND ($3::uuid[] IS NULL OR queue_id = ANY($3))), \
             handling AS ( \
               SELECT queue_id, count(*) AS handled, \
                 avg(extract(epoch FROM COALESCE(wrap_started_at, ended_at) - accepted_at))::float8 AS aht, \
                 avg(extract(epoch FROM ended_at - wrap_started_at))::float8 AS awt \
               FROM routing.agent_legs WHERE accepted_at >= $1 AND accepted_at < $2 AND ended_at IS NOT NULL GROUP BY queue_id), \
             queues AS ( \
               SELECT id, name, COALESCE($4, (definition->>'service_level_secs')::int, 60) AS sl FROM routing.config \
               WHERE kind = 'queue' AND ($3::uuid[] IS NULL OR id = ANY($3))) \
             SELECT q.id AS queue_id, q.name, q.sl AS service_level_secs, count(l.queue_id) AS incoming, \
               count(*) FILTER (WHERE l.outcome = 'answered') AS answered, \
               count(*) FILTER (WHERE l.outcome = 'answered' AND l.waited <= q.sl) AS answered_within, \
               count(*) FILTER (WHERE l.outcome = 'abandoned') AS abandoned, \
               count(*) FILTER (WHERE l.outcome = 'transferred') AS transferred, \
               count(*) FILTER (WHERE l.outcome = 'overflowed') AS overflowed, \
               count(l.queue_id) FILTER (WHERE l.outcome IS NULL) AS waiting, \
               avg(l.waited) FILTER (WHERE l.outcome = 'answered') AS average_speed_of_answer_secs, \
               COALESCE(max(h.handled), 0) AS handled, max(h.aht) AS average_handle_secs, max(h.awt) AS average_wrap_up_secs \
             FROM queues q LEFT JOIN legs l ON l.queue_id = q.id LEFT JOIN handling h ON h.queue_id = q.id \
             GROUP BY q.id, q.name, q.sl ORDER BY q.name",
        )
        .bind(from)
        .bind(to)
        .bind(queues)
        .bind(threshold)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Each agent's figures for work they took (and offers made to them) in `[from, to)`; every
    /// agent when `agents` is `None`.
    pub async fn agent_report(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        agents: Option<&[Uuid]>,
    ) -> Result<Vec<AgentFigures>, RoutingError> {
        Ok(sqlx::query_as::<_, AgentFigures>(
            "WITH legs AS ( \
               SELECT agent_id, count(*) AS handled, \
                 avg(extract(epoch FROM COALESCE(wrap_started_at, ended_at) - accepted_at))::float8 AS aht, \
                 avg(extract(epoch FROM ended_at - wrap_started_at))::float8 AS awt \
               FROM routing.agent_legs WHERE accepted_at >= $1 AND accepted_at < $2 AND ended_at IS NOT NULL GROUP BY agent_id), \
             offers AS ( \
               SELECT agent_id, count(*) AS offered, count(*) FILTER (WHERE state = 'accepted') AS accepted, \
                 count(*) FILTER (WHERE state = 'declined') AS declined, count(*) FILTER (WHERE state = 'expired') AS missed \
               FROM routing.offers WHERE created_at >= $1 AND created_at < $2 GROUP BY agent_id) \
             SELECT a.id AS agent_id, a.name, COALESCE(l.handled, 0) AS handled, l.aht AS average_handle_secs, \
               l.awt AS average_wrap_up_secs, COALESCE(o.offered, 0) AS offered, COALESCE(o.accepted, 0) AS accepted, \
               COALESCE(o.declined, 0) AS declined, COALESCE(o.missed, 0) AS missed \
             FROM routing.config a LEFT JOIN legs l ON l.agent_id = a.id LEFT JOIN offers o ON o.agent_id = a.id \
             WHERE a.kind = 'agent' AND ($3::uuid[] IS NULL OR a.id = ANY($3)) ORDER BY a.name",
        )
        .bind(from)
        .bind(to)
        .bind(agents)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One conversation's figures: its first wait, handle and wrap-up times (summed over its
    /// agents), whether it was abandoned, and its transfers and overflows.
    pub async fn conversation_report(&self, conversation_id: Uuid) -> Result<ConversationFigures, RoutingError> {
        Ok(sqlx::query_as::<_, ConversationFigures>(
            "SELECT \
               (SELECT min(entered_at) FROM routing.queue_legs WHERE conversation_id = $1) AS first_queued_at, \
               (SELECT extract(epoch FROM ended_at - entered_at)::float8 FROM routing.queue_legs \
                 WHERE conversation_id = $1 AND outcome = 'answered' ORDER BY entered_at LIMIT 1) AS first_wait_secs, \
               (SELECT sum(extract(epoch FROM COALESCE(wrap_started_at, ended_at, $2) - accepted_at))::float8 \
                 FROM routing.agent_legs WHERE conversation_id = $1) AS handle_secs, \
               (SELECT sum(extract(epoch FROM COALESCE(ended_at, $2) - wrap_started_at))::float8 \
                 FROM routing.agent_legs WHERE conversation_id = $1 AND wrap_started_at IS NOT NULL) AS wrap_up_secs, \
               (EXISTS (SELECT 1 FROM routing.queue_legs WHERE conversation_id = $1 AND outcome = 'abandoned') \
                 AND NOT EXISTS (SELECT 1 FROM routing.agent_legs WHERE conversation_id = $1)) AS abandoned, \
               (SELECT count(*) FROM routing.queue_legs WHERE conversation_id = $1 AND cause = 'transfer') AS transfers, \
               (SELECT count(*) FROM routing.queue_legs WHERE conversation_id = $1 AND outcome = 'overflowed') AS overflows, \
               (SELECT count(*) FROM routing.agent_legs WHERE conversation_id = $1) AS agents",
        )
        .bind(conversation_id)
        .bind(self.now())
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Reads and checks a report's period and ids.
pub fn period(r: &pb::ReportRequest) -> Result<(OffsetDateTime, OffsetDateTime, Option<Vec<Uuid>>), RoutingError> {
    let (Some(from), Some(to)) = (r.from.as_ref().and_then(datetime), r.to.as_ref().and_then(datetime)) else {
        return Err(RoutingError::Invalid("a report needs from and to".into()));
    };
    if from >= to {
        return Err(RoutingError::Invalid("from must be before to".into()));
    }
    if to - from > MAX_PERIOD {
        return Err(RoutingError::Invalid("a report covers at most 366 days".into()));
    }
    if r.service_level_secs > 86_400 {
        return Err(RoutingError::Invalid(
            "service_level_secs is 1 to 86400 (0: each queue's own)".into(),
        ));
    }
    let ids = if r.ids.is_empty() {
        None
    } else {
        Some(r.ids.iter().map(|id| parse_id(id, "id")).collect::<Result<Vec<_>, _>>()?)
    };
    Ok((from, to, ids))
}

impl From<&QueueFigures> for pb::QueueFigures {
    fn from(q: &QueueFigures) -> Self {
        let totals = q.totals();
        Self {
            queue_id: q.queue_id.to_string(),
            name: q.name.clone(),
            service_level_secs: u32::try_from(q.service_level_secs).unwrap_or(0),
            incoming: q.incoming,
            answered: q.answered,
            answered_within: q.answered_within,
            abandoned: q.abandoned,
            transferred: q.transferred,
            overflowed: q.overflowed,
            waiting: q.waiting,
            service_level: totals.service_level(),
            abandon_rate: totals.abandon_rate(),
            average_speed_of_answer_secs: q.average_speed_of_answer_secs,
            handled: q.handled,
            average_handle_secs: q.average_handle_secs,
            average_wrap_up_secs: q.average_wrap_up_secs,
        }
    }
}

impl From<&AgentFigures> for pb::AgentFigures {
    fn from(a: &AgentFigures) -> Self {
        Self {
            agent_id: a.agent_id.to_string(),
            name: a.name.clone(),
            handled: a.handled,
            average_handle_secs: a.average_handle_secs,
            average_wrap_up_secs: a.average_wrap_up_secs,
            offered: a.offered,
            accepted: a.accepted,
            declined: a.declined,
            missed: a.missed,
        }
    }
}

/// A conversation's figures on the wire.
pub fn conversation_figures(id: Uuid, c: &ConversationFigures) -> pb::ConversationFigures {
    pb::ConversationFigures {
        conversation_id: id.to_string(),
        first_queued_at: c.first_queued_at.map(timestamp),
        first_wait_secs: c.first_wait_secs,
        handle_secs: c.handle_secs,
        wrap_up_secs: c.wrap_up_secs,
        abandoned: c.abandoned,
        transfers: c.transfers,
        overflows: c.overflows,
        agents: c.agents,
    }
}
