-- Shared-key signing of a channel's webhooks, set up through Twilio's Webhooks configuration API
-- (crates/session/src/webhook_signing.rs): the Rule that matches the channel's URLs, the Setting
-- it applies and the SharedKey that Setting signs with (its secret is a row of
-- session.webhook_keys). A rotation points the Rule at a new Setting; Twilio propagates the
-- change asynchronously (operation_id), and the Setting and key it replaces are kept, and still
-- verified by ingress, until the change is live everywhere.
CREATE TABLE session.webhook_signing (
    channel_id          uuid PRIMARY KEY REFERENCES session.channels (id),
    rule_id             text NOT NULL,
    prefix              text NOT NULL,
    setting_id          text NOT NULL,
    key_sid             text NOT NULL,
    algorithm           text NOT NULL,
    operation_id        text,
    operation_status    text,
    retiring_setting_id text,
    retiring_key_sid    text,
    last_error          text,
    updated_at          timestamptz NOT NULL
);
