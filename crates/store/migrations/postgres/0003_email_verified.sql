-- Users' `emailVerified` (issue 17), and what the Keycloak admin API needs (issue 18): stable
-- ids for groups and clients (Keycloak names them by id; paths and clientIds can change),
-- users' creation time, role descriptions, the admin events, and sessions by user.
-- Keep in step with ../sqlite/0003_email_verified.sql.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;

ALTER TABLE realm_groups ADD COLUMN id TEXT NOT NULL DEFAULT '';
UPDATE realm_groups SET id = gen_random_uuid()::text;
CREATE UNIQUE INDEX realm_groups_id ON realm_groups (realm, id);

ALTER TABLE clients ADD COLUMN id TEXT NOT NULL DEFAULT '';
UPDATE clients SET id = gen_random_uuid()::text;
CREATE UNIQUE INDEX clients_id ON clients (realm, id);

ALTER TABLE roles ADD COLUMN description TEXT;

CREATE TABLE admin_events (
    id BIGSERIAL PRIMARY KEY,
    realm TEXT NOT NULL,
    time BIGINT NOT NULL,
    operation TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_path TEXT NOT NULL,
    auth_realm TEXT NOT NULL,
    auth_client TEXT,
    auth_user TEXT NOT NULL,
    ip TEXT,
    error TEXT
);
CREATE INDEX admin_events_time ON admin_events (time);
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);
