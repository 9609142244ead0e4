//! Load generator set-up through the public API: its own channel (a fresh Account SID), numbers,
//! a workstream and queue, agents with keys and presence; and the emulator's side (the account,
//! and open 24-hour windows for the customers, who never write through the emulator).

use anyhow::Context;
use serde_json::json;

use crate::client::{ApiClient, field, id_of};
use switchboard_domain::ids::ChannelId;

/// Everything a run created.
#[derive(Debug, Clone)]
pub struct Setup {
    pub run: String,
    pub channel_id: ChannelId,
    pub account_sid: String,
    pub auth_token: String,
    pub inbound_url: String,
    pub numbers: Vec<String>,
    /// Customers by number: customer `i` writes to number `i % numbers`.
    pub customers: Vec<String>,
    pub agents: Vec<(String, String)>,
}

/// Creates the run's configuration.
pub async fn prepare(admin: &ApiClient, emulator: &ApiClient, numbers: usize, customers: usize, agents: usize) -> anyhow::Result<Setup> {
    let run = format!("{:06}", time::OffsetDateTime::now_utc().unix_timestamp() % 1_000_000);
    let account_sid = format!("AC{:032x}", uuid::Uuid::new_v4().as_u128());
    let auth_token = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    // Twilio (the emulator) knows the account before the channel is saved: session checks the
    // credentials against it. Its numbers follow below, once they have their URL.
    emulator
        .put(
            "/emulator/accounts",
            &json!({ "account_sid": account_sid, "auth_token": auth_token, "numbers": [] }),
        )
        .await
        .context("configuring the emulator (is it running? set --emulator-url)")?;
    let channel = admin
        .post(
            "/channels",
            &json!({ "name": format!("loadgen {run}"), "account_sid": account_sid, "auth_token": auth_token }),
        )
        .await
        .context("creating the load channel (is the API key an admin key?)")?;
    let channel_id: ChannelId = id_of(&channel, "channel")?;
    // loadgen plays Twilio and resends on its own: the URL it posts to, without the overrides.
    let inbound_url = switchboard_twilio::overrides::split(field(&channel, "inbound_url")).0.to_owned();

    let mut agent_ids = Vec::new();
    for i in 0..agents {
        let a = admin
            .post(
                "/agents",
                &json!({ "name": format!("lg{run} agent {i}"), "definition": { "capacity_units": 100 } }),
            )
            .await?;
        agent_ids.push(field(&a, "id").to_owned());
    }
    let queue = admin
        .post(
            "/queues",
            &json!({ "name": format!("lg{run} queue"), "definition": { "priority": 1, "assignment": "least_active", "members": agent_ids } }),
        )
        .await?;
    let workstream = admin
        .post(
            "/workstreams",
            &json!({ "name": format!("lg{run} workstream"), "definition": {
                "mode": "push", "fallback_queue_id": field(&queue, "id"), "offer_timeout_secs": 300, "wrap_up": { "kind": "never" } } }),
        )
        .await?;
    let mut phones = Vec::new();
    for i in 0..numbers {
        let phone = format!("+1888{run}{i:03}");
        admin
            .post(
                "/numbers",
                &json!({ "channel_id": channel_id, "phone": phone, "display_name": format!("load {i}"),
                         "settings": { "workstream_id": field(&workstream, "id"), "send_rate_per_second": 400.0 } }),
            )
            .await
            .with_context(|| format!("adding number {phone}"))?;
        phones.push(phone);
    }
    let mut keys = Vec::new();
    for (i, agent) in agent_ids.iter().enumerate() {
        let key = admin
            .post(
                "/api-keys",
                &json!({ "name": format!("lg{run} agent {i}"), "role": "agent", "agent_id": agent }),
            )
            .await?;
        let key = field(&key, "key").to_owned();
        admin
            .with_key(&key)
            .put("/me/presence", &json!({ "presence": "available" }))
            .await?;
        keys.push((agent.clone(), key));
    }
    let customers: Vec<String> = (0..customers).map(|i| format!("+19{run}{i:07}")).collect();

    // The emulator plays Twilio: it must know the account and treat the customers' windows as
    // open, since their messages reach ingress without passing through it.
    emulator
        .put(
            "/emulator/accounts",
            &json!({ "account_sid": account_sid, "auth_token": auth_token,
                     "numbers": phones.iter().map(|p| json!({ "phone": p, "inbound_url": inbound_url })).collect::<Vec<_>>() }),
        )
        .await
        .context("configuring the emulator (is it running? set --emulator-url)")?;
    for (n, phone) in phones.iter().enumerate() {
        let mine: Vec<&String> = customers.iter().skip(n).step_by(phones.len()).collect();
        for chunk in mine.chunks(5_000) {
            emulator
                .put("/emulator/windows", &json!({ "business": phone, "customers": chunk }))
                .await?;
        }
    }
    Ok(Setup {
        run,
        channel_id,
        account_sid,
        auth_token,
        inbound_url,
        numbers: phones,
        customers,
        agents: keys,
    })
}
