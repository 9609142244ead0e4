-- The day (UTC, by the service clock) an agent's end-of-day capacity profiles were last reset.
-- Use of a `reset: daily` profile is not given back when the work ends; it returns to zero when
-- the day changes. Routing sets it from its clock when it creates an agent's row; the default
-- only fills the rows that exist already.
ALTER TABLE routing.agent_state ADD COLUMN profile_day date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date);
