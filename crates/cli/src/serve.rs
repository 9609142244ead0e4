//! `switchboard serve <service>` (production: one service per process, as the Kubernetes
//! manifests run it) and `switchboard migrate`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use secrecy::ExposeSecret;
use switchboard_domain::SystemClock;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A service to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Service {
    /// Twilio webhooks in, verified, onto the bus.
    Ingress,
    /// Channels, conversations, messages, the 24-hour window.
    Session,
    /// Queues, agents, assignment and offers.
    Routing,
    /// Sends through Twilio's Messages API.
    Sender,
    /// REST and WebSocket for admins, supervisors and agents.
    Api,
    /// Calls the bots workstreams put in front of their agents.
    Bots,
}

/// `switchboard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which service to run in this process.
    service: Service,
    /// A TOML file layered over the service's defaults (the environment still wins).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
}

async fn listen(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Runs one service until SIGTERM or ctrl-c.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = args.config.as_deref();
    let name = match args.service {
        Service::Ingress => "switchboard-ingress",
        Service::Session => "switchboard-session",
        Service::Routing => "switchboard-routing",
        Service::Sender => "switchboard-sender",
        Service::Api => "switchboard-api",
        Service::Bots => "switchboard-bots",
    };
    let telemetry = switchboard_telemetry::init(name)?;
    let shutdown = CancellationToken::new();
    switchboard_service_kit::spawn_shutdown_on_signal(shutdown.clone());
    let clock = Arc::new(SystemClock);
    let result = match args.service {
        Service::Ingress => {
            let config = switchboard_ingress::Config::load(file)?;
            let listener = listen(config.ingress.listen, "ingress").await?;
            switchboard_ingress::run(config, listener, shutdown).await
        }
        Service::Session => {
            let config = switchboard_session::Config::load(file)?;
            let grpc = listen(config.session.grpc_listen, "session gRPC").await?;
            let http = listen(config.session.http_listen, "session health").await?;
            switchboard_session::run(config, clock, grpc, http, shutdown).await
        }
        Service::Routing => {
            let config = switchboard_routing::Config::load(file)?;
            let grpc = listen(config.routing.grpc_listen, "routing gRPC").await?;
            let http = listen(config.routing.http_listen, "routing health").await?;
            switchboard_routing::run(config, clock, grpc, http, shutdown).await
        }
        Service::Sender => {
            let config = switchboard_sender::Config::load(file)?;
            let http = listen(config.sender.http_listen, "sender health").await?;
            switchboard_sender::run(config, http, shutdown).await
        }
        Service::Api => {
            let config = switchboard_api::Config::load(file)?;
            let listener = listen(config.api.listen, "api").await?;
            switchboard_api::run(config, listener, shutdown).await
        }
        Service::Bots => {
            let config = switchboard_bots::Config::load(file)?;
            let http = listen(config.bots.http_listen, "bots health").await?;
            switchboard_bots::run(config, http, shutdown).await
        }
    };
    telemetry.shutdown().await;
    result
}

/// `switchboard migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: secrecy::SecretString,
    /// Also declare the bus topology, as a RabbitMQ user that may configure it, so that the
    /// services can run with `SWITCHBOARD_BUS__DECLARE=false` on users that may not.
    #[arg(long, hide_env_values = true)]
    amqp_url: Option<secrecy::SecretString>,
    /// Print the `rabbitmqctl set_permissions` of each service's least-privilege user (for the
    /// bus layout in the environment, `SWITCHBOARD_BUS__*`) and exit.
    #[arg(long)]
    rabbitmq_permissions: bool,
}

/// The bus layout from the environment (`SWITCHBOARD_BUS__*`), as the services read it.
fn bus_from_env() -> anyhow::Result<switchboard_bus::BusConfig> {
    #[derive(serde::Deserialize)]
    struct Only {
        #[serde(default)]
        bus: switchboard_bus::BusConfig,
    }
    let figment = switchboard_service_kit::config::figment_with("", figment::providers::Serialized::defaults(serde_json::json!({})), None);
    Ok(figment.extract::<Only>().context("invalid SWITCHBOARD_BUS__* settings")?.bus)
}

/// Applies every pending migration (and declares the bus topology when given a broker); safe to
/// run again and from several places at once.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let bus = bus_from_env()?;
    if args.rabbitmq_permissions {
        let topology = switchboard_bus::Topology::new(&bus);
        for service in ["ingress", "session", "routing", "sender", "bots", "api"] {
            let p = topology.permissions(service);
            println!(
                "rabbitmqctl set_permissions -p <vhost> {service} '{}' '{}' '{}'",
                p.configure, p.write, p.read
            );
        }
        return Ok(());
    }
    let applied = apply_migrations(args.database_url.expose_secret()).await?;
    if applied == 0 {
        println!("database is up to date");
    } else {
        println!("applied {applied} migration(s)");
    }
    if let Some(url) = args.amqp_url {
        let broker = switchboard_bus::Broker::new(url, "migrate", switchboard_bus::BusConfig { declare: true, ..bus });
        broker.declare_topology().await.context("cannot declare the bus topology")?;
        broker.close().await;
        println!("bus topology declared");
    }
    Ok(())
}

/// Applies pending migrations; returns how many were applied.
pub async fn apply_migrations(url: &str) -> anyhow::Result<usize> {
    let pool = switchboard_storage::connect(url, 2)
        .await
        .context("cannot connect to Postgres (set DATABASE_URL; is PostgreSQL running?)")?;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = '_sqlx_migrations'")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    let count_applied = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
    };
    let start = if before > 0 { count_applied(pool.clone()).await } else { 0 };
    switchboard_storage::MIGRATOR.run(&pool).await.context("migration failed")?;
    // Each service's role gets its own schema (and only that), tables added just now included.
    let mut conn = pool.acquire().await.context("cannot connect to Postgres")?;
    for granted in switchboard_storage::roles::grant(&mut conn)
        .await
        .context("cannot grant the service roles")?
    {
        if let switchboard_storage::roles::Granted::NoRole { service, role } = granted {
            tracing::warn!(
                service,
                role,
                "role missing and this user may not create it: {service} cannot use a least-privilege login until it exists"
            );
        }
    }
    drop(conn);
    let end = count_applied(pool.clone()).await;
    pool.close().await;
    Ok(usize::try_from(end - start).unwrap_or(0))
}
