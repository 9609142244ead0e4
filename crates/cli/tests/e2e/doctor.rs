//! `switchboard doctor` (#20 item 6): a healthy stack passes every check; a refused Twilio token,
//! a database without migrations, a broker without the topology and an unreachable OTLP endpoint
//! each fail, named, with what to do.

use secrecy::SecretString;
use sqlx::Connection;
use switchboard_cli::doctor::{Finding, Level, Target, examine};
use switchboard_twilio_emulator::Fault;

use crate::harness::*;

fn target(w: &World, database_url: &str, bus: switchboard_bus::BusConfig, otlp: Option<String>) -> Target {
    Target {
        database_url: SecretString::from(database_url.to_owned()),
        amqp_url: SecretString::from(w._bus.url().to_owned()),
        bus,
        session_url: w.stack.urls.session_grpc.clone(),
        directory_url: w.stack.urls.session_directory.clone(),
        grpc_tls: Default::default(),
        twilio_api_base: w.stack.urls.emulator.clone().unwrap(),
        otlp_endpoint: otlp,
    }
}

fn get<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no check {check} in {findings:#?}"))
}

#[tokio::test]
async fn the_doctor_passes_a_healthy_stack_and_names_each_fault() {
    let w = World::start().await;
    let healthy = examine(&target(&w, &w.db.url, w._bus.config.clone(), None)).await;
    let failures: Vec<_> = healthy.iter().filter(|f| f.level == Level::Fail).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(get(&healthy, "migrations current").level, Level::Ok);
    let delivery = get(&healthy, "queue session.delivery");
    assert!(
        delivery.detail.contains("consumer(s)") && !delivery.detail.contains(" 0 consumer"),
        "{delivery}"
    );
    assert_eq!(get(&healthy, "Twilio accepts \"Acme\"").level, Level::Ok);
    let printed: String = healthy.iter().map(|f| format!("{f}\n")).collect();
    assert!(
        !printed.contains(TOKEN) && !printed.contains("guest:guest"),
        "no secret printed:\n{printed}"
    );

    // Twilio refuses the channel's credentials (an outage answering 401, code 20003, as it
    // does for a revoked token).
    w.emulator().inject(Fault::Outage {
        status: 401,
        code: 20003,
        secs: 60,
    });
    let refused = examine(&target(&w, &w.db.url, w._bus.config.clone(), None)).await;
    let twilio = get(&refused, "Twilio accepts \"Acme\"");
    assert_eq!(twilio.level, Level::Fail, "{twilio}");
    assert!(twilio.detail.contains("20003") && twilio.detail.contains("auth token"), "{twilio}");

    // A database nobody migrated, a broker namespace nobody declared, an OTLP port nobody serves.
    let empty = format!("sb_doctor_{}", uuid::Uuid::new_v4().simple());
    let admin_url = switchboard_test_support::database_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {empty}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let empty_url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{empty}"),
        None => unreachable!("a database URL names its database"),
    };
    let mut undeclared = w._bus.config.clone();
    undeclared.namespace = format!("nobody-{}", uuid::Uuid::new_v4().simple());
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let broken = examine(&target(&w, &empty_url, undeclared, Some(closed))).await;
    let migrations = get(&broken, "migrations current");
    assert_eq!(migrations.level, Level::Fail, "{migrations}");
    assert!(
        migrations.detail.contains("pending") && migrations.detail.contains("switchboard migrate"),
        "{migrations}"
    );
    let inbound = get(&broken, "queue session.inbound.0");
    assert_eq!(inbound.level, Level::Fail, "{inbound}");
    assert!(inbound.detail.contains("not declared"), "{inbound}");
    assert_eq!(get(&broken, "OTLP endpoint").level, Level::Fail);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {empty} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .unwrap();
    w.stop().await;
}
