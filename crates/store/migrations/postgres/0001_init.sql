-- Initial schema of the embedded issuer (PostgreSQL). Keep in step with ../sqlite/0001_init.sql.
CREATE TABLE realms (
    name TEXT PRIMARY KEY,
    enabled BOOLEAN NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
    username TEXT NOT NULL,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    enabled BOOLEAN NOT NULL,
    password_hash TEXT,
    service_account_client TEXT,
    UNIQUE (realm, username)
);
CREATE TABLE realm_groups (
    realm TEXT NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    parent TEXT,
    PRIMARY KEY (realm, path)
);
CREATE TABLE roles (
    realm TEXT NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
    client TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (realm, client, name)
);
CREATE TABLE role_composites (
    realm TEXT NOT NULL,
    parent_client TEXT NOT NULL,
    parent_name TEXT NOT NULL,
    child_client TEXT NOT NULL,
    child_name TEXT NOT NULL,
    PRIMARY KEY (realm, parent_client, parent_name, child_client, child_name)
);
CREATE TABLE group_roles (
    realm TEXT NOT NULL,
    path TEXT NOT NULL,
    role_client TEXT NOT NULL,
    role_name TEXT NOT NULL,
    PRIMARY KEY (realm, path, role_client, role_name)
);
CREATE TABLE user_groups (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    PRIMARY KEY (user_id, path)
);
CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_client TEXT NOT NULL,
    role_name TEXT NOT NULL,
    PRIMARY KEY (user_id, role_client, role_name)
);
CREATE TABLE clients (
    realm TEXT NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    secret_hash TEXT,
    config TEXT NOT NULL,
    PRIMARY KEY (realm, client_id)
);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    realm TEXT NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    private_der BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    active BOOLEAN NOT NULL,
    retired_at BIGINT
);
CREATE TABLE sso_sessions (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    user_id TEXT NOT NULL,
    cookie_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    ended BOOLEAN NOT NULL
);
CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    scope TEXT NOT NULL,
    current_hash TEXT NOT NULL,
    code_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL
);
CREATE INDEX refresh_families_session ON refresh_families (session_id);
CREATE INDEX refresh_families_code ON refresh_families (code_hash);
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE brute_force (
    realm TEXT NOT NULL,
    key TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failure BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    PRIMARY KEY (realm, key)
);
CREATE TABLE login_events (
    id BIGSERIAL PRIMARY KEY,
    realm TEXT NOT NULL,
    time BIGINT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    client_id TEXT,
    ip TEXT,
    error TEXT
);
CREATE INDEX login_events_time ON login_events (time);
