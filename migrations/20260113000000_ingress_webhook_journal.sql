-- Ingress's webhook journal: every webhook whose signature verified, with the answer ingress gave
-- (200/204, or 503 while the broker was down), kept for `[ingress.journal] retention_hours` so
-- that an admin can find a customer's message and publish it again
-- (`switchboard admin webhooks list|show|replay`). Replay goes through session's usual dedupe.
CREATE SCHEMA IF NOT EXISTS ingress;

CREATE TABLE ingress.webhook_journal (
    id               uuid PRIMARY KEY,
    channel_id       text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('inbound', 'status')),
    message_sid      text        NOT NULL,
    from_address     text        NOT NULL,
    to_address       text        NOT NULL,
    answer           smallint    NOT NULL,
    outcome          text        NOT NULL,
    params           jsonb       NOT NULL,
    headers          jsonb       NOT NULL,
    received_at      timestamptz NOT NULL,
    replays          integer     NOT NULL DEFAULT 0,
    last_replayed_at timestamptz
);
-- Ids are UUIDv7: ordered by arrival, so "newest first" pages on the primary key.
CREATE INDEX webhook_journal_sid ON ingress.webhook_journal (message_sid);
CREATE INDEX webhook_journal_customer ON ingress.webhook_journal (from_address, id DESC);
CREATE INDEX webhook_journal_recipient ON ingress.webhook_journal (to_address, id DESC);
CREATE INDEX webhook_journal_received ON ingress.webhook_journal (received_at);
