//! A channel's shared-key signing set-up at Twilio (`session.webhook_signing`); what it means
//! and how it changes is `crate::webhook_signing`.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// A channel's signing set-up, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookSigning {
    pub channel_id: Uuid,
    /// The Rule matching the channel's URLs (`{public_base_url}/v1/twilio/{channel}/`).
    pub rule_id: String,
    pub prefix: String,
    pub setting_id: String,
    /// The key the Rules' Setting signs with (once their changes are live).
    pub key_sid: String,
    pub algorithm: String,
    /// The Rule change Twilio is propagating, if any, kept until every Rule's change settled.
    pub operation_id: Option<String>,
    pub operation_status: Option<String>,
    /// What the change replaces, kept until it is live.
    pub retiring_setting_id: Option<String>,
    pub retiring_key_sid: Option<String>,
    /// Why the last change did not take.
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
    /// The fallback ingress's Rule, pointed at the same Setting; `None` while it is not (no
    /// fallback configured, or its change could not be made yet).
    pub fallback_rule_id: Option<String>,
    pub fallback_prefix: Option<String>,
    pub fallback_operation_id: Option<String>,
    pub fallback_operation_status: Option<String>,
}

impl WebhookSigning {
    /// Whether a Rule change is still propagating (or awaits its verdict).
    pub fn pending(&self) -> bool {
        self.operation_id.is_some() || self.fallback_operation_id.is_some()
    }
}

const COLUMNS: &str = "channel_id, rule_id, prefix, setting_id, key_sid, algorithm, operation_id, operation_status, \
     retiring_setting_id, retiring_key_sid, last_error, updated_at, fallback_rule_id, fallback_prefix, \
     fallback_operation_id, fallback_operation_status";

/// Channel `channel`'s set-up, if it has one.
pub async fn load(conn: impl PgExecutor<'_>, channel: Uuid) -> Result<Option<WebhookSigning>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM session.webhook_signing WHERE channel_id = $1"
    )))
    .bind(channel)
    .fetch_optional(conn)
    .await
}

/// Writes `row`, replacing the channel's set-up.
pub async fn save(conn: impl PgExecutor<'_>, row: &WebhookSigning) -> Result<(), sqlx::Error> {
    // The columns are a constant: nothing here comes from input.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO session.webhook_signing ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (channel_id) DO UPDATE SET rule_id = $2, prefix = $3, setting_id = $4, key_sid = $5, algorithm = $6, \
         operation_id = $7, operation_status = $8, retiring_setting_id = $9, retiring_key_sid = $10, last_error = $11, \
         updated_at = $12, fallback_rule_id = $13, fallback_prefix = $14, fallback_operation_id = $15, \
         fallback_operation_status = $16"
    )))
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
    .bind(&row.fallback_rule_id)
    .bind(&row.fallback_prefix)
    .bind(&row.fallback_operation_id)
    .bind(&row.fallback_operation_status)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets channel `channel`'s set-up (its first change was abandoned).
pub async fn delete(conn: impl PgExecutor<'_>, channel: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM session.webhook_signing WHERE channel_id = $1")
        .bind(channel)
        .execute(conn)
        .await?;
    Ok(())
}
