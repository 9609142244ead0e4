//! `switchboard twilio sign|verify` as an operator runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

const WA1: &str = "SmsMessageSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&NumMedia=0&ProfileName=Ana+Mar%C3%ADa&MessageType=text&SmsSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&WaId=5511987654321&SmsStatus=received&Body=Ol%C3%A1%2C+preciso+de+ajuda+com+meu+pedido+%23123+%F0%9F%98%8A&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&AccountSid=AC11111111111111111111111111111111&From=whatsapp%3A%2B5511987654321&ApiVersion=2010-04-01";
const URL: &str = "https://cc.example.com/twilio/whatsapp/inbound";

fn run(args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn sign_prints_twilios_signature() {
    let (code, out) = run(&["twilio", "sign", "--url", URL], &format!("{WA1}\n"));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "WYmUcgS+FOCH6tSvW0FsvF47ue8=");
}

#[test]
fn verify_accepts_the_port_variant_and_rejects_a_changed_body() {
    let (code, out) = run(
        &["twilio", "verify", "--url", URL, "--signature", "s8IRCi7Liw69XLHlO+xYpKUUGAQ="],
        WA1,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("https://cc.example.com:443/twilio/whatsapp/inbound"), "{out}");
    let (code, out) = run(
        &["twilio", "verify", "--url", URL, "--signature", "WYmUcgS+FOCH6tSvW0FsvF47ue8="],
        &WA1.replace("pedido", "pedidO"),
    );
    assert_eq!(code, 1);
    assert!(out.contains("invalid"), "{out}");
    assert!(!out.contains("0123456789abcdef0123456789abcdef"), "the token is never printed");
}
