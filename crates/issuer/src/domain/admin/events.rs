//! Events through the admin API: login events (`GET events`, Keycloak's
//! `EventRepresentation`) and admin events (`GET admin-events`), newest first; and recording
//! an admin event for every write: stored for `admin-events`, and one JSON line on the audit
//! log (tracing target `audit`) with the realm, operation, resource, the admin and the result.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::super::state::State;
use super::Page;
use super::access::Caller;
use portcullis_store::AdminEvent;

/// `GET events` filters.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Event types (`LOGIN`, `LOGIN_ERROR`, …); empty: all.
    pub types: Vec<String>,
    pub client: Option<String>,
    pub user: Option<String>,
    pub ip: Option<String>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: Page,
}

/// `GET admin-events` filters.
#[derive(Debug, Clone, Default)]
pub struct AdminEventQuery {
    pub operations: Vec<String>,
    pub resource_types: Vec<String>,
    /// `*` matches any run of characters.
    pub resource_path: Option<String>,
    pub auth_user: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: Page,
}

fn in_range(t: i64, from: Option<i64>, to: Option<i64>) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t <= e)
}

/// The realm's login events that `q` selects, newest first (at most 100 unless `max`).
pub async fn login(st: &State, realm: &str, q: &EventQuery) -> anyhow::Result<Vec<Value>> {
    let mut events = st.store.list_events(realm).await?;
    events.reverse();
    let eq = |want: &Option<String>, have: &Option<String>| {
        want.is_none() || want.as_deref() == have.as_deref()
    };
    let out: Vec<Value> = events
        .into_iter()
        .filter(|e| q.types.is_empty() || q.types.contains(&e.kind))
        .filter(|e| eq(&q.client, &e.client_id) && eq(&q.user, &e.user_id) && eq(&q.ip, &e.ip))
        .filter(|e| in_range(e.time, q.from, q.to))
        .map(|e| {
            let mut v = json!({
                "time": e.time.saturating_mul(1000), "type": e.kind, "realmId": e.realm,
                "clientId": e.client_id, "userId": e.user_id, "ipAddress": e.ip,
                "details": {},
            });
            if !e.factors.is_empty() {
                v["details"] = json!({ "factors": e.factors.join(" ") });
            }
            if let (Some(err), Value::Object(m)) = (&e.error, &mut v) {
                m.insert("error".into(), err.clone().into());
            }
            v
        })
        .collect();
    Ok(q.page.or_max(100).apply(out))
}

/// `*`-wildcard match (Keycloak's `resourcePath` filter).
fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The realm's admin events that `q` selects, newest first (at most 100 unless `max`).
pub async fn admin(st: &State, realm: &str, q: &AdminEventQuery) -> anyhow::Result<Vec<Value>> {
    let mut events = st.store.list_admin_events(realm).await?;
    events.reverse();
    let out: Vec<Value> = events
        .into_iter()
        .filter(|e| q.operations.is_empty() || q.operations.contains(&e.operation))
        .filter(|e| q.resource_types.is_empty() || q.resource_types.contains(&e.resource_type))
        .filter(|e| {
            q.resource_path
                .as_deref()
                .is_none_or(|p| glob(p, &e.resource_path))
        })
        .filter(|e| q.auth_user.as_deref().is_none_or(|u| u == e.auth_user))
        .filter(|e| in_range(e.time, q.from, q.to))
        .map(|e| {
            let mut v = json!({
                "time": e.time.saturating_mul(1000), "realmId": e.realm,
                "authDetails": {"realmId": e.auth_realm, "clientId": e.auth_client,
                                "userId": e.auth_user, "ipAddress": e.ip},
                "operationType": e.operation, "resourceType": e.resource_type,
                "resourcePath": e.resource_path,
            });
            if let (Some(err), Value::Object(m)) = (&e.error, &mut v) {
                m.insert("error".into(), err.clone().into());
            }
            v
        })
        .collect();
    Ok(q.page.or_max(100).apply(out))
}

/// Keycloak's operation and resource type of a write: `method` on `path` under the realm
/// (`users/{id}/groups/{gid}`, …).
pub fn classify(method: &str, path: &str) -> (&'static str, &'static str) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = |i: usize| segs.get(i).copied().unwrap_or("");
    let resource = match (at(0), at(2)) {
        ("users", "groups") => "GROUP_MEMBERSHIP",
        ("users" | "groups", "role-mappings") if at(3) == "clients" => "CLIENT_ROLE_MAPPING",
        ("users" | "groups", "role-mappings") => "REALM_ROLE_MAPPING",
        ("users", _) => "USER",
        ("groups", _) => "GROUP",
        ("roles" | "roles-by-id", _) => "REALM_ROLE",
        ("clients", "roles") => "CLIENT_ROLE",
        ("clients", _) => "CLIENT",
        ("sessions", _) => "USER_SESSION",
        _ => "REALM",
    };
    let action = matches!(at(2), "reset-password" | "logout" | "client-secret");
    let operation = match method {
        _ if action => "ACTION",
        "POST" => "CREATE",
        "PUT" if resource == "GROUP_MEMBERSHIP" => "CREATE",
        "PUT" => "UPDATE",
        "DELETE" => "DELETE",
        _ => "ACTION",
    };
    (operation, resource)
}

/// Records one admin write: stores it (for `GET admin-events`) and writes its audit line. A
/// failure to store is logged; the write's answer stands.
pub async fn record(
    st: &State,
    caller: &Caller,
    realm: &str,
    method: &str,
    path: &str,
    status: u16,
    ip: Option<String>,
) {
    let (operation, resource_type) = classify(method, path);
    let ok = (200..300).contains(&status);
    let e = AdminEvent {
        realm: realm.to_string(),
        time: st.now(),
        operation: operation.into(),
        resource_type: resource_type.into(),
        resource_path: path.to_string(),
        auth_realm: caller.realm.clone(),
        auth_client: caller.client_id.clone(),
        auth_user: caller.user_id.clone(),
        ip,
        error: (!ok).then(|| format!("status {status}")),
    };
    let secs = u64::try_from(e.time).unwrap_or(0);
    let line = json!({
        "time": humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).to_string(),
        "type": "admin_event",
        "realm": e.realm, "operation": e.operation, "resource_type": e.resource_type,
        "resource_path": e.resource_path,
        "admin": {"realm": e.auth_realm, "sub": e.auth_user, "username": caller.username,
                  "client": e.auth_client},
        "client_ip": e.ip,
        "result": if ok { "success" } else { "failure" },
        "status": status,
    });
    tracing::info!(target: "audit", line = line.to_string().as_str());
    if let Err(err) = st.store.add_admin_event(&e).await {
        tracing::error!(error = %format!("{err:#}"), "storing an admin event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_classified_as_keycloak_does() {
        assert_eq!(classify("POST", "users"), ("CREATE", "USER"));
        assert_eq!(classify("PUT", "users/1"), ("UPDATE", "USER"));
        assert_eq!(
            classify("PUT", "users/1/reset-password"),
            ("ACTION", "USER")
        );
        assert_eq!(
            classify("PUT", "users/1/groups/2"),
            ("CREATE", "GROUP_MEMBERSHIP")
        );
        assert_eq!(
            classify("DELETE", "users/1/groups/2"),
            ("DELETE", "GROUP_MEMBERSHIP")
        );
        assert_eq!(
            classify("POST", "users/1/role-mappings/realm"),
            ("CREATE", "REALM_ROLE_MAPPING")
        );
        assert_eq!(
            classify("POST", "groups/1/role-mappings/clients/c"),
            ("CREATE", "CLIENT_ROLE_MAPPING")
        );
        assert_eq!(
            classify("POST", "clients/1/client-secret"),
            ("ACTION", "CLIENT")
        );
        assert_eq!(
            classify("POST", "clients/1/roles"),
            ("CREATE", "CLIENT_ROLE")
        );
        assert_eq!(classify("DELETE", "sessions/s"), ("DELETE", "USER_SESSION"));
        assert_eq!(classify("POST", "users/1/logout"), ("ACTION", "USER"));
    }

    #[test]
    fn resource_path_globs() {
        assert!(glob("users/*", "users/1"));
        assert!(glob("users/*/groups/*", "users/1/groups/2"));
        assert!(!glob("users/*", "groups/1"));
        assert!(glob("users/1", "users/1"));
        assert!(!glob("users/1", "users/12"));
    }
}
