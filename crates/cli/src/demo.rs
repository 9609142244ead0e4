//! `switchboard dev --demo`: seeds a channel, a number, a workstream, two queues and two agents
//! (with API keys) through the REST API, so the commands the README shows work at once. Running
//! it again reuses what exists (found by name) and issues fresh keys.

use anyhow::Context;
use serde_json::{Value, json};
use switchboard_domain::ids::{AgentId, ChannelId, NumberId, QueueId, WorkstreamId};

use crate::client::{ApiClient, field, id_of};

/// The emulator's demo account (any well-formed SID works against the emulator).
pub const DEMO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const DEMO_AUTH_TOKEN: &str = "demo0auth0token0demo0auth0token0";
/// The demo's WhatsApp number against the emulator (a number of its own: the emulator, like
/// Twilio, only lets the sandbox sender message customers who joined the sandbox).
pub const DEMO_NUMBER: &str = "+14155550100";
/// The demo's number against real Twilio: the Twilio Sandbox for WhatsApp.
pub const SANDBOX_NUMBER: &str = "+14155238886";

/// Real Twilio credentials for the demo channel (from `TWILIO_ACCOUNT_SID`/`TWILIO_AUTH_TOKEN`).
pub struct RealTwilio {
    pub account_sid: String,
    pub auth_token: String,
}

/// What the demo created.
#[derive(Debug, Clone)]
pub struct Demo {
    pub channel_id: ChannelId,
    pub number_id: NumberId,
    pub number: String,
    pub workstream_id: WorkstreamId,
    pub general_queue_id: QueueId,
    pub billing_queue_id: QueueId,
    pub ana_id: AgentId,
    pub ben_id: AgentId,
    pub ana_key: String,
    pub ben_key: String,
    pub supervisor_key: String,
    /// The desk's demo users (email, role) and the password they all share this run.
    pub users: Vec<(String, String)>,
    pub password: String,
    pub inbound_url: String,
    pub status_url: String,
}

async fn config_object<T: std::str::FromStr>(admin: &ApiClient, collection: &str, name: &str, definition: Value) -> anyhow::Result<T> {
    let existing = admin.get(&format!("/{collection}")).await?;
    if let Some(found) = existing.as_array().and_then(|a| a.iter().find(|o| field(o, "name") == name)) {
        let id = field(found, "id");
        admin
            .put(&format!("/{collection}/{id}"), &json!({ "name": name, "definition": definition }))
            .await?;
        return id_of(found, collection);
    }
    let created = admin
        .post(&format!("/{collection}"), &json!({ "name": name, "definition": definition }))
        .await?;
    id_of(&created, collection)
}

/// The demo's bot: where it listens and the secret it verifies with.
pub struct DemoBot {
    pub endpoint: String,
    pub secret: String,
}

/// Makes a desk user with `password`: invited the first time, reset on later runs.
async fn demo_user(admin: &ApiClient, email: &str, name: &str, role: &str, agent: Option<AgentId>, password: &str) -> anyhow::Result<()> {
    let users = admin.get("/users").await?;
    let existing = users
        .as_array()
        .and_then(|a| a.iter().find(|u| field(u, "email") == email).cloned());
    let setup = match existing {
        Some(user) => {
            admin
                .post(&format!("/users/{}/reset-password", field(&user, "id")), &json!({}))
                .await?
        }
        None => {
            let mut body = json!({ "email": email, "name": name, "role": role });
            if let Some(agent) = agent {
                body["agent_id"] = json!(agent);
            }
            admin.post("/users", &body).await?
        }
    };
    admin
        .post(
            "/auth/setup",
            &json!({ "token": field(&setup, "setup_token"), "password": password }),
        )
        .await
        .with_context(|| format!("setting the password of {email}"))?;
    Ok(())
}

/// Creates the demo bot, or points the existing one at `bot` with its new secret.
async fn demo_bot(admin: &ApiClient, bot: &DemoBot) -> anyhow::Result<String> {
    let existing = admin.get("/bots").await?;
    let body =
        json!({ "name": "Demo assistant", "endpoint": bot.endpoint, "signing_secret": bot.secret, "timeout_ms": 3000, "max_attempts": 2 });
    if let Some(found) = existing
        .as_array()
        .and_then(|a| a.iter().find(|b| field(b, "name") == "Demo assistant"))
    {
        let id = field(found, "id").to_owned();
        admin.call(reqwest::Method::PATCH, &format!("/bots/{id}"), Some(&body)).await?;
        return Ok(id);
    }
    Ok(field(&admin.post("/bots", &body).await?, "id").to_owned())
}

/// Seeds (or refreshes) the demo through `admin`.
pub async fn seed(admin: &ApiClient, real: Option<&RealTwilio>, bot: Option<&DemoBot>) -> anyhow::Result<Demo> {
    let (account_sid, auth_token) = real.map_or((DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN), |r| {
        (r.account_sid.as_str(), r.auth_token.as_str())
    });
    let channels = admin.get("/channels?page_size=200").await?;
    let existing = channels["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| field(c, "account_sid") == account_sid).cloned());
    let channel = match existing {
        Some(channel) => channel,
        None => {
            admin
                .post(
                    "/channels",
                    &json!({
                        "name": "Demo",
                        "account_sid": account_sid,
                        "auth_token": auth_token,
                        "sandbox": real.is_some(),
                    }),
                )
                .await?
        }
    };
    let channel_id: ChannelId = id_of(&channel, "channel")?;
    let phone = if real.is_some() { SANDBOX_NUMBER } else { DEMO_NUMBER };
    let numbers = admin.get(&format!("/numbers?channel_id={channel_id}")).await?;
    let number = match numbers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|n| field(n, "phone") == phone).cloned())
    {
        Some(number) => number,
        None => {
            admin
                .post(
                    "/numbers",
                    &json!({ "channel_id": channel_id, "phone": phone, "display_name": "Demo support" }),
                )
                .await?
        }
    };
    let number_id: NumberId = id_of(&number, "number")?;

    let billing_skill: uuid::Uuid = config_object(admin, "skills", "billing", json!({ "description": "invoices and payments" })).await?;
    let ana_id: AgentId = config_object(
        admin,
        "agents",
        "Ana",
        json!({ "capacity_units": 3, "skills": { billing_skill.to_string(): 8 } }),
    )
    .await?;
    let ben_id: AgentId = config_object(admin, "agents", "Ben", json!({ "capacity_units": 3 })).await?;
    let general: QueueId = config_object(
        admin,
        "queues",
        "General",
        json!({ "priority": 2, "assignment": "highest_capacity", "members": [ana_id, ben_id] }),
    )
    .await?;
    let billing: QueueId = config_object(
        admin,
        "queues",
        "Billing",
        json!({ "priority": 1, "assignment": "highest_capacity", "members": [ana_id] }),
    )
    .await?;
    let bot_id = match bot {
        Some(bot) => Some(demo_bot(admin, bot).await?),
        None => None,
    };
    let workstream: WorkstreamId = config_object(
        admin,
        "workstreams",
        "Customer support",
        json!({
            "mode": "push",
            "fallback_queue_id": general,
            "offer_timeout_secs": 120,
            "bot_id": bot_id,
            "route_to_queue": [
                {
                    "name": "The bot found a billing question",
                    "conditions": [{ "attribute": "topic", "op": "equals", "value": "billing" }],
                    "targets": [{ "queue_id": billing, "percent": 100 }],
                },
                {
                    "name": "Billing words in the first message",
                    "conditions": [{ "attribute": "first_message", "op": "regex", "value": "(?i)invoice|bill|payment" }],
                    "targets": [{ "queue_id": billing, "percent": 100 }],
                },
            ],
        }),
    )
    .await?;
    admin
        .call(
            reqwest::Method::PATCH,
            &format!("/numbers/{number_id}"),
            Some(&json!({
                "settings": {
                    "default_language": "en",
                    "customer_attachments": true,
                    "agent_attachments": true,
                    "workstream_id": workstream,
                    "survey_enabled": true,
                    "survey_url": "https://survey.example.com/s",
                    "survey_message": "Thanks for talking to us! Tell us how we did:",
                }
            })),
        )
        .await
        .context("setting the demo number's workstream and survey")?;

    let key = |name: String, role: &str, agent: Option<AgentId>| {
        let admin = admin.clone();
        let body = match agent {
            Some(agent) => json!({ "name": name, "role": role, "agent_id": agent }),
            None => json!({ "name": name, "role": role }),
        };
        async move { admin.post("/api-keys", &body).await.map(|k| field(&k, "key").to_owned()) }
    };
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let ana_key = key(format!("demo agent Ana ({stamp})"), "agent", Some(ana_id)).await?;
    let ben_key = key(format!("demo agent Ben ({stamp})"), "agent", Some(ben_id)).await?;
    let supervisor_key = key(format!("demo supervisor ({stamp})"), "supervisor", None).await?;
    for agent_key in [&ana_key, &ben_key] {
        admin
            .with_key(agent_key)
            .put("/me/presence", &json!({ "presence": "available" }))
            .await?;
    }
    let password = format!(
        "demo-{}",
        &switchboard_api::auth::generate().map_err(|e| anyhow::anyhow!(e.message))?[3..19]
    );
    let mut users = Vec::new();
    for (email, name, role, agent) in [
        ("ana@example.com", "Ana", "agent", Some(ana_id)),
        ("ben@example.com", "Ben", "agent", Some(ben_id)),
        ("sam@example.com", "Sam", "supervisor", None),
        ("admin@example.com", "Admin", "admin", None),
    ] {
        demo_user(admin, email, name, role, agent, &password).await?;
        users.push((email.to_owned(), role.to_owned()));
    }
    Ok(Demo {
        users,
        password,
        inbound_url: field(&channel, "inbound_url").to_owned(),
        status_url: field(&channel, "status_url").to_owned(),
        channel_id,
        number_id,
        number: phone.to_owned(),
        workstream_id: workstream,
        general_queue_id: general,
        billing_queue_id: billing,
        ana_id,
        ben_id,
        ana_key,
        ben_key,
        supervisor_key,
    })
}
