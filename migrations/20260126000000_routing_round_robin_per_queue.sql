-- Round robin is kept per queue, as Dynamics keeps it: an agent's turn in a queue is their last
-- assignment from that queue, else the time they joined it.
ALTER TABLE routing.queue_members ADD COLUMN last_assigned_at timestamptz;
