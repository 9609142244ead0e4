-- Routing keeps its configuration objects in process (crates/routing/src/config_cache.rs). Any
-- change to them, by any replica or by hand, tells every replica to drop its copy. NOTIFY takes
-- a database-wide lock at commit, which is fine here: configuration changes are rare.
CREATE FUNCTION routing.config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('routing_config', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON routing.config
    FOR EACH STATEMENT EXECUTE FUNCTION routing.config_changed();
