//! Every Switchboard service (and, unless real Twilio is configured, the Twilio emulator) in one
//! process: what `switchboard dev` runs and what the end-to-end test starts on port 0.
//!
//! Each service's configuration is its embedded defaults → the development defaults here → an
//! optional file → the environment (`SWITCHBOARD_…`, `DATABASE_URL`, `AMQP_URL`) → the wiring
//! between services (their addresses), which only this process knows.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use figment::providers::Serialized;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard_bus::BusConfig;
use switchboard_domain::Clock;
use switchboard_service_kit::Validate;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The development auth-token encryption key (32 bytes). Development only: production sets
/// `SWITCHBOARD_SESSION__TOKEN_KEYS__<ID>` and `SWITCHBOARD_SESSION__TOKEN_ACTIVE_KEY`.
const DEV_TOKEN_KEY: [u8; 32] = *b"switchboard-dev-only-token-key!!";

/// Ports to listen on; 0 takes any free port.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub api: u16,
    pub ingress: u16,
    pub ingress_admin: u16,
    pub session_grpc: u16,
    pub session_directory: u16,
    pub session_http: u16,
    pub routing_grpc: u16,
    pub routing_http: u16,
    pub sender_http: u16,
    pub bots_http: u16,
    pub emulator: u16,
    pub emulator_cdn: u16,
}

impl Ports {
    /// The documented development ports.
    pub const DEV: Self = Self {
        api: 8088,
        ingress: 8080,
        ingress_admin: 50055,
        session_grpc: 50051,
        session_directory: 50056,
        session_http: 8081,
        routing_grpc: 50052,
        routing_http: 8083,
        sender_http: 8082,
        bots_http: 8085,
        emulator: 8089,
        emulator_cdn: 8087,
    };

    /// Any free ports (tests).
    pub const ANY: Self = Self {
        api: 0,
        ingress: 0,
        ingress_admin: 0,
        session_grpc: 0,
        session_directory: 0,
        session_http: 0,
        routing_grpc: 0,
        routing_http: 0,
        sender_http: 0,
        bots_http: 0,
        emulator: 0,
        emulator_cdn: 0,
    };
}

/// How to start the stack.
pub struct StackOptions {
    /// Address to listen on.
    pub host: IpAddr,
    pub ports: Ports,
    /// Time for the window, offers and auto-close (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Run the Twilio emulator and point session and sender at it.
    pub emulator: bool,
    /// Forces the database (tests); otherwise `DATABASE_URL` or the default.
    pub database_url: Option<String>,
    /// Per service (`session`, `routing`, …), a database URL that wins over `database_url`
    /// (tests: each service on its own least-privilege role).
    pub service_database_urls: std::collections::BTreeMap<String, String>,
    /// Per service, a broker URL that wins over `amqp_url` (tests: each service on its own
    /// least-privilege RabbitMQ user).
    pub service_amqp_urls: std::collections::BTreeMap<String, String>,
    /// Forces the broker (tests); otherwise `AMQP_URL` or the default.
    pub amqp_url: Option<String>,
    /// Forces the bus layout (tests: a private namespace).
    pub bus: Option<BusConfig>,
    /// Forces the public base URL Twilio calls; otherwise `SWITCHBOARD_PUBLIC_BASE_URL` or ingress's address.
    pub public_base_url: Option<String>,
    /// Also run a second ingress, on its own port, given out as every channel's fallback URL
    /// (`[session.webhooks] fallback_base_url`), as a deployment runs one in another zone.
    pub fallback_ingress: bool,
    /// The bootstrap admin key.
    pub admin_api_key: Option<String>,
    /// An optional TOML file layered over the defaults.
    pub config_file: Option<PathBuf>,
    /// Settings forced on top of everything (tests: short intervals), as nested JSON.
    pub overrides: serde_json::Value,
}

/// Where the running services are.
#[derive(Debug, Clone)]
pub struct Urls {
    pub api: String,
    pub ingress: String,
    pub public_base_url: String,
    /// The fallback ingress, when one runs (its address is also its public base URL).
    pub fallback_ingress: Option<String>,
    pub session_grpc: String,
    /// Session's ChannelDirectory (decrypted tokens), on its own port.
    pub session_directory: String,
    pub routing_grpc: String,
    pub emulator: Option<String>,
}

/// The running services.
pub struct Stack {
    pub urls: Urls,
    /// How the services' gRPC is secured (the session's `[grpc_tls]`).
    pub grpc_tls: switchboard_service_kit::grpc::GrpcTls,
    /// The emulator, when it stands in for Twilio.
    pub emulator: Option<switchboard_twilio_emulator::Emulator>,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

async fn bind(host: IpAddr, port: u16, what: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port} for {what} (is another switchboard running?)"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

fn http(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Loads one service's configuration from its defaults, the overlay, the file, the
/// environment and the forced wiring.
fn load<T: DeserializeOwned + Validate>(
    defaults: &str,
    overlay: &serde_json::Value,
    forced: &serde_json::Value,
    file: Option<&std::path::Path>,
    service: &str,
) -> anyhow::Result<T> {
    let figment =
        switchboard_service_kit::config::figment_with(defaults, Serialized::defaults(overlay), file).merge(Serialized::defaults(forced));
    switchboard_service_kit::config::extract(figment).with_context(|| format!("{service} configuration"))
}

impl Stack {
    /// Binds every listener, then starts every service.
    pub async fn start(opts: StackOptions) -> anyhow::Result<Self> {
        let p = opts.ports;
        let h = opts.host;
        let (api_l, api) = bind(h, p.api, "api").await?;
        let (ingress_l, ingress) = bind(h, p.ingress, "ingress").await?;
        let (ingress_admin_l, ingress_admin) = bind(h, p.ingress_admin, "ingress journal gRPC").await?;
        let (session_grpc_l, session_grpc) = bind(h, p.session_grpc, "session gRPC").await?;
        let (session_directory_l, session_directory) = bind(h, p.session_directory, "session ChannelDirectory gRPC").await?;
        let (session_http_l, _) = bind(h, p.session_http, "session health").await?;
        let (routing_grpc_l, routing_grpc) = bind(h, p.routing_grpc, "routing gRPC").await?;
        let (routing_http_l, _) = bind(h, p.routing_http, "routing health").await?;
        let (sender_http_l, _) = bind(h, p.sender_http, "sender health").await?;
        let (bots_http_l, _) = bind(h, p.bots_http, "bots health").await?;
        let fallback_listener = if opts.fallback_ingress {
            Some(bind(h, 0, "fallback ingress").await?)
        } else {
            None
        };
        let emulator_listeners = if opts.emulator {
            let (em_l, em) = bind(h, p.emulator, "Twilio emulator").await?;
            let (cdn_l, cdn) = bind(h, p.emulator_cdn, "Twilio emulator media").await?;
            Some((em_l, em, cdn_l, cdn))
        } else {
            None
        };

        // What development changes from production defaults (the environment still wins).
        let mut overlay = json!({
            "public_base_url": http(ingress),
            "session": {
                "token_active_key": "dev",
                "token_keys": { "dev": base64::engine::general_purpose::STANDARD.encode(DEV_TOKEN_KEY) },
                "db_max_connections": 8,
                // Development bots (the demo's among them) listen on this machine.
                "bot_endpoints": { "allow_loopback": true },
            },
            "bots": { "allow_loopback_endpoints": true },
            "routing": { "db_max_connections": 8 },
            "api": { "db_max_connections": 8 },
        });
        if let Some(key) = &opts.admin_api_key {
            overlay["admin_api_key"] = json!(key);
        }
        // The wiring: only this process knows where the others listen.
        let mut forced = json!({
            // ChannelDirectory (decrypted tokens) on its own port, as in production.
            "ingress": { "session_url": http(session_directory) },
            "routing": { "session_url": http(session_grpc) },
            "sender": { "session_url": http(session_grpc), "directory_url": http(session_directory) },
            "bots": { "session_url": http(session_grpc), "directory_url": http(session_directory), "routing_url": http(routing_grpc) },
            "api": { "session_url": http(session_grpc), "routing_url": http(routing_grpc), "ingress_url": http(ingress_admin) },
        });
        if let Some((_, em, _, _)) = &emulator_listeners {
            for service in ["session", "sender"] {
                forced[service]["twilio_api_base"] = json!(http(*em));
                forced[service]["twilio_content_base"] = json!(http(*em));
            }
            forced["sender"]["twilio_messaging_base"] = json!(http(*em));
            // The emulator learns numbers from Switchboard once they are saved, so it cannot
            // vouch for one before: the save-time sender check would refuse every new number.
            forced["session"]["channel_health"] = json!({ "twilio_messaging_base": http(*em), "check_senders_on_save": false });
            forced["session"]["webhook_signing"] = json!({ "twilio_webhooks_base": http(*em) });
        }
        if let Some((_, addr)) = &fallback_listener {
            forced["session"]["webhooks"]["fallback_base_url"] = json!(http(*addr));
        }
        for (key, value) in [
            ("database_url", opts.database_url.as_ref()),
            ("amqp_url", opts.amqp_url.as_ref()),
            ("public_base_url", opts.public_base_url.as_ref()),
        ] {
            if let Some(value) = value {
                forced[key] = json!(value);
            }
        }
        if let Some(bus) = &opts.bus {
            forced["bus"] = serde_json::to_value(bus)?;
        }
        merge(&mut forced, &opts.overrides);
        let file = opts.config_file.as_deref();
        let ingress_config: switchboard_ingress::Config = load(switchboard_ingress::config::DEFAULTS, &overlay, &forced, file, "ingress")?;
        let session_config: switchboard_session::Config = load(switchboard_session::config::DEFAULTS, &overlay, &forced, file, "session")?;
        let routing_config: switchboard_routing::Config = load(switchboard_routing::config::DEFAULTS, &overlay, &forced, file, "routing")?;
        let sender_config: switchboard_sender::Config = load(switchboard_sender::config::DEFAULTS, &overlay, &forced, file, "sender")?;
        let api_config: switchboard_api::Config = load(switchboard_api::config::DEFAULTS, &overlay, &forced, file, "api")?;
        let bots_config: switchboard_bots::Config = load(switchboard_bots::config::DEFAULTS, &overlay, &forced, file, "bots")?;
        let (mut ingress_config, mut session_config, mut routing_config, mut sender_config, mut api_config) =
            (ingress_config, session_config, routing_config, sender_config, api_config);
        let mut bots_config = bots_config;
        // The bus topology before any service starts, as `switchboard migrate` declares it
        // before a rollout: whatever publishes first (a command from the API, a test's event)
        // finds its queues, instead of racing the services' own background declarations.
        if session_config.bus.declare {
            let broker = switchboard_bus::Broker::new(session_config.amqp_url.clone(), "dev", session_config.bus.clone());
            broker.declare_topology().await.context("cannot declare the bus topology")?;
            broker.close().await;
        }
        for (service, url) in &opts.service_amqp_urls {
            let url = secrecy::SecretString::from(url.clone());
            match service.as_str() {
                "ingress" => ingress_config.amqp_url = url,
                "session" => session_config.amqp_url = url,
                "routing" => routing_config.amqp_url = url,
                "sender" => sender_config.amqp_url = url,
                "api" => api_config.amqp_url = url,
                "bots" => bots_config.amqp_url = url,
                other => anyhow::bail!("no service {other} uses the broker"),
            }
        }
        for (service, url) in &opts.service_database_urls {
            let url = secrecy::SecretString::from(url.clone());
            match service.as_str() {
                "ingress" => ingress_config.database_url = url,
                "session" => session_config.database_url = url,
                "routing" => routing_config.database_url = url,
                "sender" => sender_config.database_url = url,
                "api" => api_config.database_url = url,
                other => anyhow::bail!("no service {other} uses a database"),
            }
        }

        let shutdown = CancellationToken::new();
        let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
        let mut emulator = None;
        let mut emulator_url = None;
        if let Some((em_l, em, cdn_l, cdn)) = emulator_listeners {
            let em_service = switchboard_twilio_emulator::Emulator::new(&http(em), &http(cdn), opts.clock.clone())?;
            tasks.push((
                "twilio-emulator",
                serve_router(em_l, switchboard_twilio_emulator::router(em_service.clone()), shutdown.clone()),
            ));
            tasks.push((
                "twilio-emulator-cdn",
                serve_router(cdn_l, switchboard_twilio_emulator::cdn_router(em_service.clone()), shutdown.clone()),
            ));
            emulator_url = Some(http(em));
            emulator = Some(em_service);
        }
        let public_base_url = session_config.public_base_url.clone();
        let grpc_tls = session_config.grpc_tls.clone();
        let clock = opts.clock.clone();
        tasks.push((
            "session",
            tokio::spawn(switchboard_session::run_with_directory(
                session_config,
                clock.clone(),
                session_grpc_l,
                Some(session_directory_l),
                session_http_l,
                shutdown.clone(),
            )),
        ));
        tasks.push((
            "routing",
            tokio::spawn(switchboard_routing::run(
                routing_config,
                clock.clone(),
                routing_grpc_l,
                routing_http_l,
                shutdown.clone(),
            )),
        ));
        let fallback_listener_addr = fallback_listener.as_ref().map(|(_, addr)| *addr);
        if let Some((listener, addr)) = fallback_listener {
            let mut config = ingress_config.clone();
            config.public_base_url = http(addr);
            tasks.push((
                "fallback ingress",
                tokio::spawn(switchboard_ingress::run_with_clock(
                    config,
                    clock.clone(),
                    listener,
                    None,
                    shutdown.clone(),
                )),
            ));
        }
        tasks.push((
            "ingress",
            tokio::spawn(switchboard_ingress::run_with_clock(
                ingress_config,
                clock,
                ingress_l,
                Some(ingress_admin_l),
                shutdown.clone(),
            )),
        ));
        tasks.push((
            "sender",
            tokio::spawn(switchboard_sender::run(sender_config, sender_http_l, shutdown.clone())),
        ));
        tasks.push(("api", tokio::spawn(switchboard_api::run(api_config, api_l, shutdown.clone()))));
        tasks.push((
            "bots",
            tokio::spawn(switchboard_bots::run(bots_config, bots_http_l, shutdown.clone())),
        ));
        let urls = Urls {
            api: http(api),
            ingress: http(ingress),
            public_base_url,
            fallback_ingress: fallback_listener_addr.map(http),
            session_grpc: http(session_grpc),
            session_directory: http(session_directory),
            routing_grpc: http(routing_grpc),
            emulator: emulator_url,
        };
        if let Some(em) = &emulator {
            em.adopt_unknown_accounts();
            tasks.push((
                "emulator-sync",
                tokio::spawn(crate::emulator_sync::run(
                    em.clone(),
                    urls.session_grpc.clone(),
                    urls.session_directory.clone(),
                    grpc_tls.clone(),
                    shutdown.clone(),
                )),
            ));
        }
        Ok(Self {
            urls,
            grpc_tls,
            emulator,
            shutdown,
            tasks,
        })
    }

    /// Brings the emulator's accounts up to date with the configured channels now (it also
    /// does so every second on its own).
    pub async fn sync_emulator(&self) -> anyhow::Result<()> {
        let Some(emulator) = &self.emulator else { return Ok(()) };
        let connect = |url: &str| {
            let timeouts = switchboard_service_kit::grpc::Timeouts::call(std::time::Duration::from_secs(10));
            switchboard_service_kit::grpc::channel(url, &self.grpc_tls, timeouts)
        };
        let mut session =
            switchboard_proto::session::v1::session_service_client::SessionServiceClient::new(connect(&self.urls.session_grpc)?);
        let mut directory =
            switchboard_proto::session::v1::channel_directory_client::ChannelDirectoryClient::new(connect(&self.urls.session_directory)?);
        crate::emulator_sync::sync_once(emulator, &mut session, &mut directory).await
    }

    /// A token cancelled when the stack stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until a service stops on its own (an error) or `shutdown` is cancelled.
    pub async fn wait(&mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let outcome = {
            let watch = self.tasks.iter_mut().map(|(_, task)| task);
            tokio::select! {
                () = shutdown.cancelled() => None,
                (result, index, _) = futures_util::future::select_all(watch) => Some((index, result)),
            }
        };
        let Some((index, result)) = outcome else { return Ok(()) };
        let (name, _) = self.tasks.remove(index);
        match result {
            Ok(Ok(())) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
            Ok(Err(error)) => Err(error.context(format!("{name} failed"))),
            Err(join) => Err(anyhow::anyhow!("{name} crashed: {join}")),
        }
    }

    /// Stops every service and waits for them to drain.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(service = name, error = %format!("{error:#}"), "service stopped with an error");
                    first_error.get_or_insert(error.context(format!("{name} failed")));
                }
                Err(join) if join.is_cancelled() => {}
                Err(join) => {
                    first_error.get_or_insert(anyhow::anyhow!("{name} crashed: {join}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Merges `extra` into `base`, objects key by key.
fn merge(base: &mut serde_json::Value, extra: &serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) if !e.is_null() => *b = e.clone(),
        _ => {}
    }
}

fn serve_router(listener: TcpListener, router: axum::Router, shutdown: CancellationToken) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("server failed")
    })
}
