-- Secrets sealed with the owning row's id as AES-GCM associated data: a ciphertext copied to
-- another row no longer decrypts there. Rows sealed before (false) still open without it, and
-- `RotateTokenEncryption` re-seals them bound.
ALTER TABLE session.channels ADD COLUMN auth_token_bound boolean NOT NULL DEFAULT false;
ALTER TABLE session.bots ADD COLUMN secret_bound boolean NOT NULL DEFAULT false;
