-- Routing: configuration (validated JSON definitions), queue membership, agents' live state,
-- work items and offers.
CREATE TABLE routing.config (
    kind       text        NOT NULL CHECK (kind IN ('workstream', 'queue', 'operating_hours', 'skill', 'capacity_profile', 'agent')),
    id         uuid        NOT NULL,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id),
    UNIQUE (kind, name)
);

CREATE TABLE routing.queue_members (
    queue_id  uuid        NOT NULL,
    agent_id  uuid        NOT NULL,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue_id, agent_id)
);
CREATE INDEX queue_members_agent ON routing.queue_members (agent_id);

CREATE TABLE routing.agent_state (
    agent_id           uuid PRIMARY KEY,
    presence           text        NOT NULL,
    chosen_presence    text        NOT NULL,
    used_units         integer     NOT NULL DEFAULT 0,
    profile_used       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    active_items       integer     NOT NULL DEFAULT 0,
    last_assigned_at   timestamptz,
    last_released_at   timestamptz,
    presence_changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE routing.work_items (
    conversation_id          uuid PRIMARY KEY,
    workstream_id            uuid,
    number_id                uuid,
    queue_id                 uuid,
    state                    text        NOT NULL CHECK (state IN ('unrouted', 'queued', 'offered', 'assigned', 'wrap_up', 'waiting', 'bot', 'pick_only')),
    priority                 integer     NOT NULL DEFAULT 0,
    units                    integer     NOT NULL DEFAULT 1,
    profiles                 uuid[]      NOT NULL DEFAULT '{}',
    skills                   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    facts                    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    affinity_agent_id        uuid,
    -- A transfer to a named agent: offered to them whatever the workstream's affinity setting.
    pinned_agent_id          uuid,
    agent_id                 uuid,
    offer_id                 uuid,
    capacity_held            boolean     NOT NULL DEFAULT false,
    release_at               timestamptz,
    enqueued_at              timestamptz NOT NULL,
    last_customer_message_at timestamptz NOT NULL,
    declines                 jsonb       NOT NULL DEFAULT '{}'::jsonb,
    total_declines           integer     NOT NULL DEFAULT 0,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_items_queued ON routing.work_items (queue_id, priority, last_customer_message_at) WHERE state = 'queued';
CREATE INDEX work_items_agent ON routing.work_items (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX work_items_release ON routing.work_items (release_at) WHERE release_at IS NOT NULL;

CREATE TABLE routing.offers (
    id              uuid PRIMARY KEY,
    conversation_id uuid        NOT NULL,
    agent_id        uuid        NOT NULL,
    queue_id        uuid,
    workstream_id   uuid,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'accepted', 'declined', 'expired', 'cancelled'))
);
CREATE INDEX offers_pending_agent ON routing.offers (agent_id) WHERE state = 'pending';
CREATE INDEX offers_pending_expiry ON routing.offers (expires_at) WHERE state = 'pending';
