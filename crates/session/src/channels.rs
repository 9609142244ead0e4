//! Twilio account channels: name, Account SID, the auth token (encrypted at rest, never
//! returned or logged), sandbox settings, active flag. Deleted channels answer "not found".

use secrecy::{ExposeSecret, SecretString};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use switchboard_domain::health::{CallbackFacts, CredentialCheck, Health, assess};
use switchboard_domain::ids::ChannelId;
use switchboard_twilio::Credentials;

use crate::app::Session;
use crate::crypto::Owner;
use crate::error::SessionError;

/// What admins see of a channel (no token).
#[derive(Debug, Clone, FromRow)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub account_sid: String,
    pub sandbox: bool,
    pub sandbox_join_code: String,
    pub active: bool,
    pub created_at: OffsetDateTime,
    /// `unknown`, `healthy` or `unhealthy` (the periodic check).
    pub health: String,
    pub health_reason: Option<String>,
    pub health_checked_at: Option<OffsetDateTime>,
}

/// A channel with its clear-text token, for ingress and sender only.
#[derive(Debug)]
pub struct Resolved {
    pub channel: Channel,
    pub auth_token: SecretString,
    /// The shared keys its webhooks may be signed with: key id → secret.
    pub webhook_keys: Vec<(String, SecretString)>,
}

/// New channel input.
#[derive(Debug)]
pub struct NewChannel {
    pub name: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    pub sandbox: bool,
    pub sandbox_join_code: String,
    /// Save without asking Twilio whether it accepts the credentials.
    pub skip_credential_check: bool,
}

/// Channel changes (absent fields stay).
#[derive(Debug, Default)]
pub struct ChannelUpdate {
    pub name: Option<String>,
    pub auth_token: Option<SecretString>,
    pub sandbox: Option<bool>,
    pub sandbox_join_code: Option<String>,
    pub active: Option<bool>,
    /// Save a new auth token without asking Twilio whether it accepts it.
    pub skip_credential_check: bool,
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

const COLUMNS: &str = "id, name, account_sid, sandbox, sandbox_join_code, active, created_at, health, health_reason, health_checked_at";

impl Session {
    /// Creates a channel.
    pub async fn create_channel(&self, input: NewChannel) -> Result<Channel, SessionError> {
        check_name(&input.name)?;
        if !switchboard_twilio::is_account_sid(&input.account_sid) {
            return Err(SessionError::invalid("account_sid must be AC followed by 32 hex digits"));
        }
        check_token(input.auth_token.expose_secret())?;
        let (health, health_reason) = match input.skip_credential_check {
            true => (Health::Unknown, Some("saved without a credential check".to_owned())),
            false => assess(
                &self
                    .verify_credentials(&Credentials::account(&input.account_sid, input.auth_token.clone()))
                    .await?,
                &[],
                CallbackFacts::default(),
            ),
        };
        let id = Uuid::now_v7();
        let (key_id, sealed) = self
            .cipher
            .seal(input.auth_token.expose_secret(), Owner::Channel(id))
            .map_err(|e| anyhow::anyhow!(e))?;
        let channel = sqlx::query_as::<_, Channel>(
            "INSERT INTO session.channels (id, name, account_sid, auth_token_key_id, auth_token_ciphertext, auth_token_bound, sandbox, sandbox_join_code, \
             health, health_reason, health_checked_at) \
             VALUES ($1, $2, $3, $4, $5, true, $6, $7, $8, $9, CASE WHEN $10 THEN NULL ELSE $11::timestamptz END) \
             RETURNING id, name, account_sid, sandbox, sandbox_join_code, active, created_at, health, health_reason, health_checked_at",
        )
        .bind(id)
        .bind(input.name.trim())
        .bind(&input.account_sid)
        .bind(key_id)
        .bind(sealed)
        .bind(input.sandbox)
        .bind(input.sandbox_join_code.trim())
        .bind(health.as_str())
        .bind(health_reason)
        .bind(input.skip_credential_check)
        .bind(self.now())
        .fetch_one(&self.pool)
        .await?;
        tracing::info!(channel_id = %channel.id, account_sid = %channel.account_sid, health = %channel.health, "channel created");
        Ok(channel)
    }

    /// Returns a live channel.
    pub async fn channel(&self, id: ChannelId) -> Result<Channel, SessionError> {
        sqlx::query_as::<_, Channel>(
            "SELECT id, name, account_sid, sandbox, sandbox_join_code, active, created_at, health, health_reason, health_checked_at FROM session.channels WHERE id = $1 AND deleted_at IS NULL",
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
    pub async fn resolve_channel(&self, id: ChannelId) -> Result<Resolved, SessionError> {
        let row: Option<(String, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT auth_token_key_id, auth_token_ciphertext, auth_token_bound FROM session.channels WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let (key_id, sealed, bound) = row.ok_or(SessionError::NotFound("channel"))?;
        let auth_token = self
            .cipher
            .open(&key_id, &sealed, Owner::Channel(id.uuid()), bound)
            .map_err(|e| anyhow::anyhow!("channel {id}: {e}"))?;
        Ok(Resolved {
            channel: self.channel(id).await?,
            auth_token,
            webhook_keys: self.webhook_key_secrets(id.uuid()).await?,
        })
    }

    /// Applies `update` to a channel.
    pub async fn update_channel(&self, id: ChannelId, update: ChannelUpdate) -> Result<Channel, SessionError> {
        if let Some(name) = &update.name {
            check_name(name)?;
        }
        // The credentials Twilio accepted, to judge the channel with once they are saved.
        let mut accepted = None;
        let sealed = match &update.auth_token {
            Some(token) => {
                check_token(token.expose_secret())?;
                if !update.skip_credential_check {
                    let credentials = Credentials::account(&self.channel(id).await?.account_sid, token.clone());
                    match self.verify_credentials(&credentials).await? {
                        CredentialCheck::Unreachable(why) => {
                            tracing::warn!(channel_id = %id, error = %why, "new auth token saved unchecked: Twilio could not be reached");
                        }
                        _ => accepted = Some(credentials),
                    }
                }
                Some(
                    self.cipher
                        .seal(token.expose_secret(), Owner::Channel(id.uuid()))
                        .map_err(|e| anyhow::anyhow!(e))?,
                )
            }
            None => None,
        };
        let (key_id, ciphertext) = sealed.map_or((None, None), |(k, c)| (Some(k), Some(c)));
        let updated = sqlx::query_as::<_, Channel>(
            "UPDATE session.channels SET name = COALESCE($2, name), auth_token_key_id = COALESCE($3, auth_token_key_id), \
             auth_token_ciphertext = COALESCE($4, auth_token_ciphertext), auth_token_bound = auth_token_bound OR $4 IS NOT NULL, \
             sandbox = COALESCE($5, sandbox), \
             sandbox_join_code = COALESCE($6, sandbox_join_code), active = COALESCE($7, active), updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, account_sid, sandbox, sandbox_join_code, active, created_at, health, health_reason, health_checked_at",
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
        self.config.invalidation.invalidate();
        tracing::info!(channel_id = %id, token_changed = update.auth_token.is_some(), "channel updated");
        if let Some(credentials) = accepted {
            // The verdict on the old token no longer holds: judge the channel again at once,
            // without asking Twilio a second time about the token it just accepted.
            match self
                .judge_channel(id.uuid(), &credentials, updated.sandbox, CredentialCheck::Accepted)
                .await
            {
                Ok(_) => return self.channel(id).await,
                Err(error) => tracing::warn!(channel_id = %id, error = %error, "cannot check the channel after its token changed"),
            }
        }
        Ok(updated)
    }

    /// Asks Twilio whether it accepts `token` for `account_sid` before they are saved: an
    /// error (and nothing saved) when Twilio refuses them; Twilio out of reach is not the
    /// admin's fault, so the caller saves and says so.
    async fn verify_credentials(&self, credentials: &Credentials) -> Result<CredentialCheck, SessionError> {
        let check = self.twilio_verdict(credentials).await;
        if let CredentialCheck::Refused { code } = check {
            return Err(SessionError::Precondition(format!(
                "Twilio refuses these credentials ({}): check the Account SID and the auth token; nothing was saved \
                 (skip_credential_check saves them anyway)",
                code.map_or_else(|| "401".to_owned(), |c| c.to_string())
            )));
        }
        Ok(check)
    }

    /// Opens a secret and seals it again with the active key, bound to `owner`.
    pub(crate) fn reseal(&self, key_id: &str, sealed: &[u8], owner: Owner, bound: bool) -> Result<(String, Vec<u8>), SessionError> {
        let secret = self
            .cipher
            .open(key_id, sealed, owner, bound)
            .map_err(|e| anyhow::anyhow!("{owner:?}: {e}"))?;
        Ok(self.cipher.seal(secret.expose_secret(), owner).map_err(|e| anyhow::anyhow!(e))?)
    }

    /// Deletes a channel that has no numbers left.
    pub async fn delete_channel(&self, id: ChannelId) -> Result<(), SessionError> {
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
        self.config.invalidation.invalidate();
        tracing::info!(channel_id = %id, "channel deleted");
        Ok(())
    }

    /// Re-encrypts every auth token and bot secret not sealed with the active key, or not yet
    /// bound to its row; returns how many.
    pub async fn rotate_token_encryption(&self) -> Result<u32, SessionError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, String, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT id, auth_token_key_id, auth_token_ciphertext, auth_token_bound FROM session.channels \
             WHERE auth_token_key_id <> $1 OR NOT auth_token_bound FOR UPDATE",
        )
        .bind(self.cipher.active_key())
        .fetch_all(&mut *tx)
        .await?;
        for (id, key_id, sealed, bound) in &rows {
            let (new_key, new_sealed) = self.reseal(key_id, sealed, Owner::Channel(*id), *bound)?;
            sqlx::query(
                "UPDATE session.channels SET auth_token_key_id = $2, auth_token_ciphertext = $3, auth_token_bound = true WHERE id = $1",
            )
            .bind(id)
            .bind(new_key)
            .bind(new_sealed)
            .execute(&mut *tx)
            .await?;
        }
        // Bots' signing secrets are sealed with the same keys.
        let bots: Vec<(Uuid, String, Vec<u8>, bool)> = sqlx::query_as(
            "SELECT id, secret_key_id, secret_ciphertext, secret_bound FROM session.bots WHERE secret_key_id <> $1 OR NOT secret_bound FOR UPDATE",
        )
        .bind(self.cipher.active_key())
        .fetch_all(&mut *tx)
        .await?;
        for (id, key_id, sealed, bound) in &bots {
            let (new_key, new_sealed) = self.reseal(key_id, sealed, Owner::Bot(*id), *bound)?;
            sqlx::query("UPDATE session.bots SET secret_key_id = $2, secret_ciphertext = $3, secret_bound = true WHERE id = $1")
                .bind(id)
                .bind(new_key)
                .bind(new_sealed)
                .execute(&mut *tx)
                .await?;
        }
        let keys = self.reseal_webhook_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(u32::try_from(rows.len() + bots.len() + keys).unwrap_or(u32::MAX))
    }
}
