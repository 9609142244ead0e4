-- Inbound messages to a number that is not configured on the channel, or inactive: kept where an
-- admin sees them (GET /api/v1/unroutable-messages), with the verified parameters, instead of
-- being dead-lettered unseen. One row per (channel, MessageSid), whatever Twilio retries.
CREATE TABLE session.unroutable_messages (
    id           uuid PRIMARY KEY,
    channel_id   uuid        NOT NULL,
    message_sid  text        NOT NULL,
    to_number    text        NOT NULL,
    from_address text        NOT NULL,
    reason       text        NOT NULL CHECK (reason IN ('unknown_number', 'inactive_number')),
    body         text        NOT NULL,
    params       jsonb       NOT NULL,
    received_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, message_sid)
);
CREATE INDEX unroutable_messages_recent ON session.unroutable_messages (created_at DESC, id DESC);
