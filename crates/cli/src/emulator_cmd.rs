//! `switchboard twilio-emulator`: the Twilio stand-in on its own (for running services
//! separately, or Prism comparisons).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use switchboard_domain::SystemClock;
use tokio_util::sync::CancellationToken;

/// `switchboard twilio-emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// The Messages and Content API, and the control API under /emulator.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// The media "CDN" host media redirects to.
    #[arg(long, default_value = "127.0.0.1:8087")]
    cdn_listen: SocketAddr,
}

/// Runs the emulator until ctrl-c.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let api = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let cdn = tokio::net::TcpListener::bind(args.cdn_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.cdn_listen))?;
    let api_base = format!("http://{}", api.local_addr()?);
    let cdn_base = format!("http://{}", cdn.local_addr()?);
    let emulator = switchboard_twilio_emulator::Emulator::new(&api_base, &cdn_base, Arc::new(SystemClock))?;
    println!("Twilio emulator: API {api_base} (point twilio_api_base and twilio_content_base here), media {cdn_base}");
    println!("Set up accounts with PUT {api_base}/emulator/accounts");
    let shutdown = CancellationToken::new();
    switchboard_service_kit::spawn_shutdown_on_signal(shutdown.clone());
    let a =
        axum::serve(api, switchboard_twilio_emulator::router(emulator.clone())).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let c = axum::serve(cdn, switchboard_twilio_emulator::cdn_router(emulator.clone())).with_graceful_shutdown(shutdown.cancelled_owned());
    let (a, c) = tokio::join!(a, c);
    a.context("emulator API failed")?;
    c.context("emulator media failed")?;
    Ok(())
}
