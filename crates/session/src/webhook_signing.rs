//! Shared-key signing of a channel's webhooks, set up and rotated through Twilio's Webhooks
//! configuration API (`switchboard_twilio::webhooks_config`). Set-up, in an order that never
//! lets Twilio sign with a key ingress does not hold:
//! 1. Twilio creates a SharedKey and returns its secret (once); session stores it sealed in
//!    `session.webhook_keys` and commits, so ingress verifies it from then on;
//! 2. Twilio creates a Setting that signs with it (the algorithm asked for) and carries the
//!    timeouts and retries of the URLs' connection overrides, 5xx retried included;
//! 3. the channel's prefix Rule (`{public_base_url}/v1/twilio/{channel}/`) is created, or
//!    pointed at the new Setting. Twilio propagates a Rule change asynchronously: its Operation
//!    is kept, and until it completes the previous Setting still signs, so its key stays.
//!
//! [`Session::settle_webhook_signing`] follows the Operation (the periodic health check and
//! `POST /channels/{id}/health-check` call it): once completed, the replaced Setting and
//! SharedKey are deleted at Twilio and the old key here; if Twilio abandons the change, the new
//! Setting and key are removed instead and the old ones stay in use. One change at a time per
//! channel: a rotation asked for while one propagates is refused.

use sqlx::PgConnection;
use switchboard_twilio::shared_key::Algorithm;
use switchboard_twilio::webhooks_config::{ConnectionSetting, NewSetting, Rule, RuleChange, SettingReference, SignatureSetting};
use switchboard_twilio::{Credentials, TwilioError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;

/// A channel's signing set-up, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookSigning {
    pub channel_id: Uuid,
    pub rule_id: String,
    pub prefix: String,
    pub setting_id: String,
    /// The key the Rule's Setting signs with (once its change is live).
    pub key_sid: String,
    pub algorithm: String,
    /// The Rule change Twilio is propagating, if any.
    pub operation_id: Option<String>,
    pub operation_status: Option<String>,
    /// What the change replaces, kept until it is live.
    pub retiring_setting_id: Option<String>,
    pub retiring_key_sid: Option<String>,
    /// Why the last change did not take.
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

fn twilio_failure(step: &str, e: &TwilioError) -> SessionError {
    match e {
        TwilioError::Api { status: 401 | 403, .. } => SessionError::Precondition(format!(
            "Twilio refuses the channel's credentials for the Webhooks API ({step}): check its auth token"
        )),
        TwilioError::Api {
            status: 400 | 409 | 422,
            message,
            ..
        } => SessionError::Precondition(format!("Twilio refused to {step}: {message}")),
        other => SessionError::Unavailable(format!("Twilio, while trying to {step}: {other}")),
    }
}

/// A delete that found nothing to delete did what it was asked.
fn gone_is_fine(result: Result<(), TwilioError>) -> Result<(), TwilioError> {
    match result {
        Err(TwilioError::Api { status: 404, .. }) => Ok(()),
        other => other,
    }
}

impl Session {
    /// The channel's prefix: every webhook URL Switchboard gives out for it starts with it.
    fn signing_prefix(&self, channel: Uuid) -> String {
        format!("{}/v1/twilio/{channel}/", self.public_base_url.trim_end_matches('/'))
    }

    async fn signing_row(&self, conn: &mut PgConnection, channel: Uuid) -> Result<Option<WebhookSigning>, SessionError> {
        Ok(sqlx::query_as(
            "SELECT channel_id, rule_id, prefix, setting_id, key_sid, algorithm, operation_id, operation_status, \
                 retiring_setting_id, retiring_key_sid, last_error, updated_at FROM session.webhook_signing WHERE channel_id = $1",
        )
        .bind(channel)
        .fetch_optional(conn)
        .await?)
    }

    /// The channel's signing set-up, if it has one.
    pub async fn webhook_signing(&self, channel: Uuid) -> Result<Option<WebhookSigning>, SessionError> {
        self.channel(channel).await?;
        let mut conn = self.pool.acquire().await?;
        self.signing_row(&mut conn, channel).await
    }

    /// Has Twilio sign channel `channel`'s webhooks with a new SharedKey and `algorithm`: sets
    /// signing up the first time, rotates to a new key afterwards.
    pub async fn set_up_webhook_signing(&self, channel: Uuid, algorithm: &str) -> Result<WebhookSigning, SessionError> {
        let algorithm = Algorithm::parse(algorithm)
            .ok_or_else(|| SessionError::invalid("algorithm is HMAC_SHA256 or HMAC_SHA1"))?
            .as_str();
        let resolved = self.resolve_channel(channel).await?;
        let creds = Credentials::account(&resolved.channel.account_sid, resolved.auth_token);
        // One change per channel at a time, across replicas: held for the whole set-up.
        let mut guard = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('session.webhook_signing'), hashtext($1::text))")
            .bind(channel)
            .execute(&mut *guard)
            .await?;
        let current = match self.signing_row(&mut guard, channel).await? {
            Some(row) if row.operation_id.is_some() => Some(self.settle(&creds, row).await?),
            other => other,
        };
        if let Some(pending) = current.as_ref().filter(|r| r.operation_id.is_some()) {
            return Err(SessionError::Precondition(format!(
                "Twilio is still propagating the previous change (operation {}, {}); try again once it completes",
                pending.operation_id.as_deref().unwrap_or_default(),
                pending.operation_status.as_deref().unwrap_or("RUNNING"),
            )));
        }
        let held = i64::try_from(self.webhook_keys(channel).await?.len()).unwrap_or(i64::MAX);
        if held >= crate::webhook_keys::MAX_KEYS {
            return Err(SessionError::Precondition(format!(
                "the channel holds {held} webhook keys, the most it may: remove one it no longer needs first"
            )));
        }

        // 1. The key, stored (and so verified by ingress) before anything at Twilio uses it.
        let friendly = format!("switchboard channel {channel}");
        let key = self
            .twilio
            .create_shared_key(&creds, &friendly)
            .await
            .map_err(|e| twilio_failure("create a SharedKey", &e))?;
        if let Err(e) = self.add_webhook_key(channel, &key.id, &key.secret).await {
            self.forget_at_twilio(&creds, None, Some(&key.id)).await;
            return Err(e);
        }
        // 2. The Setting that signs with it.
        let overrides = switchboard_twilio::overrides::ConnectionOverrides::parse(self.settings.webhooks.overrides.trim());
        let new_setting = NewSetting {
            friendly_name: Some(friendly.clone()),
            description: Some("Webhooks of a Switchboard channel, signed with its shared key".into()),
            auth: self.settings.webhook_signing.auth.clone(),
            signature: Some(SignatureSetting {
                kind: self.settings.webhook_signing.signature_type.clone(),
                shared_key_id: Some(key.id.clone()),
                algorithm: Some(algorithm.to_owned()),
            }),
            connection: Some(ConnectionSetting::from_overrides(&overrides)),
        };
        let setting = match self.twilio.create_setting(&creds, &new_setting).await {
            Ok(setting) => setting,
            Err(e) => {
                self.undo_key(channel, &creds, None, &key.id).await;
                return Err(twilio_failure("create a Webhook Setting", &e));
            }
        };
        // 3. The Rule for the channel's URLs, pointed at it.
        let prefix = self.signing_prefix(channel);
        let change = match self.point_rule(&creds, current.as_ref(), &prefix, &friendly, &setting.id).await {
            Ok(change) => change,
            Err(e) => {
                self.undo_key(channel, &creds, Some(&setting.id), &key.id).await;
                return Err(e);
            }
        };
        let row = WebhookSigning {
            channel_id: channel,
            rule_id: change
                .rule
                .as_ref()
                .map_or_else(|| change.operation.resource_id.clone().unwrap_or_default(), |r| r.id.clone()),
            prefix,
            setting_id: setting.id,
            key_sid: key.id,
            algorithm: algorithm.to_owned(),
            operation_id: Some(change.operation.id.clone()),
            operation_status: Some(change.operation.status.clone()),
            retiring_setting_id: current.as_ref().map(|c| c.setting_id.clone()),
            retiring_key_sid: current.as_ref().map(|c| c.key_sid.clone()),
            last_error: None,
            updated_at: self.now(),
        };
        self.save_signing(&mut guard, &row).await?;
        guard.commit().await?;
        tracing::info!(channel_id = %channel, key_sid = %row.key_sid, rule_id = %row.rule_id, operation_id = ?row.operation_id,
            "shared-key signing set up at Twilio; the change propagates");
        // Twilio may have completed it already.
        self.settle(&creds, row).await
    }

    /// Creates the channel's Rule, or points the existing one (ours, or one made by hand for the
    /// same prefix) at `setting`.
    async fn point_rule(
        &self,
        creds: &Credentials,
        current: Option<&WebhookSigning>,
        prefix: &str,
        friendly: &str,
        setting: &str,
    ) -> Result<RuleChange, SessionError> {
        let existing = match current {
            Some(row) => Some(row.rule_id.clone()),
            None => {
                let rules = self
                    .twilio
                    .webhook_rules(creds)
                    .await
                    .map_err(|e| twilio_failure("list the Webhook Rules", &e))?;
                rules
                    .into_iter()
                    .find(|r| r.match_type == "PREFIX_MATCH" && r.prefix.as_deref() == Some(prefix))
                    .map(|r| r.id)
            }
        };
        let result = match existing {
            Some(id) => {
                let settings = vec![SettingReference {
                    setting_id: setting.to_owned(),
                    percentage: 100,
                }];
                self.twilio.update_rule_settings(creds, &id, settings).await
            }
            None => self.twilio.create_rule(creds, &Rule::prefix(friendly, prefix, setting)).await,
        };
        result.map_err(|e| twilio_failure("apply the Webhook Rule", &e))
    }

    async fn save_signing(&self, conn: &mut PgConnection, row: &WebhookSigning) -> Result<(), SessionError> {
        sqlx::query(
            "INSERT INTO session.webhook_signing (channel_id, rule_id, prefix, setting_id, key_sid, algorithm, operation_id, \
             operation_status, retiring_setting_id, retiring_key_sid, last_error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (channel_id) DO UPDATE SET rule_id = $2, prefix = $3, setting_id = $4, key_sid = $5, algorithm = $6, \
             operation_id = $7, operation_status = $8, retiring_setting_id = $9, retiring_key_sid = $10, last_error = $11, \
             updated_at = $12",
        )
        .bind(row.channel_id)
        .bind(&row.rule_id)
        .bind(&row.prefix)
        .bind(&row.setting_id)
        .bind(&row.key_sid)
        .bind(&row.algorithm)
        .bind(&row.operation_id)
        .bind(&row.operation_status)
        .bind(&row.retiring_setting_id)
        .bind(&row.retiring_key_sid)
        .bind(&row.last_error)
        .bind(row.updated_at)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Removes a key that never went into use, here and at Twilio (with its Setting, if made).
    async fn undo_key(&self, channel: Uuid, creds: &Credentials, setting: Option<&str>, key: &str) {
        self.forget_at_twilio(creds, setting, Some(key)).await;
        if let Err(e) = self.remove_webhook_key(channel, key).await {
            tracing::warn!(channel_id = %channel, key_sid = key, error = %e, "could not remove an unused webhook key");
        }
    }

    /// Deletes a Setting, then its SharedKey, at Twilio (a key in use by a Setting cannot go).
    /// Returns whether both are gone.
    async fn forget_at_twilio(&self, creds: &Credentials, setting: Option<&str>, key: Option<&str>) -> bool {
        if let Some(setting) = setting
            && let Err(e) = gone_is_fine(self.twilio.delete_setting(creds, setting).await)
        {
            tracing::warn!(setting_id = setting, error = %e, "could not delete a Webhook Setting at Twilio; will try again");
            return false;
        }
        if let Some(key) = key
            && let Err(e) = gone_is_fine(self.twilio.delete_shared_key(creds, key).await)
        {
            tracing::warn!(key_sid = key, error = %e, "could not delete a SharedKey at Twilio; will try again");
            return false;
        }
        true
    }

    /// Follows channel `channel`'s pending change at Twilio and finishes it (see the module).
    pub async fn settle_webhook_signing(&self, channel: Uuid) -> Result<Option<WebhookSigning>, SessionError> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = self.signing_row(&mut conn, channel).await? else {
            return Ok(None);
        };
        drop(conn);
        if row.operation_id.is_none() && row.retiring_key_sid.is_none() {
            return Ok(Some(row));
        }
        let resolved = self.resolve_channel(channel).await?;
        let creds = Credentials::account(&resolved.channel.account_sid, resolved.auth_token);
        let mut guard = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('session.webhook_signing'), hashtext($1::text))")
            .bind(channel)
            .fetch_one(&mut *guard)
            .await?;
        if !locked {
            // A set-up or another settle is at work on this channel; it settles what it can.
            return Ok(Some(row));
        }
        // Read again under the lock: a set-up may have just finished.
        let Some(row) = self.signing_row(&mut guard, channel).await? else {
            return Ok(None);
        };
        let settled = self.settle(&creds, row).await?;
        guard.commit().await?;
        Ok(Some(settled))
    }

    async fn settle(&self, creds: &Credentials, mut row: WebhookSigning) -> Result<WebhookSigning, SessionError> {
        if let Some(op) = row.operation_id.clone() {
            let operation = self
                .twilio
                .webhook_operation(creds, &op)
                .await
                .map_err(|e| twilio_failure("read the Rule change's operation", &e))?;
            if operation.abandoned() {
                // The Rule still applies what it did: the new Setting and key never signed.
                tracing::warn!(channel_id = %row.channel_id, operation_id = %op, status = %operation.status,
                    "Twilio abandoned the Webhook Rule change; keeping the previous signing");
                self.undo_key(row.channel_id, creds, Some(&row.setting_id), &row.key_sid).await;
                let error = format!(
                    "Twilio {} the change ({op}): {}",
                    operation.status.to_lowercase(),
                    operation.error.map(|e| e.to_string()).unwrap_or_default()
                );
                let mut conn = self.pool.acquire().await?;
                match (row.retiring_setting_id.take(), row.retiring_key_sid.take()) {
                    (Some(setting), Some(key)) => {
                        row.setting_id = setting;
                        row.key_sid = key;
                    }
                    _ => {
                        sqlx::query("DELETE FROM session.webhook_signing WHERE channel_id = $1")
                            .bind(row.channel_id)
                            .execute(&mut *conn)
                            .await?;
                        return Err(SessionError::Precondition(error));
                    }
                }
                row.operation_id = None;
                row.operation_status = Some(operation.status);
                row.last_error = Some(error);
                row.updated_at = self.now();
                self.save_signing(&mut conn, &row).await?;
                return Ok(row);
            }
            row.operation_status = Some(operation.status.clone());
            if operation.completed() {
                row.operation_id = None;
            }
        }
        if row.operation_id.is_none() && row.retiring_key_sid.is_some() {
            // Live everywhere: what it replaced signs nothing any more.
            let (setting, key) = (row.retiring_setting_id.clone(), row.retiring_key_sid.clone());
            if self.forget_at_twilio(creds, setting.as_deref(), key.as_deref()).await {
                if let Some(key) = key.as_deref() {
                    match self.remove_webhook_key(row.channel_id, key).await {
                        Ok(()) | Err(SessionError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                    tracing::info!(channel_id = %row.channel_id, key_sid = key, "the replaced webhook key is retired");
                }
                row.retiring_setting_id = None;
                row.retiring_key_sid = None;
            }
        }
        row.updated_at = self.now();
        let mut conn = self.pool.acquire().await?;
        self.save_signing(&mut conn, &row).await?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_resource_is_a_finished_delete_and_other_failures_are_not() {
        let api = |status| TwilioError::Api {
            status,
            code: None,
            message: String::new(),
            retry_after: None,
        };
        assert!(gone_is_fine(Err(api(404))).is_ok());
        assert!(gone_is_fine(Err(api(409))).is_err());
        assert!(gone_is_fine(Err(TwilioError::Network("x".into()))).is_err());
    }

    #[test]
    fn refusals_name_the_step_and_never_the_credentials() {
        let refused = twilio_failure(
            "create a SharedKey",
            &TwilioError::Api {
                status: 401,
                code: Some(20003),
                message: "Authenticate".into(),
                retry_after: None,
            },
        );
        assert!(matches!(refused, SessionError::Precondition(ref m) if m.contains("create a SharedKey")));
        let down = twilio_failure("list the Webhook Rules", &TwilioError::Network("timeout".into()));
        assert!(matches!(down, SessionError::Unavailable(_)));
    }
}
