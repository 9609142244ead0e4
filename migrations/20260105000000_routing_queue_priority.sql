-- The assignment cycle orders by queue priority, then item priority, then FIFO on the customer's
-- last message. Keeping the queue's priority on the item lets one index serve that order.
ALTER TABLE routing.work_items ADD COLUMN queue_priority integer NOT NULL DEFAULT 1;
UPDATE routing.work_items w SET queue_priority = (c.definition->>'priority')::int
  FROM routing.config c WHERE c.kind = 'queue' AND c.id = w.queue_id;
DROP INDEX routing.work_items_queued;
CREATE INDEX work_items_queued ON routing.work_items (queue_priority, priority, last_customer_message_at, conversation_id) WHERE state = 'queued';
CREATE INDEX work_items_queued_by_queue ON routing.work_items (queue_id) WHERE state = 'queued';
