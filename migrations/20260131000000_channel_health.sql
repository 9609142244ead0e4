-- Channel health (#21 item 4): what the periodic check last found (Twilio takes the
-- credentials; status callbacks arrive), why, and when.
ALTER TABLE session.channels
    ADD COLUMN health text NOT NULL DEFAULT 'unknown',
    ADD COLUMN health_reason text,
    ADD COLUMN health_checked_at timestamptz;
