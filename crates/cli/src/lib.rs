//! The `switchboard` command line: run the whole system for development, run one service in
//! production, migrate, administer, work as an agent, simulate customers.

mod admin;
mod agent_cmd;
pub mod client;
pub mod demo;
mod dev;
pub mod doctor;
mod emulator_cmd;
pub mod emulator_sync;
mod fault_proxy;
mod loadgen;
mod serve;
mod simulate;
pub mod stack;
pub mod tls_certs;
mod twilio_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use dev::wait_for_api;
pub use serve::apply_migrations;

/// Switchboard: a contact-center backend for WhatsApp through Twilio.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service (and the Twilio emulator) in one process against local Postgres and RabbitMQ.
    Dev(dev::DevArgs),
    /// Apply database migrations (production: a Kubernetes Job before each rollout).
    Migrate(serve::MigrateArgs),
    /// Run one service (production: one per process).
    Serve(serve::ServeArgs),
    /// Configure Switchboard through its API.
    Admin(Box<admin::AdminArgs>),
    /// Work conversations as an agent through the API.
    Agent(agent_cmd::AgentArgs),
    /// Make the Twilio emulator deliver traffic to Switchboard.
    #[command(subcommand)]
    Simulate(simulate::SimulateCommand),
    /// Run the Twilio emulator on its own.
    TwilioEmulator(emulator_cmd::EmulatorArgs),
    /// Load-test a running Switchboard on this machine and check nothing was lost or duplicated.
    Loadgen(Box<loadgen::LoadgenArgs>),
    /// A TCP proxy that can cut connections on demand (fault drills).
    FaultProxy(fault_proxy::FaultProxyArgs),
    /// Check the whole set-up (database, migrations, broker and queues, Twilio credentials,
    /// OTLP) and say what is wrong; exits 1 on a problem.
    Doctor(doctor::DoctorArgs),
    /// Make a private CA and a certificate per service for mutual TLS between services.
    TlsCerts(tls_certs::TlsCertsArgs),
    /// Debug Twilio webhook signatures the way Twilio computes them.
    #[command(subcommand)]
    Twilio(twilio_cmd::TwilioCommand),
}

/// Installs the process-wide TLS provider (ring) once.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Twilio(cmd) => return twilio_cmd::run(cmd),
        Command::TlsCerts(args) => return tls_certs::run(&args).map(|()| ExitCode::SUCCESS),
        _ => {}
    }
    install_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
        match cli.command {
            Command::Doctor(args) => doctor::run(args).await,
            Command::Dev(args) => done(dev::run(args).await),
            Command::Migrate(args) => done(serve::migrate(args).await),
            Command::Serve(args) => done(serve::serve(args).await),
            Command::Admin(args) => done(admin::run(*args).await),
            Command::Agent(args) => done(agent_cmd::run(args).await),
            Command::Simulate(cmd) => done(simulate::run(cmd).await),
            Command::TwilioEmulator(args) => done(emulator_cmd::run(args).await),
            Command::Loadgen(args) => done(loadgen::run(*args).await),
            Command::FaultProxy(args) => done(fault_proxy::run(args).await),
            Command::Twilio(_) | Command::TlsCerts(_) => unreachable!("handled above"),
        }
    })
}
