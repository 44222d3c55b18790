-- Action tokens (issue 17): the links mailed for verifying an address and resetting a
-- password are signed and expire on their own; a row here marks one used, so a link works once
-- on every replica. Rows go once their token would have expired anyway. Users are looked up by
-- address for "forgot password" (case-insensitive, as Keycloak compares addresses).
-- Keep in step with ../postgres/0007_action_tokens.sql.
CREATE TABLE used_action_tokens (
    jti TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_action_tokens_expires_at ON used_action_tokens (expires_at);
CREATE INDEX users_email ON users (realm, lower(email));
