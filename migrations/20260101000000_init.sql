-- One schema per owning service; each has its own transactional outbox.
CREATE SCHEMA IF NOT EXISTS session;
CREATE SCHEMA IF NOT EXISTS routing;
CREATE SCHEMA IF NOT EXISTS sender;

CREATE TABLE session.outbox (
    id          bigserial PRIMARY KEY,
    message_id  uuid        NOT NULL,
    routing_key text        NOT NULL,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE routing.outbox (LIKE session.outbox INCLUDING ALL);
CREATE TABLE sender.outbox (LIKE session.outbox INCLUDING ALL);
