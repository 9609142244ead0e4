//! Every service on its own RabbitMQ user with the least permissions `Topology::permissions`
//! gives it (the ones `switchboard migrate --rabbitmq-permissions` prints): the topology is
//! declared beforehand by an administrator, and a customer's conversation still runs through
//! every service. Users are made with `rabbitmqctl`, as an operator would.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::json;
use switchboard_test_support::{TestBus, wait_until};

use crate::harness::*;

const SERVICES: [&str; 6] = ["ingress", "session", "routing", "sender", "bots", "api"];

/// RabbitMQ users that exist for one test.
struct BrokerUsers(Vec<String>);

impl Drop for BrokerUsers {
    fn drop(&mut self) {
        for user in &self.0 {
            let _ = Command::new("rabbitmqctl").args(["-q", "delete_user", user]).output();
        }
    }
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (the broker's CLI, installed with RabbitMQ)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The broker URL as `user`.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn every_service_runs_on_a_broker_user_that_may_only_use_its_own_queues() {
    let mut bus = TestBus::new();
    bus.declare().await; // the migrate step, as an administrator
    let topology = bus.topology();
    let mut users = BrokerUsers(Vec::new());
    let mut urls = BTreeMap::new();
    for service in SERVICES {
        let user = format!("{}-{service}", bus.config.namespace);
        let password = uuid::Uuid::new_v4().simple().to_string();
        rabbitmqctl(&["add_user", &user, &password]);
        users.0.push(user.clone());
        let p = topology.permissions(service);
        rabbitmqctl(&["set_permissions", "-p", "/", &user, &p.configure, &p.write, &p.read]);
        urls.insert(service.to_owned(), as_user(bus.url(), &user, &password));
    }
    bus.config.declare = false; // the services only check that it exists
    let routing_url = urls["routing"].clone();
    let w = World::start_on(json!({}), bus, urls).await;

    // Each service consumes its own queues under its own user.
    for queue in topology.system_queues() {
        let name = topology.queue(&queue.name);
        wait_until(WAIT, &format!("a consumer on {name}"), || async {
            w._bus.queue_counts(&name).await.is_some_and(|(_, consumers)| consumers > 0)
        })
        .await;
    }

    // A conversation through every service.
    w.conversation_with_ana("+5511977776666", "hi there").await;
    assert_eq!(
        w.emulator().sent().iter().filter(|m| m.body.as_deref() == Some("hi there")).count(),
        1
    );

    // Routing's user may not read session's queue, nor declare anything.
    let conn = lapin::Connection::connect(&routing_url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let stolen = channel
        .basic_consume(
            topology.queue("session.inbound.0").as_str().into(),
            "thief".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await;
    assert!(format!("{stolen:?}").contains("ACCESS_REFUSED"), "{stolen:?}");
    let channel = conn.create_channel().await.unwrap();
    let declared = channel
        .queue_declare(
            topology.queue("routing.mine").as_str().into(),
            lapin::options::QueueDeclareOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await;
    assert!(format!("{declared:?}").contains("ACCESS_REFUSED"), "{declared:?}");
    let _ = conn.close(200, "done".into()).await;
    w.stop().await;
    drop(users);
}
