//! A channel's webhook shared keys: the secrets Twilio signs its webhooks with when a Webhook
//! Setting names a SharedKey. A channel holds several, so a rotation (add the new key, switch
//! Twilio to it, remove the old) never refuses a webhook. Secrets are sealed like auth tokens,
//! bound to their row, and never leave session except to ingress (`ResolveChannel`).

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;
use switchboard_domain::ids::ChannelId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Session;
use crate::crypto::Owner;
use crate::error::SessionError;

/// Keys a channel may hold at once.
pub const MAX_KEYS: i64 = 5;

/// A key, without its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookKey {
    pub key_sid: String,
    pub created_at: OffsetDateTime,
}

fn check_key(key: &str) -> Result<(), SessionError> {
    let ok = (1..=100).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SessionError::invalid("a key id has 1 to 100 letters, digits, '_', '-' or '.'"))
    }
}

fn check_secret(secret: &str) -> Result<(), SessionError> {
    if (16..=256).contains(&secret.len()) && !secret.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        Ok(())
    } else {
        Err(SessionError::invalid("a key secret has 16 to 256 characters and no spaces"))
    }
}

impl Session {
    /// Adds a shared key to channel `channel`.
    pub async fn add_webhook_key(&self, channel: ChannelId, key: &str, secret: &SecretString) -> Result<WebhookKey, SessionError> {
        check_key(key)?;
        check_secret(secret.expose_secret())?;
        let mut tx = self.pool.begin().await?;
        // The channel row is locked so two additions cannot both pass the limit.
        let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM session.channels WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
            .bind(channel)
            .fetch_optional(&mut *tx)
            .await?;
        exists.ok_or(SessionError::NotFound("channel"))?;
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM session.webhook_keys WHERE channel_id = $1")
            .bind(channel)
            .fetch_one(&mut *tx)
            .await?;
        if held >= MAX_KEYS {
            return Err(SessionError::Precondition(format!(
                "a channel holds at most {MAX_KEYS} webhook keys: remove one first"
            )));
        }
        let id = Uuid::now_v7();
        let (key_id, sealed) = self
            .cipher
            .seal(secret.expose_secret(), Owner::WebhookKey(id))
            .map_err(|e| anyhow::anyhow!(e))?;
        let added = sqlx::query_as::<_, WebhookKey>(
            "INSERT INTO session.webhook_keys (id, channel_id, key_sid, secret_key_id, secret_ciphertext, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel_id, key_sid) DO NOTHING RETURNING key_sid, created_at",
        )
        .bind(id)
        .bind(channel)
        .bind(key)
        .bind(key_id)
        .bind(sealed)
        .bind(self.now())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| SessionError::AlreadyExists(format!("the channel already holds key {key}")))?;
        tx.commit().await?;
        tracing::info!(channel_id = %channel, key_sid = key, "webhook shared key added");
        Ok(added)
    }

    /// Lists a channel's keys, oldest first.
    pub async fn webhook_keys(&self, channel: ChannelId) -> Result<Vec<WebhookKey>, SessionError> {
        self.channel(channel).await?;
        Ok(
            sqlx::query_as("SELECT key_sid, created_at FROM session.webhook_keys WHERE channel_id = $1 ORDER BY created_at, key_sid")
                .bind(channel)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Removes a key: webhooks signed with it are refused from then on. The key Twilio signs
    /// with under Switchboard's own set-up (`webhook_signing`) is refused: rotate instead.
    pub async fn delete_webhook_key(&self, channel: ChannelId, key: &str) -> Result<(), SessionError> {
        let in_use: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM session.webhook_signing WHERE channel_id = $1 AND key_sid = $2)")
                .bind(channel)
                .bind(key)
                .fetch_one(&self.pool)
                .await?;
        if in_use {
            return Err(SessionError::Precondition(format!(
                "Twilio signs this channel's webhooks with {key} (webhook-signing): rotate to a new key instead"
            )));
        }
        self.remove_webhook_key(channel.uuid(), key).await
    }

    /// Removes a key, in use or not.
    pub(crate) async fn remove_webhook_key(&self, channel: Uuid, key: &str) -> Result<(), SessionError> {
        let deleted = sqlx::query("DELETE FROM session.webhook_keys WHERE channel_id = $1 AND key_sid = $2")
            .bind(channel)
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(SessionError::NotFound("webhook key"));
        }
        tracing::info!(channel_id = %channel, key_sid = key, "webhook shared key removed");
        Ok(())
    }

    /// A channel's keys with their secrets (for ingress).
    pub(crate) async fn webhook_key_secrets(&self, channel: Uuid) -> Result<Vec<(String, SecretString)>, SessionError> {
        let rows: Vec<(Uuid, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, key_sid, secret_key_id, secret_ciphertext FROM session.webhook_keys WHERE channel_id = $1 ORDER BY created_at",
        )
        .bind(channel)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, sid, key_id, sealed)| {
                let secret = self
                    .cipher
                    .open(&key_id, &sealed, Owner::WebhookKey(id), true)
                    .map_err(|e| anyhow::anyhow!("webhook key {id}: {e}"))?;
                Ok((sid, secret))
            })
            .collect()
    }

    /// Seals every webhook key with the active encryption key (part of the token rotation).
    pub(crate) async fn reseal_webhook_keys(&self, tx: &mut PgConnection) -> Result<usize, SessionError> {
        let rows: Vec<(Uuid, String, Vec<u8>)> =
            sqlx::query_as("SELECT id, secret_key_id, secret_ciphertext FROM session.webhook_keys WHERE secret_key_id <> $1 FOR UPDATE")
                .bind(self.cipher.active_key())
                .fetch_all(&mut *tx)
                .await?;
        for (id, key_id, sealed) in &rows {
            let (new_key, new_sealed) = self.reseal(key_id, sealed, Owner::WebhookKey(*id), true)?;
            sqlx::query("UPDATE session.webhook_keys SET secret_key_id = $2, secret_ciphertext = $3 WHERE id = $1")
                .bind(id)
                .bind(new_key)
                .bind(new_sealed)
                .execute(&mut *tx)
                .await?;
        }
        Ok(rows.len())
    }
}
