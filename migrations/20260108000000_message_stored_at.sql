-- When session stored each message (created_at is when ingress received it), so the delay
-- between the two can be measured from the data itself.
ALTER TABLE session.messages ADD COLUMN stored_at timestamptz NOT NULL DEFAULT clock_timestamp();
