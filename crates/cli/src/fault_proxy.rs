//! `switchboard fault-proxy`: a TCP proxy for fault drills. Services reach RabbitMQ (or
//! Postgres) through it; `POST /block?secs=N` on its control port cuts every connection and
//! refuses new ones for N seconds, as a network partition would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Query, State};
use clap::Args;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// `switchboard fault-proxy`.
#[derive(Debug, Args)]
pub struct FaultProxyArgs {
    /// Where services connect.
    #[arg(long)]
    listen: SocketAddr,
    /// The real server.
    #[arg(long)]
    upstream: SocketAddr,
    /// The control API (`POST /block?secs=N`).
    #[arg(long)]
    control: SocketAddr,
}

struct Blocker {
    /// Until when connections are refused.
    until: watch::Sender<Option<Instant>>,
}

#[derive(Deserialize)]
struct Block {
    secs: u64,
}

async fn block(State(b): State<Arc<Blocker>>, Query(q): Query<Block>) -> &'static str {
    b.until.send_replace(Some(Instant::now() + Duration::from_secs(q.secs.min(600))));
    "blocked\n"
}

fn blocked(until: &Option<Instant>) -> bool {
    until.is_some_and(|u| Instant::now() < u)
}

/// Runs the proxy until ctrl-c.
pub async fn run(args: FaultProxyArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let control = TcpListener::bind(args.control)
        .await
        .with_context(|| format!("cannot listen on {}", args.control))?;
    let blocker = Arc::new(Blocker {
        until: watch::channel(None).0,
    });
    let app = axum::Router::new()
        .route("/block", axum::routing::post(block))
        .with_state(blocker.clone());
    tokio::spawn(async move { axum::serve(control, app).await });
    println!("fault-proxy: {} → {} (control on {})", args.listen, args.upstream, args.control);
    loop {
        let (mut client, _) = listener.accept().await?;
        let mut watcher = blocker.until.subscribe();
        if blocked(&watcher.borrow()) {
            drop(client);
            continue;
        }
        let upstream = args.upstream;
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = async {
                    loop {
                        if watcher.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        if blocked(&watcher.borrow()) {
                            return;
                        }
                    }
                } => {}
            }
        });
    }
}
