-- The customer message whose 24-hour window the agent was last warned about (a newer message
-- opens a new window, and a new warning).
ALTER TABLE session.conversations ADD COLUMN window_warned_for timestamptz;
