-- People who sign in to the web desk: agents, supervisors and admins, with argon2id password
-- hashes, and their server-side browser sessions. API keys stay for machines and the CLI.
CREATE TABLE api.users (
    id               uuid PRIMARY KEY,
    email            text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role             text        NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    -- The agent record an agent user is.
    agent_id         uuid,
    -- Queues a supervisor watches; empty: every queue.
    queue_ids        uuid[]      NOT NULL DEFAULT '{}',
    -- argon2id in PHC form; NULL until the invitation is accepted.
    password_hash    text,
    -- An invitation or password reset: the SHA-256 of a one-time token, and until when it works.
    setup_token_hash bytea UNIQUE,
    setup_expires_at timestamptz,
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'agent') = (agent_id IS NOT NULL)),
    CHECK (role = 'supervisor' OR queue_ids = '{}')
);
CREATE UNIQUE INDEX users_email ON api.users (lower(email));
CREATE UNIQUE INDEX users_agent ON api.users (agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE api.web_sessions (
    id           uuid PRIMARY KEY,
    -- SHA-256 of the cookie's value (256 random bits).
    token_hash   bytea       NOT NULL UNIQUE,
    user_id      uuid        NOT NULL REFERENCES api.users (id) ON DELETE CASCADE,
    -- Sent back as X-CSRF-Token on every state-changing request.
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX web_sessions_user ON api.web_sessions (user_id);
CREATE INDEX web_sessions_expires ON api.web_sessions (expires_at);
