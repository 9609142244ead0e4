-- Session keeps each channel's automated messages and each workstream's default language in
-- process (crates/session/src/config_cache.rs). Any change to them, by any replica or by hand,
-- tells every replica to drop its copy. NOTIFY takes a database-wide lock at commit, which is
-- fine here: these tables change rarely.
CREATE FUNCTION session.config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('session_config', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session.automated_messages
    FOR EACH STATEMENT EXECUTE FUNCTION session.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON session.workstreams
    FOR EACH STATEMENT EXECUTE FUNCTION session.config_changed();
