//! End to end: every service, the emulator standing in for Twilio, real Postgres and RabbitMQ,
//! driven only through the public surfaces (REST, WebSocket, the emulator's customers and
//! Twilio's webhooks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod automated;
mod bots;
mod broker_users;
mod browser;
mod bsuid;
mod channel_health;
mod content;
mod desk;
mod doctor;
mod files;
mod harness;
mod hostile;
mod journal;
mod lifecycle;
mod mtls;
mod presence;
mod read_receipts;
mod reports;
mod shared_keys;
mod slice;
mod stream;
mod transfer;
mod users;
mod window;
