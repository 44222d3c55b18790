//! Row decoders shared by both SQL backends, generated for each backend's row type (the
//! `try_get` calls then pick that backend's decoders).

macro_rules! decoders {
    ($row:ty) => {
        mod decode {
            use sqlx::Row;

            use crate::*;

            pub(super) fn user(r: &$row) -> sqlx::Result<UserRow> {
                Ok(UserRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    username: r.try_get("username")?,
                    email: r.try_get("email")?,
                    first_name: r.try_get("first_name")?,
                    last_name: r.try_get("last_name")?,
                    email_verified: r.try_get("email_verified")?,
                    enabled: r.try_get("enabled")?,
                    created_at: r.try_get("created_at")?,
                    password_hash: r.try_get::<Option<String>, _>("password_hash")?.map(Secret),
                    service_account_client: r.try_get("service_account_client")?,
                })
            }

            pub(super) fn role(r: &$row, client: &str, name: &str) -> sqlx::Result<RoleRef> {
                Ok(RoleRef::from_key(r.try_get(client)?, r.try_get(name)?))
            }

            pub(super) fn webauthn_credential(r: &$row) -> sqlx::Result<WebauthnCredentialRow> {
                Ok(WebauthnCredentialRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    user_id: r.try_get("user_id")?,
                    credential_id: r.try_get("credential_id")?,
                    passkey: r.try_get("passkey")?,
                    label: r.try_get("label")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                })
            }

            pub(super) fn client(r: &$row) -> anyhow::Result<ClientRow> {
                let config: String = r.try_get("config")?;
                Ok(ClientRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    client_id: r.try_get("client_id")?,
                    secret_hash: r.try_get::<Option<String>, _>("secret_hash")?.map(Secret),
                    config: serde_json::from_str(&config)?,
                })
            }

            pub(super) fn group(r: &$row) -> sqlx::Result<GroupRow> {
                Ok(GroupRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    path: r.try_get("path")?,
                    name: r.try_get("name")?,
                    parent: r.try_get("parent")?,
                })
            }

            pub(super) fn admin_event(r: &$row) -> sqlx::Result<AdminEvent> {
                Ok(AdminEvent {
                    realm: r.try_get("realm")?,
                    time: r.try_get("time")?,
                    operation: r.try_get("operation")?,
                    resource_type: r.try_get("resource_type")?,
                    resource_path: r.try_get("resource_path")?,
                    auth_realm: r.try_get("auth_realm")?,
                    auth_client: r.try_get("auth_client")?,
                    auth_user: r.try_get("auth_user")?,
                    ip: r.try_get("ip")?,
                    error: r.try_get("error")?,
                })
            }

            pub(super) fn key(r: &$row) -> sqlx::Result<KeyRow> {
                Ok(KeyRow {
                    kid: r.try_get("kid")?,
                    realm: r.try_get("realm")?,
                    alg: r.try_get("alg")?,
                    private_der: Secret(r.try_get("private_der")?),
                    created_at: r.try_get("created_at")?,
                    active: r.try_get("active")?,
                    retired_at: r.try_get("retired_at")?,
                })
            }

            pub(super) fn session(r: &$row) -> sqlx::Result<SessionRow> {
                Ok(SessionRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    user_id: r.try_get("user_id")?,
                    cookie_hash: r.try_get("cookie_hash")?,
                    created_at: r.try_get("created_at")?,
                    last_seen: r.try_get("last_seen")?,
                    ended: r.try_get("ended")?,
                    amr: split_list(&r.try_get::<String, _>("amr")?),
                })
            }

            pub(super) fn credential(r: &$row) -> sqlx::Result<CredentialRow> {
                Ok(CredentialRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    user_id: r.try_get("user_id")?,
                    kind: r.try_get("type")?,
                    label: r.try_get("label")?,
                    secret: Secret(r.try_get("secret")?),
                    data: r.try_get("data")?,
                    created_at: r.try_get("created_at")?,
                    counter: r.try_get("counter")?,
                })
            }

            pub(super) fn code(r: &$row) -> sqlx::Result<CodeRow> {
                Ok(CodeRow {
                    code_hash: r.try_get("code_hash")?,
                    realm: r.try_get("realm")?,
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    scope: r.try_get("scope")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    code_challenge_method: r.try_get("code_challenge_method")?,
                    auth_time: r.try_get("auth_time")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            pub(super) fn family(r: &$row) -> sqlx::Result<FamilyRow> {
                Ok(FamilyRow {
                    id: r.try_get("id")?,
                    realm: r.try_get("realm")?,
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    scope: r.try_get("scope")?,
                    current_hash: r.try_get("current_hash")?,
                    code_hash: r.try_get("code_hash")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    revoked: r.try_get("revoked")?,
                })
            }

            pub(super) fn event(r: &$row) -> sqlx::Result<LoginEvent> {
                Ok(LoginEvent {
                    realm: r.try_get("realm")?,
                    time: r.try_get("time")?,
                    kind: r.try_get("kind")?,
                    user_id: r.try_get("user_id")?,
                    client_id: r.try_get("client_id")?,
                    ip: r.try_get("ip")?,
                    error: r.try_get("error")?,
                    factors: split_list(&r.try_get::<String, _>("factors")?),
                })
            }
        }
    };
}

pub(crate) use decoders;
