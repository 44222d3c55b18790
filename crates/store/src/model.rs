//! Rows the store reads and writes: plain data, no behaviour beyond small helpers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never reach a log: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(pub T);

impl<T> Secret<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Realm-wide settings, Keycloak's names and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RealmSettings {
    pub access_token_lifespan: i64,
    pub access_code_lifespan: i64,
    pub sso_session_idle_timeout: i64,
    pub sso_session_max_lifespan: i64,
    pub brute_force_protected: bool,
    pub failure_factor: i64,
    pub wait_increment_seconds: i64,
    pub max_failure_wait_seconds: i64,
    pub max_delta_time_seconds: i64,
    /// `RS256`, `ES256` or `EdDSA`.
    pub default_signature_algorithm: String,
    /// `registrationAllowed`: the login page offers a registration form.
    pub registration_allowed: bool,
    /// `resetPasswordAllowed`: the login page offers "Forgot password?".
    pub reset_password_allowed: bool,
    /// `verifyEmail`: new users must verify their address (a mail with a link).
    pub verify_email: bool,
    /// `actionTokenGeneratedByUserLifespan`: seconds a link the user asked for stays valid.
    pub action_token_generated_by_user_lifespan: i64,
    /// `actionTokenGeneratedByAdminLifespan`: seconds a link an admin sent stays valid.
    pub action_token_generated_by_admin_lifespan: i64,
    /// `smtpServer`: Keycloak's string map (`host`, `port`, `from`, …); empty = no mail.
    pub smtp_server: SmtpServer,
    /// Sign-in, password and second-factor settings (issue 17), in the same JSON document.
    #[serde(flatten)]
    pub accounts: AccountSettings,
}

/// A realm's `smtpServer` as Keycloak keeps it: string keys and values (`"true"` for flags).
/// `Debug` hides the password; the issuer reads the typed settings from it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SmtpServer(pub std::collections::BTreeMap<String, String>);

impl SmtpServer {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.get("host").is_none()
    }
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (k, if k == "password" { "***" } else { v.as_str() })),
            )
            .finish()
    }
}

/// A realm's account settings, Keycloak's names and defaults; what a realm file says for the
/// conditional second factor is gathered here from Keycloak's `conditional-otp-form`
/// authenticator config and portcullis's realm attribute (`realm_accounts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountSettings {
    pub display_name: Option<String>,
    /// How long a sign-in may take, from the password to the code (seconds).
    pub access_code_lifespan_login: i64,
    /// Keycloak's policy string, `length(12) and digits(1) and …`.
    pub password_policy: Option<String>,
    pub otp_policy_type: String,
    /// `HmacSHA1`, `HmacSHA256` or `HmacSHA512`.
    pub otp_policy_algorithm: String,
    pub otp_policy_digits: i64,
    pub otp_policy_period: i64,
    /// Steps accepted either side of the current one.
    pub otp_policy_look_ahead_window: i64,
    /// Holders of these roles (`name` or `clientId.name`) must use a second factor.
    pub otp_force_roles: Vec<String>,
    /// Holders of these roles are not asked (unless a client demands two factors).
    pub otp_skip_roles: Vec<String>,
    /// `force` makes a second factor required of everyone; `skip` or none asks only those who
    /// have one.
    pub otp_default_outcome: Option<String>,
    /// Members of these groups (full paths, subgroups included) must use a second factor.
    pub otp_required_groups: Vec<String>,
    /// Keycloak's `acr.loa.map`: acr values by level of authentication.
    pub acr_loa_map: std::collections::BTreeMap<String, i64>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            display_name: None,
            access_code_lifespan_login: 1800,
            password_policy: None,
            otp_policy_type: "totp".into(),
            otp_policy_algorithm: "HmacSHA1".into(),
            otp_policy_digits: 6,
            otp_policy_period: 30,
            otp_policy_look_ahead_window: 1,
            otp_force_roles: Vec::new(),
            otp_skip_roles: Vec::new(),
            otp_default_outcome: None,
            otp_required_groups: Vec::new(),
            acr_loa_map: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for RealmSettings {
    fn default() -> Self {
        Self {
            access_token_lifespan: 300,
            access_code_lifespan: 60,
            sso_session_idle_timeout: 1800,
            sso_session_max_lifespan: 36000,
            brute_force_protected: false,
            failure_factor: 30,
            wait_increment_seconds: 60,
            max_failure_wait_seconds: 900,
            max_delta_time_seconds: 43200,
            default_signature_algorithm: "RS256".into(),
            registration_allowed: false,
            reset_password_allowed: false,
            verify_email: false,
            action_token_generated_by_user_lifespan: 300,
            action_token_generated_by_admin_lifespan: 43200,
            smtp_server: SmtpServer::default(),
            accounts: AccountSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RealmRow {
    pub name: String,
    pub enabled: bool,
    pub settings: RealmSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub realm: String,
    pub username: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Keycloak's `emailVerified`: the address is known to belong to the user (services link
    /// accounts by a verified email only).
    pub email_verified: bool,
    pub enabled: bool,
    /// Unix seconds when the row was first stored (Keycloak's `createdTimestamp`, in ms there);
    /// kept on update.
    pub created_at: i64,
    /// PHC string (argon2id); `None` = no password (or "keep" on update).
    pub password_hash: Option<Secret<String>>,
    /// Set for a client's service-account user.
    pub service_account_client: Option<String>,
}

/// A realm role (`client: None`) or a client role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleRef {
    pub client: Option<String>,
    pub name: String,
}

impl RoleRef {
    pub fn realm(name: impl Into<String>) -> Self {
        Self {
            client: None,
            name: name.into(),
        }
    }

    pub fn client(client: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            client: Some(client.into()),
            name: name.into(),
        }
    }

    /// The stored form of `client`: realm roles use the empty string (NULLs defeat UNIQUE).
    pub(crate) fn client_key(&self) -> &str {
        self.client.as_deref().unwrap_or("")
    }

    pub(crate) fn from_key(client: String, name: String) -> Self {
        Self {
            client: (!client.is_empty()).then_some(client),
            name,
        }
    }
}

/// A role with what the admin API shows of it beyond its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    pub role: RoleRef,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// Stable id (a UUID) the admin API names the group by; kept when the group is renamed or
    /// moved, and on update.
    pub id: String,
    pub realm: String,
    /// Full path, `/staff/support`.
    pub path: String,
    pub name: String,
    pub parent: Option<String>,
}

/// The client's settings that are not identity or secret; stored as one JSON document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    pub enabled: bool,
    pub public_client: bool,
    pub redirect_uris: Vec<String>,
    pub web_origins: Vec<String>,
    pub standard_flow: bool,
    pub direct_access_grants: bool,
    pub service_accounts: bool,
    /// `pkce.code.challenge.method` attribute (`S256` or `plain`), if any.
    pub pkce_method: Option<String>,
    /// Keycloak's `post.logout.redirect.uris` attribute (`##`-separated), split.
    pub post_logout_redirect_uris: Vec<String>,
    pub group_mapper: Option<GroupMapper>,
    /// Shown by the admin API as Keycloak has them; no flow reads them.
    pub name: Option<String>,
    pub description: Option<String>,
    pub root_url: Option<String>,
    pub base_url: Option<String>,
    pub admin_url: Option<String>,
    /// Keycloak's bearer-only clients (`realm-management`): never authenticates.
    pub bearer_only: bool,
    /// The `default.acr.values` attribute (`##`-separated), split: what a request without
    /// `acr_values` demands.
    pub default_acr_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMapper {
    pub claim: String,
    pub full_path: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    /// Stable id (a UUID) the admin API names the client by; kept on update.
    pub id: String,
    pub realm: String,
    pub client_id: String,
    /// `salt$sha256hex` of the secret; `None` on update keeps the stored one.
    pub secret_hash: Option<Secret<String>>,
    pub config: ClientConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub kid: String,
    pub realm: String,
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Secret<Vec<u8>>,
    pub created_at: i64,
    pub active: bool,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// Public id: the `sid` claim.
    pub id: String,
    pub realm: String,
    pub user_id: String,
    /// SHA-256 of the cookie value; the cookie itself is never stored.
    pub cookie_hash: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub ended: bool,
    /// The factors the session was signed in with (RFC 8176 `amr` values: `pwd`, `otp`, …),
    /// raised in place by a step-up.
    pub amr: Vec<String>,
}

/// A user's credential beyond the password (`otp`, `password-history`, …).
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: String,
    pub realm: String,
    pub user_id: String,
    /// Keycloak's credential `type`.
    pub kind: String,
    /// Keycloak's `userLabel` (a device name).
    pub label: Option<String>,
    /// Keycloak's `secretData`, sealed by the issuer (the store never sees it in clear).
    pub secret: Secret<String>,
    /// Keycloak's `credentialData` JSON.
    pub data: String,
    pub created_at: i64,
    /// For `otp`: the last time step accepted.
    pub counter: i64,
}

impl std::fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRow")
            .field("id", &self.id)
            .field("realm", &self.realm)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// A browser session of the gateway (`[session] store = "database"`).
#[derive(Clone, PartialEq, Eq)]
pub struct GatewaySessionRow {
    /// A digest of the session id (never the id itself, which the cookie carries sealed).
    pub id: String,
    /// Whom it signed in, so all of a user's sessions can be ended.
    pub sub: String,
    /// Bumped by each refresh of its tokens.
    pub rev: i64,
    /// The tokens, sealed with the gateway's cookie keys.
    pub data: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for GatewaySessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySessionRow")
            .field("id", &self.id)
            .field("sub", &self.sub)
            .field("rev", &self.rev)
            .field("data", &"***")
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeRow {
    pub code_hash: String,
    pub realm: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CodeUse {
    Fresh(CodeRow),
    Reused(CodeRow),
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FamilyRow {
    pub id: String,
    pub realm: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scope: String,
    /// SHA-256 of the family's current refresh token.
    pub current_hash: String,
    /// The authorization code that started the family, hashed.
    pub code_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub revoked: bool,
}

/// The refresh grant's check-and-rotate (`Store::rotate_live_families`).
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub family_id: &'a str,
    pub realm: &'a str,
    pub client_id: &'a str,
    pub old_hash: &'a str,
    pub new_hash: &'a str,
    pub now: i64,
    /// The family, and its session, must have been active at or after this (now − idle timeout).
    pub active_since: i64,
    /// The family, and its session, must have been created at or after this (now − max lifespan).
    pub created_since: i64,
}

/// A rotation that went through: the family as it is now, and its realm's revision then.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotated {
    pub family: FamilyRow,
    pub realm_revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: i64,
    pub last_failure: i64,
    pub locked_until: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoginEvent {
    pub realm: String,
    pub time: i64,
    /// `LOGIN`, `LOGIN_ERROR`, `LOGOUT`, `CODE_TO_TOKEN`, …
    pub kind: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub error: Option<String>,
    /// The factors used (`pwd`, `otp`, …): all of a sign-in's on `LOGIN`, the failing one on
    /// `LOGIN_ERROR`; empty for other kinds.
    pub factors: Vec<String>,
}

/// A change made through the admin API (Keycloak's admin event).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminEvent {
    pub realm: String,
    pub time: i64,
    /// `CREATE`, `UPDATE`, `DELETE` or `ACTION`.
    pub operation: String,
    /// Keycloak's resource type: `USER`, `GROUP`, `GROUP_MEMBERSHIP`, `REALM_ROLE`, `CLIENT`, ….
    pub resource_type: String,
    /// The path under the realm, `users/{id}/groups/{gid}`.
    pub resource_path: String,
    /// The realm, client and user of the admin's token.
    pub auth_realm: String,
    pub auth_client: Option<String>,
    pub auth_user: String,
    pub ip: Option<String>,
    /// `None` on success, else why it failed.
    pub error: Option<String>,
}

/// A user's WebAuthn credential (a passkey).
#[derive(Debug, Clone, PartialEq)]
pub struct WebauthnCredentialRow {
    /// Our id for it (a UUID), what forms name.
    pub id: String,
    pub realm: String,
    pub user_id: String,
    /// The authenticator's credential id, base64url; unique across the database.
    pub credential_id: String,
    /// webauthn-rs's serialised `Passkey`: public key, signature counter, flags (no secret).
    pub passkey: String,
    /// The user's name for it.
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A WebAuthn ceremony between its two halves: the challenge state, kept server-side.
#[derive(Clone, PartialEq)]
pub struct WebauthnChallengeRow {
    /// A digest of the handle the browser holds.
    pub id: String,
    pub realm: String,
    /// `register`, `login` (passwordless) or `second-factor`.
    pub purpose: String,
    /// The user a registration or second-factor check is for; `None` for a passwordless sign-in.
    pub user_id: Option<String>,
    /// webauthn-rs's serialised ceremony state (holds the challenge).
    pub state: String,
    pub expires_at: i64,
}

impl fmt::Debug for WebauthnChallengeRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebauthnChallengeRow")
            .field("id", &self.id)
            .field("realm", &self.realm)
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("state", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A comma-separated column (`required_actions`, `amr`) as its items; empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Items as a comma-separated column (items hold no comma: they are fixed names).
pub fn join_list(items: &[String]) -> String {
    items.join(",")
}
