//! Customers known only by their WhatsApp username (#21 item 6): Twilio sends their BSUID in
//! `From` and `ExternalUserId` and no phone number. They work like anyone else, and a customer
//! who hides their number later stays the same customer.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn a_customer_known_only_by_bsuid_is_served_and_one_who_hides_their_number_stays_the_same() {
    let w = World::start().await;
    let mut ana = Stream::open(&w.stack.urls.api, &w.ana.key, None).await;

    // Only a BSUID: offered, shown, answered at the BSUID.
    let conversation = w.taken_by(&w.ana, &mut ana, "BR.1A2B3C4D5E").await;
    let c = w.ana.api.get(&format!("/conversations/{conversation}")).await.unwrap();
    assert!(c["customer"]["phone"].is_null(), "{c}");
    assert_eq!(c["customer"]["bsuid"], "BR.1A2B3C4D5E", "{c}");
    let fact: Option<String> =
        sqlx::query_scalar("SELECT facts->>'customer.bsuid' FROM routing.work_items WHERE conversation_id = $1::uuid")
            .bind(&conversation)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(fact.as_deref(), Some("BR.1A2B3C4D5E"), "routing rules can use customer.bsuid");
    let path = format!("/conversations/{conversation}/messages");
    w.ana
        .api
        .post(&path, &json!({ "text": "Hi, how can I help?", "client_message_id": "bsuid-1" }))
        .await
        .unwrap();
    switchboard_test_support::wait_until(WAIT, "the reply read at the BSUID", || async {
        w.ana
            .api
            .get(&path)
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "Hi, how can I help?" && m["status"] == "read")
    })
    .await;
    assert!(
        w.emulator().sent().iter().any(|m| m.to == "whatsapp:BR.1A2B3C4D5E"),
        "sent to whatsapp:BR.1A2B3C4D5E"
    );

    // A customer writes with their number (and BSUID), then turns on a username and writes with
    // the BSUID alone: the same customer, the same conversation.
    let known = w.taken_by(&w.ana, &mut ana, "+5511988880001").await;
    let bsuid_of_known: Option<String> = sqlx::query_scalar(
        "SELECT cu.bsuid FROM session.customers cu JOIN session.conversations c ON c.customer_id = cu.id WHERE c.id = $1::uuid",
    )
    .bind(&known)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert!(bsuid_of_known.is_none(), "the harness's customers send no BSUID");
    w.customer_writes("+5511988880001", json!({ "body": "my id", "external_user_id": "BR.9Z8Y7X6W" }))
        .await;
    w.customer_writes("BR.9Z8Y7X6W", json!({ "body": "now with a username" })).await;
    ana.expect("conversation.message.v1", |d| {
        d["conversation_id"] == known.as_str() && d["body"] == "now with a username"
    })
    .await;
    let customers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM session.customers WHERE bsuid = 'BR.9Z8Y7X6W' OR phone = '+5511988880001'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(customers, 1, "one customer, linked by the BSUID");
    let c = w.ana.api.get(&format!("/conversations/{known}")).await.unwrap();
    assert_eq!(c["customer"]["phone"], "+5511988880001", "{c}");
    assert_eq!(c["customer"]["bsuid"], "BR.9Z8Y7X6W", "{c}");
    ana.close().await;
    w.stop().await;
}
