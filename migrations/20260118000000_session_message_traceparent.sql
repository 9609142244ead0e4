-- The W3C trace context a message was handled in: an inbound message's (from its webhook's
-- trace) and an outbound message's (the agent's or bot's call). An agent's reply continues the
-- trace of the message it answers, and a later status callback is recorded in its message's
-- trace, so one trace follows a conversation turn end to end.
ALTER TABLE session.messages ADD COLUMN traceparent text;
