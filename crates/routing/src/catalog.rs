//! Routing configuration: create, read, update and delete workstreams, queues, operating hours,
//! skills, capacity profiles and agents. Definitions are validated by `domain`, references are
//! checked here (a workstream's queues exist, an agent's skills exist, nothing in use is deleted),
//! and side effects follow: queue membership, agent state, `workstream.updated.v1` for session.

use std::collections::BTreeSet;

use sqlx::FromRow;
use switchboard_bus::events::WorkstreamUpdatedV1;
use switchboard_domain::routing::config::{AgentDef, Kind, QueueDef, WorkstreamDef};
use switchboard_storage::outbox::EventBatch;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Routing;
use crate::error::RoutingError;

/// A stored configuration object.
#[derive(Debug, Clone, FromRow)]
pub struct ConfigRow {
    pub kind: String,
    pub id: Uuid,
    pub name: String,
    pub definition: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Parses a kind name.
pub fn parse_kind(raw: &str) -> Result<Kind, RoutingError> {
    Kind::parse(raw).ok_or_else(|| {
        RoutingError::Invalid(format!(
            "unknown kind {raw:?}; one of workstream, queue, operating_hours, skill, capacity_profile, agent"
        ))
    })
}

impl Routing {
    async fn exists(&self, conn: &mut sqlx::PgConnection, kind: Kind, ids: &[Uuid]) -> Result<(), RoutingError> {
        let wanted: BTreeSet<Uuid> = ids.iter().copied().collect();
        let found: BTreeSet<Uuid> = sqlx::query_scalar("SELECT id FROM routing.config WHERE kind = $1 AND id = ANY($2)")
            .bind(kind.as_str())
            .bind(wanted.iter().copied().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        match wanted.difference(&found).next() {
            Some(missing) => Err(RoutingError::Invalid(format!("no {} with id {missing}", kind.as_str()))),
            None => Ok(()),
        }
    }

    /// Creates (no `id`) or replaces a configuration object.
    pub async fn put_config(&self, kind: Kind, id: Option<Uuid>, name: &str, definition: &str) -> Result<ConfigRow, RoutingError> {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(RoutingError::Invalid("name must have 1 to 200 characters".into()));
        }
        let raw: serde_json::Value = serde_json::from_str(if definition.trim().is_empty() { "{}" } else { definition })
            .map_err(|e| RoutingError::Invalid(format!("definition is not JSON: {e}")))?;
        let normalized = kind
            .validate(&raw)
            .map_err(|e| RoutingError::Invalid(format!("invalid {}: {e}", kind.as_str())))?;
        let mut tx = self.pool.begin().await?;
        let existing = match id {
            Some(id) => {
                sqlx::query_as::<_, ConfigRow>("SELECT * FROM routing.config WHERE kind = $1 AND id = $2 FOR UPDATE")
                    .bind(kind.as_str())
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        if id.is_some() && existing.is_none() {
            return Err(RoutingError::NotFound("configuration object"));
        }
        let id = id.unwrap_or_else(Uuid::now_v7);
        let mut events = EventBatch::default();
        let mut cycle = Vec::new();
        match kind {
            Kind::Workstream => {
                let def: WorkstreamDef = serde_json::from_value(normalized.clone()).map_err(|e| RoutingError::Internal(e.into()))?;
                if let Some(old) = existing
                    .as_ref()
                    .and_then(|e| serde_json::from_value::<WorkstreamDef>(e.definition.clone()).ok())
                    && old.mode != def.mode
                {
                    return Err(RoutingError::Invalid(
                        "a workstream's mode (push or pick) cannot change after creation".into(),
                    ));
                }
                self.exists(&mut tx, Kind::Queue, &def.queues()).await?;
                let skills: Vec<Uuid> = def
                    .classification
                    .iter()
                    .flat_map(|r| r.rules.iter().flat_map(|rule| rule.outputs.skills.iter().map(|s| s.skill_id)))
                    .collect();
                self.exists(&mut tx, Kind::Skill, &skills).await?;
                let profiles: Vec<Uuid> = def
                    .classification
                    .iter()
                    .flat_map(|r| r.rules.iter().filter_map(|rule| rule.outputs.capacity_profile_id))
                    .chain(def.capacity_profile_id)
                    .collect();
                self.exists(&mut tx, Kind::CapacityProfile, &profiles).await?;
                events.push(
                    WorkstreamUpdatedV1 {
                        workstream_id: id.into(),
                        waiting_auto_close_secs: def.waiting_auto_close_secs,
                        bot_id: def.bot_id.map(Into::into),
                        bot_inactivity_secs: def.bot_inactivity_secs,
                        deleted: false,
                        default_language: Some(def.default_language.clone()),
                        open_auto_close_secs: def.auto_close.open_secs,
                        active_auto_close_secs: def.auto_close.active_secs,
                        wrap_up_auto_close_secs: def.auto_close.wrap_up_secs,
                        context_variables: def
                            .context_variables
                            .iter()
                            .map(|v| (v.name.clone(), v.kind.as_str().to_owned()))
                            .collect(),
                        read_receipts: Some(def.read_receipts.as_str().to_owned()),
                        window_template: def.window_template.as_ref().map(|t| switchboard_bus::events::WindowTemplateV1 {
                            name: t.name.clone(),
                            variables: t.variables.clone(),
                        }),
                    },
                    self.now(),
                );
            }
            Kind::Queue => {
                let def: QueueDef = serde_json::from_value(normalized.clone()).map_err(|e| RoutingError::Internal(e.into()))?;
                self.exists(
                    &mut tx,
                    Kind::OperatingHours,
                    &def.operating_hours_id.into_iter().collect::<Vec<_>>(),
                )
                .await?;
                self.exists(&mut tx, Kind::Agent, &def.members).await?;
                if let switchboard_domain::routing::OverflowAction::TransferToQueue { queue_id } = def.overflow.out_of_hours {
                    self.exists(&mut tx, Kind::Queue, &[queue_id]).await?;
                }
                sqlx::query("DELETE FROM routing.queue_members WHERE queue_id = $1 AND NOT (agent_id = ANY($2))")
                    .bind(id)
                    .bind(&def.members)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO routing.queue_members (queue_id, agent_id, joined_at) SELECT $1, a, $3 FROM UNNEST($2::uuid[]) a ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(&def.members)
                    .bind(self.now())
                    .execute(&mut *tx)
                    .await?;
                crate::store::items::set_queue_priority(&mut *tx, id, def.priority).await?;
                cycle.push(id);
            }
            Kind::Agent => {
                let def: AgentDef = serde_json::from_value(normalized.clone()).map_err(|e| RoutingError::Internal(e.into()))?;
                self.exists(&mut tx, Kind::Skill, &def.skills.keys().copied().collect::<Vec<_>>())
                    .await?;
                self.exists(
                    &mut tx,
                    Kind::CapacityProfile,
                    &def.capacity_profiles.keys().copied().collect::<Vec<_>>(),
                )
                .await?;
                // Its capacity day starts today (end-of-day profiles reset when it changes).
                crate::store::agents::create(&mut *tx, id.into(), def.default_presence, self.now().date()).await?;
                cycle.extend(
                    sqlx::query_scalar::<_, Uuid>("SELECT queue_id FROM routing.queue_members WHERE agent_id = $1")
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?,
                );
            }
            Kind::CapacityProfile => {
                if let Some(old) = &existing
                    && old.definition.get("reset") != normalized.get("reset")
                {
                    return Err(RoutingError::Invalid(
                        "a capacity profile's reset frequency cannot change; create a new profile".into(),
                    ));
                }
            }
            Kind::OperatingHours | Kind::Skill => {}
        }
        let now = self.now();
        let row = sqlx::query_as::<_, ConfigRow>(
            "INSERT INTO routing.config (kind, id, name, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (kind, id) DO UPDATE SET name = $3, definition = $4, updated_at = $5 RETURNING *",
        )
        .bind(kind.as_str())
        .bind(id)
        .bind(name.trim())
        .bind(&normalized)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        // This replica's own next read sees the change at once; the others on the trigger's NOTIFY.
        self.config.invalidation.invalidate();
        if !cycle.is_empty() {
            self.request_cycle(Some(&cycle));
        }
        Ok(row)
    }

    /// Returns a configuration object.
    pub async fn get_config(&self, kind: Kind, id: Uuid) -> Result<ConfigRow, RoutingError> {
        sqlx::query_as::<_, ConfigRow>("SELECT * FROM routing.config WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(RoutingError::NotFound("configuration object"))
    }

    /// Lists the objects of a kind, by name.
    pub async fn list_config(&self, kind: Kind) -> Result<Vec<ConfigRow>, RoutingError> {
        Ok(
            sqlx::query_as::<_, ConfigRow>("SELECT * FROM routing.config WHERE kind = $1 ORDER BY name")
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The numbers (their phones) whose conversations a workstream routes, read from session.
    async fn numbers_using(&self, workstream: Uuid) -> Result<Vec<String>, RoutingError> {
        use switchboard_proto::common::v1::PageRequest;
        use switchboard_proto::session::v1::ListNumbersRequest;
        let wanted = workstream.to_string();
        let mut using = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .session
                .clone()
                .list_numbers(ListNumbersRequest {
                    channel_id: String::new(),
                    page: Some(PageRequest {
                        page_size: 500,
                        page_token: token,
                    }),
                })
                .await
                .map_err(RoutingError::from_session)?
                .into_inner();
            using.extend(
                page.numbers
                    .into_iter()
                    .filter(|n| n.settings.as_ref().is_some_and(|s| s.workstream_id == wanted))
                    .map(|n| n.phone),
            );
            match page.page.map(|p| p.next_page_token).filter(|t| !t.is_empty()) {
                Some(next) => token = next,
                None => return Ok(using),
            }
        }
    }

    /// Deletes an object nothing uses.
    pub async fn delete_config(&self, kind: Kind, id: Uuid) -> Result<(), RoutingError> {
        // A number still feeding a workstream would leave its customers unrouted.
        if kind == Kind::Workstream {
            let numbers = self.numbers_using(id).await?;
            if !numbers.is_empty() {
                return Err(RoutingError::Precondition(format!(
                    "still used by number(s) {}: give them another workstream first",
                    numbers.join(", ")
                )));
            }
        }
        let mut tx = self.pool.begin().await?;
        // Every reference is an id inside some definition, so a text search finds users.
        let users: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, name FROM routing.config WHERE definition::text LIKE '%' || $1 || '%' AND NOT (kind = $2 AND id = $3)",
        )
        .bind(id.to_string())
        .bind(kind.as_str())
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let blocking: Vec<String> = users
            .iter()
            .filter(|(k, _)| !(kind == Kind::Agent && k == "queue"))
            .map(|(k, n)| format!("{k} {n:?}"))
            .collect();
        if !blocking.is_empty() {
            return Err(RoutingError::Precondition(format!("still used by {}", blocking.join(", "))));
        }
        use crate::store::items::{Reference, count_referencing};
        let reference = match kind {
            Kind::Workstream => Some(Reference::Workstream),
            Kind::Queue => Some(Reference::Queue),
            Kind::Agent => Some(Reference::Agent),
            _ => None,
        };
        let live = match reference {
            Some(reference) => count_referencing(&mut *tx, reference, id).await?,
            None => 0,
        };
        if live > 0 {
            return Err(RoutingError::Precondition(format!(
                "{live} conversation(s) are still routed through it"
            )));
        }
        let deleted = sqlx::query("DELETE FROM routing.config WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(RoutingError::NotFound("configuration object"));
        }
        let mut events = EventBatch::default();
        let mut withdraw: Vec<Uuid> = Vec::new();
        match kind {
            Kind::Agent => {
                sqlx::query("DELETE FROM routing.queue_members WHERE agent_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                crate::store::agents::delete(&mut *tx, id.into()).await?;
                sqlx::query("UPDATE routing.config SET definition = jsonb_set(definition, '{members}', (definition->'members') - $1) WHERE kind = 'queue' AND definition->'members' ? $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                // Their pending offers are withdrawn once this commits (the items go back to
                // their queues).
                withdraw = crate::store::offers::pending_ids_of(&mut *tx, id).await?;
            }
            Kind::Queue => {
                sqlx::query("DELETE FROM routing.queue_members WHERE queue_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Kind::Workstream => events.push(
                WorkstreamUpdatedV1 {
                    workstream_id: id.into(),
                    waiting_auto_close_secs: 0,
                    bot_id: None,
                    bot_inactivity_secs: 0,
                    deleted: true,
                    default_language: None,
                    open_auto_close_secs: None,
                    active_auto_close_secs: None,
                    wrap_up_auto_close_secs: None,
                    context_variables: Default::default(),
                    read_receipts: None,
                    window_template: None,
                },
                self.now(),
            ),
            _ => {}
        }
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        // This replica's own next read sees the change at once; the others on the trigger's NOTIFY.
        self.config.invalidation.invalidate();
        self.withdraw_offers(withdraw).await?;
        Ok(())
    }
}
