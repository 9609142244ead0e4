//! Connections use PostgreSQL's default plan cache: a prepared statement settles on a generic
//! plan (made without its parameter values) after five runs and keeps it. That is safe only
//! while the hot lookups' indexes lead with the looked-up value: a generic plan over an index
//! led by the channel scanned the whole channel per message once it grew (docs/benchmarks.md,
//! "Profiling the inbound path"). This checks the generic plans of the inbound path's lookups on
//! a channel of 20,000 customers, conversations and messages: index scans, never a scan of the
//! table. The statements' shapes are those of `inbound.rs` and `delivery.rs`.

use switchboard_test_support::TestDb;

const SEED: &str = "
INSERT INTO session.channels (id, name, account_sid, auth_token_key_id, auth_token_ciphertext)
VALUES ('00000000-0000-7000-8000-000000000001', 'big', 'AC00000000000000000000000000000b16', 'k1', '\\x00');
INSERT INTO session.numbers (id, channel_id, phone, display_name)
VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', '+14155550100', 'Big');
INSERT INTO session.customers (id, channel_id, key, phone, bsuid)
SELECT ('00000000-0000-7000-8001-' || lpad(to_hex(i), 12, '0'))::uuid, '00000000-0000-7000-8000-000000000001',
       'BR.' || i, '+5511' || (900000000 + i), 'BR.' || i
FROM generate_series(1, 20000) i;
INSERT INTO session.conversations (id, channel_id, number_id, customer_id, status, status_reason, opened_at, status_changed_at, last_activity_at)
SELECT ('00000000-0000-7000-8002-' || lpad(to_hex(i), 12, '0'))::uuid, '00000000-0000-7000-8000-000000000001',
       '00000000-0000-7000-8000-000000000002', ('00000000-0000-7000-8001-' || lpad(to_hex(i), 12, '0'))::uuid,
       CASE WHEN i % 10 = 0 THEN 'active' ELSE 'closed' END, 192350000, now(), now(), now()
FROM generate_series(1, 20000) i;
INSERT INTO session.messages (id, conversation_id, channel_id, direction, author_kind, status, twilio_sid)
SELECT ('00000000-0000-7000-8003-' || lpad(to_hex(i), 12, '0'))::uuid,
       ('00000000-0000-7000-8002-' || lpad(to_hex(i), 12, '0'))::uuid, '00000000-0000-7000-8000-000000000001',
       'inbound', 'customer', 'received', 'SM' || lpad(to_hex(i), 32, '0')
FROM generate_series(1, 20000) i;
ANALYZE session.customers, session.conversations, session.messages;
";

/// The lookups, as prepared statements with their parameter types, and sample values.
const LOOKUPS: [(&str, &str, &str); 5] = [
    (
        "customer by key, phone or BSUID",
        "PREPARE q(uuid, text, text, text) AS SELECT id FROM session.customers WHERE channel_id = $1 \
         AND (key = $2 OR ($3::text IS NOT NULL AND phone = $3) OR ($4::text IS NOT NULL AND bsuid = $4)) \
         ORDER BY (key = $2) DESC LIMIT 1 FOR UPDATE",
        "('00000000-0000-7000-8000-000000000001', 'BR.77', '+5511900000077', 'BR.77')",
    ),
    (
        "the customer's live conversation on the number",
        "PREPARE q(uuid, uuid) AS SELECT id FROM session.conversations \
         WHERE number_id = $1 AND customer_id = $2 AND status <> 'closed'",
        "('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8001-00000000000a')",
    ),
    (
        "a batch's MessageSid dedupe",
        "PREPARE q(uuid[], text[]) AS SELECT channel_id, twilio_sid FROM session.messages \
         WHERE channel_id = ANY($1) AND twilio_sid = ANY($2)",
        "('{00000000-0000-7000-8000-000000000001}', '{SM0000000000000000000000000000004d}')",
    ),
    (
        "one MessageSid",
        "PREPARE q(uuid, text) AS SELECT id FROM session.messages WHERE channel_id = $1 AND twilio_sid = $2",
        "('00000000-0000-7000-8000-000000000001', 'SM0000000000000000000000000000004d')",
    ),
    (
        "status reports' messages by SID",
        "PREPARE q(uuid[], uuid[], text[]) AS SELECT m.id FROM session.messages m \
         JOIN session.conversations c ON c.id = m.conversation_id \
         WHERE m.id IN (SELECT unnest($1::uuid[]) UNION SELECT s.id FROM session.messages s \
         JOIN unnest($2::uuid[], $3::text[]) u(ch, sid) ON s.twilio_sid IS NOT NULL AND s.twilio_sid = u.sid AND s.channel_id = u.ch) \
         ORDER BY m.id FOR UPDATE OF m",
        "('{}', '{00000000-0000-7000-8000-000000000001}', '{SM0000000000000000000000000000004d}')",
    ),
];

#[tokio::test]
async fn the_inbound_lookups_keep_index_plans_as_generic_plans_on_a_grown_channel() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::raw_sql(SEED).execute(&mut *conn).await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (name, prepare, values) in LOOKUPS {
        sqlx::raw_sql(sqlx::AssertSqlSafe(prepare)).execute(&mut *conn).await.unwrap();
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE q{values}")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        for table in ["customers", "conversations", "messages"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "{name}: the generic plan scans {table}:\n{plan}"
            );
        }
        assert!(plan.contains("Index"), "{name}: no index in the generic plan:\n{plan}");
        sqlx::raw_sql("DEALLOCATE q").execute(&mut *conn).await.unwrap();
    }
}
