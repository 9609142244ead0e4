//! `switchboard dev`: the whole system in one process against the local Postgres and RabbitMQ,
//! with the Twilio emulator unless real Twilio credentials are configured.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use switchboard_domain::SystemClock;
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;
use crate::demo::{self, Demo, DemoBot, RealTwilio};

/// Where the demo's bot listens.
const DEMO_BOT_PORT: u16 = 8086;
use crate::stack::{Ports, Stack, StackOptions};

/// `switchboard dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Seed a demo channel, number, workstream, two queues and two agents with API keys.
    #[arg(long)]
    demo: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Do not run the Twilio emulator (talk to real Twilio: set TWILIO_ACCOUNT_SID and
    /// TWILIO_AUTH_TOKEN for the demo, and SWITCHBOARD_PUBLIC_BASE_URL to a public URL of ingress).
    #[arg(long)]
    no_emulator: bool,
    /// Do not apply database migrations first.
    #[arg(long)]
    no_migrate: bool,
    /// A TOML file layered over every service's defaults (the environment still wins).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Where to write the demo's keys as shell exports.
    #[arg(long, default_value = ".switchboard/dev.env")]
    env_file: PathBuf,
    /// The first admin key (otherwise one is generated and printed once).
    #[arg(long, env = "SWITCHBOARD_ADMIN_API_KEY", hide_env_values = true)]
    admin_api_key: Option<String>,
}

fn real_twilio() -> Option<RealTwilio> {
    let account_sid = std::env::var("TWILIO_ACCOUNT_SID").ok().filter(|s| !s.is_empty())?;
    let auth_token = std::env::var("TWILIO_AUTH_TOKEN").ok().filter(|s| !s.is_empty())?;
    Some(RealTwilio { account_sid, auth_token })
}

/// Waits until the API answers with the admin key.
pub async fn wait_for_api(client: &ApiClient, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match client.get("/me").await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error.context("the API did not come up")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs `switchboard dev` until ctrl-c.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let telemetry = switchboard_telemetry::init("switchboard-dev")?;
    let result = run_inner(args).await;
    telemetry.shutdown().await;
    result
}

async fn run_inner(args: DevArgs) -> anyhow::Result<()> {
    let real = real_twilio();
    let emulator = !args.no_emulator && real.is_none();
    if !args.no_migrate {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        crate::serve::apply_migrations(&url).await?;
    }
    let (admin_key, generated) = match args.admin_api_key.clone() {
        Some(key) => (key, false),
        None => (switchboard_api::auth::generate().map_err(|e| anyhow::anyhow!(e.message))?, true),
    };
    let mut stack = Stack::start(StackOptions {
        host: args.host,
        ports: Ports::DEV,
        clock: Arc::new(SystemClock),
        emulator,
        database_url: None,
        service_database_urls: Default::default(),
        service_amqp_urls: Default::default(),
        amqp_url: None,
        bus: None,
        public_base_url: None,
        fallback_ingress: false,
        admin_api_key: Some(admin_key.clone()),
        config_file: args.config.clone(),
        overrides: serde_json::Value::Null,
    })
    .await?;
    // The demo's bot: a scripted bot of our own, in front of the demo workstream's agents.
    let test_bot = if args.demo {
        let secret = switchboard_api::auth::generate().map_err(|e| anyhow::anyhow!(e.message))?;
        let listener = tokio::net::TcpListener::bind((args.host, DEMO_BOT_PORT))
            .await
            .with_context(|| format!("cannot listen on {}:{DEMO_BOT_PORT} for the demo bot", args.host))?;
        let bot = switchboard_bots::testbot::TestBot::start(listener, &secret, switchboard_bots::testbot::TestBot::demo_rules())?;
        let endpoint = bot.url.clone();
        Some((bot, DemoBot { endpoint, secret }))
    } else {
        None
    };
    let admin = ApiClient::new(&stack.urls.api, Some(admin_key.clone()))?;
    let ready = wait_for_api(&admin, Duration::from_secs(30)).await;
    let demo = match ready {
        Ok(()) if args.demo => demo::seed(&admin, real.as_ref(), test_bot.as_ref().map(|(_, b)| b))
            .await
            .context("seeding the demo")
            .map(Some),
        Ok(()) => Ok(None),
        Err(error) => Err(error),
    };
    // The emulator learns the demo's account first, so the template sync it asks for is
    // answered, not refused with a 401 and retried.
    let demo = match demo {
        Ok(Some(demo)) => stack
            .sync_emulator()
            .await
            .and(
                admin
                    .post(&format!("/channels/{}/templates/sync", demo.channel_id), &serde_json::json!({}))
                    .await,
            )
            .map(|_| Some(demo)),
        other => other,
    };
    let demo = match demo {
        Ok(demo) => demo,
        Err(error) => {
            let _ = stack.stop().await;
            return Err(error);
        }
    };
    println!("{}", banner(&stack, &admin_key, generated, demo.as_ref()));
    if let Some(demo) = &demo {
        write_env_file(&args.env_file, &stack, &admin_key, demo)?;
        println!("The keys are also in {} (source it in another terminal).", args.env_file.display());
    }
    let stop = CancellationToken::new();
    switchboard_service_kit::spawn_shutdown_on_signal(stop.clone());
    let outcome = stack.wait(stop).await;
    let stopped = stack.stop().await;
    if let Some((bot, _)) = test_bot {
        bot.stop().await;
    }
    outcome.and(stopped)
}

fn banner(stack: &Stack, admin_key: &str, generated: bool, demo: Option<&Demo>) -> String {
    let u = &stack.urls;
    let mut out = String::new();
    let _ = writeln!(out, "\nSwitchboard is running.");
    let _ = writeln!(out, "  Desk       {}/desk   (agents, supervisors and admins sign in here)", u.api);
    let _ = writeln!(out, "  API        {}/api/v1   (OpenAPI: {}/api/v1/openapi.json)", u.api, u.api);
    let _ = writeln!(out, "  Webhooks   {}/v1/twilio/<channel_id>/inbound and /status", u.public_base_url);
    match &u.emulator {
        Some(em) => {
            let _ = writeln!(out, "  Twilio     emulator at {em} (customers: `switchboard simulate customer …`)");
        }
        None => {
            let _ = writeln!(out, "  Twilio     real Twilio (api.twilio.com)");
        }
    }
    if generated {
        let _ = writeln!(
            out,
            "\nAdmin API key (shown once; set SWITCHBOARD_ADMIN_API_KEY to choose your own):\n  {admin_key}"
        );
    }
    if let Some(d) = demo {
        let _ = writeln!(
            out,
            "\nDemo: number {} → workstream \"Customer support\" → queues General and Billing",
            d.number
        );
        let _ = writeln!(out, "  desk sign-ins   password {} for each of:", d.password);
        for (email, role) in &d.users {
            let _ = writeln!(out, "    {email:<30} {role}");
        }
        let _ = writeln!(out, "  agent Ana key   {}", d.ana_key);
        let _ = writeln!(out, "  agent Ben key   {}", d.ben_key);
        let _ = writeln!(out, "  supervisor key  {}", d.supervisor_key);
        if u.emulator.is_none() {
            let _ = writeln!(out, "  In the Twilio console set \"When a message comes in\" to {}", d.inbound_url);
            let _ = writeln!(out, "  and the status callback URL to {}", d.status_url);
        }
        let _ = writeln!(
            out,
            "  bot             \"Demo assistant\" answers first; say \"agent\" to reach a person"
        );
        let _ = writeln!(out, "\nTry:");
        let _ = writeln!(
            out,
            "  switchboard simulate customer --to {} --from +15551234567 --text \"Hi, my invoice is wrong\"",
            d.number
        );
        let _ = writeln!(
            out,
            "  switchboard simulate customer --to {} --from +15551234567 --text \"Talk to an agent\"",
            d.number
        );
        let _ = writeln!(out, "  switchboard agent --api-key {} offers", d.ana_key);
    }
    out
}

fn write_env_file(path: &std::path::Path, stack: &Stack, admin_key: &str, d: &Demo) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let u = &stack.urls;
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_default();
    let content = format!(
        "# Written by `switchboard dev --demo`; development keys only.\n\
         export PATH=\"{bin}:$PATH\"\n\
         export SWITCHBOARD_API_URL={api}\n\
         export SWITCHBOARD_EMULATOR_URL={em}\n\
         export ADMIN_KEY={admin_key}\n\
         export ANA_KEY={ana}\n\
         export BEN_KEY={ben}\n\
         export SUPERVISOR_KEY={sup}\n\
         export DEMO_NUMBER='{number}'\n\
         export GENERAL_QUEUE_ID={general}\n\
         export BILLING_QUEUE_ID={billing}\n",
        api = u.api,
        em = u.emulator.clone().unwrap_or_default(),
        ana = d.ana_key,
        ben = d.ben_key,
        sup = d.supervisor_key,
        number = d.number,
        general = d.general_queue_id,
        billing = d.billing_queue_id,
    );
    write_private(path, &content)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))
}
