-- Session keeps the number each inbound message is addressed to in process (looked up for
-- every inbound message; crates/session/src/config_cache.rs). Numbers and channels change
-- rarely (a channel's health check writes it every few minutes), so any change to them tells
-- every replica to drop its copy, as for the automated messages.
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session.numbers
    FOR EACH STATEMENT EXECUTE FUNCTION session.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session.channels
    FOR EACH STATEMENT EXECUTE FUNCTION session.config_changed();
