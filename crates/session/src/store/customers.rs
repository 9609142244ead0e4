//! The customers' SQL (`session.customers`) on the inbound path: a customer is found by key,
//! phone or BSUID (one person whichever address WhatsApp shows), refreshed, or created.

use sqlx::PgExecutor;
use uuid::Uuid;

/// What an inbound message says of its customer.
pub struct Found<'a> {
    /// Phone when shared, else BSUID (`domain::WhatsAppAddress::key`).
    pub key: &'a str,
    pub phone: Option<&'a str>,
    pub bsuid: Option<&'a str>,
    pub wa_id: Option<&'a str>,
    pub profile_name: Option<&'a str>,
}

/// The customer's id: found by key, phone or BSUID (refreshing what changed), or created; one
/// round trip.
pub async fn find_or_create<'c>(db: impl PgExecutor<'c>, channel: Uuid, c: &Found<'_>) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "WITH found AS ( \
               SELECT id FROM session.customers WHERE channel_id = $1 AND (key = $2 OR ($3::text IS NOT NULL AND phone = $3) \
               OR ($4::text IS NOT NULL AND bsuid = $4)) ORDER BY (key = $2) DESC LIMIT 1 FOR UPDATE), \
             refreshed AS ( \
               UPDATE session.customers c SET phone = COALESCE($3, c.phone), bsuid = COALESCE($4, c.bsuid), wa_id = COALESCE($5, c.wa_id), \
               profile_name = COALESCE($6, c.profile_name), updated_at = now() FROM found WHERE c.id = found.id \
               AND (c.phone IS DISTINCT FROM COALESCE($3, c.phone) OR c.bsuid IS DISTINCT FROM COALESCE($4, c.bsuid) \
                    OR c.profile_name IS DISTINCT FROM COALESCE($6, c.profile_name)) RETURNING c.id), \
             inserted AS ( \
               INSERT INTO session.customers (id, channel_id, key, phone, bsuid, wa_id, profile_name) \
               SELECT $7, $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM found) \
               ON CONFLICT (channel_id, key) DO UPDATE SET profile_name = COALESCE(EXCLUDED.profile_name, session.customers.profile_name) \
               RETURNING id) \
             SELECT id FROM found UNION ALL SELECT id FROM inserted LIMIT 1",
    )
    .bind(channel)
    .bind(c.key)
    .bind(c.phone)
    .bind(c.bsuid)
    .bind(c.wa_id)
    .bind(c.profile_name)
    .bind(Uuid::now_v7())
    .fetch_one(db)
    .await
}
