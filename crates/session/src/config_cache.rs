//! Session's configuration read on the message path, kept in process: each channel's automated
//! messages (looked up for every automated message sent, several per conversation), each
//! workstream's default language, and the number each inbound message is addressed to (looked
//! up for every inbound message). Triggers on `session.automated_messages`,
//! `session.workstreams`, `session.numbers` and `session.channels` NOTIFY [`CHANNEL`] on any
//! change; the rules by which a change reaches every replica are those of
//! `switchboard_storage::cache`. This replica's writers drop its copy right after they commit.

use std::sync::Arc;

use sqlx::PgConnection;
use switchboard_storage::cache::{Cache, Invalidation};
use uuid::Uuid;

use crate::error::SessionError;

/// The channel the triggers notify.
pub const CHANNEL: &str = "session_config";

/// The number an inbound message was sent to, as the cache keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct NumberForInbound {
    pub(crate) id: Uuid,
    pub(crate) workstream_id: Option<Uuid>,
    pub(crate) default_language: String,
    pub(crate) customer_attachments: bool,
    pub(crate) agent_attachments: bool,
    pub(crate) max_attachment_bytes: i64,
    pub(crate) live: bool,
}

/// One stored automated message of a channel.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AutomatedRow {
    /// The number it is set for; `None`: the channel's.
    pub number_id: Option<Uuid>,
    /// Its trigger.
    pub trigger: String,
    /// Its language; "": any.
    pub language: String,
    /// Its text.
    pub text: String,
    /// Whether it is sent.
    pub active: bool,
}

/// The in-process cache of session's configuration.
#[derive(Debug)]
pub struct ConfigCache {
    /// Drops this cache (after a local write), and listens for the others' changes.
    pub invalidation: Arc<Invalidation>,
    automated: Cache<Uuid, Arc<Vec<AutomatedRow>>>,
    languages: Cache<Uuid, Option<String>>,
    numbers: Cache<(Uuid, String), Option<Arc<NumberForInbound>>>,
}

impl Default for ConfigCache {
    fn default() -> Self {
        let invalidation = Invalidation::new(CHANNEL);
        Self {
            automated: Cache::new(invalidation.clone()),
            languages: Cache::new(invalidation.clone()),
            numbers: Cache::new(invalidation.clone()),
            invalidation,
        }
    }
}

impl ConfigCache {
    /// Every automated message stored for `channel_id` (the channel's and its numbers').
    pub async fn automated(&self, conn: &mut PgConnection, channel_id: Uuid) -> Result<Arc<Vec<AutomatedRow>>, SessionError> {
        self.automated
            .get_or_load(channel_id, || async {
                let rows: Vec<AutomatedRow> = sqlx::query_as(
                    "SELECT number_id, trigger, language, text, active FROM session.automated_messages WHERE channel_id = $1",
                )
                .bind(channel_id)
                .fetch_all(&mut *conn)
                .await?;
                Ok::<_, SessionError>(Arc::new(rows))
            })
            .await
    }

    /// The live or inactive number `phone` of channel `channel_id` (`None`: no such number, or
    /// it or its channel was deleted).
    pub(crate) async fn inbound_number(
        &self,
        conn: &mut PgConnection,
        channel_id: Uuid,
        phone: &str,
    ) -> Result<Option<Arc<NumberForInbound>>, SessionError> {
        self.numbers
            .get_or_load((channel_id, phone.to_owned()), || async {
                let number = sqlx::query_as::<_, NumberForInbound>(
                    "SELECT n.id, n.workstream_id, n.default_language, n.customer_attachments, n.agent_attachments, n.max_attachment_bytes, \
                     (n.active AND c.active) AS live FROM session.numbers n JOIN session.channels c ON c.id = n.channel_id \
                     WHERE n.channel_id = $1 AND n.phone = $2 AND n.deleted_at IS NULL AND c.deleted_at IS NULL",
                )
                .bind(channel_id)
                .bind(phone)
                .fetch_optional(&mut *conn)
                .await?;
                Ok::<_, SessionError>(number.map(Arc::new))
            })
            .await
    }

    /// The default language of workstream `id` (`None`: none set, or no such workstream).
    pub async fn workstream_language(&self, conn: &mut PgConnection, id: Uuid) -> Result<Option<String>, SessionError> {
        self.languages
            .get_or_load(id, || async {
                let language: Option<Option<String>> = sqlx::query_scalar("SELECT default_language FROM session.workstreams WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok::<_, SessionError>(language.flatten())
            })
            .await
    }
}
