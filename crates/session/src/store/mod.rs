//! Session's persistence of its conversations, messages (and their delivery reports) and
//! customers, one module per aggregate: each
//! statement that loads or writes them is written once, as a function named for what it does,
//! taking the caller's connection or transaction (`impl PgExecutor`). The rules are decided in
//! `switchboard_domain` (`conversation::apply`, `policy`, `delivery`) before these are called.
//! Channels, numbers, templates and bots keep their SQL in their own modules, one each.

pub mod conversations;
pub mod customers;
pub mod delivery;
pub mod messages;
pub mod webhook_signing;
