//! Compiles `proto/` with protox (pure Rust), so building needs no `protoc`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "switchboard/common/v1/common.proto",
    "switchboard/session/v1/bots.proto",
    "switchboard/session/v1/session.proto",
    "switchboard/routing/v1/routing.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::compile(PROTOS, ["../../proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("switchboard_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
