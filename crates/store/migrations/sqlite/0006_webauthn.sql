-- WebAuthn passkeys (DESIGN §13): a user's registered credentials, and the server-side state
-- of a ceremony between its two halves (the challenge), so any replica can finish what another
-- started. Keep in step with ../postgres/0006_webauthn.sql.
--
-- `credential_id` is the authenticator's credential id (base64url), unique across the
-- database: a credential belongs to one user. `passkey` is webauthn-rs's serialised `Passkey`
-- (public key, counter, flags; no secret).
CREATE TABLE webauthn_credentials (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL REFERENCES realms(name) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    passkey TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (realm, user_id);
-- A ceremony's state, single use (taken by deleting it), short lived. `id` is a digest of
-- the handle the browser holds; `user_id` is set for a registration or a second-factor
-- check (the user is known), empty for a passwordless sign-in.
CREATE TABLE webauthn_challenges (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);
