//! The Keycloak realm-JSON subset a hand-written template uses: schema, `${VAR}` substitution
//! and parsing with `file:line:col` errors. Field names are exactly Keycloak's; unknown fields
//! are ignored because real exports carry hundreds of them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RealmFile {
    pub realm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_lifespan: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_code_lifespan: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sso_session_idle_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sso_session_max_lifespan: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brute_force_protected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_factor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_increment_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failure_wait_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delta_time_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_signature_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<RolesRep>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupRep>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserRep>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientRep>,
    /// Sign-in, password and second-factor settings (`realm_accounts`).
    #[serde(flatten)]
    pub accounts: AccountsFile,
}

/// The realm's account keys (issue 17), Keycloak's names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_code_lifespan_login: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_policy_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_policy_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_policy_digits: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_policy_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otp_policy_look_ahead_window: Option<i64>,
    /// Realm attributes: `acr.loa.map` (Keycloak's) and `portcullis.otp.requiredGroups`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// Authenticator configs; a `conditional-otp-form` config's `forceOtpRole`,
    /// `skipOtpRole` and `defaultOtpOutcome` are read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authenticator_config: Vec<AuthenticatorConfigRep>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthenticatorConfigRep {
    pub alias: String,
    pub config: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RolesRep {
    pub realm: Vec<RoleRep>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub client: BTreeMap<String, Vec<RoleRep>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleRep {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub composite: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composites: Option<CompositesRep>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompositesRep {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub realm: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub client: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupRep {
    /// Keycloak's id; kept on import when it is a well-formed id, else one is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_groups: Vec<GroupRep>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub realm_roles: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub client_roles: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserRep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Keycloak's `emailVerified`; absent is `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Milliseconds since the epoch; exported, never imported (the store sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialRep>,
    /// Keycloak's `requiredActions` (`VERIFY_EMAIL`, `UPDATE_PASSWORD`, `CONFIGURE_TOTP`, …).
    /// Absent leaves a user's list as it is (the admin API's update); present replaces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_actions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub realm_roles: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub client_roles: BTreeMap<String, Vec<String>>,
    /// Keycloak exports a service-account user with the client it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_client_id: Option<String>,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CredentialRep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// Keycloak's stored form, a JSON document in a string: `{"value": "…"}` for `otp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_data: Option<String>,
    /// Keycloak's credential parameters, a JSON document in a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_data: Option<String>,
}

impl std::fmt::Debug for CredentialRep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRep")
            .field("type", &self.kind)
            .field("value", &"***")
            .finish()
    }
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientRep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    /// Keycloak's bearer-only clients (`realm-management`) take part in no flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub public_client: bool,
    pub redirect_uris: Vec<String>,
    pub web_origins: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_flow_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_access_grants_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_accounts_enabled: Option<bool>,
    /// Keycloak attributes are strings, but tolerate anything.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protocol_mappers: Vec<ProtocolMapperRep>,
}

impl std::fmt::Debug for ClientRep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRep")
            .field("clientId", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("publicClient", &self.public_client)
            .field("redirectUris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProtocolMapperRep {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    pub protocol_mapper: String,
    pub config: BTreeMap<String, Value>,
}

impl ClientRep {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }
}

/// Parses a realm template, substituting `${VAR}` / `${VAR:default}` from `env` in every
/// string. Errors are `file:line:col: message`.
pub fn parse(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RealmFile, String> {
    let at = |e: serde_json::Error| {
        // serde_json's Display appends " at line L column C"; keep only the message.
        let msg = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
        format!("{}:{}:{}: {msg}", file.display(), e.line(), e.column())
    };
    // Typed parse first, so a wrong type is reported at its position too.
    serde_json::from_str::<RealmFile>(text).map_err(at)?;
    let mut value: Value = serde_json::from_str(text).map_err(at)?;
    substitute_value(&mut value, env);
    let realm: RealmFile =
        serde_json::from_value(value).map_err(|e| format!("{}: {e}", file.display()))?;
    if realm.realm.trim().is_empty() {
        return Err(format!(
            "{}:1:1: \"realm\" is missing or empty",
            file.display()
        ));
    }
    Ok(realm)
}

/// Reads and parses `file` with the process environment.
pub fn load(file: &Path) -> Result<RealmFile, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read file: {e}", file.display()))?;
    parse(file, &text, &|name| std::env::var(name).ok())
}

fn substitute_value(v: &mut Value, env: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) => *s = substitute(s, env),
        Value::Array(a) => a.iter_mut().for_each(|v| substitute_value(v, env)),
        Value::Object(o) => o.values_mut().for_each(|v| substitute_value(v, env)),
        _ => {}
    }
}

/// Replaces `${NAME}` with the variable, or `${NAME:default}` with the variable or the default.
/// A placeholder whose variable is unset and has no default stays literally as written.
pub fn substitute(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        match (valid, valid.then(|| env(name)).flatten(), default) {
            (true, Some(val), _) => out.push_str(&val),
            (true, None, Some(d)) => out.push_str(d),
            _ => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitution_rules() {
        assert_eq!(substitute("a${SET}b", &env), "avalueb");
        assert_eq!(substitute("${SET:dflt}", &env), "value");
        assert_eq!(substitute("${UNSET:dflt}", &env), "dflt");
        assert_eq!(substitute("${UNSET:}", &env), "");
        assert_eq!(substitute("${EMPTY:x}", &env), "");
        assert_eq!(substitute("${UNSET}", &env), "${UNSET}");
        assert_eq!(substitute("x ${UNSET} ${SET}", &env), "x ${UNSET} value");
        assert_eq!(substitute("${not valid}", &env), "${not valid}");
        assert_eq!(substitute("${SET", &env), "${SET");
        assert_eq!(substitute("$SET {SET}", &env), "$SET {SET}");
        assert_eq!(substitute("${UNSET:a:b}", &env), "a:b");
    }

    #[test]
    fn parse_substitutes_every_string_and_tolerates_unknown_fields() {
        let text = r#"{"realm": "r-${SET}", "unknownThing": {"x": 1},
            "users": [{"username": "u", "credentials": [{"type": "password", "value": "${UNSET}"}]}],
            "clients": [{"clientId": "c", "secret": "${UNSET:s3cret}", "attributes": {"a": 1, "pkce.code.challenge.method": "S256"}}]}"#;
        let r = parse(Path::new("f.json"), text, &env).unwrap();
        assert_eq!(r.realm, "r-value");
        assert_eq!(r.users[0].credentials[0].value.as_deref(), Some("${UNSET}"));
        assert_eq!(r.clients[0].secret.as_deref(), Some("s3cret"));
        assert_eq!(
            r.clients[0].attribute("pkce.code.challenge.method"),
            Some("S256")
        );
        assert!(!format!("{:?}", r).contains("s3cret"));
    }

    #[test]
    fn malformed_json_reports_file_line_col() {
        let err = parse(
            Path::new("realms/x.json"),
            "{\n  \"realm\": \"x\",\n  oops\n}",
            &env,
        )
        .unwrap_err();
        assert!(err.starts_with("realms/x.json:3:3: "), "{err}");
        assert!(!err.contains(" at line "), "{err}");
        let err = parse(
            Path::new("x.json"),
            "{\"realm\": \"x\", \"enabled\": 3}",
            &env,
        )
        .unwrap_err();
        assert!(err.starts_with("x.json:1:"), "{err}");
        assert!(parse(Path::new("x.json"), "{}", &env).is_err());
    }
}
