-- The agent's live connections (the API's WebSocket streams), so presence follows them: when the
-- last one drops the agent shows Offline, and is restored if back within the restore window.
-- Each API replica confirms its connections every 30 s; one it stops confirming (its replica
-- died) is dropped after 90 s.
CREATE TABLE routing.agent_connections (
    connection_id uuid PRIMARY KEY,
    agent_id      uuid        NOT NULL,
    opened_at     timestamptz NOT NULL,
    seen_at       timestamptz NOT NULL
);
CREATE INDEX agent_connections_agent ON routing.agent_connections (agent_id);
CREATE INDEX agent_connections_seen ON routing.agent_connections (seen_at);

-- Set when the agent's last connection dropped; cleared when one returns.
ALTER TABLE routing.agent_state ADD COLUMN disconnected_at timestamptz;
-- What the agent had chosen before the drop, restored if they are back in time.
ALTER TABLE routing.agent_state ADD COLUMN chosen_before_disconnect text;
-- Whether the restore window has run out and their active conversations went back to the queue.
ALTER TABLE routing.agent_state ADD COLUMN disconnect_handled boolean NOT NULL DEFAULT false;
