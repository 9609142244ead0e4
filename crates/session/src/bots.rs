//! Bots: their configuration (the signing secret sealed like auth tokens, never returned except
//! to the bots service), the turns a bot is asked to answer (`bot.turn.v1`), and notes.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgConnection};
use switchboard_bus::events::{BotCustomer, BotMessage, BotTurnV1};
use switchboard_domain::ids::ConversationId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::{Events, Session};
use crate::conversations::ConversationRow;
use crate::crypto::Owner;
use crate::error::SessionError;
use crate::messages::MessageRow;

/// A bot, as admins see it.
#[derive(Debug, Clone, FromRow)]
pub struct Bot {
    pub id: switchboard_domain::ids::BotId,
    pub name: String,
    pub endpoint: String,
    pub timeout_ms: i32,
    pub max_attempts: i32,
    pub active: bool,
    pub secret_hint: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A new bot.
#[derive(Debug)]
pub struct NewBot {
    pub name: String,
    pub endpoint: String,
    pub secret: SecretString,
    pub timeout_ms: u32,
    pub max_attempts: u32,
}

/// Changes to a bot (absent fields stay).
#[derive(Debug, Default)]
pub struct BotUpdate {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub secret: Option<SecretString>,
    pub timeout_ms: Option<u32>,
    pub max_attempts: Option<u32>,
    pub active: Option<bool>,
}

const COLUMNS: &str = "id, name, endpoint, timeout_ms, max_attempts, active, secret_hint, created_at, updated_at";

/// Bots are called over HTTPS on a public address. A literal private, link-local or metadata
/// address, or the local machine, is refused here; the bots service checks every address again
/// after DNS when it connects. Loopback (and plain HTTP on it) only when `allow_loopback` is set,
/// for development bots.
fn check_endpoint(url: &str, allow_loopback: bool) -> Result<(), SessionError> {
    use switchboard_domain::netguard;
    let parsed = url::Url::parse(url).map_err(|_| SessionError::invalid("endpoint must be an absolute URL"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => netguard::check(ip.into(), allow_loopback)
            .map_err(|why| SessionError::invalid(format!("endpoint must not be {why}")))
            .map(|()| ip.is_loopback())?,
        Some(url::Host::Ipv6(ip)) => netguard::check(ip.into(), allow_loopback)
            .map_err(|why| SessionError::invalid(format!("endpoint must not be {why}")))
            .map(|()| ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))?,
        Some(url::Host::Domain(name)) if netguard::is_local_name(name) => {
            if !allow_loopback {
                return Err(SessionError::invalid("endpoint must not be the local machine"));
            }
            true
        }
        Some(url::Host::Domain(_)) => false,
        None => return Err(SessionError::invalid("endpoint must name a host")),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(SessionError::invalid("endpoint must be an https:// URL")),
    }
}

fn check(
    name: Option<&str>,
    secret: Option<&SecretString>,
    timeout_ms: Option<u32>,
    max_attempts: Option<u32>,
) -> Result<(), SessionError> {
    if name.is_some_and(|n| n.trim().is_empty() || n.chars().count() > 100) {
        return Err(SessionError::invalid("name must have 1 to 100 characters"));
    }
    if secret.is_some_and(|s| s.expose_secret().len() < 16 || s.expose_secret().len() > 256) {
        return Err(SessionError::invalid("signing_secret must have 16 to 256 characters"));
    }
    if timeout_ms.is_some_and(|t| !(100..=60_000).contains(&t)) {
        return Err(SessionError::invalid("timeout_ms must be between 100 and 60000"));
    }
    if max_attempts.is_some_and(|a| !(1..=5).contains(&a)) {
        return Err(SessionError::invalid("max_attempts must be between 1 and 5"));
    }
    Ok(())
}

fn hint(secret: &SecretString) -> String {
    let digest = Sha256::digest(secret.expose_secret().as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn signed(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Session {
    /// Creates a bot.
    pub async fn create_bot(&self, new: NewBot) -> Result<Bot, SessionError> {
        check(Some(&new.name), Some(&new.secret), Some(new.timeout_ms), Some(new.max_attempts))?;
        check_endpoint(&new.endpoint, self.settings.bot_endpoints.allow_loopback)?;
        let id = Uuid::now_v7();
        let (key_id, sealed) = self
            .cipher
            .seal(new.secret.expose_secret(), Owner::Bot(id))
            .map_err(|e| anyhow::anyhow!(e))?;
        let bot = sqlx::query_as::<_, Bot>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO session.bots (id, name, endpoint, secret_key_id, secret_ciphertext, secret_bound, secret_hint, timeout_ms, max_attempts) \
             VALUES ($1, $2, $3, $4, $5, true, $6, $7, $8) RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(new.name.trim())
        .bind(&new.endpoint)
        .bind(key_id)
        .bind(sealed)
        .bind(hint(&new.secret))
        .bind(signed(new.timeout_ms))
        .bind(signed(new.max_attempts))
        .fetch_one(&self.pool)
        .await?;
        tracing::info!(bot_id = %bot.id, "bot created");
        Ok(bot)
    }

    /// Returns a live bot.
    pub async fn bot(&self, id: Uuid) -> Result<Bot, SessionError> {
        sqlx::query_as::<_, Bot>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM session.bots WHERE id = $1 AND deleted_at IS NULL"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(SessionError::NotFound("bot"))
    }

    /// Lists live bots by name.
    pub async fn list_bots(&self) -> Result<Vec<Bot>, SessionError> {
        Ok(sqlx::query_as::<_, Bot>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM session.bots WHERE deleted_at IS NULL ORDER BY name, id"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Applies `update` to a bot.
    pub async fn update_bot(&self, id: Uuid, update: BotUpdate) -> Result<Bot, SessionError> {
        check(
            update.name.as_deref(),
            update.secret.as_ref(),
            update.timeout_ms,
            update.max_attempts,
        )?;
        if let Some(endpoint) = &update.endpoint {
            check_endpoint(endpoint, self.settings.bot_endpoints.allow_loopback)?;
        }
        let sealed = match &update.secret {
            Some(secret) => Some(
                self.cipher
                    .seal(secret.expose_secret(), Owner::Bot(id))
                    .map_err(|e| anyhow::anyhow!(e))?,
            ),
            None => None,
        };
        let (key_id, ciphertext) = sealed.map_or((None, None), |(k, c)| (Some(k), Some(c)));
        sqlx::query_as::<_, Bot>(sqlx::AssertSqlSafe(format!(
            "UPDATE session.bots SET name = COALESCE($2, name), endpoint = COALESCE($3, endpoint), secret_key_id = COALESCE($4, secret_key_id), \
             secret_ciphertext = COALESCE($5, secret_ciphertext), secret_bound = secret_bound OR $5 IS NOT NULL, secret_hint = COALESCE($6, secret_hint), timeout_ms = COALESCE($7, timeout_ms), \
             max_attempts = COALESCE($8, max_attempts), active = COALESCE($9, active), updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(update.name.as_deref().map(str::trim))
        .bind(update.endpoint)
        .bind(key_id)
        .bind(ciphertext)
        .bind(update.secret.as_ref().map(hint))
        .bind(update.timeout_ms.map(signed))
        .bind(update.max_attempts.map(signed))
        .bind(update.active)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(SessionError::NotFound("bot"))
    }

    /// Deletes a bot.
    pub async fn delete_bot(&self, id: Uuid) -> Result<(), SessionError> {
        let deleted = sqlx::query("UPDATE session.bots SET deleted_at = now(), active = false WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(SessionError::NotFound("bot"));
        }
        Ok(())
    }

    /// Returns a bot with its clear secret (bots service only).
    pub async fn resolve_bot(&self, id: Uuid) -> Result<(Bot, SecretString), SessionError> {
        let row: Option<(String, Vec<u8>, bool)> =
            sqlx::query_as("SELECT secret_key_id, secret_ciphertext, secret_bound FROM session.bots WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let (key_id, sealed, bound) = row.ok_or(SessionError::NotFound("bot"))?;
        let secret = self
            .cipher
            .open(&key_id, &sealed, Owner::Bot(id), bound)
            .map_err(|e| anyhow::anyhow!("bot {id}: {e}"))?;
        Ok((self.bot(id).await?, secret))
    }

    /// Adds an internal note to a conversation.
    pub async fn add_note(&self, conversation_id: ConversationId, text: &str) -> Result<MessageRow, SessionError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 4_000 {
            return Err(SessionError::invalid("a note has 1 to 4000 characters"));
        }
        let mut tx = self.pool.begin().await?;
        let c = sqlx::query_as::<_, ConversationRow>("SELECT * FROM session.conversations WHERE id = $1 FOR UPDATE")
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(SessionError::NotFound("conversation"))?;
        let mut events = Events::default();
        let note = self.insert_note(&mut tx, &c, text, &mut events).await?;
        self.emit(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(note)
    }

    /// Queues a bot turn: for the message `only` (a message on a conversation the bot already
    /// has), or, when a bot takes the conversation, for every customer message no agent or bot
    /// has answered yet.
    pub(crate) async fn push_bot_turn(
        &self,
        tx: &mut PgConnection,
        c: &ConversationRow,
        bot_id: Uuid,
        only: Option<switchboard_domain::ids::MessageId>,
        events: &mut Events,
    ) -> Result<(), SessionError> {
        let messages = sqlx::query_as::<_, MessageRow>(
            "SELECT * FROM session.messages m WHERE m.conversation_id = $1 AND m.direction = 'inbound' AND \
             CASE WHEN $2::uuid IS NULL THEN m.seq > COALESCE((SELECT max(seq) FROM session.messages \
                  WHERE conversation_id = $1 AND author_kind IN ('agent', 'bot')), 0) ELSE m.id = $2 END ORDER BY m.seq",
        )
        .bind(c.id)
        .bind(only)
        .fetch_all(&mut *tx)
        .await?;
        if messages.is_empty() {
            return Ok(());
        }
        let customer: (Option<String>, Option<String>) = sqlx::query_as("SELECT phone, profile_name FROM session.customers WHERE id = $1")
            .bind(c.customer_id)
            .fetch_one(&mut *tx)
            .await?;
        let ctx = self.send_context(tx, c.id).await?;
        let turn = BotTurnV1 {
            turn_id: switchboard_domain::ids::TurnId::generate(),
            bot_id: bot_id.into(),
            conversation_id: c.id,
            channel_id: c.channel_id,
            number: ctx.number_phone.clone(),
            workstream_id: c.workstream_id,
            customer: BotCustomer {
                id: c.customer_id,
                phone: customer.0,
                bsuid: ctx.customer_bsuid.clone(),
                name: customer.1,
            },
            language: ctx.default_language.clone(),
            context: c.attributes(),
            messages: messages.iter().map(bot_message).collect(),
            window_expires_at: ctx.window_expires_at(),
        };
        events.push(turn, self.now());
        Ok(())
    }
}

fn bot_message(m: &MessageRow) -> BotMessage {
    let media_types = m
        .media
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("content_type").and_then(|v| v.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let location = m.details.get("location").filter(|v| !v.is_null()).cloned();
    let button_payload = m
        .details
        .get("button")
        .and_then(|b| b.get("payload").or_else(|| b.get(1)))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    BotMessage {
        id: m.id,
        body: m.body.clone(),
        media_types,
        location,
        button_payload,
        flow_data: m.details.get("flow_data").filter(|v| !v.is_null()).cloned(),
        at: m.created_at,
    }
}
