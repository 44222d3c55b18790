//! The account parts of realm files (issue 17), in Keycloak's keys: the realm's sign-in,
//! password and OTP settings, the conditional second factor, and users' `requiredActions` and
//! `otp` credentials.
//!
//! The conditional second factor is read from Keycloak's own representation where it has one:
//! the `authenticatorConfig` of a `conditional-otp-form` authenticator (`forceOtpRole`,
//! `skipOtpRole`, `defaultOtpOutcome`: `force` or `skip`), found by those keys whatever the
//! config's alias. Keycloak has no way to name groups there, so members of the groups listed in
//! the realm attribute `portcullis.otp.requiredGroups` (full paths, separated by `##` or
//! commas; subgroups included) must use a second factor too. Levels of authentication for
//! `acr_values` come from Keycloak's realm attribute `acr.loa.map` (`{"gold": 2}`).
//!
//! `otp` credentials import from Keycloak's export (`secretData` `{"value": …}`, raw unless
//! `credentialData.secretEncoding` is `BASE32`; `credentialData` `{"subType": "totp", "digits",
//! "period", "algorithm", "counter"}`) and export the same way: an exported realm file then
//! holds TOTP secrets, and must be kept as secret as they are.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::keys;
use super::names::UPDATE_PASSWORD;
use super::realm_file::{AccountsFile, AuthenticatorConfigRep, CredentialRep, UserRep};
use super::seal::SealKeys;
use super::totp::{self as otp, OtpData};
use crate::secrets;
use portcullis_store::{AccountSettings, CredentialRow, Store};

const REQUIRED_GROUPS: &str = "portcullis.otp.requiredGroups";
const LOA_MAP: &str = "acr.loa.map";
const CONFIG_ALIAS: &str = "portcullis-conditional-otp";

fn list(v: &str) -> Vec<String> {
    v.split("##")
        .flat_map(|x| x.split(','))
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The realm's account settings from its file; Keycloak's defaults for what it leaves out.
pub fn settings(f: &AccountsFile) -> AccountSettings {
    let d = AccountSettings::default();
    let attr = |k: &str| f.attributes.get(k).and_then(Value::as_str);
    let mut s = AccountSettings {
        display_name: f.display_name.clone().filter(|n| !n.is_empty()),
        access_code_lifespan_login: f
            .access_code_lifespan_login
            .unwrap_or(d.access_code_lifespan_login),
        password_policy: f.password_policy.clone().filter(|p| !p.trim().is_empty()),
        otp_policy_type: f.otp_policy_type.clone().unwrap_or(d.otp_policy_type),
        otp_policy_algorithm: f
            .otp_policy_algorithm
            .clone()
            .unwrap_or(d.otp_policy_algorithm),
        otp_policy_digits: f.otp_policy_digits.unwrap_or(d.otp_policy_digits),
        otp_policy_period: f.otp_policy_period.unwrap_or(d.otp_policy_period),
        otp_policy_look_ahead_window: f
            .otp_policy_look_ahead_window
            .unwrap_or(d.otp_policy_look_ahead_window),
        otp_required_groups: attr(REQUIRED_GROUPS).map(list).unwrap_or_default(),
        acr_loa_map: attr(LOA_MAP)
            .and_then(|m| serde_json::from_str::<BTreeMap<String, i64>>(m).ok())
            .unwrap_or_default(),
        ..d
    };
    for c in &f.authenticator_config {
        let get = |k: &str| c.config.get(k).and_then(Value::as_str).map(str::trim);
        if let Some(r) = get("forceOtpRole").filter(|r| !r.is_empty()) {
            s.otp_force_roles.push(r.to_string());
        }
        if let Some(r) = get("skipOtpRole").filter(|r| !r.is_empty()) {
            s.otp_skip_roles.push(r.to_string());
        }
        if let Some(o) = get("defaultOtpOutcome").filter(|o| !o.is_empty()) {
            s.otp_default_outcome = Some(o.to_string());
        }
    }
    s
}

/// The realm file's account keys for `s` (export).
pub fn file(s: &AccountSettings) -> AccountsFile {
    let mut attributes = BTreeMap::new();
    if !s.otp_required_groups.is_empty() {
        attributes.insert(
            REQUIRED_GROUPS.into(),
            s.otp_required_groups.join("##").into(),
        );
    }
    if !s.acr_loa_map.is_empty()
        && let Ok(m) = serde_json::to_string(&s.acr_loa_map)
    {
        attributes.insert(LOA_MAP.into(), m.into());
    }
    // Keycloak's config holds one role of each kind.
    let mut config = BTreeMap::new();
    if let Some(r) = s.otp_force_roles.first() {
        config.insert("forceOtpRole".to_string(), r.clone().into());
    }
    if let Some(r) = s.otp_skip_roles.first() {
        config.insert("skipOtpRole".to_string(), r.clone().into());
    }
    if let Some(o) = &s.otp_default_outcome {
        config.insert("defaultOtpOutcome".to_string(), o.clone().into());
    }
    let authenticator_config = if config.is_empty() {
        Vec::new()
    } else {
        vec![AuthenticatorConfigRep {
            alias: CONFIG_ALIAS.into(),
            config,
        }]
    };
    AccountsFile {
        display_name: s.display_name.clone(),
        access_code_lifespan_login: Some(s.access_code_lifespan_login),
        password_policy: s.password_policy.clone(),
        otp_policy_type: Some(s.otp_policy_type.clone()),
        otp_policy_algorithm: Some(s.otp_policy_algorithm.clone()),
        otp_policy_digits: Some(s.otp_policy_digits),
        otp_policy_period: Some(s.otp_policy_period),
        otp_policy_look_ahead_window: Some(s.otp_policy_look_ahead_window),
        attributes,
        authenticator_config,
    }
}

/// The realm's sealing keys as stored, making its first signing key if it has none yet (as
/// loading the realm would): an import seals TOTP secrets before the realm is loaded.
pub async fn seal_keys(
    store: &dyn Store,
    realm: &str,
    alg: &str,
    now: i64,
) -> anyhow::Result<SealKeys> {
    let mut rows = store.list_keys(realm).await?;
    if !rows.iter().any(|k| k.active && k.alg == alg) {
        keys::rotate(store, realm, alg, now).await?;
        rows = store.list_keys(realm).await?;
    }
    let active = rows.iter().find(|r| r.active).map(|r| r.kid.clone());
    SealKeys::derive(realm, &rows, active.as_deref().unwrap_or_default())
}

/// A user's `requiredActions` (a temporary password adds `UPDATE_PASSWORD`, as Keycloak does)
/// and `otp` credentials from their file entry. A credential without a usable id gets one
/// derived from its user and secret, so a `--sync` of the same file does not add it again.
pub async fn import_user(
    store: &dyn Store,
    seal: &SealKeys,
    realm: &str,
    user_id: &str,
    u: &UserRep,
    now: i64,
) -> anyhow::Result<()> {
    let temporary = u
        .credentials
        .iter()
        .any(|c| c.kind == "password" && c.temporary == Some(true) && c.value.is_some());
    if u.required_actions.is_some() || temporary {
        let mut actions = u.required_actions.clone().unwrap_or_default();
        if temporary && !actions.iter().any(|a| a == UPDATE_PASSWORD) {
            actions.push(UPDATE_PASSWORD.into());
        }
        store.set_user_required_actions(user_id, &actions).await?;
    }
    for c in u.credentials.iter().filter(|c| c.kind == otp::TYPE) {
        let (Some(secret), Some(data)) = (&c.secret_data, &c.credential_data) else {
            anyhow::bail!(
                "user {}: otp credential without secretData or credentialData",
                u.username
            );
        };
        let value: otp::OtpSecret = serde_json::from_str(secret)
            .map_err(|e| anyhow::anyhow!("user {}: otp secretData: {e}", u.username))?;
        let data: OtpData = serde_json::from_str(data)
            .map_err(|e| anyhow::anyhow!("user {}: otp credentialData: {e}", u.username))?;
        // Ids go in URLs (the admin API's): Keycloak's UUIDs, or letters, digits, `-`, `_`.
        let usable = |i: &&str| {
            !i.is_empty()
                && i.len() <= 64
                && i.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let id = match c.id.as_deref().filter(usable) {
            Some(i) => i.to_string(),
            None => derived_id(realm, user_id, &value.value),
        };
        let json = serde_json::to_vec(&value)?;
        store
            .put_credential(&CredentialRow {
                id,
                realm: realm.to_string(),
                user_id: user_id.to_string(),
                kind: otp::TYPE.into(),
                label: c.user_label.clone(),
                secret: portcullis_store::Secret(seal.seal(otp::SEAL_AAD, &json)?),
                data: serde_json::to_string(&data)?,
                created_at: c.created_date.map_or(now, |ms| ms / 1000),
                counter: data.counter,
            })
            .await?;
    }
    Ok(())
}

fn derived_id(realm: &str, user_id: &str, secret: &str) -> String {
    let d = Sha256::digest(format!("{realm}\0{user_id}\0{secret}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    secrets::uuid_string(&b)
}

/// A user's `requiredActions` and `otp` credentials for their file entry (export).
pub async fn export_user(
    store: &dyn Store,
    seal: &SealKeys,
    realm: &str,
    user_id: &str,
) -> anyhow::Result<(Option<Vec<String>>, Vec<CredentialRep>)> {
    let actions = store.user_required_actions(user_id).await?;
    let mut creds = Vec::new();
    for c in store.user_credentials(realm, user_id).await? {
        // Past password hashes (`password-history`) never leave.
        if c.kind != otp::TYPE {
            continue;
        }
        let Some(secret) = seal.open(otp::SEAL_AAD, c.secret.expose()) else {
            tracing::warn!(realm, user.id = user_id, credential.id = %c.id, "otp secret can't be opened; left out of the export");
            continue;
        };
        creds.push(CredentialRep {
            id: Some(c.id),
            kind: c.kind,
            user_label: c.label,
            created_date: Some(c.created_at.saturating_mul(1000)),
            secret_data: Some(String::from_utf8(secret)?),
            credential_data: Some(c.data),
            ..CredentialRep::default()
        });
    }
    Ok(((!actions.is_empty()).then_some(actions), creds))
}
