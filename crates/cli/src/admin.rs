//! `switchboard admin <resource> <action>`: every admin resource through the REST API.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{ApiClient, field};

/// Where the API is and who calls it (shared by `admin` and `agent`).
#[derive(Debug, Args)]
pub struct Connection {
    /// The API's base URL.
    #[arg(long, env = "SWITCHBOARD_API_URL", default_value = "http://127.0.0.1:8088", global = true)]
    pub api_url: String,
    /// An API key.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Print the API's JSON instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resource {
    Channels,
    Numbers,
    Templates,
    AutomatedMessages,
    Workstreams,
    Queues,
    OperatingHours,
    Skills,
    CapacityProfiles,
    Agents,
    ApiKeys,
    Bots,
    /// Ingress's webhook journal: list, show, replay.
    Webhooks,
    /// Inbound messages no number took: list.
    UnroutableMessages,
    /// How queues did over a period: list, with filters from=, to= (RFC 3339), id=,
    /// service_level_secs=.
    QueueReports,
    /// How agents did over a period: list, with filters from=, to=, id=.
    AgentReports,
}

impl Resource {
    fn path(self) -> &'static str {
        match self {
            Self::Channels => "/channels",
            Self::Numbers => "/numbers",
            Self::Templates => "/templates",
            Self::AutomatedMessages => "/automated-messages",
            Self::Workstreams => "/workstreams",
            Self::Queues => "/queues",
            Self::OperatingHours => "/operating-hours",
            Self::Skills => "/skills",
            Self::CapacityProfiles => "/capacity-profiles",
            Self::Agents => "/agents",
            Self::ApiKeys => "/api-keys",
            Self::Bots => "/bots",
            Self::Webhooks => "/webhooks",
            Self::UnroutableMessages => "/unroutable-messages",
            Self::QueueReports => "/reports/queues",
            Self::AgentReports => "/reports/agents",
        }
    }

    fn is_routing(self) -> bool {
        matches!(
            self,
            Self::Workstreams | Self::Queues | Self::OperatingHours | Self::Skills | Self::CapacityProfiles | Self::Agents
        )
    }
}

/// `switchboard admin`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  switchboard admin channels create --set name=Acme --set account_sid=AC… --set auth_token=…
  switchboard admin numbers create --set channel_id=<id> --set phone=+14155238886
  switchboard admin queues create --name General --set definition.priority=1
  switchboard admin workstreams route-to-queue <id> --data @rules.json
  switchboard admin numbers survey <id> --set enabled=true --set url=https://example.com/survey
  switchboard admin channels sync-templates <id>
  switchboard admin channels check <id>
  switchboard admin channels webhooks <id> --json
  switchboard admin channels configure-webhooks <id>
  switchboard admin channels add-webhook-key <id> --set key=<shared key id> --set secret=…
  switchboard admin channels remove-webhook-key <id> --set key=<old shared key id>
  switchboard admin channels sign-webhooks <id> [--set algorithm=HMAC_SHA1]   (again: rotate-webhook-key)
  switchboard admin channels webhook-signing <id>
  switchboard admin api-keys create --set name=ana --set role=agent --set agent_id=<agent id>
  switchboard admin automated-messages list --filter channel_id=<id>
  switchboard admin webhooks list --filter customer=+5511900000001 --filter answer=503
  switchboard admin queue-reports list --filter from=2026-12-05T09:00:00Z --filter to=2026-12-05T12:00:00Z
  switchboard admin webhooks show <id>
  switchboard admin webhooks replay <id>")]
pub struct AdminArgs {
    #[command(flatten)]
    conn: Connection,
    /// What to manage.
    resource: Resource,
    /// list, get, create, update, delete; and channels sync-templates, numbers survey,
    /// workstreams classification / route-to-queue.
    action: String,
    /// The object's id (get, update, delete, and the special actions).
    id: Option<String>,
    /// The JSON body, or @FILE to read it from a file.
    #[arg(long)]
    data: Option<String>,
    /// Sets one field of the body (dotted for nesting; the value is JSON when it parses as JSON).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Shorthand for `--set name=…`.
    #[arg(long)]
    name: Option<String>,
    /// Query parameters for list and delete (e.g. channel_id=…).
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
}

/// Builds a JSON body from `--data`, `--set` and `--name`.
pub fn body(data: Option<&str>, sets: &[String], name: Option<&str>) -> anyhow::Result<Value> {
    let mut body = match data {
        Some(raw) if raw.starts_with('@') => {
            let text = std::fs::read_to_string(&raw[1..]).with_context(|| format!("cannot read {}", &raw[1..]))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", &raw[1..]))?
        }
        Some(raw) => serde_json::from_str(raw).context("--data is not JSON")?,
        None => json!({}),
    };
    let mut pairs: Vec<(String, Value)> = Vec::new();
    if let Some(name) = name {
        pairs.push(("name".into(), json!(name)));
    }
    for set in sets {
        let (key, value) = set.split_once('=').with_context(|| format!("--set {set}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        pairs.push((key.to_owned(), value));
    }
    for (key, value) in pairs {
        let mut target = &mut body;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if !target.is_object() {
                *target = json!({});
            }
            let object = target.as_object_mut().context("not an object")?;
            if i + 1 == parts.len() {
                object.insert((*part).to_owned(), value.clone());
                break;
            }
            target = object.entry((*part).to_owned()).or_insert_with(|| json!({}));
        }
    }
    Ok(body)
}

fn query(filters: &[String]) -> anyhow::Result<String> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for f in filters {
        let (k, v) = f.split_once('=').with_context(|| format!("--filter {f}: expected KEY=VALUE"))?;
        out.append_pair(k, v);
    }
    let q = out.finish();
    Ok(if q.is_empty() { q } else { format!("?{q}") })
}

fn need_id(id: Option<&String>, resource: Resource, action: &str) -> anyhow::Result<String> {
    id.cloned()
        .with_context(|| format!("`admin {} {action}` needs the object's id", resource.path().trim_start_matches('/')))
}

/// Runs `switchboard admin`.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.conn.api_url, args.conn.api_key.clone())?;
    let r = args.resource;
    let base = r.path();
    let make_body = || body(args.data.as_deref(), &args.sets, args.name.as_deref());
    let id = args.id.as_ref();
    let result = match (args.action.as_str(), r) {
        ("list", _) => client.get(&format!("{base}{}", query(&args.filters)?)).await?,
        ("get" | "show", _) => client.get(&format!("{base}/{}", need_id(id, r, &args.action)?)).await?,
        ("replay", Resource::Webhooks) => {
            client
                .post(&format!("/webhooks/{}/replay", need_id(id, r, "replay")?), &json!({}))
                .await?
        }
        ("create", _) => client.post(base, &make_body()?).await?,
        ("update", Resource::AutomatedMessages) => client.put(base, &make_body()?).await?,
        ("update", Resource::Channels | Resource::Numbers | Resource::Bots) => {
            let path = format!("{base}/{}", need_id(id, r, "update")?);
            client.call(Method::PATCH, &path, Some(&make_body()?)).await?
        }
        ("update", Resource::ApiKeys) => bail!("API keys cannot be changed: create a new one and delete the old one"),
        ("update", _) => client.put(&format!("{base}/{}", need_id(id, r, "update")?), &make_body()?).await?,
        ("delete", Resource::AutomatedMessages) => {
            client
                .call(Method::DELETE, &format!("{base}{}", query(&args.filters)?), None)
                .await?
        }
        ("delete", _) => {
            client
                .call(Method::DELETE, &format!("{base}/{}", need_id(id, r, "delete")?), None)
                .await?
        }
        ("sync-templates", Resource::Channels) => {
            client
                .post(
                    &format!("/channels/{}/templates/sync", need_id(id, r, "sync-templates")?),
                    &json!({}),
                )
                .await?
        }
        ("check", Resource::Channels) => {
            client
                .post(&format!("/channels/{}/health-check", need_id(id, r, "check")?), &json!({}))
                .await?
        }
        ("webhooks", Resource::Channels) => client.get(&format!("/channels/{}/webhooks", need_id(id, r, "webhooks")?)).await?,
        ("configure-webhooks", Resource::Channels) => {
            client
                .post(
                    &format!("/channels/{}/webhooks/configure", need_id(id, r, "configure-webhooks")?),
                    &json!({}),
                )
                .await?
        }
        ("webhook-keys", Resource::Channels) => {
            client
                .get(&format!("/channels/{}/webhook-keys", need_id(id, r, "webhook-keys")?))
                .await?
        }
        ("add-webhook-key", Resource::Channels) => {
            let path = format!("/channels/{}/webhook-keys", need_id(id, r, "add-webhook-key")?);
            client.post(&path, &make_body()?).await?
        }
        ("remove-webhook-key", Resource::Channels) => {
            let body = make_body()?;
            let key = body
                .get("key")
                .and_then(Value::as_str)
                .context("give the key: --set key=<key id>")?;
            let path = format!("/channels/{}/webhook-keys/{key}", need_id(id, r, "remove-webhook-key")?);
            client.call(Method::DELETE, &path, None).await?
        }
        ("sign-webhooks" | "rotate-webhook-key", Resource::Channels) => {
            let path = format!("/channels/{}/webhook-signing", need_id(id, r, &args.action)?);
            client.post(&path, &make_body()?).await?
        }
        ("webhook-signing", Resource::Channels) => {
            client
                .get(&format!("/channels/{}/webhook-signing", need_id(id, r, "webhook-signing")?))
                .await?
        }
        ("survey", Resource::Numbers) => {
            client
                .put(&format!("/numbers/{}/survey", need_id(id, r, "survey")?), &make_body()?)
                .await?
        }
        ("classification" | "route-to-queue", Resource::Workstreams) => {
            let path = format!("/workstreams/{}/{}", need_id(id, r, &args.action)?, args.action);
            client.put(&path, &make_body()?).await?
        }
        (other, _) => bail!(
            "unknown action {other:?} for {}: use list, get, create, update or delete{}",
            base.trim_start_matches('/'),
            match r {
                Resource::Channels => {
                    " (or sync-templates, check, webhooks, configure-webhooks, webhook-keys, add-webhook-key, remove-webhook-key, \
                     sign-webhooks, rotate-webhook-key, webhook-signing)"
                }
                Resource::Numbers => " (or survey)",
                Resource::Workstreams => " (or classification, route-to-queue)",
                Resource::Webhooks => " (webhooks: list, show, replay)",
                _ => "",
            }
        ),
    };
    if args.conn.json || r.is_routing() && args.action == "get" {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    print_summary(r, &args.action, &result)
}

fn print_summary(r: Resource, action: &str, result: &Value) -> anyhow::Result<()> {
    if result.is_null() {
        println!("done");
        return Ok(());
    }
    let items = result.get("items").and_then(Value::as_array).or_else(|| result.as_array());
    if let Some(items) = items {
        if items.is_empty() {
            println!("(none)");
        }
        for item in items {
            if let Some(line) = report_line(r, item) {
                println!("{line}");
                continue;
            }
            if let Some(matches) = item.get("matches").and_then(Value::as_bool) {
                println!(
                    "{}  {}  {}  at Twilio: {}",
                    field(item, "phone"),
                    if field(item, "sender_sid").is_empty() {
                        "no sender"
                    } else {
                        field(item, "sender_status")
                    },
                    if matches { "as expected" } else { "DIFFERS" },
                    field(&item["configured"], "callback_url"),
                );
                continue;
            }
            if r == Resource::Webhooks {
                println!(
                    "{}  {}  {:<7}  {}  {} -> {}  {}  {}",
                    field(item, "id"),
                    field(item, "received_at"),
                    field(item, "kind"),
                    item["answer"],
                    field(item, "from"),
                    field(item, "to"),
                    field(item, "message_sid"),
                    field(item, "outcome"),
                );
                continue;
            }
            let label = ["name", "phone", "trigger", "key"]
                .iter()
                .map(|k| field(item, k))
                .find(|v| !v.is_empty())
                .unwrap_or("");
            let id = ["id", "channel_id", "created_at"]
                .iter()
                .map(|k| field(item, k))
                .find(|v| !v.is_empty())
                .unwrap_or("");
            println!("{id}  {label}");
        }
        return Ok(());
    }
    match (r, action) {
        (Resource::Channels, "create") => {
            println!("channel {} created", field(result, "id"));
            println!("In the Twilio console (Messaging → Senders → WhatsApp senders, or the Sandbox settings), set:");
            println!("  When a message comes in (POST): {}", field(result, "inbound_url"));
            println!("  Status callback URL:            {}", field(result, "status_url"));
        }
        (Resource::Webhooks, "replay") => {
            println!(
                "webhook {} ({}) published again ({} replays); session ignores it if it has the message already",
                field(result, "id"),
                field(result, "message_sid"),
                result["replays"]
            );
        }
        (Resource::ApiKeys, "create") => {
            println!("API key {} created; store it now, it is not shown again:", field(result, "id"));
            println!("  {}", field(result, "key"));
        }
        _ => println!("{}", serde_json::to_string_pretty(result)?),
    }
    Ok(())
}

/// One line of a queue or agent report: counts, then rates and average times.
fn report_line(r: Resource, item: &Value) -> Option<String> {
    let secs = |k: &str| item[k].as_f64().map_or_else(|| "-".to_owned(), |s| format!("{s:.0}s"));
    let pct = |k: &str| item[k].as_f64().map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    match r {
        Resource::QueueReports => Some(format!(
            "{}  incoming {}  answered {}  abandoned {}  service level {} (within {}s)  abandon rate {}  ASA {}  AHT {}  wrap-up {}",
            field(item, "name"),
            item["incoming"],
            item["answered"],
            item["abandoned"],
            pct("service_level"),
            item["service_level_secs"],
            pct("abandon_rate"),
            secs("average_speed_of_answer_secs"),
            secs("average_handle_secs"),
            secs("average_wrap_up_secs"),
        )),
        Resource::AgentReports => Some(format!(
            "{}  handled {}  AHT {}  wrap-up {}  offers {} (accepted {}, declined {}, missed {})",
            field(item, "name"),
            item["handled"],
            secs("average_handle_secs"),
            secs("average_wrap_up_secs"),
            item["offered"],
            item["accepted"],
            item["declined"],
            item["missed"],
        )),
        _ => None,
    }
}
