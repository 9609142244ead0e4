//! Shared-key signing of a channel's webhooks, set up and rotated through Twilio's Webhooks
//! configuration API (`switchboard_twilio::webhooks_config`). Set-up, in an order that never
//! lets Twilio sign with a key ingress does not hold:
//! 1. Twilio creates a SharedKey and returns its secret (once); session stores it sealed in
//!    `session.webhook_keys` and commits, so ingress verifies it from then on;
//! 2. Twilio creates a Setting that signs with it (the algorithm asked for) and carries the
//!    timeouts and retries of the URLs' connection overrides, 5xx retried included;
//! 3. the channel's prefix Rule (`{public_base_url}/v1/twilio/{channel}/`) is created, or
//!    pointed at the new Setting, and so is the fallback ingress's (`{fallback_base_url}/…`,
//!    when one is configured: Twilio matches Rules by URL, so the fallback URLs need their own).
//!    Twilio propagates a Rule change asynchronously: each Operation is kept, and until both
//!    completed the previous Setting may still sign, so its key stays.
//!
//! [`Session::settle_webhook_signing`] follows the Operations (the periodic health check and
//! `POST /channels/{id}/health-check` call it): once both completed, the replaced Setting and
//! SharedKey are deleted at Twilio and the old key here. If Twilio abandons both changes, the
//! new Setting and key are removed instead and the old ones stay in use; if it abandons only
//! one, that Rule is asked again (the other already signs with the new key, so there is no way
//! back), and the old key stays until it is live. A fallback Rule missing (a fallback ingress
//! configured after signing was set up, or a change Twilio refused) is made by the next settle,
//! and a fallback Rule for URLs no longer configured (the fallback base changed or was removed)
//! is deleted at Twilio by it, before any new one is made and before a Setting it may apply is
//! retired.
//! One change at a time per channel: a rotation asked for while one propagates is refused.

use switchboard_domain::ids::ChannelId;
use switchboard_twilio::shared_key::Algorithm;
use switchboard_twilio::webhooks_config::{ConnectionSetting, NewSetting, Operation, Rule, RuleChange, SettingReference, SignatureSetting};
use switchboard_twilio::{Credentials, TwilioError};
use uuid::Uuid;

use crate::app::Session;
use crate::error::SessionError;
use crate::store::webhook_signing as store;
pub use crate::store::webhook_signing::WebhookSigning;

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

/// Where one Rule's change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// No change of this Rule in flight.
    None,
    Running,
    Completed,
    Abandoned,
}

impl Change {
    fn of(operation: Option<&Operation>) -> Self {
        match operation {
            None => Self::None,
            Some(op) if op.completed() => Self::Completed,
            Some(op) if op.abandoned() => Self::Abandoned,
            Some(_) => Self::Running,
        }
    }
}

/// The id a Rule change names its Rule by.
fn rule_id(change: &RuleChange) -> String {
    change
        .rule
        .as_ref()
        .map_or_else(|| change.operation.resource_id.clone().unwrap_or_default(), |r| r.id.clone())
}

impl Session {
    /// The channel's prefix: every webhook URL Switchboard gives out for it starts with it.
    fn signing_prefix(&self, channel: Uuid) -> String {
        format!("{}/v1/twilio/{channel}/", self.public_base_url.trim_end_matches('/'))
    }

    /// The prefix of the channel's fallback URLs, when a fallback ingress is configured.
    fn fallback_signing_prefix(&self, channel: Uuid) -> Option<String> {
        let base = self.settings.webhooks.fallback_base_url.trim_end_matches('/');
        (!base.is_empty()).then(|| format!("{base}/v1/twilio/{channel}/"))
    }

    /// Whether the fallback URLs lack a Rule pointed at the set-up's Setting.
    fn fallback_unpointed(&self, row: &WebhookSigning) -> bool {
        let expected = self.fallback_signing_prefix(row.channel_id);
        expected.is_some() && (row.fallback_rule_id.is_none() || row.fallback_prefix != expected)
    }

    /// Whether the set-up holds a Rule for fallback URLs no longer configured (the fallback base
    /// changed or was removed): it is deleted at Twilio, so it neither lingers there nor keeps
    /// the Setting it applies from being retired.
    fn fallback_stale(&self, row: &WebhookSigning) -> bool {
        row.fallback_rule_id.is_some() && row.fallback_prefix != self.fallback_signing_prefix(row.channel_id)
    }

    /// The channel's signing set-up, if it has one.
    pub async fn webhook_signing(&self, channel: ChannelId) -> Result<Option<WebhookSigning>, SessionError> {
        self.channel(channel).await?;
        Ok(store::load(&self.pool, channel.uuid()).await?)
    }

    /// Has Twilio sign channel `channel`'s webhooks with a new SharedKey and `algorithm`: sets
    /// signing up the first time, rotates to a new key afterwards.
    pub async fn set_up_webhook_signing(&self, channel: ChannelId, algorithm: &str) -> Result<WebhookSigning, SessionError> {
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
        let current = match store::load(&mut *guard, channel.uuid()).await? {
            Some(row) if row.pending() => Some(self.settle(&creds, row).await?),
            other => other,
        };
        if let Some(pending) = current.as_ref().filter(|r| r.pending()) {
            let (id, status) = match &pending.operation_id {
                Some(id) => (id, &pending.operation_status),
                None => (
                    pending.fallback_operation_id.as_ref().unwrap_or(&pending.rule_id),
                    &pending.fallback_operation_status,
                ),
            };
            return Err(SessionError::Precondition(format!(
                "Twilio is still propagating the previous change (operation {id}, {}); try again once it completes",
                status.as_deref().unwrap_or("RUNNING"),
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
                self.undo_key(channel.uuid(), &creds, None, &key.id).await;
                return Err(twilio_failure("create a Webhook Setting", &e));
            }
        };
        // 3. The Rules for the channel's URLs, pointed at it.
        let prefix = self.signing_prefix(channel.uuid());
        let existing = current.as_ref().map(|c| c.rule_id.clone());
        let change = match self.point_rule(&creds, existing, &prefix, &friendly, &setting.id).await {
            Ok(change) => change,
            Err(e) => {
                self.undo_key(channel.uuid(), &creds, Some(&setting.id), &key.id).await;
                return Err(e);
            }
        };
        let mut row = WebhookSigning {
            channel_id: channel.uuid(),
            rule_id: rule_id(&change),
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
            fallback_rule_id: current.as_ref().and_then(|c| c.fallback_rule_id.clone()),
            fallback_prefix: current.as_ref().and_then(|c| c.fallback_prefix.clone()),
            fallback_operation_id: None,
            fallback_operation_status: None,
        };
        // The channel's Rule change is accepted, so there is no going back from here: a fallback
        // Rule Twilio refuses now is made by a later settle, and the old key stays until then.
        self.point_fallback(&creds, &mut row).await;
        store::save(&mut *guard, &row).await?;
        guard.commit().await?;
        tracing::info!(channel_id = %channel, key_sid = %row.key_sid, rule_id = %row.rule_id, operation_id = ?row.operation_id,
            fallback_rule_id = ?row.fallback_rule_id, "shared-key signing set up at Twilio; the change propagates");
        // Twilio may have completed it already.
        self.settle(&creds, row).await
    }

    /// Creates the Rule for `prefix`, or points the existing one (`existing`, else one found by
    /// its prefix: ours, or one made by hand) at `setting`.
    async fn point_rule(
        &self,
        creds: &Credentials,
        existing: Option<String>,
        prefix: &str,
        friendly: &str,
        setting: &str,
    ) -> Result<RuleChange, SessionError> {
        let existing = match existing {
            Some(id) => Some(id),
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

    /// Points the fallback ingress's Rule (if one is configured) at `row`'s Setting, recording
    /// the change in `row`; a failure is recorded as the row's last error, for a later settle.
    async fn point_fallback(&self, creds: &Credentials, row: &mut WebhookSigning) {
        if self.fallback_stale(row) && !self.forget_fallback_rule(creds, row).await {
            return; // the next settle tries again
        }
        let Some(prefix) = self.fallback_signing_prefix(row.channel_id) else {
            return;
        };
        let existing = row
            .fallback_rule_id
            .take()
            .filter(|_| row.fallback_prefix.as_deref() == Some(prefix.as_str()));
        let friendly = format!("switchboard channel {} (fallback)", row.channel_id);
        match self.point_rule(creds, existing, &prefix, &friendly, &row.setting_id).await {
            Ok(change) => {
                row.fallback_rule_id = Some(rule_id(&change));
                row.fallback_operation_id = Some(change.operation.id);
                row.fallback_operation_status = Some(change.operation.status);
            }
            Err(e) => {
                tracing::warn!(channel_id = %row.channel_id, error = %e, "could not point the fallback URLs' Webhook Rule; will try again");
                row.fallback_operation_id = None;
                row.last_error = Some(format!("the fallback URLs' Rule: {e}"));
            }
        }
        row.fallback_prefix = Some(prefix);
    }

    /// Deletes the Rule of fallback URLs no longer configured, recording it in `row`; returns
    /// whether it is gone (a failure is recorded as the row's last error, for a later settle).
    async fn forget_fallback_rule(&self, creds: &Credentials, row: &mut WebhookSigning) -> bool {
        let Some(rule) = row.fallback_rule_id.clone() else {
            return true;
        };
        match gone_is_fine(self.twilio.delete_rule(creds, &rule).await) {
            Ok(()) => {
                tracing::info!(channel_id = %row.channel_id, rule_id = rule, prefix = ?row.fallback_prefix,
                    "deleted the Webhook Rule of fallback URLs no longer configured");
                row.fallback_rule_id = None;
                row.fallback_prefix = None;
                row.fallback_operation_id = None;
                row.fallback_operation_status = None;
                true
            }
            Err(e) => {
                tracing::warn!(channel_id = %row.channel_id, rule_id = rule, error = %e, "could not delete the old fallback URLs' Webhook Rule; will try again");
                row.last_error = Some(format!(
                    "the old fallback URLs' Rule: {}",
                    twilio_failure("delete the Webhook Rule", &e)
                ));
                false
            }
        }
    }

    /// Points the channel's own Rule at `row`'s Setting again (Twilio abandoned its change while
    /// the fallback Rule's went live).
    async fn repoint_rule(&self, creds: &Credentials, row: &mut WebhookSigning) -> Result<(), SessionError> {
        let friendly = format!("switchboard channel {}", row.channel_id);
        // Found by prefix: a Rule whose creation was abandoned does not exist.
        let change = self.point_rule(creds, None, &row.prefix, &friendly, &row.setting_id).await?;
        row.rule_id = rule_id(&change);
        row.operation_id = Some(change.operation.id);
        row.operation_status = Some(change.operation.status);
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
    pub async fn settle_webhook_signing(&self, channel: ChannelId) -> Result<Option<WebhookSigning>, SessionError> {
        let Some(row) = store::load(&self.pool, channel.uuid()).await? else {
            return Ok(None);
        };
        if !row.pending() && row.retiring_key_sid.is_none() && !self.fallback_unpointed(&row) && !self.fallback_stale(&row) {
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
        let Some(row) = store::load(&mut *guard, channel.uuid()).await? else {
            return Ok(None);
        };
        let settled = self.settle(&creds, row).await?;
        guard.commit().await?;
        Ok(Some(settled))
    }

    /// Reads the Operation `id`, if there is one.
    async fn operation(&self, creds: &Credentials, id: Option<&str>) -> Result<Option<Operation>, SessionError> {
        let Some(id) = id else {
            return Ok(None);
        };
        let operation = self
            .twilio
            .webhook_operation(creds, id)
            .await
            .map_err(|e| twilio_failure("read the Rule change's operation", &e))?;
        Ok(Some(operation))
    }

    async fn settle(&self, creds: &Credentials, mut row: WebhookSigning) -> Result<WebhookSigning, SessionError> {
        let own = self.operation(creds, row.operation_id.as_deref()).await?;
        let fallback = self.operation(creds, row.fallback_operation_id.as_deref()).await?;
        if let Some(op) = &own {
            row.operation_status = Some(op.status.clone());
        }
        if let Some(op) = &fallback {
            row.fallback_operation_status = Some(op.status.clone());
        }
        let (own_change, fallback_change) = (Change::of(own.as_ref()), Change::of(fallback.as_ref()));
        let channel = row.channel_id;
        match (own_change, fallback_change) {
            (Change::Running, _) | (_, Change::Running) => {}
            (Change::Abandoned, Change::Completed) => {
                // The fallback URLs sign with the new key already: only forward from here.
                let error = abandoned_text(&row.operation_id, own.as_ref());
                tracing::warn!(channel_id = %channel, error = %error, "Twilio abandoned the channel Rule's change; asking again");
                // The fallback's completed Operation is kept, so the next settle knows again
                // that there is no going back; so is the abandoned one when asking fails.
                row.last_error = Some(error);
                if let Err(e) = self.repoint_rule(creds, &mut row).await {
                    row.last_error = Some(format!("the channel's Rule: {e}"));
                }
            }
            (Change::Abandoned, _) => return self.abandon(creds, row, own.as_ref()).await,
            (_, Change::Abandoned) => {
                let error = abandoned_text(&row.fallback_operation_id, fallback.as_ref());
                tracing::warn!(channel_id = %channel, error = %error, "Twilio abandoned the fallback Rule's change; asking again");
                // The channel Rule's completed Operation is kept until the fallback's is live.
                self.point_fallback(creds, &mut row).await;
                row.last_error = Some(row.last_error.take().unwrap_or(error));
            }
            _ => {
                // Every Rule's change is live (or none was made).
                row.operation_id = None;
                row.fallback_operation_id = None;
                if self.fallback_unpointed(&row) || self.fallback_stale(&row) {
                    self.point_fallback(creds, &mut row).await;
                }
            }
        }
        if !row.pending() && !self.fallback_unpointed(&row) && !self.fallback_stale(&row) && row.retiring_key_sid.is_some() {
            // Live everywhere: what it replaced signs nothing any more.
            let (setting, key) = (row.retiring_setting_id.clone(), row.retiring_key_sid.clone());
            if self.forget_at_twilio(creds, setting.as_deref(), key.as_deref()).await {
                if let Some(key) = key.as_deref() {
                    match self.remove_webhook_key(channel, key).await {
                        Ok(()) | Err(SessionError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                    tracing::info!(channel_id = %channel, key_sid = key, "the replaced webhook key is retired");
                }
                row.retiring_setting_id = None;
                row.retiring_key_sid = None;
            }
        }
        row.updated_at = self.now();
        store::save(&self.pool, &row).await?;
        Ok(row)
    }

    /// Twilio abandoned the channel Rule's change (and the fallback's, if any): the Rules still
    /// apply what they did, so the new Setting and key never signed and go; the old ones stay.
    async fn abandon(&self, creds: &Credentials, mut row: WebhookSigning, op: Option<&Operation>) -> Result<WebhookSigning, SessionError> {
        let error = abandoned_text(&row.operation_id, op);
        tracing::warn!(channel_id = %row.channel_id, error = %error, "Twilio abandoned the Webhook Rule change; keeping the previous signing");
        self.undo_key(row.channel_id, creds, Some(&row.setting_id), &row.key_sid).await;
        match (row.retiring_setting_id.take(), row.retiring_key_sid.take()) {
            (Some(setting), Some(key)) => {
                row.setting_id = setting;
                row.key_sid = key;
            }
            _ => {
                store::delete(&self.pool, row.channel_id).await?;
                return Err(SessionError::Precondition(error));
            }
        }
        row.operation_id = None;
        row.fallback_operation_id = None;
        row.last_error = Some(error);
        row.updated_at = self.now();
        store::save(&self.pool, &row).await?;
        Ok(row)
    }
}

/// What to tell an admin about an abandoned change.
fn abandoned_text(id: &Option<String>, op: Option<&Operation>) -> String {
    let status = op.map_or_else(|| "abandoned".to_owned(), |o| o.status.to_lowercase());
    let detail = op.and_then(|o| o.error.as_ref()).map(ToString::to_string).unwrap_or_default();
    format!("Twilio {status} the change ({}): {detail}", id.as_deref().unwrap_or_default())
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
