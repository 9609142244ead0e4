//! `switchboard doctor`: checks a whole set-up and says what is wrong, in words. PostgreSQL and
//! migrations, RabbitMQ and every queue (depth, consumers, dead letters), each channel's Twilio
//! credentials, and the OTLP endpoint. Exits non-zero on a problem, so it can run as a
//! Kubernetes Job or a CI smoke check. Never prints a secret.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use switchboard_bus::{BusConfig, Topology};
use switchboard_proto::common::v1::PageRequest;
use switchboard_proto::session::v1 as spb;
use switchboard_service_kit::grpc::{GrpcTls, Timeouts};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, but someone should look (dead letters, a queue nobody consumes).
    Warn,
    /// Broken.
    Fail,
}

/// One check's finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub check: String,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{tag}  {:<34} {}", self.check, self.detail)
    }
}

/// What to examine.
pub struct Target {
    pub database_url: SecretString,
    pub amqp_url: SecretString,
    pub bus: BusConfig,
    pub session_url: String,
    pub directory_url: String,
    pub grpc_tls: GrpcTls,
    pub twilio_api_base: String,
    pub otlp_endpoint: Option<String>,
}

/// `switchboard doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Session's gRPC API (channels).
    #[arg(long, env = "SWITCHBOARD_SESSION_URL", default_value = "http://127.0.0.1:50051")]
    session_url: String,
    /// Session's ChannelDirectory (credentials).
    #[arg(long, env = "SWITCHBOARD_DIRECTORY_URL", default_value = "http://127.0.0.1:50056")]
    directory_url: String,
}

fn finding(level: Level, check: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        level,
        check: check.into(),
        detail: detail.into(),
    }
}

/// `scheme://host:port/…` without its user and password.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Runs every check; findings in order.
pub async fn examine(target: &Target) -> Vec<Finding> {
    let mut out = Vec::new();
    postgres(target, &mut out).await;
    rabbitmq(target, &mut out).await;
    channels(target, &mut out).await;
    otlp(target, &mut out).await;
    out
}

/// Awaits `connect` for at most 5 s; a failure names `check` and `url` (without credentials).
async fn connect_within<T, E: fmt::Display>(
    check: &str,
    url: &str,
    connect: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Finding> {
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(e)) => Err(finding(Level::Fail, check, format!("{}: {e}", without_credentials(url)))),
        Err(_) => Err(finding(
            Level::Fail,
            check,
            format!("{}: no answer in 5 s", without_credentials(url)),
        )),
    }
}

async fn postgres(target: &Target, out: &mut Vec<Finding>) {
    let url = target.database_url.expose_secret();
    let check = "PostgreSQL reachable";
    let pool = match connect_within(check, url, switchboard_storage::connect(url, 1)).await {
        Ok(pool) => pool,
        Err(failed) => return out.push(failed),
    };
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&pool).await.unwrap_or_default();
    out.push(finding(
        Level::Ok,
        check,
        format!("{} (PostgreSQL {version})", without_credentials(url)),
    ));
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    let known: Vec<i64> = switchboard_storage::MIGRATOR.iter().map(|m| m.version).collect();
    let pending: Vec<i64> = known
        .iter()
        .copied()
        .filter(|v| !applied.iter().any(|(a, ok)| a == v && *ok))
        .collect();
    let failed = applied.iter().filter(|(_, ok)| !ok).count();
    if pending.is_empty() && failed == 0 {
        out.push(finding(Level::Ok, "migrations current", format!("{} applied", known.len())));
    } else {
        let first = pending.first().map(|v| format!(", first {v}")).unwrap_or_default();
        out.push(finding(
            Level::Fail,
            "migrations current",
            format!("{} pending{first}, {failed} failed: run `switchboard migrate`", pending.len()),
        ));
    }
    pool.close().await;
}

async fn rabbitmq(target: &Target, out: &mut Vec<Finding>) {
    let url = target.amqp_url.expose_secret();
    let connect = lapin::Connection::connect(url, lapin::ConnectionProperties::default());
    let conn = match connect_within("RabbitMQ reachable", url, connect).await {
        Ok(conn) => conn,
        Err(failed) => return out.push(failed),
    };
    out.push(finding(Level::Ok, "RabbitMQ reachable", without_credentials(url)));
    let topology = Topology::new(&target.bus);
    for spec in topology.system_queues() {
        let name = topology.queue(&spec.name);
        let check = format!("queue {}", spec.name);
        match depth(&conn, &name).await {
            None => out.push(finding(
                Level::Fail,
                check,
                format!("{name} is not declared: run `switchboard migrate --amqp-url`"),
            )),
            Some((ready, consumers)) => {
                let dead = depth(&conn, &topology.dead_letter_queue(&spec.name)).await.map_or(0, |(n, _)| n);
                let detail = format!("{ready} waiting, {consumers} consumer(s), {dead} dead-lettered");
                let level = if dead > 0 || consumers == 0 { Level::Warn } else { Level::Ok };
                let hint = match (dead > 0, consumers == 0) {
                    (true, _) => " (see `switchboard admin webhooks` and the .dlq queue)",
                    (false, true) => " (is its service running?)",
                    _ => "",
                };
                out.push(finding(level, check, format!("{detail}{hint}")));
            }
        }
    }
    let _ = conn.close(200, "doctor done".into()).await;
}

/// A queue's ready messages and consumers, or `None` when it does not exist.
async fn depth(conn: &lapin::Connection, name: &str) -> Option<(u32, u32)> {
    let channel = conn.create_channel().await.ok()?;
    let options = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare(name.into(), options, lapin::types::FieldTable::default())
        .await
        .ok()?;
    let _ = channel.close(200, "done".into()).await;
    Some((queue.message_count(), queue.consumer_count()))
}

async fn channels(target: &Target, out: &mut Vec<Finding>) {
    let timeouts = Timeouts::call(Duration::from_secs(5));
    let clients = switchboard_service_kit::grpc::channel(&target.session_url, &target.grpc_tls, timeouts).and_then(|s| {
        Ok((
            s,
            switchboard_service_kit::grpc::channel(&target.directory_url, &target.grpc_tls, timeouts)?,
        ))
    });
    let (session, directory) = match clients {
        Ok(pair) => pair,
        Err(e) => return out.push(finding(Level::Fail, "session reachable", e.to_string())),
    };
    let mut session = spb::session_service_client::SessionServiceClient::new(session);
    let mut directory = spb::channel_directory_client::ChannelDirectoryClient::new(directory);
    let listed = session
        .list_channels(spb::ListChannelsRequest {
            page: Some(PageRequest {
                page_size: 200,
                page_token: String::new(),
            }),
        })
        .await;
    let channels = match listed {
        Ok(r) => r.into_inner().channels,
        Err(s) => {
            return out.push(finding(
                Level::Fail,
                "session reachable",
                format!("{}: {}", target.session_url, s.message()),
            ));
        }
    };
    out.push(finding(Level::Ok, "session reachable", format!("{} channel(s)", channels.len())));
    let twilio = match switchboard_twilio::TwilioClient::new(&target.twilio_api_base, &target.twilio_api_base, Duration::from_secs(10)) {
        Ok(client) => client,
        Err(e) => return out.push(finding(Level::Fail, "Twilio client", e.to_string())),
    };
    for channel in channels.iter().filter(|c| c.active) {
        let check = format!("Twilio accepts \"{}\"", channel.name);
        let resolved = directory
            .resolve_channel(spb::ResolveChannelRequest {
                channel_id: channel.id.clone(),
            })
            .await;
        let creds = match resolved {
            Ok(r) => {
                let r = r.into_inner();
                switchboard_twilio::client::Credentials::account(&r.account_sid, SecretString::from(r.auth_token))
            }
            Err(s) => {
                out.push(finding(Level::Fail, check, format!("ChannelDirectory refused: {}", s.message())));
                continue;
            }
        };
        match twilio.check_credentials(&creds).await {
            Ok(()) => out.push(finding(
                Level::Ok,
                check,
                format!("{} at {}", channel.account_sid, target.twilio_api_base),
            )),
            Err(e) => out.push(finding(
                Level::Fail,
                check,
                format!(
                    "{}: {e}; update the channel's auth token (PATCH /api/v1/channels/{})",
                    channel.account_sid, channel.id
                ),
            )),
        }
    }
}

async fn otlp(target: &Target, out: &mut Vec<Finding>) {
    let Some(endpoint) = target.otlp_endpoint.as_deref().filter(|e| !e.trim().is_empty()) else {
        return out.push(finding(
            Level::Ok,
            "OTLP endpoint",
            "not configured (no traces or metrics exported)",
        ));
    };
    let address = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    let Some(address) = address else {
        return out.push(finding(Level::Fail, "OTLP endpoint", format!("{endpoint} is not a URL")));
    };
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => out.push(finding(Level::Ok, "OTLP endpoint", format!("{endpoint} answers"))),
        Ok(Err(e)) => out.push(finding(Level::Fail, "OTLP endpoint", format!("{endpoint}: {e}"))),
        Err(_) => out.push(finding(Level::Fail, "OTLP endpoint", format!("{endpoint}: no answer in 3 s"))),
    }
}

/// The settings the doctor reads, from session's defaults and the environment (no secret key
/// is needed to examine a set-up).
#[derive(serde::Deserialize)]
struct DoctorConfig {
    database_url: SecretString,
    amqp_url: SecretString,
    #[serde(default)]
    bus: BusConfig,
    #[serde(default)]
    grpc_tls: GrpcTls,
    session: DoctorSession,
}

#[derive(serde::Deserialize)]
struct DoctorSession {
    twilio_api_base: String,
}

/// Runs the command.
pub async fn run(args: DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    let config: DoctorConfig = switchboard_service_kit::config::figment(switchboard_session::config::DEFAULTS, None)
        .extract()
        .context("loading the configuration")?;
    let target = Target {
        database_url: config.database_url,
        amqp_url: config.amqp_url,
        bus: config.bus,
        session_url: args.session_url,
        directory_url: args.directory_url,
        grpc_tls: config.grpc_tls,
        twilio_api_base: config.session.twilio_api_base,
        otlp_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok(),
    };
    let findings = examine(&target).await;
    for f in &findings {
        println!("{f}");
    }
    let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warned = findings.iter().filter(|f| f.level == Level::Warn).count();
    println!("\n{} checks: {failed} failed, {warned} to look at", findings.len());
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
