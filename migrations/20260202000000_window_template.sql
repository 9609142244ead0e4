-- The template a workstream sends when an agent's message fails because the customer's window
-- closed in flight (63016), and, per conversation, the customer message whose window it was
-- sent for (once per window).
ALTER TABLE session.workstreams ADD COLUMN window_template jsonb;
ALTER TABLE session.conversations ADD COLUMN window_template_sent_for timestamptz;
