-- Per-workstream auto-close times for Open, Active and Wrap-up conversations (Waiting has had
-- its own since the start); NULL keeps Dynamics' defaults for WhatsApp (30 days, 30 days, 1 day).
ALTER TABLE session.workstreams
    ADD COLUMN open_auto_close_secs bigint,
    ADD COLUMN active_auto_close_secs bigint,
    ADD COLUMN wrap_up_auto_close_secs bigint;
