-- Files agents upload to send (#21 item 5). The bytes live in `data` (the default store), or in
-- S3-compatible object storage under `object_key`; exactly one of the two is set. `data` is
-- stored EXTERNAL (out of line, uncompressed): media is compressed already, and reading it back
-- in chunks with substring() then touches only the chunks read.
CREATE TABLE session.files (
    id uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES session.conversations (id) ON DELETE CASCADE,
    author_kind text NOT NULL CHECK (author_kind IN ('agent', 'bot')),
    author_id uuid,
    file_name text NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes > 0),
    sha256 bytea NOT NULL,
    object_key text,
    data bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT files_one_store CHECK ((data IS NULL) <> (object_key IS NULL))
);
ALTER TABLE session.files ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX files_conversation ON session.files (conversation_id);
CREATE INDEX files_created_at ON session.files (created_at);
