//! The TOTP second factor against the store: a user's `otp` credentials with their secrets
//! sealed at rest (`seal`, AES-256-GCM with a key derived from a realm signing key), checking a
//! code (within the look-around window, each time step accepted once per credential on every
//! replica through the store's conditional counter, wrong codes counted by brute force, the
//! `second_factor` metric) and enrolling a new one.

use super::bruteforce;
use super::directory::Directory;
use super::state::State;
pub use super::totp::{Enrollment, OtpData, OtpSecret, SEAL_AAD, TYPE, enrollment, new_secret};
use crate::secrets;
use portcullis_core::metrics::metrics;
use portcullis_store::{CredentialRow, LoginEvent, Secret};

/// A credential row for a TOTP secret, its secret sealed.
pub fn credential_row(
    st: &State,
    realm: &str,
    user_id: &str,
    label: Option<&str>,
    secret: &str,
    data: &OtpData,
    now: i64,
) -> anyhow::Result<CredentialRow> {
    Ok(CredentialRow {
        id: secrets::uuid()?,
        realm: realm.to_string(),
        user_id: user_id.to_string(),
        kind: TYPE.into(),
        label: label.map(str::to_string),
        secret: Secret(seal_secret(st, realm, secret)?),
        data: serde_json::to_string(data)?,
        created_at: now,
        counter: data.counter,
    })
}

/// Keycloak's `secretData` JSON of `secret`, sealed.
pub fn seal_secret(st: &State, realm: &str, secret: &str) -> anyhow::Result<String> {
    let keys = st
        .keys
        .realm(realm)
        .ok_or_else(|| anyhow::anyhow!("realm {realm} has no keys loaded"))?;
    let json = serde_json::to_vec(&OtpSecret {
        value: secret.to_string(),
    })?;
    keys.seal.seal(SEAL_AAD, &json)
}

/// The secret of a stored credential; `None` when it can't be opened (never expected: key
/// rows are kept).
pub fn open_secret(st: &State, c: &CredentialRow) -> Option<String> {
    let keys = st.keys.realm(&c.realm)?;
    let json = keys.seal.open(SEAL_AAD, c.secret.expose())?;
    serde_json::from_slice::<OtpSecret>(&json)
        .ok()
        .map(|s| s.value)
}

/// How a code fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Valid,
    /// Wrong, reused or for no credential: counted as a failure.
    Invalid,
    /// The user or address is locked by brute-force protection (answered like `Invalid`).
    Locked,
}

/// Checks `code` against the user's TOTP credentials at `now`: a match advances that
/// credential's counter to the matched step (refused if it was already there: a replay).
/// Records the metric and, on failure, a `LOGIN_ERROR` event and a brute-force failure.
pub async fn verify(
    st: &State,
    dir: &Directory,
    user_id: &str,
    code: &str,
    ip: Option<&str>,
    client_id: &str,
) -> anyhow::Result<Check> {
    let realm = dir.realm.as_str();
    let now = st.now();
    let keys = bruteforce::keys(Some(user_id), ip);
    let counters = bruteforce::load(st.store.as_ref(), realm, &dir.settings, &keys).await?;
    let result = if bruteforce::locked(&counters, now) {
        Check::Locked
    } else {
        let look = dir.settings.accounts.otp_policy_look_ahead_window;
        let mut found = Check::Invalid;
        for c in st.store.user_credentials(realm, user_id).await? {
            if c.kind != TYPE {
                continue;
            }
            let (Ok(data), Some(secret)) = (
                serde_json::from_str::<OtpData>(&c.data),
                open_secret(st, &c),
            ) else {
                continue;
            };
            if let Some(step) = data.matching_step(&secret, code, now, look) {
                if st.store.advance_credential_counter(&c.id, step).await? {
                    found = Check::Valid;
                }
                break;
            }
        }
        found
    };
    let label = match result {
        Check::Valid => "success",
        Check::Invalid => "failure",
        Check::Locked => "locked",
    };
    count(realm, "otp", label);
    match result {
        Check::Valid => {
            let user_key = format!("user:{user_id}");
            bruteforce::success(st.store.as_ref(), realm, &user_key, &counters).await?;
        }
        Check::Invalid | Check::Locked => {
            if result == Check::Invalid {
                let s = &dir.settings;
                bruteforce::failure(st.store.as_ref(), realm, s, &keys, &counters, now).await?;
            }
            let error = if result == Check::Locked {
                "user_temporarily_disabled"
            } else {
                "invalid_user_credentials"
            };
            st.store
                .add_event(&LoginEvent {
                    realm: realm.to_string(),
                    time: now,
                    kind: "LOGIN_ERROR".into(),
                    user_id: Some(user_id.to_string()),
                    client_id: Some(client_id.to_string()),
                    ip: ip.map(str::to_string),
                    error: Some(error.into()),
                    factors: vec!["otp".into()],
                })
                .await?;
        }
    }
    Ok(result)
}

/// Counts a second-factor check: `portcullis_issuer_second_factor_total{realm,kind,result}`.
pub fn count(realm: &str, kind: &str, result: &str) {
    metrics()
        .issuer_second_factor
        .with_label_values(&[realm, kind, result])
        .inc();
}

/// Stores a new TOTP credential for `secret` if `code` matches it now; its counter starts at
/// the matched step, so the code shown at enrollment does not sign in again.
pub async fn enroll(
    st: &State,
    dir: &Directory,
    user_id: &str,
    secret: &str,
    code: &str,
    label: Option<&str>,
) -> anyhow::Result<bool> {
    let now = st.now();
    let s = &dir.settings.accounts;
    let mut data = OtpData::of_policy(s);
    let Some(step) = data.matching_step(secret, code, now, s.otp_policy_look_ahead_window) else {
        count(&dir.realm, "otp-enroll", "failure");
        return Ok(false);
    };
    data.counter = 0;
    let mut row = credential_row(st, &dir.realm, user_id, label, secret, &data, now)?;
    row.counter = step;
    st.store.put_credential(&row).await?;
    count(&dir.realm, "otp-enroll", "success");
    Ok(true)
}
