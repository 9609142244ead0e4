//! Historical reporting through the API (#18 item 9): a supervisor asks how a queue and its
//! agents did over a period, and what one conversation's figures were, with no database client.
//! The service clock is moved on to make the waits and handling times.

use serde_json::{Value, json};
use switchboard_domain::Clock;
use switchboard_test_support::wait_until;
use time::format_description::well_known::Rfc3339;

use crate::harness::*;

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Asserts `value` is a number within 10 s of `expected` seconds (real time also passes).
fn about(value: &Value, expected: f64, what: &str) {
    let got = value.as_f64().unwrap_or_else(|| panic!("{what}: {value} is not a number"));
    assert!(
        (expected..expected + 10.0).contains(&got),
        "{what}: {got} s, expected about {expected} s"
    );
}

async fn offer_to_ana(ana: &mut Stream, w: &World, customer: &str) -> Value {
    w.customer_writes(customer, json!({ "body": "hello" })).await;
    ana.expect("offer.created.v1", |d| d["agent_id"] == w.ana.id.as_str()).await
}

#[tokio::test]
async fn a_supervisor_reads_how_a_queue_and_its_agents_did_over_a_period() {
    let w = World::start().await;
    let started = w.clock.now();
    let wait = |secs: i64| w.clock.advance(time::Duration::seconds(secs));
    w.bo.api.put("/me/presence", &json!({ "presence": "away" })).await.unwrap();
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;

    // Answered in 30 s (within the default 60 s threshold), handled for 2 minutes, wrapped up in 20 s.
    let offer = offer_to_ana(&mut ana, &w, "+5511944440001").await;
    let first = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
    wait(30);
    accept(&w.ana, &offer).await;
    wait(120);
    w.ana.api.post(&format!("/conversations/{first}/end"), &json!({})).await.unwrap();
    wait(20);
    w.ana.api.post(&format!("/conversations/{first}/close"), &json!({})).await.unwrap();

    // Answered in 90 s, and still being handled.
    let offer = offer_to_ana(&mut ana, &w, "+5511944440002").await;
    let second = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
    wait(90);
    accept(&w.ana, &offer).await;

    // Closed while it waited: abandoned.
    let offer = offer_to_ana(&mut ana, &w, "+5511944440003").await;
    let third = offer["data"]["conversation_id"].as_str().unwrap().to_owned();
    w.admin
        .post(&format!("/conversations/{third}/force-close"), &json!({}))
        .await
        .unwrap();

    // Waits longer than the queue's 60 s overflow rule allows: moved to the overflow queue.
    let spill = w
        .admin
        .post(
            "/queues",
            &json!({ "name": "Spill", "definition": { "priority": 1, "members": [w.bo.id] } }),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let support: Value = w.admin.get(&format!("/queues/{}", w.queue_id)).await.unwrap();
    let mut definition = support["definition"].clone();
    definition["overflow"] = json!({ "wait_time": { "seconds": 60, "action": { "kind": "transfer_to_queue", "queue_id": spill } } });
    w.admin
        .put(
            &format!("/queues/{}", w.queue_id),
            &json!({ "name": support["name"], "definition": definition }),
        )
        .await
        .unwrap();
    w.ana.api.put("/me/presence", &json!({ "presence": "away" })).await.unwrap();
    w.customer_writes("+5511944440004", json!({ "body": "anyone?" })).await;
    let fourth: String = switchboard_test_support::wait_for(WAIT, "the fourth conversation queued", || async {
        let items: Value = w.admin.get(&format!("/queues/{}/items?state=queued", w.queue_id)).await.unwrap();
        items["items"]
            .as_array()
            .and_then(|i| i.first())
            .and_then(|i| i["conversation_id"].as_str())
            .map(str::to_owned)
    })
    .await;
    wait(61);
    wait_until(WAIT, "the fourth conversation overflowed", || async {
        let report: Value = w.admin.get(&format!("/conversations/{fourth}/report")).await.unwrap();
        report["overflows"] == 1
    })
    .await;

    // "How did the queue do?" — over the period of all this.
    let period = format!(
        "from={}&to={}",
        rfc3339(started - time::Duration::minutes(1)),
        rfc3339(w.clock.now() + time::Duration::minutes(1))
    );
    let queues: Value = w.admin.get(&format!("/reports/queues?{period}&id={}", w.queue_id)).await.unwrap();
    let q = &queues[0];
    assert_eq!(
        [
            &q["incoming"],
            &q["answered"],
            &q["answered_within"],
            &q["abandoned"],
            &q["overflowed"],
            &q["waiting"],
            &q["handled"]
        ],
        [4, 2, 1, 1, 1, 0, 1].map(|n| json!(n)).each_ref(),
        "{q}"
    );
    assert_eq!(q["service_level_secs"], 60, "{q}");
    assert!((q["service_level"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9, "{q}");
    assert!((q["abandon_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9, "{q}");
    about(&q["average_speed_of_answer_secs"], 60.0, "average speed of answer");
    about(&q["average_handle_secs"], 120.0, "average handle time");
    about(&q["average_wrap_up_secs"], 20.0, "average wrap-up time");
    // Against a 2-minute threshold both answers count.
    let queues: Value = w
        .admin
        .get(&format!("/reports/queues?{period}&id={}&service_level_secs=120", w.queue_id))
        .await
        .unwrap();
    assert_eq!(queues[0]["answered_within"], 2, "{}", queues[0]);
    // The overflow queue has the fourth conversation waiting.
    let spilled: Value = w.admin.get(&format!("/reports/queues?{period}&id={spill}")).await.unwrap();
    assert_eq!(
        (&spilled[0]["incoming"], &spilled[0]["waiting"]),
        (&json!(1), &json!(1)),
        "{}",
        spilled[0]
    );
    // An earlier period saw nothing.
    let before = format!(
        "from={}&to={}",
        rfc3339(started - time::Duration::hours(3)),
        rfc3339(started - time::Duration::hours(2))
    );
    let quiet: Value = w.admin.get(&format!("/reports/queues?{before}&id={}", w.queue_id)).await.unwrap();
    assert_eq!(
        (&quiet[0]["incoming"], &quiet[0]["service_level"]),
        (&json!(0), &Value::Null),
        "{}",
        quiet[0]
    );

    // "How did Ana do?"
    let agents: Value = w.admin.get(&format!("/reports/agents?{period}&id={}", w.ana.id)).await.unwrap();
    let a = &agents[0];
    assert_eq!(
        [&a["handled"], &a["offered"], &a["accepted"]],
        [1, 3, 2].map(|n| json!(n)).each_ref(),
        "{a}"
    );
    about(&a["average_handle_secs"], 120.0, "Ana's handle time");

    // One conversation's figures.
    let one: Value = w.ana.api.get(&format!("/conversations/{first}/report")).await.unwrap();
    about(&one["first_wait_secs"], 30.0, "first wait");
    about(&one["handle_secs"], 120.0, "handle time");
    about(&one["wrap_up_secs"], 20.0, "wrap-up time");
    assert_eq!(
        (&one["abandoned"], &one["transfers"], &one["overflows"]),
        (&json!(false), &json!(0), &json!(0)),
        "{one}"
    );
    let gone: Value = w.admin.get(&format!("/conversations/{third}/report")).await.unwrap();
    assert_eq!(gone["abandoned"], true, "{gone}");
    let _ = second;

    // Bad input is refused; an agent cannot read queue reports; a supervisor of the overflow
    // queue only cannot read the support queue's.
    let refused = w
        .admin
        .get(&format!("/reports/queues?from=yesterday&to={}", rfc3339(w.clock.now())))
        .await;
    assert!(refused.is_err());
    assert!(w.ana.api.get(&format!("/reports/queues?{period}")).await.is_err());
    let scoped = w
        .admin
        .post(
            "/api-keys",
            &json!({ "name": "spill lead", "role": "supervisor", "queue_ids": [spill] }),
        )
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = raw(
        reqwest::Method::GET,
        format!("{}/api/v1/reports/queues?{period}&id={}", w.stack.urls.api, w.queue_id),
        Some(&scoped),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, theirs) = raw(
        reqwest::Method::GET,
        format!("{}/api/v1/reports/queues?{period}", w.stack.urls.api),
        Some(&scoped),
        None,
    )
    .await;
    assert_eq!((status, theirs.as_array().map(Vec::len)), (200, Some(1)), "{theirs}");
    w.stop().await;
}
