//! `switchboard loadgen`: drives a running Switchboard (one `switchboard dev` process, or the
//! services as separate processes) from outside, on loopback: simulated customers send signed
//! webhooks open-loop at a target rate, simulated agents accept offers and reply through the
//! API and WebSocket, the emulator absorbs the sends and calls back. At the end it checks the
//! database and the emulator (nothing lost, nothing duplicated) and reports the figures.

mod abuse;
mod agents;
mod baseline;
mod check;
mod inbound;
mod setup;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;

/// `switchboard loadgen`.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The API (admin key needed: the run creates its own channel, numbers, queue and agents).
    #[arg(long, env = "SWITCHBOARD_API_URL", default_value = "http://127.0.0.1:8088")]
    api_url: String,
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The Twilio emulator.
    #[arg(long, env = "SWITCHBOARD_EMULATOR_URL", default_value = "http://127.0.0.1:8089")]
    emulator_url: String,
    /// The database, read at the end to check and to measure.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,
    /// For the baseline (raw confirmed publishes).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    amqp_url: String,
    /// Inbound webhooks per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// How long to send, seconds (at most 600).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// WhatsApp numbers the customers write to.
    #[arg(long, default_value_t = 4)]
    numbers: usize,
    /// Share of messages that start a new conversation (the rest continue one).
    #[arg(long, default_value_t = 0.2)]
    new_ratio: f64,
    /// Simulated agents (0: inbound only).
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Webhooks waiting for an answer at once before new ones are skipped (and counted).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// Bad webhooks per second beside the good ones.
    #[arg(long, default_value_t = 0.0)]
    abuse_rate: f64,
    /// Measure raw RabbitMQ and Postgres rates first.
    #[arg(long)]
    baseline: bool,
    /// How long to wait at the end for everything accepted to be stored and sent, seconds.
    #[arg(long, default_value_t = 120)]
    settle: u64,
    /// Where to write the JSON report.
    #[arg(long, default_value = "loadgen-report.json")]
    out: std::path::PathBuf,
}

#[derive(Debug, Serialize)]
struct Report {
    rate_target: f64,
    duration_s: f64,
    numbers: usize,
    agents: usize,
    offered_rate: f64,
    accepted_rate: f64,
    skipped: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
    new_conversations: u64,
    ack_latency: check::Percentiles,
    check: check::Check,
    agents_offers: u64,
    agents_replied: u64,
    agents_closed: u64,
    agents_errors: u64,
    outbound_sends_per_s: f64,
    /// Per Unix second: webhooks answered 200, and agent replies Twilio received.
    accepted_per_second: Vec<(i64, u64)>,
    sent_per_second: Vec<(i64, u64)>,
    abuse: Option<abuse::AbuseReport>,
    abuse_forged_stored: Option<i64>,
    abuse_replay_copies: Option<i64>,
    baseline: Option<baseline::Baseline>,
    ok: bool,
}

fn loopback(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| matches!(h.as_str(), "127.0.0.1" | "localhost" | "[::1]" | "::1"))
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Runs a load test.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    for url in [&args.api_url, &args.emulator_url] {
        if !loopback(url) {
            bail!("loadgen only drives a system on this machine: {url} is not a loopback address");
        }
    }
    if !(0.0 < args.rate && args.rate <= 20_000.0) || args.duration == 0 || args.duration > 600 {
        bail!("--rate must be in (0, 20000] and --duration in 1..=600 seconds");
    }
    if !(0.0..=1.0).contains(&args.new_ratio) || args.numbers == 0 || args.numbers > 100 || args.agents > 500 {
        bail!("--new-ratio is 0..1, --numbers 1..=100, --agents at most 500");
    }
    let admin = ApiClient::new(&args.api_url, Some(args.api_key.clone()))?;
    let emulator = ApiClient::new(&args.emulator_url, None)?;
    let pool = switchboard_storage::connect(&args.database_url, 4)
        .await
        .context("cannot reach the database (set DATABASE_URL)")?;

    let baseline = if args.baseline {
        eprintln!("baseline: raw RabbitMQ confirmed publishes and Postgres commits, 5 s each…");
        Some(baseline::Baseline {
            rabbitmq_confirmed_publishes_per_s: baseline::rabbitmq(&args.amqp_url, Duration::from_secs(5)).await?,
            postgres_commits_per_s: baseline::postgres(&args.database_url, Duration::from_secs(5)).await?,
        })
    } else {
        None
    };

    let total = (args.rate * args.duration as f64).ceil() as usize;
    let customers = ((total as f64 * args.new_ratio).ceil() as usize + 1).max(1);
    eprintln!(
        "setting up {} numbers, {} agents, {customers} customers…",
        args.numbers, args.agents
    );
    let setup = Arc::new(setup::prepare(&admin, &emulator, args.numbers, customers, args.agents).await?);
    let since = time::OffsetDateTime::now_utc();
    let stop_agents = CancellationToken::new();
    let agent_stats = Arc::new(agents::AgentStats::default());
    let mut agent_tasks = tokio::task::JoinSet::new();
    for (_, key) in &setup.agents {
        agent_tasks.spawn(agents::agent(
            args.api_url.clone(),
            key.clone(),
            setup.run.clone(),
            agent_stats.clone(),
            stop_agents.clone(),
        ));
    }
    // Let the agents' streams connect before the first offer.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let live = Arc::new(inbound::Live::default());
    let progress = indicatif::ProgressBar::new(args.duration);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let display = {
        let (live, stats, progress) = (live.clone(), agent_stats.clone(), progress.clone());
        tokio::spawn(async move {
            let mut last = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let accepted = live.accepted.load(Ordering::Relaxed);
                progress.inc(1);
                progress.set_message(format!(
                    "accepted {}/s, refused {}, offers {}, replies {}",
                    accepted - last,
                    live.refused.load(Ordering::Relaxed),
                    stats.offers.load(Ordering::Relaxed),
                    stats.replied.load(Ordering::Relaxed)
                ));
                last = accepted;
            }
        })
    };
    let abuse_task =
        (args.abuse_rate > 0.0).then(|| tokio::spawn(abuse::drive(setup.clone(), args.abuse_rate, Duration::from_secs(args.duration))));
    let outcome = inbound::drive(
        setup.clone(),
        args.rate,
        Duration::from_secs(args.duration),
        args.new_ratio,
        args.max_in_flight,
        live.clone(),
    )
    .await?;
    display.abort();
    progress.finish_and_clear();
    let abuse = match abuse_task {
        Some(task) => Some(task.await??),
        None => None,
    };
    eprintln!("sent; waiting for the system to settle…");
    // Agents keep working until every offer of the run has been answered (or the settle time ends).
    let settle_deadline = tokio::time::Instant::now() + Duration::from_secs(args.settle);
    if args.agents > 0 {
        while tokio::time::Instant::now() < settle_deadline {
            let handled = agent_stats.offers.load(Ordering::Relaxed);
            let stored_conversations: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT conversation_id) FROM session.messages WHERE channel_id = $1 AND direction = 'inbound'",
            )
            .bind(setup.channel_id.uuid())
            .fetch_one(&pool)
            .await?;
            if handled >= u64::try_from(stored_conversations).unwrap_or(0) && handled > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    stop_agents.cancel();
    while agent_tasks.join_next().await.is_some() {}
    let replies = agent_stats.replies.lock().await.clone();
    let remaining = settle_deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_secs(10));
    let check = check::verify(&pool, &emulator, &setup, &outcome.accepted, &replies, since, remaining).await?;
    let (forged, replayed) = if abuse.is_some() {
        let (f, r) = abuse::stored(&pool, &setup).await?;
        (Some(f), Some(r))
    } else {
        (None, None)
    };
    let sent = emulator.get("/emulator/messages").await?;
    let since_ms = since.unix_timestamp() * 1000;
    let prefix = format!("lg{}-", setup.run);
    let mut sent_per_second: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for m in sent.as_array().into_iter().flatten() {
        if let Some(t) = m["received_ms"].as_i64().filter(|t| *t >= since_ms)
            && m["body"].as_str().is_some_and(|b| b.starts_with(&prefix))
        {
            *sent_per_second.entry(t / 1000).or_insert(0) += 1;
        }
    }
    let sends: u64 = sent_per_second.values().sum();
    let elapsed = outcome.elapsed.as_secs_f64();
    let lat = &outcome.latencies_us;
    let report = Report {
        rate_target: args.rate,
        duration_s: elapsed,
        numbers: args.numbers,
        agents: args.agents,
        offered_rate: live.sent.load(Ordering::Relaxed) as f64 / elapsed,
        accepted_rate: outcome.accepted.len() as f64 / elapsed,
        skipped: outcome.skipped,
        statuses: outcome.statuses.clone(),
        new_conversations: outcome.new_conversations,
        ack_latency: check::Percentiles {
            count: lat.len() as u64,
            p50_ms: ms(inbound::percentile(lat, 50.0)),
            p95_ms: ms(inbound::percentile(lat, 95.0)),
            p99_ms: ms(inbound::percentile(lat, 99.0)),
            max_ms: ms(lat.last().copied().unwrap_or(0)),
        },
        ok: check.inbound_lost == 0
            && check.inbound_duplicated == 0
            && check.replies_lost == 0
            && check.replies_duplicated == 0
            && abuse.as_ref().is_none_or(|a| a.unexpected == 0)
            && forged.is_none_or(|f| f == 0)
            && replayed.is_none_or(|r| r == 1),
        check,
        agents_offers: agent_stats.offers.load(Ordering::Relaxed),
        agents_replied: agent_stats.replied.load(Ordering::Relaxed),
        agents_closed: agent_stats.closed.load(Ordering::Relaxed),
        agents_errors: agent_stats.errors.load(Ordering::Relaxed),
        outbound_sends_per_s: sends as f64 / elapsed,
        accepted_per_second: outcome.accepted_per_second.clone().into_iter().collect(),
        sent_per_second: sent_per_second.into_iter().collect(),
        abuse,
        abuse_forged_stored: forged,
        abuse_replay_copies: replayed,
        baseline,
    };
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&args.out, &json).with_context(|| format!("cannot write {}", args.out.display()))?;
    print_summary(&report, &args.out);
    pool.close().await;
    if !report.ok {
        bail!("the run lost, duplicated or mis-answered something: see {}", args.out.display());
    }
    Ok(())
}

fn print_summary(r: &Report, out: &std::path::Path) {
    let c = &r.check;
    println!(
        "loadgen: {:.0} webhooks/s offered, {:.0}/s accepted over {:.1} s ({} skipped)",
        r.offered_rate, r.accepted_rate, r.duration_s, r.skipped
    );
    println!(
        "  webhook ack      p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.1} ms",
        r.ack_latency.p50_ms, r.ack_latency.p95_ms, r.ack_latency.p99_ms, r.ack_latency.max_ms
    );
    println!(
        "  inbound→stored   p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        c.inbound_to_stored.p50_ms, c.inbound_to_stored.p95_ms, c.inbound_to_stored.p99_ms, c.inbound_to_stored.max_ms
    );
    println!(
        "  inbound→offered  p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} conversations)",
        c.inbound_to_offered.p50_ms,
        c.inbound_to_offered.p95_ms,
        c.inbound_to_offered.p99_ms,
        c.inbound_to_offered.max_ms,
        c.inbound_to_offered.count
    );
    println!(
        "  outbound sends   {:.0}/s; agents: {} offers, {} replies, {} closed, {} errors",
        r.outbound_sends_per_s, r.agents_offers, r.agents_replied, r.agents_closed, r.agents_errors
    );
    println!(
        "  inbound: {} accepted, {} lost, {} duplicated; replies: {} accepted, {} lost, {} duplicated",
        c.inbound_accepted, c.inbound_lost, c.inbound_duplicated, c.replies_accepted, c.replies_lost, c.replies_duplicated
    );
    if let Some(a) = &r.abuse {
        println!(
            "  abuse: {} bad requests, {} with an unexpected status; forged stored: {:?}; replay copies: {:?}",
            a.sent, a.unexpected, r.abuse_forged_stored, r.abuse_replay_copies
        );
    }
    if let Some(b) = &r.baseline {
        println!(
            "  baseline: RabbitMQ {:.0} confirmed publishes/s, Postgres {:.0} commits/s",
            b.rabbitmq_confirmed_publishes_per_s, b.postgres_commits_per_s
        );
    }
    println!(
        "  {} ({})",
        if r.ok { "OK: nothing lost or duplicated" } else { "FAILED" },
        out.display()
    );
}
