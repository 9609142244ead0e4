//! Twilio account channels: name, Account SID, the auth token (encrypted at rest, never
//! returned or logged), sandbox settings, active flag. Deleted channels answer "not found".

use secrecy::{ExposeSecret, SecretString};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

/// What admins see of a channel (no token).
#[derive(Debug, Clone, FromRow)]
pub struct Channel {
    pub id: Uuid,
    pub name: String,
    pub account_sid: String,
    pub sandbox: bool,
    pub sandbox_join_code: String,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

/// A channel with its clear-text token, for ingress and sender only.
#[derive(Debug)]
pub struct Resolved {
    pub channel: Channel,
    pub auth_token: SecretString,
}

/// New channel input.
#[derive(Debug)]
pub struct NewChannel {
    pub name: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    pub sandbox: bool,
    pub sandbox_join_code: String,
}

/// Channel changes (absent fields stay).
#[derive(Debug, Default)]
pub struct ChannelUpdate {
    pub name: Option<String>,
    pub auth_token: Option<SecretString>,
    pub sandbox: Option<bool>,
    pub sandbox_join_code: Option<String>,
    pub active: Option<bool>,
}

/// The sandbox's rules, shown to admins of sandbox channels.
pub fn sandbox_notes(channel: &Channel) -> String {
    if !channel.sandbox {
        return String::new();
    }
    format!(
        "Twilio Sandbox for WhatsApp: customers first send \"join {}\" to +14155238886; their sandbox session lasts 72 hours after joining; \
         the sandbox sends at most one message every 3 seconds and only Twilio's pre-approved templates outside the 24-hour window.",
        if channel.sandbox_join_code.is_empty() {
            "<your code>"
        } else {
            &channel.sandbox_join_code
        }
    )
}

fn check_name(name: &str) -> Result<(), SessionError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(SessionError::invalid("name must have 1 to 100 characters"));
    }
    Ok(())
}

fn check_token(token: &str) -> Result<(), SessionError> {
    if token.len() < 16 || token.len() > 128 || token.chars().any(char::is_whitespace) {
        return Err(SessionError::invalid(
            "auth_token must be the account's auth token (16 to 128 characters, no spaces)",
        ));
    }
    Ok(())
}

const COLUMNS: &str = "id, name, account_sid, sandbox, sandbox_join_code, active, created_at";

impl Session {
    /// Creates a channel.
    pub async fn create_channel(&self, input: NewChannel) -> Result<Channel, SessionError> {
        check_name(&input.name)?;
        if !switchboard_twilio::is_account_sid(&input.account_sid) {
            return Err(SessionError::invalid("account_sid must be AC followed by 32 hex digits"));
        }
        check_token(input.auth_token.expose_secret())?;
        let (key_id, sealed) = self.cipher.seal(input.auth_token.expose_secret()).map_err(|e| anyhow::anyhow!(e))?;
        let channel = sqlx::query_as::<_, Channel>(
            "INSERT INTO session.channels (id, name, account_sid, auth_token_key_id, auth_token_ciphertext, sandbox, sandbox_join_code) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, name, account_sid, sandbox, sandbox_join_code, active, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(input.name.trim())
        .bind(&input.account_sid)
        .bind(key_id)
        .bind(sealed)
        .bind(input.sandbox)
        .bind(input.sandbox_join_code.trim())
        .fetch_one(&self.pool)
        .await?;
        tracing::info!(channel_id = %channel.id, account_sid = %channel.account_sid, "channel created");
        Ok(channel)
    }

    /// Returns a live channel.
    pub async fn channel(&self, id: Uuid) -> Result<Channel, SessionError> {
        sqlx::query_as::<_, Channel>(
            "SELECT id, name, account_sid, sandbox, sandbox_join_code, active, created_at FROM session.channels WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(SessionError::NotFound("channel"))
    }

    /// Lists live channels after `after`, at most `limit`.
    pub async fn list_channels(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<Channel>, SessionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM session.channels WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
        );
        Ok(sqlx::query_as::<_, Channel>(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Returns a channel with its decrypted token.
    pub async fn resolve_channel(&self, id: Uuid) -> Result<Resolved, SessionError> {
        let row: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT auth_token_key_id, auth_token_ciphertext FROM session.channels WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let (key_id, sealed) = row.ok_or(SessionError::NotFound("channel"))?;
        let auth_token = self
            .cipher
            .open(&key_id, &sealed)
            .map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
        Ok(Resolved {
            channel: self.channel(id).await?,
            auth_token,
        })
    }

    /// Applies `update` to a channel.
    pub async fn update_channel(&self, id: Uuid, update: ChannelUpdate) -> Result<Channel, SessionError> {
        if let Some(name) = &update.name {
            check_name(name)?;
        }
        let sealed = match &update.auth_token {
            Some(token) => {
                check_token(token.expose_secret())?;
                Some(self.cipher.seal(token.expose_secret()).map_err(|e| anyhow::anyhow!(e))?)
            }
            None => None,
        };
        let (key_id, ciphertext) = sealed.map_or((None, None), |(k, c)| (Some(k), Some(c)));
        let updated = sqlx::query_as::<_, Channel>(
            "UPDATE session.channels SET name = COALESCE($2, name), auth_token_key_id = COALESCE($3, auth_token_key_id), \
             auth_token_ciphertext = COALESCE($4, auth_token_ciphertext), sandbox = COALESCE($5, sandbox), \
             sandbox_join_code = COALESCE($6, sandbox_join_code), active = COALESCE($7, active), updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, account_sid, sandbox, sandbox_join_code, active, created_at",
        )
        .bind(id)
        .bind(update.name.as_deref().map(str::trim))
        .bind(key_id)
        .bind(ciphertext)
        .bind(update.sandbox)
        .bind(update.sandbox_join_code.as_deref().map(str::trim))
        .bind(update.active)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(SessionError::NotFound("channel"))?;
        tracing::info!(channel_id = %id, token_changed = update.auth_token.is_some(), "channel updated");
        Ok(updated)
    }

    /// Deletes a channel that has no numbers left.
    pub async fn delete_channel(&self, id: Uuid) -> Result<(), SessionError> {
        let mut tx = self.pool.begin().await?;
        let numbers: i64 = sqlx::query_scalar("SELECT count(*) FROM session.numbers WHERE channel_id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if numbers > 0 {
            return Err(SessionError::Precondition(format!(
                "the channel still has {numbers} WhatsApp number(s): delete them first"
            )));
        }
        let deleted = sqlx::query("UPDATE session.channels SET deleted_at = now(), active = false WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(SessionError::NotFound("channel"));
        }
        sqlx::query("DELETE FROM session.automated_messages WHERE channel_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(channel_id = %id, "channel deleted");
        Ok(())
    }

    /// Re-encrypts every auth token and bot secret not sealed with the active key; returns how many.
    pub async fn rotate_token_encryption(&self) -> Result<u32, SessionError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, auth_token_key_id, auth_token_ciphertext FROM session.channels WHERE auth_token_key_id <> $1 FOR UPDATE",
        )
        .bind(self.cipher.active_key())
        .fetch_all(&mut *tx)
        .await?;
        for (id, key_id, sealed) in &rows {
            let token = self.cipher.open(key_id, sealed).map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
            let (new_key, new_sealed) = self.cipher.seal(token.expose_secret()).map_err(|e| anyhow::anyhow!(e))?;
            sqlx::query("UPDATE session.channels SET auth_token_key_id = $2, auth_token_ciphertext = $3 WHERE id = $1")
                .bind(id)
                .bind(new_key)
                .bind(new_sealed)
                .execute(&mut *tx)
                .await?;
        }
        // Bots' signing secrets are sealed with the same keys.
        let bots: Vec<(Uuid, String, Vec<u8>)> =
            sqlx::query_as("SELECT id, secret_key_id, secret_ciphertext FROM session.bots WHERE secret_key_id <> $1 FOR UPDATE")
                .bind(self.cipher.active_key())
                .fetch_all(&mut *tx)
                .await?;
        for (id, key_id, sealed) in &bots {
            let secret = self.cipher.open(key_id, sealed).map_err(|e| anyhow::anyhow!("bot {id}: {e}"))?;
            let (new_key, new_sealed) = self.cipher.seal(secret.expose_secret()).map_err(|e| anyhow::anyhow!(e))?;
            sqlx::query("UPDATE session.bots SET secret_key_id = $2, secret_ciphertext = $3 WHERE id = $1")
                .bind(id)
                .bind(new_key)
                .bind(new_sealed)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(u32::try_from(rows.len() + bots.len()).unwrap_or(u32::MAX))
    }
}
