//! `switchboard twilio sign|verify`: compute or check `X-Twilio-Signature` for a webhook body
//! read from stdin, to debug signature mismatches (wrong public URL, a proxy that rewrote the
//! path or port, a reformatted body).

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use switchboard_twilio::signature;

#[derive(Debug, Subcommand)]
pub(crate) enum TwilioCommand {
    /// Print the X-Twilio-Signature Twilio would send for the form body on stdin.
    Sign(SignArgs),
    /// Check an X-Twilio-Signature against the form body on stdin (exit 0 valid, 1 invalid).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The full URL Twilio calls, exactly as configured in the Twilio console (query included).
    #[arg(long)]
    url: String,
    /// The account's primary auth token (or set TWILIO_AUTH_TOKEN, to keep it out of shell history).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    auth_token: String,
    /// Also print the string that is signed (never includes the token).
    #[arg(long)]
    explain: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The full URL Twilio called.
    #[arg(long)]
    url: String,
    /// The account's primary auth token (or TWILIO_AUTH_TOKEN).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    auth_token: String,
    /// The X-Twilio-Signature header received.
    #[arg(long)]
    signature: String,
    /// The body is JSON (the URL carries bodySHA256) rather than a form.
    #[arg(long)]
    json: bool,
}

fn read_body() -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("cannot read the webhook body from stdin")?;
    // A body typed or echoed into the terminal ends in a newline that Twilio never sends.
    while body.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        body.pop();
    }
    Ok(body)
}

pub(crate) fn run(command: TwilioCommand) -> anyhow::Result<ExitCode> {
    match command {
        TwilioCommand::Sign(args) => {
            let params = signature::form_params(&read_body()?);
            if args.explain {
                println!("signed string: {}", signature::signing_string(&args.url, &params));
            }
            println!("{}", signature::compute(&args.auth_token, &args.url, &params));
            Ok(ExitCode::SUCCESS)
        }
        TwilioCommand::Verify(args) => {
            let body = read_body()?;
            if args.json {
                let ok = signature::validate_json_body(&args.auth_token, &args.url, &body, &args.signature);
                println!(
                    "{}",
                    if ok {
                        "valid"
                    } else {
                        "invalid: the URL signature or its bodySHA256 does not match"
                    }
                );
                return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
            }
            let params = signature::form_params(&body);
            for url in signature::url_variants(&args.url) {
                if signature::compute(&args.auth_token, &url, &params) == args.signature {
                    println!("valid: matches {url}");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            println!("invalid: no form of the URL matches. Tried:");
            for url in signature::url_variants(&args.url) {
                println!("  {url} -> {}", signature::compute(&args.auth_token, &url, &params));
            }
            println!(
                "Check the URL is exactly the one in the Twilio console (scheme, host, port, path, trailing slash, query), that the token is the account's primary one, and that nothing re-encoded the body."
            );
            Ok(ExitCode::from(1))
        }
    }
}
