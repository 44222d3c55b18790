-- Accounts (issue 17): users' required actions (Keycloak's `requiredActions`, comma-separated
-- names), credentials beyond the password (`otp`, and the hashes of past passwords as
-- `password-history`; other kinds may follow), and the factors a session was signed in with
-- (`amr`, comma-separated: `pwd`, `otp`, …). Additive only: a previous release keeps
-- working on the migrated schema. Keep in step with ../sqlite/0005_accounts.sql.
ALTER TABLE users ADD COLUMN required_actions TEXT NOT NULL DEFAULT '';
ALTER TABLE sso_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
-- The factors a login event's sign-in used (or the one that failed), comma-separated.
ALTER TABLE login_events ADD COLUMN factors TEXT NOT NULL DEFAULT '';

-- `secret` is sealed (AES-256-GCM) with a key derived from one of the realm's signing keys,
-- named in the sealed text; `data` is Keycloak's `credentialData` JSON. `counter` is what a
-- credential counts: for `otp`, the last time step accepted (a code of that step or an
-- earlier one is refused: RFC 6238 §5.2), advanced with a conditional UPDATE so two replicas
-- can't both accept one code.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    label TEXT,
    secret TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    counter BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX credentials_user ON credentials (user_id, type);
