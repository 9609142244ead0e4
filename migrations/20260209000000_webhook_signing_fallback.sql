-- The fallback ingress's Rule ([session.webhooks] fallback_base_url): Twilio matches Rules by
-- URL, and the fallback URLs have another base, so they need a Rule of their own, pointed at the
-- same Setting as the channel's Rule. A rotation is live only once both Rules' changes are.
ALTER TABLE session.webhook_signing
    ADD COLUMN fallback_rule_id          text,
    ADD COLUMN fallback_prefix           text,
    ADD COLUMN fallback_operation_id     text,
    ADD COLUMN fallback_operation_status text;
