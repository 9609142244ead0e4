-- Historical reporting. A queue leg is one wait of a conversation in one queue and how it ended;
-- an agent leg is one agent's handling of it, with its wrap-up. Routing writes them in the
-- transaction that moves the work item, on the service clock.
CREATE TABLE routing.queue_legs (
    id              uuid PRIMARY KEY,
    conversation_id uuid        NOT NULL,
    queue_id        uuid        NOT NULL,
    cause           text        NOT NULL CHECK (cause IN ('routed', 'released', 'transfer', 'overflow')),
    entered_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    outcome         text CHECK (outcome IN ('answered', 'abandoned', 'transferred', 'overflowed', 'left')),
    -- Who answered it.
    agent_id        uuid
);
CREATE UNIQUE INDEX queue_legs_open ON routing.queue_legs (conversation_id) WHERE ended_at IS NULL;
CREATE INDEX queue_legs_conversation ON routing.queue_legs (conversation_id);
CREATE INDEX queue_legs_queue_entered ON routing.queue_legs (queue_id, entered_at);

CREATE TABLE routing.agent_legs (
    id              uuid PRIMARY KEY,
    conversation_id uuid        NOT NULL,
    agent_id        uuid        NOT NULL,
    queue_id        uuid,
    accepted_at     timestamptz NOT NULL,
    wrap_started_at timestamptz,
    ended_at        timestamptz
);
CREATE UNIQUE INDEX agent_legs_open ON routing.agent_legs (conversation_id) WHERE ended_at IS NULL;
CREATE INDEX agent_legs_conversation ON routing.agent_legs (conversation_id);
CREATE INDEX agent_legs_agent_accepted ON routing.agent_legs (agent_id, accepted_at);
CREATE INDEX agent_legs_queue_accepted ON routing.agent_legs (queue_id, accepted_at);
