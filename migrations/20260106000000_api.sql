-- The api service: API keys (stored hashed) and the live stream agents and supervisors follow.
CREATE SCHEMA IF NOT EXISTS api;

CREATE TABLE api.keys (
    id           uuid PRIMARY KEY,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text        NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    -- The agent an agent key acts as.
    agent_id     uuid,
    -- Queues a supervisor watches; empty: every queue.
    queue_ids    uuid[]      NOT NULL DEFAULT '{}',
    -- The first characters of the key, shown so people can tell keys apart.
    prefix       text        NOT NULL,
    -- SHA-256 of the whole key (keys are 256 random bits, so a fast hash is enough).
    hash         bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);

-- Events relayed to WebSocket clients, kept for a while so a client can resume after a
-- reconnect (from any api replica) by the last id it saw.
CREATE TABLE api.stream_events (
    id              bigserial PRIMARY KEY,
    message_id      uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    agent_id        uuid,
    queue_id        uuid,
    conversation_id uuid,
    occurred_at     timestamptz NOT NULL,
    data            jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_events_agent ON api.stream_events (agent_id, id);
CREATE INDEX stream_events_created ON api.stream_events (created_at);

-- The queue and agent each conversation is with, learnt from routing's events, so message
-- events (which name no queue) reach the supervisors of the conversation's queue.
CREATE TABLE api.conversation_routes (
    conversation_id uuid PRIMARY KEY,
    queue_id        uuid,
    agent_id        uuid,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
