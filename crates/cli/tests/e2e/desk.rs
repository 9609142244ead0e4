//! The web desk in real headless Chromium (#17): an agent signs in, accepts an offer, reads the
//! customer, replies and sees the reply read; once the window is past 24 h the composer offers
//! only templates and one is sent; a second agent cannot open the first one's conversation; a
//! supervisor sees the queue counts change; an admin adds an account and a number and sees the
//! inbound URL. Screenshots land in `target/screenshots/` (README shows them).

use serde_json::json;
use switchboard_test_support::wait_until;

use crate::browser::Browser;
use crate::harness::*;

const PASSWORD: &str = "a long desk password";

/// Invites a user through the API and sets their password with the setup token.
async fn user(w: &World, email: &str, role: &str, agent_id: Option<&str>) {
    let mut body = json!({ "email": email, "name": email.split('@').next().unwrap(), "role": role });
    if let Some(agent) = agent_id {
        body["agent_id"] = json!(agent);
    }
    let invited = w.admin.post("/users", &body).await.unwrap();
    let (status, _) = raw(
        reqwest::Method::POST,
        format!("{}/api/v1/auth/setup", w.stack.urls.api),
        None,
        Some(&json!({ "token": invited["setup_token"], "password": PASSWORD }).to_string()),
    )
    .await;
    assert_eq!(status, 204);
}

async fn sign_in(b: &Browser, api: &str, email: &str) {
    b.goto(&format!("{api}/desk")).await;
    let field = b.find("#email").await;
    b.type_into(&field, email).await;
    b.type_into(&b.find("#password").await, PASSWORD).await;
    b.click_css("#sign-in").await;
    b.wait_text("#who", "signed in", |t| t.contains('(')).await;
}

#[tokio::test]
async fn an_agent_works_a_conversation_in_the_desk_from_offer_to_template() {
    let w = World::start().await;
    let api = w.stack.urls.api.clone();
    user(&w, "ana@example.com", "agent", Some(&w.ana.id)).await;
    user(&w, "bo@example.com", "agent", Some(&w.bo.id)).await;
    // Bo is away: the customer is offered to Ana.
    w.bo.api.put("/me/presence", &json!({ "presence": "away" })).await.unwrap();

    let ana = Browser::start(1280, 860).await;
    sign_in(&ana, &api, "ana@example.com").await;
    ana.find("#offers").await;
    ana.wait_text("#offers", "no offers yet", |t| t.contains("No offers")).await;

    let first = w
        .customer_writes(
            "+5511944443333",
            json!({ "body": "Hello from the browser test", "profile_name": "Carla" }),
        )
        .await;
    // The offer arrives over the stream with its countdown; Ana accepts it.
    ana.wait_text(".offer .countdown", "the offer's countdown", |t| {
        t.starts_with("expires in 1:") || t.starts_with("expires in 2:")
    })
    .await;
    ana.click_css(".offer .accept").await;
    ana.wait_text("#messages .msg.customer", "the customer's message", |t| {
        t.contains("Hello from the browser test")
    })
    .await;
    ana.wait_text("#window", "the window countdown", |t| t.starts_with("24-hour window closes in"))
        .await;
    let conversation = ana.attribute_css("#convs button[aria-current=\"true\"]", "data-conversation").await;

    // Ana replies; the emulator reports it sent, delivered and read, and the ticks follow.
    ana.type_into(&ana.find("#reply").await, "Hi Carla, how can I help?").await;
    ana.click_css("#send").await;
    ana.wait_text("#messages .msg.agent", "the reply read", |t| {
        t.contains("Hi Carla, how can I help?") && t.contains("read")
    })
    .await;
    assert_eq!(
        w.emulator()
            .sent()
            .iter()
            .filter(|m| m.body.as_deref() == Some("Hi Carla, how can I help?"))
            .count(),
        1
    );
    // Typing the reply showed the customer their message read (Twilio's typing indicator, the
    // default `on_typing` policy), and the desk marks it seen.
    ana.wait_text("#messages .msg.customer", "the customer's message seen", |t| t.contains("seen"))
        .await;
    let first_sid = first["message_sid"].as_str().unwrap();
    assert!(
        w.emulator().indicators().indicators.iter().any(|i| i.message_sid == first_sid),
        "a typing indicator named the customer's message"
    );
    ana.screenshot("desk-conversation").await;
    // The number lets agents attach files: the composer offers it, with the size limit.
    ana.wait_text(".composer small", "the attachment limit", |t| t.contains("MB")).await;
    ana.find("#attachment-url").await;
    // She picks a file from her computer: it is uploaded, sent by id, and Twilio downloads it.
    let dir = std::env::temp_dir().join(format!("sb-desk-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let quote = dir.join("quote.pdf");
    std::fs::write(&quote, b"%PDF-1.4\n% a quote for Carla\n").unwrap();
    let picker = ana.find("#attachment-file").await;
    ana.type_into(&picker, quote.to_str().unwrap()).await;
    ana.click_css("#send-attachment").await;
    ana.wait_text("#messages", "the file in the conversation", |t| t.contains("quote.pdf"))
        .await;
    wait_until(WAIT, "Twilio downloaded the desk's file", || async {
        w.emulator()
            .sent()
            .iter()
            .any(|m| m.media.iter().any(|f| f.error.is_none() && f.size_bytes == 29))
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    ana.screenshot("desk-file-sent").await;

    // The stream drops; the customer writes meanwhile; the reconnected stream resumes after the
    // last event it saw and the message shows without a reload.
    // Closed for good (the closing handshake done) before the customer writes.
    let closed = ana
        .run("const done = arguments[arguments.length - 1]; const ws = S.ws; ws.onclose = null; ws.addEventListener('close', () => done(ws.readyState)); ws.close();")
        .await;
    assert_eq!(closed, 3, "the stream is closed");
    // Requests the page made before the drop (a status event's reload, say) may still be
    // answered with what is stored by then: wait until none is in flight.
    wait_until(WAIT, "the desk's requests answered", || async {
        ana.run("const done = arguments[arguments.length - 1]; done(S.inflight);").await == 0
    })
    .await;

    w.customer_writes("+5511944443333", json!({ "body": "Written while you were away" }))
        .await;
    wait_until(WAIT, "the message stored", || async {
        w.ana
            .api
            .get(&format!("/conversations/{conversation}/messages"))
            .await
            .is_ok_and(|m| {
                m.as_array()
                    .is_some_and(|a| a.iter().any(|m| m["body"] == "Written while you were away"))
            })
    })
    .await;
    assert!(
        !ana.text(&ana.find("#messages").await).await.contains("Written while you were away"),
        "not shown before the stream resumes"
    );
    ana.run("const done = arguments[arguments.length - 1]; connectStream(); done(null);")
        .await;
    ana.wait_text("#messages .msg.customer", "the missed message after resuming", |t| {
        t.contains("Written while you were away")
    })
    .await;

    // Bo signs in too and cannot open Ana's conversation, even by asking the API from the page.
    let bo = Browser::start(1280, 860).await;
    sign_in(&bo, &api, "bo@example.com").await;
    let status = bo
        .run(&format!(
            "const done = arguments[arguments.length - 1]; fetch('/api/v1/conversations/{conversation}').then(r => done(r.status));"
        ))
        .await;
    assert_eq!(status, 403, "{status}");
    bo.wait_text("#convs", "Bo's own list", |t| t.contains("None yet")).await;
    bo.close().await;

    // An hour before the window closes the desk says so, naming the templates that will still
    // reach the customer.
    w.sync_templates().await;
    w.clock.advance(time::Duration::hours(23) + time::Duration::minutes(1));
    ana.wait_text("#window-warning", "the window warning", |t| t.contains("follow_up (en)"))
        .await;
    ana.screenshot("desk-window-warning").await;

    // A day passes: free text gives way to the number's approved templates.
    w.clock.advance(time::Duration::hours(2));
    ana.click_css("#convs button[aria-current=\"true\"]").await;
    ana.find("#send-template").await;
    ana.wait_text("#window", "the window closed", |t| t.contains("closed")).await;
    assert!(ana.find_all("#reply").await.is_empty(), "no free text outside the window");
    // A quick reply shows its buttons in the preview.
    ana.select("#template", &template_id(&w, "delivery_slot").await).await;
    ana.wait_text("#template-preview", "the quick reply's buttons", |t| {
        t.contains("Morning | Afternoon")
    })
    .await;
    ana.select("#template", &template_id(&w, "follow_up").await).await;
    ana.select("#template-language", "en").await;
    ana.wait_text("#template-preview", "the template's text", |t| t.contains("{{1}}"))
        .await;
    let variables = ana.find_all("#template-variables input").await;
    assert_eq!(variables.len(), 2, "one input per variable");
    ana.type_into(&variables[0], "Carla").await;
    ana.type_into(&variables[1], "A-42").await;
    ana.screenshot("desk-template").await;
    ana.click_css("#send-template").await;
    ana.wait_text("#messages .msg.agent", "the template delivered", |t| {
        t.contains("following up on your request A-42") && (t.contains("delivered") || t.contains("read"))
    })
    .await;
    assert!(
        w.emulator().sent().iter().any(|m| m.content_sid.is_some()),
        "sent as a Content template"
    );
    ana.close().await;

    // On a phone-width screen the desk stacks its panels.
    let phone = Browser::start(390, 844).await;
    sign_in(&phone, &api, "ana@example.com").await;
    phone.find("#convs button").await;
    phone.screenshot("desk-phone").await;
    phone.close().await;
    w.stop().await;
}

async fn template_id(w: &World, name: &str) -> String {
    let templates = w.ana.api.get(&format!("/templates?number_id={}", w.number_id)).await.unwrap();
    templates.as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_supervisor_sees_queues_change_and_an_admin_sets_up_a_channel() {
    let w = World::start().await;
    let api = w.stack.urls.api.clone();
    user(&w, "sam@example.com", "supervisor", None).await;
    user(&w, "root@example.com", "admin", None).await;
    // Nobody is available: customers wait in the queue.
    for agent in [&w.ana, &w.bo] {
        agent.api.put("/me/presence", &json!({ "presence": "offline" })).await.unwrap();
    }
    let sam = Browser::start(1280, 860).await;
    sign_in(&sam, &api, "sam@example.com").await;
    sam.wait_text(&format!("tr[data-queue=\"{}\"] .waiting", w.queue_id), "an empty queue", |t| {
        t == "0"
    })
    .await;
    w.customer_writes("+5511933332222", json!({ "body": "anyone there?" })).await;
    w.customer_writes("+5511933332223", json!({ "body": "me too" })).await;
    sam.wait_text(&format!("tr[data-queue=\"{}\"] .waiting", w.queue_id), "two waiting", |t| t == "2")
        .await;
    sam.wait_text("#agent-stats", "the agents' presence", |t| t.contains("Offline"))
        .await;
    sam.click_css(&format!("tr[data-queue=\"{}\"] button", w.queue_id)).await;
    sam.wait_text("#queue-items", "the waiting items", |t| {
        t.contains("General") && t.contains("Assign")
    })
    .await;
    sam.screenshot("supervisor").await;
    // The supervisor opens a waiting conversation, reads it and force-closes it.
    let waiting_id = sam.attribute_css("#live button[data-conversation]", "data-conversation").await;
    sam.click_css(&format!("#live button[data-conversation=\"{waiting_id}\"]")).await;
    sam.wait_text("#messages .msg.customer", "the customer's words", |t| {
        t == "anyone there?" || t.contains("me too") || t.contains("anyone")
    })
    .await;
    assert!(sam.find_all("#reply").await.is_empty(), "supervisors read, they do not reply");
    sam.click_css("#force-close").await;
    sam.wait_text(&format!("tr[data-queue=\"{}\"] .waiting", w.queue_id), "one left waiting", |t| {
        t == "1"
    })
    .await;

    // Ana comes back and takes the other customer; Sam watches her typing.
    w.ana.api.put("/me/presence", &json!({ "presence": "available" })).await.unwrap();
    wait_until(WAIT, "Ana's offer", || async {
        w.ana.api.get("/me/offers").await.unwrap().as_array().is_some_and(|o| !o.is_empty())
    })
    .await;
    let offers = w.ana.api.get("/me/offers").await.unwrap();
    let taken = offers[0]["conversation_id"].as_str().unwrap().to_owned();
    w.ana
        .api
        .post(&format!("/offers/{}/accept", offers[0]["id"].as_str().unwrap()), &json!({}))
        .await
        .unwrap();
    sam.click_css(&format!("#live button[data-conversation=\"{taken}\"]")).await;
    sam.wait_text("#conv small", "the conversation active", |t| t.contains("active"))
        .await;
    w.ana.api.post(&format!("/conversations/{taken}/typing"), &json!({})).await.unwrap();
    sam.wait_text("#typing", "Ana typing", |t| t.contains("typing")).await;
    sam.screenshot("supervisor-typing").await;
    sam.close().await;

    let root = Browser::start(1280, 900).await;
    sign_in(&root, &api, "root@example.com").await;
    root.click_css("#nav-admin").await;
    let form = "#channel-form";
    root.type_into(&root.find(&format!("{form} input[name=name]")).await, "Contoso")
        .await;
    root.type_into(
        &root.find(&format!("{form} input[name=account_sid]")).await,
        "AC0123456789abcdef0123456789abcdef",
    )
    .await;
    root.type_into(
        &root.find(&format!("{form} input[name=auth_token]")).await,
        "contoso0secret0token0000000000000",
    )
    .await;
    root.click_css(&format!("{form} button")).await;
    let inbound = root
        .wait_text("#channels .card", "the new account's inbound URL", |t| {
            t.contains("Contoso") && t.contains("/inbound")
        })
        .await;
    assert!(inbound.contains("/v1/twilio/") && inbound.contains("/status"), "{inbound}");
    assert!(!inbound.contains("contoso0secret"), "the token is never shown");
    let contoso_id = root
        .run("const done = arguments[arguments.length - 1]; done([...document.querySelectorAll('#channels .card')].find(c => c.innerText.includes('Contoso')).dataset.channel);")
        .await;
    root.select("#number-channel", contoso_id.as_str().unwrap()).await;
    root.type_into(&root.find("#number-form input[name=display_name]").await, "Contoso support")
        .await;
    root.type_into(&root.find("#number-form input[name=phone]").await, "+14155550999")
        .await;
    root.click_css("#number-form button").await;
    root.wait_text("#numbers", "the new number", |t| t.contains("+14155550999")).await;
    root.screenshot("admin").await;

    // 4. The number's WhatsApp settings: language and attachments, saved through the API.
    root.click_css("#tab-settings").await;
    let settings = format!("#settings-form-{}", w.number_id);
    let language = root.find(&format!("{settings} input[name=default_language]")).await;
    root.clear(&language).await;
    root.type_into(&language, "es").await;
    root.click_css(&format!("{settings} input[name=agent_attachments]")).await;
    root.click_css(&format!("{settings} button[type=submit]")).await;
    root.wait_text("#notice", "saved", |t| t.contains("saved")).await;
    let number = w.admin.get(&format!("/numbers/{}", w.number_id)).await.unwrap();
    assert_eq!(number["settings"]["default_language"], "es", "{number}");
    assert_eq!(number["settings"]["agent_attachments"], false, "{number}");
    assert_eq!(
        number["settings"]["workstream_id"],
        w.workstream_id.as_str(),
        "the workstream is kept"
    );
    root.screenshot("admin-settings").await;

    // 10. Deletion says first what happens: the two waiting customers' conversations.
    root.click_css("#tab-delete").await;
    root.wait_text(&format!("li[data-number=\"{}\"]", w.number_id), "the open conversations", |t| {
        t.contains("1 open conversation(s)")
    })
    .await;

    // Users: an invitation gives a one-time link.
    root.click_css("#tab-users").await;
    root.type_into(&root.find("#user-form input[name=email]").await, "new.agent@example.com")
        .await;
    root.type_into(&root.find("#user-form input[name=name]").await, "New Agent").await;
    root.select("#user-role", "agent").await;
    root.select("#user-agent", &w.bo.id).await;
    root.click_css("#user-form button").await;
    root.wait_text("#invite-link", "the setup link", |t| t.contains("/desk#setup=sbs_"))
        .await;
    root.close().await;
    w.stop().await;
}
