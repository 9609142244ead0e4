//! Ingress against the real local RabbitMQ and an in-process fake session service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod harness;
mod journal;
mod webhooks;
