-- The refresh grant in one statement (Store::rotate_live_family).
--
-- A refresh-token rotation is activity on its SSO session (Keycloak refreshes the user
-- session's lastSessionRefresh): the trigger keeps that in the rotation's own statement, so the
-- refresh grant needs one store round trip. Keep in step with ../postgres/0002_refresh_fast_path.sql.
CREATE TRIGGER refresh_rotation_touches_session
AFTER UPDATE OF current_hash ON refresh_families
FOR EACH ROW WHEN NEW.session_id IS NOT NULL
BEGIN
    UPDATE sso_sessions SET last_seen = NEW.updated_at
    WHERE id = NEW.session_id AND last_seen < NEW.updated_at;
END;

-- Bumped after every change to a realm's users, groups, roles or clients (admin API, realm
-- import): the rotation returns it, so an issuer whose cached directory is older reloads it at
-- once, even when the change came from another process or replica.
ALTER TABLE realms ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
