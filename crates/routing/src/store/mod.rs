//! Routing's persistence of its work items and offers, one module per aggregate: each
//! statement that loads or writes them is written once, as a function named for the move it
//! makes, taking the caller's connection or transaction (`impl PgExecutor`). What may happen to
//! them is decided in `switchboard_domain::routing` (the offer state machine, the requeue after
//! a decline, ...) before these are called, so a service method reads: load, decide, persist,
//! emit. Agents' live state (presence, capacity in use) is the third aggregate (`agents`). The
//! configuration has its own cache and catalog (`config_cache`, `catalog`); reports and gauges
//! (`report`, `metrics`, the queue statistics) read their own summaries.

pub mod agents;
pub mod items;
pub mod offers;
