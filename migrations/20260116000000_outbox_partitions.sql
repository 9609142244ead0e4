-- The outbox relays of a service's replicas publish in parallel (crates/storage/src/outbox.rs):
-- each row carries the partition of its aggregate (a conversation, a message, an agent), and a
-- relay publishes only partitions whose transaction-scoped advisory lock it holds, so the events
-- of one aggregate still leave in order. Rows written before this migration are partition 0.
ALTER TABLE session.outbox ADD COLUMN part smallint NOT NULL DEFAULT 0;
ALTER TABLE routing.outbox ADD COLUMN part smallint NOT NULL DEFAULT 0;
ALTER TABLE sender.outbox ADD COLUMN part smallint NOT NULL DEFAULT 0;

-- The running relays of each outbox, by heartbeat: a relay takes at most its share of the
-- partitions that have rows, so N relays divide the work instead of the first taking it all.
CREATE TABLE session.outbox_relays (
    member       text PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);
CREATE TABLE routing.outbox_relays (LIKE session.outbox_relays INCLUDING ALL);
CREATE TABLE sender.outbox_relays (LIKE session.outbox_relays INCLUDING ALL);
