-- Session service: channel configuration, customers, conversations, messages.
-- Channels and numbers are soft-deleted (deleted_at) so conversation history survives them.

CREATE TABLE session.channels (
    id                    uuid PRIMARY KEY,
    name                  text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    account_sid           text        NOT NULL CHECK (account_sid ~ '^AC[0-9a-fA-F]{32}$'),
    auth_token_key_id     text        NOT NULL,
    auth_token_ciphertext bytea       NOT NULL,
    sandbox               boolean     NOT NULL DEFAULT false,
    sandbox_join_code     text        NOT NULL DEFAULT '',
    active                boolean     NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE UNIQUE INDEX channels_account_sid_live ON session.channels (account_sid) WHERE deleted_at IS NULL;

CREATE TABLE session.numbers (
    id                    uuid PRIMARY KEY,
    channel_id            uuid        NOT NULL REFERENCES session.channels (id),
    phone                 text        NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    display_name          text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    active                boolean     NOT NULL DEFAULT true,
    default_language      text        NOT NULL DEFAULT 'en',
    customer_attachments  boolean     NOT NULL DEFAULT false,
    agent_attachments     boolean     NOT NULL DEFAULT false,
    max_attachment_bytes  bigint      NOT NULL DEFAULT 5242880 CHECK (max_attachment_bytes BETWEEN 1 AND 16777216),
    workstream_id         uuid,
    send_rate_per_second  double precision NOT NULL DEFAULT 0 CHECK (send_rate_per_second >= 0),
    survey_enabled        boolean     NOT NULL DEFAULT false,
    survey_url            text        NOT NULL DEFAULT '',
    survey_message        text        NOT NULL DEFAULT '' CHECK (length(survey_message) <= 200),
    survey_template_id    uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE UNIQUE INDEX numbers_phone_live ON session.numbers (phone) WHERE deleted_at IS NULL;
CREATE INDEX numbers_channel ON session.numbers (channel_id);

CREATE TABLE session.templates (
    id               uuid PRIMARY KEY,
    number_id        uuid        NOT NULL REFERENCES session.numbers (id) ON DELETE CASCADE,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    default_language text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (number_id, name)
);
ALTER TABLE session.numbers ADD CONSTRAINT numbers_survey_template FOREIGN KEY (survey_template_id) REFERENCES session.templates (id) ON DELETE SET NULL;

CREATE TABLE session.template_localizations (
    template_id uuid NOT NULL REFERENCES session.templates (id) ON DELETE CASCADE,
    language    text NOT NULL,
    text        text NOT NULL,
    content_sid text CHECK (content_sid ~ '^HX[0-9a-fA-F]{32}$'),
    status      text NOT NULL CHECK (status IN ('unsubmitted', 'pending', 'approved', 'rejected', 'paused', 'disabled')),
    PRIMARY KEY (template_id, language)
);
CREATE INDEX template_localizations_sid ON session.template_localizations (content_sid);

CREATE TABLE session.automated_messages (
    channel_id uuid    NOT NULL REFERENCES session.channels (id) ON DELETE CASCADE,
    number_id  uuid             REFERENCES session.numbers (id) ON DELETE CASCADE,
    trigger    text    NOT NULL,
    language   text    NOT NULL DEFAULT '',
    text       text    NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    UNIQUE NULLS NOT DISTINCT (channel_id, number_id, trigger, language)
);

-- Settings routing publishes for each workstream (event-carried, so session never asks routing).
CREATE TABLE session.workstreams (
    id                        uuid PRIMARY KEY,
    waiting_auto_close_secs   bigint NOT NULL,
    bot_id                    uuid,
    bot_inactivity_secs       bigint NOT NULL DEFAULT 1800,
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE session.customers (
    id           uuid PRIMARY KEY,
    channel_id   uuid        NOT NULL REFERENCES session.channels (id),
    key          text        NOT NULL,
    phone        text,
    bsuid        text,
    wa_id        text,
    profile_name text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, key)
);

-- The 24-hour window of one customer on one number: opened and extended only by their messages.
CREATE TABLE session.windows (
    number_id       uuid        NOT NULL REFERENCES session.numbers (id),
    customer_id     uuid        NOT NULL REFERENCES session.customers (id),
    last_inbound_at timestamptz NOT NULL,
    PRIMARY KEY (number_id, customer_id)
);

CREATE TABLE session.conversations (
    id                       uuid PRIMARY KEY,
    channel_id               uuid        NOT NULL REFERENCES session.channels (id),
    number_id                uuid        NOT NULL REFERENCES session.numbers (id),
    customer_id              uuid        NOT NULL REFERENCES session.customers (id),
    workstream_id            uuid,
    status                   text        NOT NULL CHECK (status IN ('open', 'active', 'waiting', 'wrap_up', 'closed')),
    status_reason            integer     NOT NULL,
    agent_id                 uuid,
    queue_id                 uuid,
    bot_id                   uuid,
    first_message            text        NOT NULL DEFAULT '',
    attributes               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    opened_at                timestamptz NOT NULL,
    status_changed_at        timestamptz NOT NULL,
    last_customer_message_at timestamptz,
    last_activity_at         timestamptz NOT NULL,
    closed_at                timestamptz,
    survey_sent              boolean     NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX conversations_one_live ON session.conversations (number_id, customer_id) WHERE status <> 'closed';
CREATE INDEX conversations_live_activity ON session.conversations (status, last_activity_at) WHERE status <> 'closed';
CREATE INDEX conversations_agent ON session.conversations (agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE session.messages (
    id                uuid PRIMARY KEY,
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id   uuid        NOT NULL REFERENCES session.conversations (id),
    channel_id        uuid        NOT NULL,
    direction         text        NOT NULL CHECK (direction IN ('inbound', 'outbound', 'note')),
    author_kind       text        NOT NULL CHECK (author_kind IN ('customer', 'agent', 'bot', 'automated', 'system')),
    author_id         uuid,
    twilio_sid        text,
    body              text        NOT NULL DEFAULT '',
    media             jsonb       NOT NULL DEFAULT '[]'::jsonb,
    details           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status            text        NOT NULL,
    error_code        integer,
    error_message     text,
    client_message_id text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- Dedupe: one row per Twilio message per account channel, whatever Twilio retries or we replay.
CREATE UNIQUE INDEX messages_twilio_sid ON session.messages (channel_id, twilio_sid) WHERE twilio_sid IS NOT NULL;
CREATE UNIQUE INDEX messages_client_id ON session.messages (conversation_id, client_message_id) WHERE client_message_id IS NOT NULL;
CREATE UNIQUE INDEX messages_seq ON session.messages (seq);
CREATE INDEX messages_conversation ON session.messages (conversation_id, seq);

-- Status callbacks that arrived before sender reported the message's Twilio SID.
CREATE TABLE session.pending_statuses (
    channel_id    uuid        NOT NULL,
    twilio_sid    text        NOT NULL,
    status        text        NOT NULL,
    error_code    integer,
    error_message text,
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (channel_id, twilio_sid, status)
);
