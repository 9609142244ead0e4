//! Compiles `proto/` with protox (pure Rust), so building needs no `protoc`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "switchboard/common/v1/common.proto",
    "switchboard/session/v1/bots.proto",
    "switchboard/session/v1/session.proto",
    "switchboard/routing/v1/routing.proto",
    "switchboard/ingress/v1/ingress.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::compile(PROTOS, ["../../proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("switchboard_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    // Messages that carry a secret get a hand-written Debug that redacts it (src/redact.rs).
    // Server traits get default methods answering UNIMPLEMENTED, so a test fake (test-support's
    // session fake) implements only the calls it models. The real services implement every
    // method, and their tests call each one.
    tonic_prost_build::configure()
        .generate_default_stubs(true)
        .skip_debug([
            "switchboard.session.v1.ResolveChannelResponse",
            "switchboard.session.v1.WebhookKeySecret",
            "switchboard.session.v1.AddWebhookKeyRequest",
            "switchboard.session.v1.CreateChannelRequest",
            "switchboard.session.v1.UpdateChannelRequest",
            "switchboard.session.v1.CreateBotRequest",
            "switchboard.session.v1.UpdateBotRequest",
            "switchboard.session.v1.ResolveBotResponse",
        ])
        .compile_fds(fds)?;
    Ok(())
}
