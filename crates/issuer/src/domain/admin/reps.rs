//! Keycloak's JSON representations as the admin API answers them (`UserRepresentation`,
//! `GroupRepresentation`, `RoleRepresentation`, `ClientRepresentation`): fields that are
//! absent in Keycloak's answers are left out, constants are Keycloak's defaults, and no hash or
//! secret is ever included.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::directory::Directory;
use super::super::realm_import::{export_client, split};
use portcullis_store::{ClientRow, GroupRow, RoleRef, RoleRow, UserRow};

/// `UserRepresentation`; `brief` leaves out what Keycloak's brief representation does.
/// `manage`: whether the caller may change the user (Keycloak's `access`).
pub fn user(u: &UserRow, brief: bool, manage: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), u.id.clone().into());
    m.insert("username".into(), u.username.clone().into());
    for (k, v) in [
        ("firstName", &u.first_name),
        ("lastName", &u.last_name),
        ("email", &u.email),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.clone().into());
        }
    }
    m.insert("emailVerified".into(), u.email_verified.into());
    m.insert(
        "createdTimestamp".into(),
        u.created_at.saturating_mul(1000).into(),
    );
    m.insert("enabled".into(), u.enabled.into());
    if let Some(c) = &u.service_account_client {
        m.insert("serviceAccountClientId".into(), c.clone().into());
    }
    if !brief {
        m.insert("totp".into(), false.into());
        m.insert("disableableCredentialTypes".into(), json!([]));
        m.insert("requiredActions".into(), json!([]));
        m.insert("notBefore".into(), 0.into());
        m.insert(
            "access".into(),
            json!({
                "manageGroupMembership": manage, "view": true, "mapRoles": manage,
                "impersonate": false, "manage": manage,
            }),
        );
    }
    Value::Object(m)
}

/// `GroupRepresentation` of `g` among the realm's `all` groups; `roles` are the realm's group
/// role mappings. `depth` levels of subgroups are filled in (Keycloak's `subGroupCount` is
/// always there).
pub fn group(
    g: &GroupRow,
    all: &[GroupRow],
    roles: &[(String, RoleRef)],
    brief: bool,
    depth: usize,
) -> Value {
    let children: Vec<&GroupRow> = all
        .iter()
        .filter(|c| c.parent.as_deref() == Some(g.path.as_str()))
        .collect();
    let mut m = Map::new();
    m.insert("id".into(), g.id.clone().into());
    m.insert("name".into(), g.name.clone().into());
    m.insert("path".into(), g.path.clone().into());
    if let Some(parent) = g
        .parent
        .as_deref()
        .and_then(|p| all.iter().find(|x| x.path == p))
    {
        m.insert("parentId".into(), parent.id.clone().into());
    }
    m.insert("subGroupCount".into(), children.len().into());
    let subs: Vec<Value> = if depth > 0 {
        children
            .iter()
            .map(|c| group(c, all, roles, brief, depth - 1))
            .collect()
    } else {
        Vec::new()
    };
    m.insert("subGroups".into(), Value::Array(subs));
    if !brief {
        let mine: Vec<RoleRef> = roles
            .iter()
            .filter(|(p, _)| *p == g.path)
            .map(|(_, r)| r.clone())
            .collect();
        let (realm_roles, client_roles) = split(mine);
        m.insert("attributes".into(), json!({}));
        m.insert("realmRoles".into(), json!(realm_roles));
        m.insert("clientRoles".into(), json!(client_roles));
    }
    m.insert(
        "access".into(),
        json!({"view": true, "viewMembers": true, "manageMembers": true, "manage": true,
               "manageMembership": true}),
    );
    Value::Object(m)
}

/// A role's id: derived from realm, client and name (roles are stored by name), in a UUID's
/// shape, so the same role always has the same id.
pub fn role_id(realm: &str, r: &RoleRef) -> String {
    let client = r.client.as_deref().unwrap_or("");
    let digest = Sha256::digest(format!("{realm}\0{client}\0{}", r.name));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    // Version 8 (custom) and the RFC 9562 variant.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Where a role lives, as its `containerId` says: the realm's name, or the client's id.
pub fn role(realm: &str, r: &RoleRow, composite: bool, container_id: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), role_id(realm, &r.role).into());
    m.insert("name".into(), r.role.name.clone().into());
    if let Some(d) = &r.description {
        m.insert("description".into(), d.clone().into());
    }
    m.insert("composite".into(), composite.into());
    m.insert("clientRole".into(), r.role.client.is_some().into());
    m.insert("containerId".into(), container_id.into());
    m.insert("attributes".into(), json!({}));
    Value::Object(m)
}

/// `ClientRepresentation`, never with the secret.
pub fn client(c: &ClientRow) -> Value {
    let mut v = serde_json::to_value(export_client(c)).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.remove("secret");
        m.entry("attributes").or_insert_with(|| json!({}));
        m.entry("protocolMappers").or_insert_with(|| json!([]));
        for (k, val) in [
            ("surrogateAuthRequired", json!(false)),
            ("alwaysDisplayInConsole", json!(false)),
            ("clientAuthenticatorType", json!("client-secret")),
            ("notBefore", json!(0)),
            ("consentRequired", json!(false)),
            ("implicitFlowEnabled", json!(false)),
            ("frontchannelLogout", json!(true)),
            ("protocol", json!("openid-connect")),
            ("fullScopeAllowed", json!(true)),
            ("nodeReRegistrationTimeout", json!(-1)),
            (
                "defaultClientScopes",
                json!(["web-origins", "acr", "profile", "roles", "email"]),
            ),
            (
                "optionalClientScopes",
                json!(["address", "phone", "offline_access", "microprofile-jwt"]),
            ),
            (
                "access",
                json!({"view": true, "configure": true, "manage": true}),
            ),
        ] {
            m.insert(k.into(), val);
        }
    }
    v
}

/// `RealmRepresentation`: what the realm's settings say, in Keycloak's names.
pub fn realm(dir: &Directory) -> Value {
    let s = &dir.settings;
    json!({
        "id": dir.realm, "realm": dir.realm, "enabled": dir.enabled,
        "accessTokenLifespan": s.access_token_lifespan,
        "accessCodeLifespan": s.access_code_lifespan,
        "ssoSessionIdleTimeout": s.sso_session_idle_timeout,
        "ssoSessionMaxLifespan": s.sso_session_max_lifespan,
        "bruteForceProtected": s.brute_force_protected,
        "failureFactor": s.failure_factor,
        "waitIncrementSeconds": s.wait_increment_seconds,
        "maxFailureWaitSeconds": s.max_failure_wait_seconds,
        "maxDeltaTimeSeconds": s.max_delta_time_seconds,
        "defaultSignatureAlgorithm": s.default_signature_algorithm,
        "displayName": s.accounts.display_name,
        "accessCodeLifespanLogin": s.accounts.access_code_lifespan_login,
        "passwordPolicy": s.accounts.password_policy,
        "otpPolicyType": s.accounts.otp_policy_type,
        "otpPolicyAlgorithm": s.accounts.otp_policy_algorithm,
        "otpPolicyDigits": s.accounts.otp_policy_digits,
        "otpPolicyPeriod": s.accounts.otp_policy_period,
        "otpPolicyLookAheadWindow": s.accounts.otp_policy_look_ahead_window,
        "registrationAllowed": s.registration_allowed,
        "resetPasswordAllowed": s.reset_password_allowed,
        "verifyEmail": s.verify_email,
        "actionTokenGeneratedByUserLifespan": s.action_token_generated_by_user_lifespan,
        "actionTokenGeneratedByAdminLifespan": s.action_token_generated_by_admin_lifespan,
        "smtpServer": super::super::realm_mail::smtp_rep(s),
    })
}

/// The realm's groups at the top of the tree, in path order.
pub fn top_level(all: &[GroupRow]) -> impl Iterator<Item = &GroupRow> {
    all.iter().filter(|g| g.parent.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_are_stable_and_uuid_shaped() {
        let a = role_id("r", &RoleRef::realm("viewer"));
        assert_eq!(a, role_id("r", &RoleRef::realm("viewer")));
        assert_ne!(a, role_id("r2", &RoleRef::realm("viewer")));
        assert_ne!(a, role_id("r", &RoleRef::client("viewer", "viewer")));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn a_user_never_carries_a_hash() {
        let u = UserRow {
            id: "1".into(),
            realm: "r".into(),
            username: "a".into(),
            email: Some("a@x".into()),
            first_name: None,
            last_name: None,
            email_verified: true,
            enabled: true,
            created_at: 2,
            password_hash: Some(portcullis_store::Secret("$argon2id$x".into())),
            service_account_client: None,
        };
        let v = user(&u, false, true);
        assert_eq!(v["emailVerified"], true);
        assert_eq!(v["createdTimestamp"], 2000);
        assert!(v.get("firstName").is_none());
        assert!(!v.to_string().contains("argon2"));
    }
}
