//! Routing against the real local Postgres and RabbitMQ, with session faked (test-support).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod capacity;
mod config_cache;
mod connections;
mod cycles;
mod flows;
mod harness;
mod load;
mod offers;
mod split;
