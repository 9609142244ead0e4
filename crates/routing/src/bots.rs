//! Bots in front of a workstream's agents (Dynamics §3.1, §4): a new conversation goes to the
//! workstream's bot first (Active with the bot, no human capacity used); when the bot escalates,
//! the conversation is classified and routed with the bot's context variables, like a new one.

use std::collections::BTreeMap;

use switchboard_domain::routing::SkillRequirement;
use switchboard_domain::routing::config::{Kind, WorkstreamDef};
use switchboard_domain::routing::offer::ItemState;
use switchboard_proto::session::v1::TransitionRequest;
use uuid::Uuid;

use crate::app::{ItemRow, Routing};
use crate::error::RoutingError;
use crate::intake::Arrival;
use crate::store::items::NewItem;

/// Where an escalated conversation went.
#[derive(Debug)]
pub enum Escalated {
    /// Queued for people (or already past the bot: a repeated escalation).
    Routed(ItemRow),
    /// Routing closed it instead (no agents, or an overflow rule ended it): the item as it was.
    Closed(ItemRow),
}

/// What a bot asked for when it escalated.
#[derive(Debug, Clone, Default)]
pub struct Escalation {
    /// Context variables, available to classification and route-to-queue rules.
    pub context: BTreeMap<String, String>,
    /// A queue to use instead of the route-to-queue rules.
    pub queue_id: Option<Uuid>,
    /// Skills to require on top of classification's.
    pub skills: Vec<SkillRequirement>,
    /// Recorded in the transcript (e.g. why the bot failed).
    pub note: String,
}

impl Routing {
    /// Gives a new conversation to the workstream's bot.
    pub(crate) async fn hand_to_bot(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        conversation_id: Uuid,
        arrival: &Arrival,
        ws_id: Uuid,
        bot: Uuid,
    ) -> Result<(), RoutingError> {
        // Session first, while the item is locked: a redelivered event after a failure finds the
        // conversation already Active and only records the item.
        let request = TransitionRequest {
            conversation_id: conversation_id.to_string(),
            transition: "accept".into(),
            bot_id: bot.to_string(),
            workstream_id: ws_id.to_string(),
            ..Default::default()
        };
        match self.session.clone().transition_conversation(request).await {
            Ok(_) => {}
            Err(status) if switchboard_service_kit::ErrorCode::of(&status) == switchboard_service_kit::ErrorCode::FailedPrecondition => {}
            Err(status) => return Err(RoutingError::from_session(status)),
        }
        self.upsert_item(
            &mut tx,
            conversation_id,
            arrival,
            &NewItem::new(ItemState::Bot, Some(ws_id), &arrival.facts),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%conversation_id, %bot, "conversation handed to its bot");
        Ok(())
    }

    /// Hands a bot's conversation to people: session releases it from the bot (Open), then it is
    /// classified with the bot's context, routed and queued. Repeating it changes nothing.
    pub async fn escalate(&self, conversation_id: Uuid, escalation: Escalation) -> Result<Escalated, RoutingError> {
        let mut tx = self.pool.begin().await?;
        let item = self
            .lock_item(&mut tx, conversation_id)
            .await?
            .ok_or(RoutingError::NotFound("work item"))?;
        if item.state != ItemState::Bot {
            return Ok(Escalated::Routed(item));
        }
        let ws_id = item
            .workstream()
            .ok_or_else(|| RoutingError::Precondition("the conversation has no workstream".into()))?;
        let (_, ws) = self
            .config
            .definition::<WorkstreamDef>(&mut tx, Kind::Workstream, ws_id)
            .await?
            .ok_or(RoutingError::NotFound("workstream"))?;
        if let Some(queue) = escalation.queue_id
            && self
                .config
                .definition::<serde_json::Value>(&mut tx, Kind::Queue, queue)
                .await?
                .is_none()
        {
            return Err(RoutingError::Invalid(format!("queue {queue} does not exist")));
        }
        let request = TransitionRequest {
            conversation_id: conversation_id.to_string(),
            transition: "release_to_queue".into(),
            note: escalation.note.clone(),
            ..Default::default()
        };
        match self.session.clone().transition_conversation(request).await {
            Ok(_) => {}
            // Already released (a repeated escalation after a failure) or closed meanwhile.
            Err(status) if switchboard_service_kit::ErrorCode::of(&status) == switchboard_service_kit::ErrorCode::FailedPrecondition => {}
            Err(status) => return Err(RoutingError::from_session(status)),
        }
        let mut facts: BTreeMap<String, String> = serde_json::from_value(item.facts.clone()).unwrap_or_default();
        facts.extend(escalation.context.clone());
        // Bots take only new conversations, so it arrives again as a new one, with the bot's
        // context among its facts.
        facts.insert("reopened".into(), false.to_string());
        let arrival = Arrival {
            facts,
            number_id: item.number_id,
            reopened: false,
            previous_agent: None,
            last_customer_message_at: item.last_customer_message_at,
        };
        crate::store::items::escalated_from_bot(&mut *tx, conversation_id).await?;
        tracing::info!(%conversation_id, context = escalation.context.len(), "bot escalated the conversation");
        self.route_opened(tx, conversation_id, &arrival, (ws_id, &ws), escalation.queue_id, escalation.skills)
            .await?;
        let routed = crate::store::items::get(&self.pool, conversation_id).await?;
        // No item left: routing closed it (no agents, or an overflow rule ended it).
        Ok(routed.map_or(Escalated::Closed(item), Escalated::Routed))
    }
}
