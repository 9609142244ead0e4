//! Generated gRPC code for Switchboard's services. The `.proto` sources live in the top-level
//! `proto/` directory and are compiled by `build.rs` with protox.

#![allow(clippy::all, missing_docs, rust_2018_idioms)]

/// Types shared by every service.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("switchboard.common.v1");
    }
}

/// The session service.
pub mod session {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("switchboard.session.v1");
    }
}

/// The routing service.
pub mod routing {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("switchboard.routing.v1");
    }
}

/// Ingress's webhook journal.
pub mod ingress {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("switchboard.ingress.v1");
    }
}

pub mod closed_sets;
mod redact;
pub mod time;

/// The encoded `FileDescriptorSet` of every proto, for reflection and tooling.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/switchboard_descriptor.bin"));
