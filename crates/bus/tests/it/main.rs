//! Bus integration tests against the local RabbitMQ (each test in its own namespace).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

mod consume;
mod lanes;
mod retry;
mod support;
mod trace;
