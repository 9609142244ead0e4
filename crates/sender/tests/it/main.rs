//! Sender against the real local Postgres and RabbitMQ and the emulator, with session faked (test-support).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod harness;
mod outage;
mod sends;
mod unknown;
