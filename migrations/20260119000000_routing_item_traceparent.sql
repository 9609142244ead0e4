-- The W3C trace context a work item was queued in (the conversation's intake). The assignment
-- cycle, which runs on its own, records each offer in that trace, so the offer of a customer's
-- conversation shows in the trace of the message that started it.
ALTER TABLE routing.work_items ADD COLUMN traceparent text;
