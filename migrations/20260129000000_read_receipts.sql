-- Read receipts and typing indicators (#21 item 2): each workstream's policy, when the business
-- marked a customer message read, and when a typing indicator last went out per conversation
-- (kept apart from session.conversations so an agent's typing never waits on an inbound batch's
-- lock on the conversation row).
ALTER TABLE session.workstreams ADD COLUMN read_receipts text NOT NULL DEFAULT 'on_typing';
ALTER TABLE session.messages ADD COLUMN read_at timestamptz;
CREATE TABLE session.typing (
    conversation_id uuid PRIMARY KEY REFERENCES session.conversations (id) ON DELETE CASCADE,
    indicated_at timestamptz NOT NULL
);
