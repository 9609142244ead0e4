-- Sender: one row per message it was asked to send. A row with a twilio_sid was accepted by
-- Twilio and is never sent again, whatever RabbitMQ redelivers.
CREATE TABLE sender.deliveries (
    message_id    uuid PRIMARY KEY,
    channel_id    uuid,
    number_id     uuid,
    status        text        NOT NULL CHECK (status IN ('sending', 'accepted', 'failed', 'cancelled')),
    twilio_sid    text,
    attempts      integer     NOT NULL DEFAULT 0,
    error_code    integer,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Live sender replicas; each takes an equal share of every number's rate limit.
CREATE TABLE sender.replicas (
    id      uuid PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
