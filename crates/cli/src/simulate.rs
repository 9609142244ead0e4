//! `switchboard simulate customer …`: makes the Twilio emulator deliver a correctly signed
//! inbound webhook, as if a WhatsApp customer had written.

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::client::ApiClient;

/// `switchboard simulate`.
#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// A customer writes to a business number.
    Customer(CustomerArgs),
}

/// A customer's message.
#[derive(Debug, Args)]
pub struct CustomerArgs {
    /// The business WhatsApp number (E.164).
    #[arg(long)]
    to: String,
    /// The customer's phone (E.164).
    #[arg(long)]
    from: String,
    /// The text.
    #[arg(long, default_value = "")]
    text: String,
    /// A file to attach (repeatable).
    #[arg(long)]
    media: Vec<std::path::PathBuf>,
    /// A shared location, LAT,LON.
    #[arg(long, allow_hyphen_values = true)]
    location: Option<String>,
    /// The customer's WhatsApp profile name.
    #[arg(long)]
    name: Option<String>,
    /// The emulator's URL.
    #[arg(long, env = "SWITCHBOARD_EMULATOR_URL", default_value = "http://127.0.0.1:8089")]
    emulator_url: String,
}

fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("mp4") => "video/mp4",
        Some("3gp") => "video/3gpp",
        Some("ogg" | "opus") => "audio/ogg",
        Some("mp3") => "audio/mpeg",
        Some("amr") => "audio/amr",
        Some("txt") => "text/plain",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// Runs `switchboard simulate`.
pub async fn run(command: SimulateCommand) -> anyhow::Result<()> {
    let SimulateCommand::Customer(args) = command;
    let mut media = Vec::new();
    for path in &args.media {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        media.push(json!({
            "content_type": content_type(path),
            "data_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        }));
    }
    let location = match &args.location {
        Some(raw) => {
            let (lat, lon) = raw.split_once(',').context("--location: expected LAT,LON")?;
            let lat: f64 = lat.trim().parse().context("--location: latitude is not a number")?;
            let lon: f64 = lon.trim().parse().context("--location: longitude is not a number")?;
            json!([lat, lon, null])
        }
        None => json!(null),
    };
    if args.text.is_empty() && media.is_empty() && location.is_null() {
        bail!("say something: --text, --media or --location");
    }
    let body = json!({
        "from": args.from,
        "to": args.to,
        "body": args.text,
        "profile_name": args.name,
        "media": media,
        "location": location,
    });
    let client = ApiClient::new(&args.emulator_url, None)?;
    let result = client.post("/emulator/customers/messages", &body).await.map_err(|e| {
        e.context(format!(
            "the emulator at {} could not deliver it (is `switchboard dev` running, and is {} a configured number?)",
            args.emulator_url, args.to
        ))
    })?;
    let status = result["webhook_status"].as_u64().unwrap_or(0);
    let sid = result["message_sid"].as_str().unwrap_or("");
    if status == 200 {
        println!("delivered {sid} to Switchboard (webhook answered 200)");
        Ok(())
    } else {
        bail!(
            "the webhook answered {status} for {sid}: {}",
            result["webhook_error"].as_str().unwrap_or("see the switchboard logs")
        )
    }
}
