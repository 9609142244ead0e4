//! The `switchboard` command line.

mod twilio_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Switchboard: a contact-center backend for WhatsApp through Twilio.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Debug Twilio webhook signatures the way Twilio computes them.
    #[command(subcommand)]
    Twilio(twilio_cmd::TwilioCommand),
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Twilio(cmd) => twilio_cmd::run(cmd),
    }
}
