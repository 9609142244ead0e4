//! Session service against the real local Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod config;
mod conversations;
mod delivery;
mod harness;
mod hostile;
mod plans;
mod shards;
