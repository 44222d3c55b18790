-- Browser sessions of the gateway with `[session] store = "database"` (DESIGN §10): the
-- cookie names the session, the row holds it, so ending it here ends it on every replica.
-- `id` is a digest of the session id (the row alone can't be turned into a cookie), `data`
-- the session's tokens sealed with the gateway's cookie keys. Keep in step with
-- ../sqlite/0004_gateway_sessions.sql.
CREATE TABLE gateway_sessions (
    id TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    rev BIGINT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX gateway_sessions_expires_at ON gateway_sessions (expires_at);
CREATE INDEX gateway_sessions_sub ON gateway_sessions (sub);
