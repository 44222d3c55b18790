//! Checking a username and password: brute-force lockout, constant work for unknown users,
//! login events (stored and on the `audit` log target) and the `issuer_logins` metric; setting
//! a password under the realm's policy (`set_password`, the one way every path sets one).

use super::bruteforce;
use super::directory::Directory;
use super::names::UPDATE_PASSWORD;
use super::password_policy;
use super::state::State;
use crate::secrets;
use portcullis_core::metrics::metrics;
use portcullis_store::{CredentialRow, LoginEvent, Secret, UserRow};

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
/// caller to go on with. A failure is recorded here; a success is not: the caller records the
/// sign-in with `record_login` once every factor it asks for is done.
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
        factors: vec!["pwd".into()],
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
    let ok = secrets::on_hashing_thread(move || match hash {
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
    Ok(Ok(user))
}

/// Records a completed sign-in: a `LOGIN` event with the factors used, and the
/// `issuer_logins{result="success"}` metric.
pub async fn record_login(
    st: &State,
    realm: &str,
    user_id: &str,
    client_id: &str,
    ip: Option<&str>,
    factors: &[String],
) -> anyhow::Result<()> {
    let e = LoginEvent {
        realm: realm.to_string(),
        time: st.now(),
        kind: "LOGIN".into(),
        user_id: Some(user_id.to_string()),
        client_id: Some(client_id.to_string()),
        ip: ip.map(str::to_string),
        error: None,
        factors: factors.to_vec(),
    };
    record(st, e, "success").await
}

async fn record(st: &State, e: LoginEvent, result: &str) -> anyhow::Result<()> {
    metrics()
        .issuer_logins
        .with_label_values(&[e.realm.as_str(), result])
        .inc();
    // The audit writer prints an event's `line` field verbatim: one JSON object per line.
    let line = serde_json::json!({
        "type": "login_event", "event": e.kind, "realm": e.realm, "user_id": e.user_id,
        "client_id": e.client_id, "client_ip": e.ip, "error": e.error, "factors": e.factors,
    });
    tracing::info!(target: "audit", line = line.to_string().as_str());
    st.store.add_event(&e).await
}

pub use super::names::PASSWORD_HISTORY;

/// Why a password was not set.
#[derive(Debug)]
pub enum SetPasswordError {
    /// The realm's policy refuses it; the message says why, in words, for the user.
    Policy(String),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for SetPasswordError {
    fn from(e: anyhow::Error) -> Self {
        SetPasswordError::Internal(e)
    }
}

impl From<tokio::task::JoinError> for SetPasswordError {
    fn from(e: tokio::task::JoinError) -> Self {
        SetPasswordError::Internal(e.into())
    }
}

/// Sets `user`'s password to `new_password` if the realm's `passwordPolicy` allows it: the
/// one function every path that sets a password calls (the `UPDATE_PASSWORD` action, the admin
/// API's reset, a reset link, the account console). With `passwordHistory(n)` the new password
/// must differ from the current one and the n − 1 before it; the replaced hash joins the
/// history. A pending `UPDATE_PASSWORD` action is done by it.
pub async fn set_password(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    new_password: &str,
) -> Result<(), SetPasswordError> {
    let realm = dir.realm.as_str();
    let policy = password_policy::parse(
        dir.settings
            .accounts
            .password_policy
            .as_deref()
            .unwrap_or_default(),
    );
    policy
        .check(new_password, user)
        .map_err(SetPasswordError::Policy)?;
    // The row as stored now: a cached user carries no hash.
    let Some(mut row) = st.store.get_user(realm, &user.id).await? else {
        return Err(anyhow::anyhow!("user vanished").into());
    };
    let keep = policy.history();
    let mut history: Vec<_> = st
        .store
        .user_credentials(realm, &user.id)
        .await?
        .into_iter()
        .filter(|c| c.kind == PASSWORD_HISTORY)
        .collect();
    // Newest first: the current hash, then the history.
    history.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    let current = row.password_hash.as_ref().map(|h| h.expose().clone());
    if keep > 0 {
        let mut recent: Vec<String> = current.iter().cloned().collect();
        recent.extend(
            history
                .iter()
                .take(keep.saturating_sub(1))
                .map(|c| c.secret.expose().clone()),
        );
        let pw = new_password.to_string();
        let reused = secrets::on_hashing_thread(move || {
            recent.iter().any(|h| secrets::verify_password(&pw, h))
        })
        .await?;
        if reused {
            return Err(SetPasswordError::Policy(password_policy::history_message(
                keep,
            )));
        }
    }
    let pw = new_password.to_string();
    let hash = secrets::on_hashing_thread(move || secrets::hash_password(&pw)).await??;
    row.password_hash = Some(Secret(hash));
    st.store.put_user(&row).await?;
    let now = st.now();
    if keep > 1
        && let Some(old) = current
    {
        st.store
            .put_credential(&CredentialRow {
                id: secrets::uuid()?,
                realm: realm.to_string(),
                user_id: user.id.clone(),
                kind: PASSWORD_HISTORY.into(),
                label: None,
                secret: Secret(old),
                data: "{}".into(),
                created_at: now,
                counter: 0,
            })
            .await?;
    }
    // Only the n − 1 newest are ever compared; the rest go.
    for stale in history.iter().skip(keep.saturating_sub(2)) {
        st.store
            .delete_credential(realm, &user.id, &stale.id)
            .await?;
    }
    let mut actions = st.store.user_required_actions(&user.id).await?;
    if actions.iter().any(|a| a == UPDATE_PASSWORD) {
        actions.retain(|a| a != UPDATE_PASSWORD);
        st.store
            .set_user_required_actions(&user.id, &actions)
            .await?;
    }
    Ok(())
}
