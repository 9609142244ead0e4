//! `switchboard agent …`: work conversations as an agent from the terminal (what an agent
//! desktop does through the same API).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use switchboard_domain::ids::{AgentId, ConversationId, OfferId, QueueId};

use crate::admin::Connection;
use crate::client::{ApiClient, field, id_of};

/// `switchboard agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    action: AgentAction,
}

#[derive(Debug, Subcommand)]
enum AgentAction {
    /// Who this key is, with presence and load.
    Me,
    /// Sets presence: available, busy, busy_dnd, away, offline.
    Presence { presence: String },
    /// Pending offers.
    Offers,
    /// Accepts an offer (the oldest pending one when no id is given).
    Accept { offer_id: Option<OfferId> },
    /// Declines an offer (the oldest pending one when no id is given).
    Decline { offer_id: Option<OfferId> },
    /// My conversations.
    Conversations,
    /// A conversation's messages (my only active conversation when no id is given).
    Messages { conversation_id: Option<ConversationId> },
    /// Replies with text, a file URL or a template.
    Reply {
        conversation_id: Option<ConversationId>,
        #[arg(long)]
        text: Option<String>,
        /// A public HTTPS URL of a file.
        #[arg(long)]
        media_url: Option<String>,
        #[arg(long, requires = "media_url")]
        media_type: Option<String>,
        /// A template name (outside the 24-hour window).
        #[arg(long)]
        template: Option<String>,
        /// Template variables, e.g. --var 1=Ana.
        #[arg(long = "var", value_name = "N=VALUE")]
        vars: Vec<String>,
    },
    /// Uploads a file to send in a conversation (checked against the number's attachment
    /// settings); with --send, sends it too.
    Upload {
        /// The file.
        path: std::path::PathBuf,
        conversation_id: Option<ConversationId>,
        /// Its type (by default from its extension: .jpg .png .mp3 .ogg .amr .mp4 .pdf).
        #[arg(long = "type")]
        content_type: Option<String>,
        /// Send it as a reply once uploaded.
        #[arg(long)]
        send: bool,
        /// A caption (images only), with --send.
        #[arg(long, requires = "send")]
        caption: Option<String>,
    },
    /// Ends the conversation (Active → Wrap-up).
    End { conversation_id: Option<ConversationId> },
    /// Closes the session (Wrap-up → Closed).
    Close { conversation_id: Option<ConversationId> },
    /// Resumes a Waiting conversation of mine (Waiting → Active).
    Revive { conversation_id: ConversationId },
    /// Releases a conversation back to its queue (Active or Waiting → Open).
    Release {
        conversation_id: Option<ConversationId>,
        /// Recorded in the transcript.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Transfers to a queue or an agent.
    Transfer {
        conversation_id: Option<ConversationId>,
        #[arg(long, conflicts_with = "agent")]
        queue: Option<QueueId>,
        #[arg(long)]
        agent: Option<AgentId>,
    },
    /// Waiting work of pick workstreams.
    Pickable,
    /// Picks a conversation.
    Pick { conversation_id: ConversationId },
}

async fn oldest_offer(client: &ApiClient, given: Option<OfferId>) -> anyhow::Result<OfferId> {
    if let Some(id) = given {
        return Ok(id);
    }
    let offers = client.get("/me/offers").await?;
    offers
        .as_array()
        .and_then(|o| o.iter().find(|o| field(o, "state") == "pending"))
        .context("no pending offer (a customer must write first: `switchboard simulate customer …`)")
        .and_then(|o| id_of(o, "offer"))
}

async fn my_conversation(client: &ApiClient, given: Option<ConversationId>) -> anyhow::Result<ConversationId> {
    if let Some(id) = given {
        return Ok(id);
    }
    let page = client.get("/conversations?status=active,wrap_up").await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    match items.as_slice() {
        [one] => id_of(one, "conversation"),
        [] => bail!("you have no active conversation (accept an offer first)"),
        _ => bail!("you have {} active conversations: give the conversation id", items.len()),
    }
}

/// Runs `switchboard agent`.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.conn.api_url, args.conn.api_key.clone())?;
    let c = &client;
    let result: Value = match args.action {
        AgentAction::Me => c.get("/me").await?,
        AgentAction::Presence { presence } => c.put("/me/presence", &json!({ "presence": presence })).await?,
        AgentAction::Offers => c.get("/me/offers").await?,
        AgentAction::Accept { offer_id } => {
            c.post(&format!("/offers/{}/accept", oldest_offer(c, offer_id).await?), &json!({}))
                .await?
        }
        AgentAction::Decline { offer_id } => {
            c.post(&format!("/offers/{}/decline", oldest_offer(c, offer_id).await?), &json!({}))
                .await?
        }
        AgentAction::Conversations => c.get("/conversations").await?,
        AgentAction::Messages { conversation_id } => {
            c.get(&format!("/conversations/{}/messages", my_conversation(c, conversation_id).await?))
                .await?
        }
        AgentAction::Reply {
            conversation_id,
            text,
            media_url,
            media_type,
            template,
            vars,
        } => {
            let body = match (text, media_url, template) {
                (Some(text), None, None) => json!({ "text": text }),
                (None, Some(url), None) => {
                    json!({ "media": { "url": url, "content_type": media_type.unwrap_or_else(|| "image/jpeg".into()) } })
                }
                (None, None, Some(name)) => {
                    let mut variables = serde_json::Map::new();
                    for v in vars {
                        let (k, val) = v.split_once('=').with_context(|| format!("--var {v}: expected N=VALUE"))?;
                        variables.insert(k.to_owned(), json!(val));
                    }
                    json!({ "template": { "name": name, "variables": variables } })
                }
                _ => bail!("give exactly one of --text, --media-url and --template"),
            };
            c.post(
                &format!("/conversations/{}/messages", my_conversation(c, conversation_id).await?),
                &body,
            )
            .await?
        }
        AgentAction::Upload {
            path,
            conversation_id,
            content_type,
            send,
            caption,
        } => upload(c, &path, my_conversation(c, conversation_id).await?, content_type, send, caption).await?,
        AgentAction::End { conversation_id } => {
            c.post(
                &format!("/conversations/{}/end", my_conversation(c, conversation_id).await?),
                &json!({}),
            )
            .await?
        }
        AgentAction::Revive { conversation_id } => c.post(&format!("/conversations/{conversation_id}/revive"), &json!({})).await?,
        AgentAction::Release { conversation_id, note } => {
            c.post(
                &format!("/conversations/{}/release", my_conversation(c, conversation_id).await?),
                &json!({ "note": note }),
            )
            .await?
        }
        AgentAction::Close { conversation_id } => {
            c.post(
                &format!("/conversations/{}/close", my_conversation(c, conversation_id).await?),
                &json!({}),
            )
            .await?
        }
        AgentAction::Transfer {
            conversation_id,
            queue,
            agent,
        } => {
            let body = match (queue, agent) {
                (Some(q), None) => json!({ "queue_id": q }),
                (None, Some(a)) => json!({ "agent_id": a }),
                _ => bail!("give --queue or --agent"),
            };
            c.post(
                &format!("/conversations/{}/transfer", my_conversation(c, conversation_id).await?),
                &body,
            )
            .await?
        }
        AgentAction::Pickable => c.get("/me/pickable").await?,
        AgentAction::Pick { conversation_id } => c.post(&format!("/conversations/{conversation_id}/pick"), &json!({})).await?,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// Uploads `path` to `conversation`, and sends it when asked.
async fn upload(
    c: &ApiClient,
    path: &std::path::Path,
    conversation: ConversationId,
    content_type: Option<String>,
    send: bool,
    caption: Option<String>,
) -> anyhow::Result<Value> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file").to_owned();
    let content_type = match content_type {
        Some(t) => t,
        None => {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            switchboard_domain::attachment::ALLOWED
                .iter()
                .find(|(e, _)| *e == ext)
                .map(|(_, mime)| (*mime).to_owned())
                .with_context(|| {
                    format!(
                        "cannot tell the type of {name} from its extension: give --type (WhatsApp carries {})",
                        switchboard_domain::attachment::allowed_list()
                    )
                })?
        }
    };
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("name", &name).finish();
    let file = c
        .post_bytes(&format!("/conversations/{conversation}/files?{query}"), &content_type, bytes)
        .await?;
    if !send {
        return Ok(file);
    }
    let media = json!({ "file_id": field(&file, "id"), "caption": caption.unwrap_or_default() });
    c.post(&format!("/conversations/{conversation}/messages"), &json!({ "media": media }))
        .await
}
