//! Sender against the real local Postgres and RabbitMQ, the session service and the emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod harness;
mod outage;
mod sends;
mod unknown;
