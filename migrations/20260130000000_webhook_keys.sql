-- Shared keys a channel's webhooks may be signed with (Twilio's Webhooks configuration API,
-- X-Twilio-Webhooks-Signature-Settings). Several per channel so a rotation never refuses a
-- webhook; each secret sealed like an auth token (AES-256-GCM, bound to its row).
CREATE TABLE session.webhook_keys (
    id uuid PRIMARY KEY,
    channel_id uuid NOT NULL REFERENCES session.channels (id) ON DELETE CASCADE,
    key_sid text NOT NULL,
    secret_key_id text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, key_sid)
);
