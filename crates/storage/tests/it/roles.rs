//! Each service's login reaches its own schema and nothing else (the whole e2e suite also runs
//! every service on such a login).

use sqlx::{Connection, PgConnection};
use switchboard_storage::roles::SERVICES;
use switchboard_test_support::TestDb;

/// A table of each schema.
fn table_of(schema: &str) -> &'static str {
    match schema {
        "session" => "session.channels",
        "routing" => "routing.work_items",
        "sender" => "sender.deliveries",
        "api" => "api.keys",
        _ => "ingress.webhook_journal",
    }
}

fn denied(result: &Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn each_service_role_reaches_its_own_schema_only_and_cannot_change_any() {
    let db = TestDb::new().await;
    let mut logins = std::collections::BTreeMap::new();
    for service in SERVICES {
        logins.insert(service, db.login_for(service).await);
    }
    for service in SERVICES {
        let mut conn = PgConnection::connect(&logins[service]).await.unwrap();
        for schema in SERVICES {
            let read = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {} LIMIT 1", table_of(schema))))
                .execute(&mut conn)
                .await;
            if schema == service {
                assert!(read.is_ok(), "{service} reads its own {schema}: {read:?}");
                let write = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {} WHERE false", table_of(schema))))
                    .execute(&mut conn)
                    .await;
                assert!(write.is_ok(), "{service} writes its own {schema}: {write:?}");
            } else {
                assert!(denied(&read), "{service} must not read {schema}: {read:?}");
            }
        }
        for ddl in [
            format!("CREATE TABLE {service}.intruder (id int)"),
            "CREATE TABLE public.intruder (id int)".to_owned(),
            format!("DROP TABLE {}", table_of(service)),
        ] {
            let result = sqlx::query(sqlx::AssertSqlSafe(ddl.clone())).execute(&mut conn).await;
            assert!(denied(&result), "{service}: {ddl} must be refused");
        }
        conn.close().await.unwrap();
    }
    // The services that keep an outbox can write it on their own sequence.
    for service in ["session", "routing", "sender"] {
        let mut conn = PgConnection::connect(&logins[service]).await.unwrap();
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {service}.outbox (message_id, routing_key, payload) VALUES (gen_random_uuid(), 'probe', '')"
        )))
        .execute(&mut conn)
        .await;
        assert!(inserted.is_ok(), "{service} writes its outbox: {inserted:?}");
        conn.close().await.unwrap();
    }
}
