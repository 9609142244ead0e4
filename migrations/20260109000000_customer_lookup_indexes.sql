-- Lookups that stay on an index whatever the statistics say.
--
-- A customer is found by key, phone or BSUID (a customer who later shares their phone number, or
-- whose username appears, is still the same customer). With only (channel_id, key) indexed, the
-- OR lookup read every customer of the channel: 0.66 ms per inbound message at 4,000 customers,
-- growing with the channel. The indexes lead with the looked-up value, not the channel: a new
-- channel has no statistics yet, and an index led by channel_id made the planner believe that
-- scanning "its few rows" was cheapest long after the channel had thousands (found with
-- pg_stat_statements and auto_explain under `switchboard loadgen`). The same held for the
-- MessageSid dedupe of each inbound batch (13 ms per batch instead of well under 1 ms).
ALTER TABLE session.customers DROP CONSTRAINT customers_channel_id_key_key;
CREATE UNIQUE INDEX customers_key ON session.customers (key, channel_id);
CREATE INDEX customers_phone ON session.customers (phone, channel_id) WHERE phone IS NOT NULL;
CREATE INDEX customers_bsuid ON session.customers (bsuid, channel_id) WHERE bsuid IS NOT NULL;

DROP INDEX session.messages_twilio_sid;
CREATE UNIQUE INDEX messages_twilio_sid ON session.messages (twilio_sid, channel_id) WHERE twilio_sid IS NOT NULL;
