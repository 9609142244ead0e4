-- Transfers on the conversation: how many, and whether one waits for its accept (which sends
-- "transfer accepted" instead of "agent joined"). The workstream's default language, for
-- choosing an automated message's language.
ALTER TABLE session.conversations
    ADD COLUMN transfer_count integer NOT NULL DEFAULT 0,
    ADD COLUMN transfer_pending boolean NOT NULL DEFAULT false;
ALTER TABLE session.workstreams ADD COLUMN default_language text;
