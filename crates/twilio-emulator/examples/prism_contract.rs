//! Sends the same Messages API requests to Stoplight Prism (serving Twilio's OpenAPI spec) and to
//! the emulator, and compares the status codes. Run by `scripts/prism-contract.sh`.
//!
//! `cargo run -p switchboard-twilio-emulator --example prism_contract -- http://127.0.0.1:4010`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use switchboard_twilio_emulator::{AccountSetup, CustomerMessage, Emulator, NumberSetup};

const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN: &str = "prism0123456789abcdef0123456789ab";

struct Case {
    name: &'static str,
    path_account: &'static str,
    auth: bool,
    json: bool,
    form: Vec<(&'static str, String)>,
    /// Whether both must answer the same status (otherwise the difference is documented).
    same: bool,
}

fn case(name: &'static str, form: &[(&'static str, &str)]) -> Case {
    Case {
        name,
        path_account: AC,
        auth: true,
        json: false,
        form: form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        same: true,
    }
}

#[tokio::main]
async fn main() {
    let prism = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:4010".into());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", api.local_addr().unwrap());
    let emulator = Emulator::new(&base, &base, Arc::new(switchboard_domain::SystemClock)).unwrap();
    emulator.setup_account(AccountSetup {
        account_sid: AC.into(),
        auth_token: TOKEN.into(),
        numbers: vec![NumberSetup {
            phone: "+14155238886".into(),
            inbound_url: "http://127.0.0.1:9/none".into(),
            fallback_url: None,
        }],
        sandbox_join_code: None,
        templates: None,
    });
    tokio::spawn(axum::serve(api, switchboard_twilio_emulator::router(emulator.clone())).into_future());
    emulator
        .customer_message(CustomerMessage {
            from: "+15552229999".into(),
            to: "+14155238886".into(),
            body: "hi".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let to = ("To", "whatsapp:+15552229999");
    let from = ("From", "whatsapp:+14155238886");
    let hx = format!("HX{:032x}", 1);
    let mut cases = vec![
        case("text", &[to, from, ("Body", "Hello from agent")]),
        case(
            "template with variables",
            &[to, from, ("ContentSid", &hx), ("ContentVariables", r#"{"1":"12/1","2":"3pm"}"#)],
        ),
        case("one media URL", &[to, from, ("MediaUrl", "https://example.com/a.jpg")]),
        case("unknown extra parameter", &[to, from, ("Body", "x"), ("Foo", "bar")]),
        Case {
            auth: false,
            ..case("no credentials", &[to, from, ("Body", "x")])
        },
        Case {
            json: true,
            ..case("JSON instead of a form", &[to, from, ("Body", "x")])
        },
        Case {
            same: false,
            ..case("no To", &[from, ("Body", "x")])
        },
        Case {
            same: false,
            ..case("ContentSid not HX + 32 hex", &[to, from, ("ContentSid", "HXnotvalid")])
        },
        Case {
            same: false,
            ..case("only To (Twilio needs From and content)", &[to])
        },
        Case {
            same: false,
            path_account: "ACbad",
            ..case("bad AccountSid in the path", &[to, from, ("Body", "x")])
        },
    ];
    let http = reqwest::Client::new();
    let mut agree = 0;
    let mut mismatched = 0;
    println!("| request | Prism | emulator | |");
    println!("|---|---|---|---|");
    for c in cases.drain(..) {
        let mut statuses = Vec::new();
        for target in [&prism, &base] {
            let url = format!("{target}/2010-04-01/Accounts/{}/Messages.json", c.path_account);
            let mut request = http.post(url);
            if c.auth {
                request = request.basic_auth(AC, Some(TOKEN));
            }
            request = if c.json {
                request
                    .header("content-type", "application/json")
                    .body(serde_json::to_string(&c.form.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()).unwrap())
            } else {
                request.form(&c.form)
            };
            statuses.push(request.send().await.map(|r| r.status().as_u16()).unwrap_or(0));
        }
        let equal = statuses[0] == statuses[1];
        let verdict = match (c.same, equal) {
            (true, true) => {
                agree += 1;
                "same"
            }
            (true, false) => {
                mismatched += 1;
                "MISMATCH"
            }
            (false, _) => "documented difference",
        };
        println!("| {} | {} | {} | {verdict} |", c.name, statuses[0], statuses[1]);
    }
    println!("\n{agree} passed, {mismatched} failed");
    std::process::exit(i32::from(mismatched > 0));
}
