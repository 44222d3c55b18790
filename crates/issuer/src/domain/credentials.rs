//! Checking a username and password: brute-force lockout, constant work for unknown users,
//! login events (stored and on the `audit` log target) and the `issuer_logins` metric.

use super::bruteforce;
use super::directory::Directory;
use super::state::State;
use crate::secrets;
use portcullis_core::metrics::metrics;
use portcullis_store::{LoginEvent, UserRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Invalid,
    Locked,
    Disabled,
}

impl Failure {
    pub fn user_message(self) -> &'static str {
        match self {
            // A locked account answers like a wrong password, so lockout does not confirm
            // that the username exists.
            Failure::Invalid | Failure::Locked => "Invalid username or password.",
            Failure::Disabled => "Account is disabled, contact your administrator.",
        }
    }
}

/// The user `username` of the realm if `password` is theirs and they may sign in, else why
/// not. Reads the user row and the brute-force counters once each; the row is returned for the
/// caller to go on with.
pub async fn check(
    st: &State,
    dir: &Directory,
    username: &str,
    password: &str,
    ip: Option<&str>,
    client_id: &str,
) -> anyhow::Result<Result<UserRow, Failure>> {
    let realm = dir.realm.as_str();
    let now = st.now();
    let user = st
        .store
        .user_by_username(realm, username)
        .await?
        .filter(|u| u.service_account_client.is_none());
    let keys = bruteforce::keys(user.as_ref().map(|u| u.id.as_str()), ip);
    let event = |kind: &str, error: Option<&str>| LoginEvent {
        realm: realm.to_string(),
        time: now,
        kind: kind.to_string(),
        user_id: user.as_ref().map(|u| u.id.clone()),
        client_id: Some(client_id.to_string()),
        ip: ip.map(str::to_string),
        error: error.map(str::to_string),
    };
    let counters = bruteforce::load(st.store.as_ref(), realm, &dir.settings, &keys).await?;
    if bruteforce::locked(&counters, now) {
        record(
            st,
            event("LOGIN_ERROR", Some("user_temporarily_disabled")),
            "locked",
        )
        .await?;
        return Ok(Err(Failure::Locked));
    }
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.as_ref())
        .map(|h| h.expose().clone());
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => secrets::verify_password(&pw, &h),
        None => {
            let _ = secrets::verify_password(&pw, secrets::dummy_password_hash());
            false
        }
    })
    .await?;
    let Some(user) = user.clone().filter(|_| ok) else {
        bruteforce::failure(
            st.store.as_ref(),
            realm,
            &dir.settings,
            &keys,
            &counters,
            now,
        )
        .await?;
        record(
            st,
            event("LOGIN_ERROR", Some("invalid_user_credentials")),
            "failure",
        )
        .await?;
        return Ok(Err(Failure::Invalid));
    };
    if !user.enabled {
        record(st, event("LOGIN_ERROR", Some("user_disabled")), "disabled").await?;
        return Ok(Err(Failure::Disabled));
    }
    bruteforce::success(
        st.store.as_ref(),
        realm,
        &format!("user:{}", user.id),
        &counters,
    )
    .await?;
    record(st, event("LOGIN", None), "success").await?;
    Ok(Ok(user))
}

async fn record(st: &State, e: LoginEvent, result: &str) -> anyhow::Result<()> {
    metrics()
        .issuer_logins
        .with_label_values(&[e.realm.as_str(), result])
        .inc();
    // The audit writer prints an event's `line` field verbatim: one JSON object per line.
    let line = serde_json::json!({
        "type": "login_event", "event": e.kind, "realm": e.realm, "user_id": e.user_id,
        "client_id": e.client_id, "client_ip": e.ip, "error": e.error,
    });
    tracing::info!(target: "audit", line = line.to_string().as_str());
    st.store.add_event(&e).await
}
