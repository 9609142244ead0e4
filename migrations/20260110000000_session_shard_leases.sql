-- Session replicas divide the inbound shards among themselves with leases (crates/storage/src/leases.rs).
-- A member is a running replica; it heartbeats, and counts as live while its heartbeat is recent.
CREATE TABLE session.lease_members (
    member       text PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);

-- One row per shard: who holds it, until when, and how many times it changed hands (the epoch
-- increases on every acquisition, a fencing token for whoever holds it).
CREATE TABLE session.leases (
    part       integer PRIMARY KEY CHECK (part >= 0),
    owner      text,
    epoch      bigint      NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT 'epoch'
);
CREATE INDEX leases_owner ON session.leases (owner) WHERE owner IS NOT NULL;
