-- The context variables a workstream declares (name → "text" or "number"), so session checks
-- the values bots set.
ALTER TABLE session.workstreams ADD COLUMN context_variables jsonb NOT NULL DEFAULT '{}'::jsonb;
