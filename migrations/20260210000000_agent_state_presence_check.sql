-- routing reads an agent's presences as a closed set (domain::routing::Presence) and a value
-- outside it fails the read; these keep such values out. NOT VALID: enforced on every write
-- from now on without scanning (and refusing to migrate over) rows written before.
ALTER TABLE routing.agent_state
    ADD CONSTRAINT agent_state_presence_known
        CHECK (presence IN ('available', 'busy', 'busy_dnd', 'away', 'offline')) NOT VALID,
    ADD CONSTRAINT agent_state_chosen_presence_known
        CHECK (chosen_presence IN ('available', 'busy', 'busy_dnd', 'away', 'offline')) NOT VALID,
    ADD CONSTRAINT agent_state_chosen_before_disconnect_known
        CHECK (chosen_before_disconnect IN ('available', 'busy', 'busy_dnd', 'away', 'offline')) NOT VALID;
