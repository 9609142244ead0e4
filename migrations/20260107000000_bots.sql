-- Bots (owned by session, like the channels whose conversations they answer). The signing secret
-- is sealed with the same keys as Twilio auth tokens.
CREATE TABLE session.bots (
    id                uuid PRIMARY KEY,
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    endpoint          text        NOT NULL,
    secret_key_id     text        NOT NULL,
    secret_ciphertext bytea       NOT NULL,
    secret_hint       text        NOT NULL,
    timeout_ms        integer     NOT NULL CHECK (timeout_ms BETWEEN 100 AND 60000),
    max_attempts      integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 5),
    active            boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE UNIQUE INDEX bots_name_live ON session.bots (name) WHERE deleted_at IS NULL;

-- Routing: a conversation a bot is handling (state 'bot') remembers it was escalated, so the
-- bot is not put in front of it again in the same session.
ALTER TABLE routing.work_items ADD COLUMN escalated_from_bot boolean NOT NULL DEFAULT false;
