//! WebAuthn passkeys (webauthn-rs): registration from the account console, sign-in without a
//! password (discoverable credentials, conditional UI) and as a second factor, listing and
//! removal.
//!
//! A ceremony has two halves, and any replica may serve the second: its state is a store row
//! (`webauthn_challenges`) named by the digest of a random handle the browser carries, taken
//! (deleted) by the second half, so it is used once, and it expires after
//! [`CHALLENGE_TTL`]. The relying party is the issuer's frontend host: its id is the host name
//! (an IP address cannot be one, so passkeys are off there), its origin the frontend's origin.
//!
//! Passkeys require user verification (webauthn-rs's passkey policy), so one is two factors.
//! Failed passkey sign-ins count toward brute-force protection (the IP's counter, and the
//! user's when the credential names one), and a locked user cannot sign in with one either.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use super::bruteforce;
use super::directory::Directory;
use super::state::State;
use crate::secrets;
use portcullis_core::metrics::metrics;
use portcullis_store::{LoginEvent, UserRow, WebauthnChallengeRow, WebauthnCredentialRow};

/// How long the browser has between a ceremony's two halves (webauthn-rs's default timeout is
/// five minutes too; the authenticator gives up first).
pub const CHALLENGE_TTL: i64 = 300;

/// The `amr` of a passkey as second factor (RFC 8176: a hardware-secured key).
pub const SECOND_FACTOR_AMR: &str = "hwk";

/// The `amr` of a passwordless sign-in: the key, and the user verification webauthn-rs
/// requires of a passkey (PIN or biometric on the authenticator), so two factors.
pub const PASSWORDLESS_AMR: &[&str] = &["hwk", "mfa"];

/// What the flow calls a passkey credential (never in the `credentials` table).
pub const CREDENTIAL_TYPE: &str = "webauthn";

/// The longest label a user may give a passkey.
pub const MAX_LABEL: usize = 64;

/// What a ceremony's row is for.
const REGISTER: &str = "register";
const LOGIN: &str = "login";
const SECOND_FACTOR: &str = "second-factor";

/// Why a passkey ceremony did not succeed, in words a page can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The host is not one a passkey can be bound to (an IP address).
    Unavailable,
    /// The ceremony is unknown, used or expired: start again.
    Expired,
    /// The browser's answer does not verify, or names no passkey of this realm.
    Invalid,
    /// This authenticator is registered already.
    Duplicate,
    /// The label is empty, too long or has control characters.
    BadLabel,
    /// Brute-force protection holds the account or address.
    Locked,
    Disabled,
}

impl Failure {
    pub fn user_message(self) -> &'static str {
        match self {
            Failure::Unavailable => {
                "Passkeys are not available at this address: open the page by its host name."
            }
            Failure::Expired => "The passkey request expired. Please try again.",
            // A locked account answers like any failure, as for passwords.
            Failure::Invalid | Failure::Locked => "Passkey sign-in failed.",
            Failure::Duplicate => "This passkey is registered already.",
            Failure::BadLabel => {
                "Give the passkey a name of at most 64 characters, without control characters."
            }
            Failure::Disabled => "Account is disabled, contact your administrator.",
        }
    }
}

pub type Outcome<T> = anyhow::Result<Result<T, Failure>>;

/// The relying party of a request: webauthn-rs configured for the issuer's frontend URL
/// (`…/auth`). `None` when its host is not a domain name.
pub fn relying_party(frontend: &str, realm_name: &str) -> Option<Webauthn> {
    let url = Url::parse(frontend).ok()?;
    let host = url.domain()?.to_string();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name(realm_name)
        .build()
        .ok()
}

/// The WebAuthn user handle of a user: their id when it is a UUID (as Keycloak's are), else a
/// digest of realm and id. Stable, so an authenticator keeps one passkey per user and site.
pub fn user_handle(realm: &str, user_id: &str) -> Uuid {
    if let Ok(u) = Uuid::parse_str(user_id) {
        return u;
    }
    let d = Sha256::new()
        .chain_update(b"portcullis webauthn user\0")
        .chain_update(realm.as_bytes())
        .chain_update(b"\0")
        .chain_update(user_id.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // A version 8 (custom) UUID: its version and variant bits set, as RFC 9562 asks.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// A started ceremony: the handle for the browser to send back, and the options for
/// `navigator.credentials.create` / `get` as webauthn-rs serialises them.
pub struct Started {
    pub handle: String,
    pub options: serde_json::Value,
}

async fn keep(
    st: &State,
    dir: &Directory,
    purpose: &str,
    user_id: Option<&str>,
    state: String,
    options: serde_json::Value,
) -> anyhow::Result<Started> {
    let handle = secrets::random_token()?;
    st.store
        .put_webauthn_challenge(&WebauthnChallengeRow {
            id: secrets::token_hash(&handle),
            realm: dir.realm.clone(),
            purpose: purpose.to_string(),
            user_id: user_id.map(str::to_string),
            state,
            expires_at: st.now() + CHALLENGE_TTL,
        })
        .await?;
    Ok(Started { handle, options })
}

/// Takes the ceremony `handle` names, if it is this realm's, for `purpose` and `user_id`.
async fn take(
    st: &State,
    dir: &Directory,
    handle: &str,
    purpose: &str,
    user_id: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let row = st
        .store
        .take_webauthn_challenge(&secrets::token_hash(handle), st.now())
        .await?;
    Ok(row
        .filter(|r| r.realm == dir.realm && r.purpose == purpose && r.user_id.as_deref() == user_id)
        .map(|r| r.state))
}

fn passkey_of(row: &WebauthnCredentialRow) -> Option<Passkey> {
    serde_json::from_str(&row.passkey).ok()
}

/// Starts registering a passkey for `user`. The passkey is made discoverable (a resident key),
/// so it can sign in without a username; the user's existing passkeys are excluded.
pub async fn start_registration(
    st: &State,
    dir: &Directory,
    rp: &Webauthn,
    user: &UserRow,
) -> anyhow::Result<Started> {
    let existing = st
        .store
        .webauthn_credentials_of(&dir.realm, &user.id)
        .await?;
    let exclude = existing
        .iter()
        .filter_map(passkey_of)
        .map(|p| p.cred_id().clone())
        .collect();
    let display = match (&user.first_name, &user.last_name) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        _ => user.username.clone(),
    };
    let (ccr, reg) = rp.start_passkey_registration(
        user_handle(&dir.realm, &user.id),
        &user.username,
        &display,
        Some(exclude),
    )?;
    let mut options = serde_json::to_value(&ccr)?;
    // webauthn-rs asks for a non-resident credential ("discouraged"); passwordless sign-in
    // needs the authenticator to keep it. The finishing half does not depend on this choice.
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(|v| v.as_object_mut())
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    keep(
        st,
        dir,
        REGISTER,
        Some(&user.id),
        serde_json::to_string(&reg)?,
        options,
    )
    .await
}

/// A label as a user typed it, trimmed; `None` when it is not acceptable.
fn clean_label(label: &str) -> Option<String> {
    let l = label.trim();
    (!l.is_empty() && l.chars().count() <= MAX_LABEL && !l.chars().any(char::is_control))
        .then(|| l.to_string())
}

/// Finishes a registration `start_registration` began for `user_id`: stores the passkey
/// under `label`.
pub async fn finish_registration(
    st: &State,
    dir: &Directory,
    rp: &Webauthn,
    user_id: &str,
    handle: &str,
    credential: &str,
    label: &str,
) -> Outcome<WebauthnCredentialRow> {
    let Some(label) = clean_label(label) else {
        return Ok(Err(Failure::BadLabel));
    };
    let Some(state) = take(st, dir, handle, REGISTER, Some(user_id)).await? else {
        return Ok(Err(Failure::Expired));
    };
    let reg: PasskeyRegistration = serde_json::from_str(&state)?;
    let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
        return Ok(Err(Failure::Invalid));
    };
    let passkey = match rp.finish_passkey_registration(&answer, &reg) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(realm = %dir.realm, error = %e, "passkey registration refused");
            return Ok(Err(Failure::Invalid));
        }
    };
    let row = WebauthnCredentialRow {
        id: secrets::uuid()?,
        realm: dir.realm.clone(),
        user_id: user_id.to_string(),
        credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
        passkey: serde_json::to_string(&passkey)?,
        label,
        created_at: st.now(),
        last_used_at: None,
    };
    if !st.store.add_webauthn_credential(&row).await? {
        return Ok(Err(Failure::Duplicate));
    }
    tracing::info!(target: "audit", event = "UPDATE_CREDENTIAL", realm = %dir.realm, user.id = %user_id, credential = "webauthn", "passkey registered");
    Ok(Ok(row))
}

/// The user's passkeys, oldest first.
pub async fn list(
    st: &State,
    dir: &Directory,
    user_id: &str,
) -> anyhow::Result<Vec<WebauthnCredentialRow>> {
    st.store.webauthn_credentials_of(&dir.realm, user_id).await
}

/// Removes passkey `id` if it is `user_id`'s; `false` when it is not theirs (or gone).
pub async fn remove(st: &State, dir: &Directory, user_id: &str, id: &str) -> anyhow::Result<bool> {
    let removed = st
        .store
        .delete_webauthn_credential(&dir.realm, user_id, id)
        .await?;
    if removed {
        tracing::info!(target: "audit", event = "REMOVE_CREDENTIAL", realm = %dir.realm, user.id = %user_id, credential = "webauthn", "passkey removed");
    }
    Ok(removed)
}

/// Starts a passwordless sign-in: any discoverable passkey of this site may answer.
pub async fn start_login(st: &State, dir: &Directory, rp: &Webauthn) -> anyhow::Result<Started> {
    let (rcr, auth) = rp.start_discoverable_authentication()?;
    let mut options = serde_json::to_value(&rcr)?;
    // The page chooses the mediation (conditional for autofill, a dialog for the button).
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    keep(st, dir, LOGIN, None, serde_json::to_string(&auth)?, options).await
}

/// Starts a second-factor check of `user_id` with their passkeys; `None` when they have none.
pub async fn start_second_factor(
    st: &State,
    dir: &Directory,
    rp: &Webauthn,
    user_id: &str,
) -> anyhow::Result<Option<Started>> {
    let keys: Vec<Passkey> = list(st, dir, user_id)
        .await?
        .iter()
        .filter_map(passkey_of)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (rcr, auth) = rp.start_passkey_authentication(&keys)?;
    let options = serde_json::to_value(&rcr)?;
    let state = serde_json::to_string(&auth)?;
    Ok(Some(
        keep(st, dir, SECOND_FACTOR, Some(user_id), state, options).await?,
    ))
}

/// Who a sign-in attempt is for, for the login event and brute-force counters.
struct Attempt<'a> {
    ip: Option<&'a str>,
    client_id: &'a str,
}

/// Finishes a passwordless sign-in `start_login` began: the user whose passkey answered, if
/// they may sign in. Records the login event and counts failures toward brute force.
pub async fn finish_login(
    st: &State,
    dir: &Directory,
    rp: &Webauthn,
    handle: &str,
    credential: &str,
    ip: Option<&str>,
    client_id: &str,
) -> Outcome<UserRow> {
    let at = Attempt { ip, client_id };
    let Some(state) = take(st, dir, handle, LOGIN, None).await? else {
        return Ok(Err(Failure::Expired));
    };
    let auth: DiscoverableAuthentication = serde_json::from_str(&state)?;
    let answer = serde_json::from_str::<PublicKeyCredential>(credential).ok();
    // The credential the browser names, and whose it is.
    let mut row = None;
    if let Some(a) = &answer
        && let Ok((handle_uuid, cred_id)) = rp.identify_discoverable_authentication(a)
    {
        row = st
            .store
            .webauthn_credential_by_credential_id(&dir.realm, &URL_SAFE_NO_PAD.encode(cred_id))
            .await?
            .filter(|r| user_handle(&dir.realm, &r.user_id) == handle_uuid);
    }
    let (Some(answer), Some(row)) = (answer, row) else {
        return failed(st, dir, &at, None).await;
    };
    let user = st
        .store
        .get_user(&dir.realm, &row.user_id)
        .await?
        .filter(|u| u.service_account_client.is_none());
    let Some(user) = user else {
        return failed(st, dir, &at, None).await;
    };
    let keys = bruteforce::keys(Some(&user.id), ip);
    let counters = bruteforce::load(st.store.as_ref(), &dir.realm, &dir.settings, &keys).await?;
    if bruteforce::locked(&counters, st.now()) {
        record(
            st,
            dir,
            &at,
            Some(&user.id),
            Some("user_temporarily_disabled"),
        )
        .await?;
        return Ok(Err(Failure::Locked));
    }
    let Some(mut passkey) = passkey_of(&row) else {
        anyhow::bail!("stored passkey {} does not parse", row.id);
    };
    let verified =
        rp.finish_discoverable_authentication(&answer, auth, &[DiscoverableKey::from(&passkey)]);
    let Ok(result) = verified else {
        return failed(st, dir, &at, Some((user.id.as_str(), counters.as_slice()))).await;
    };
    if !user.enabled {
        record(st, dir, &at, Some(&user.id), Some("user_disabled")).await?;
        return Ok(Err(Failure::Disabled));
    }
    passkey.update_credential(&result);
    st.store
        .webauthn_credential_used(&row.id, &serde_json::to_string(&passkey)?, st.now())
        .await?;
    let user_key = format!("user:{}", user.id);
    bruteforce::success(st.store.as_ref(), &dir.realm, &user_key, &counters).await?;
    // The sign-in flow records the `LOGIN` event with its factors when it completes.
    count(&dir.realm, "success");
    Ok(Ok(user))
}

/// Finishes a second-factor check `start_second_factor` began for `user_id`. Failures count
/// toward brute force on the user and the address.
pub async fn finish_second_factor(
    st: &State,
    dir: &Directory,
    rp: &Webauthn,
    user_id: &str,
    handle: &str,
    credential: &str,
    ip: Option<&str>,
) -> Outcome<()> {
    let realm = dir.realm.as_str();
    let Some(state) = take(st, dir, handle, SECOND_FACTOR, Some(user_id)).await? else {
        return Ok(Err(Failure::Expired));
    };
    let auth: PasskeyAuthentication = serde_json::from_str(&state)?;
    let keys = bruteforce::keys(Some(user_id), ip);
    let counters = bruteforce::load(st.store.as_ref(), realm, &dir.settings, &keys).await?;
    let now = st.now();
    if bruteforce::locked(&counters, now) {
        count(realm, "locked");
        return Ok(Err(Failure::Locked));
    }
    let result = serde_json::from_str::<PublicKeyCredential>(credential)
        .ok()
        .and_then(|a| rp.finish_passkey_authentication(&a, &auth).ok());
    let Some(result) = result else {
        bruteforce::failure(
            st.store.as_ref(),
            realm,
            &dir.settings,
            &keys,
            &counters,
            now,
        )
        .await?;
        count(realm, "failure");
        return Ok(Err(Failure::Invalid));
    };
    // The passkey that answered: its counter moves on.
    let id = URL_SAFE_NO_PAD.encode(result.cred_id());
    if let Some(row) = st
        .store
        .webauthn_credential_by_credential_id(realm, &id)
        .await?
        .filter(|r| r.user_id == user_id)
        && let Some(mut p) = passkey_of(&row)
    {
        p.update_credential(&result);
        st.store
            .webauthn_credential_used(&row.id, &serde_json::to_string(&p)?, now)
            .await?;
    }
    bruteforce::success(
        st.store.as_ref(),
        realm,
        &format!("user:{user_id}"),
        &counters,
    )
    .await?;
    count(realm, "success");
    Ok(Ok(()))
}

/// A failed passwordless attempt: counted on the address, and on the user when the answer
/// named one (`user` with the counters loaded for them).
async fn failed<T>(
    st: &State,
    dir: &Directory,
    at: &Attempt<'_>,
    user: Option<(&str, &[(String, portcullis_store::Failures)])>,
) -> Outcome<T> {
    let now = st.now();
    let keys = bruteforce::keys(user.map(|u| u.0), at.ip);
    let counters = match user {
        Some((_, c)) => c.to_vec(),
        None => bruteforce::load(st.store.as_ref(), &dir.realm, &dir.settings, &keys).await?,
    };
    bruteforce::failure(
        st.store.as_ref(),
        &dir.realm,
        &dir.settings,
        &keys,
        &counters,
        now,
    )
    .await?;
    record(
        st,
        dir,
        at,
        user.map(|u| u.0),
        Some("invalid_user_credentials"),
    )
    .await?;
    Ok(Err(Failure::Invalid))
}

fn count(realm: &str, result: &str) {
    metrics()
        .issuer_second_factor
        .with_label_values(&[realm, "webauthn", result])
        .inc();
}

/// A failed passwordless sign-in's `LOGIN_ERROR` event (stored, and on the audit log with its
/// factor) and metrics: `issuer_logins` as for passwords, `issuer_second_factor` for the
/// passkey.
async fn record(
    st: &State,
    dir: &Directory,
    at: &Attempt<'_>,
    user_id: Option<&str>,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let result = match error {
        None => "success",
        Some("user_temporarily_disabled") => "locked",
        Some("user_disabled") => "disabled",
        Some(_) => "failure",
    };
    metrics()
        .issuer_logins
        .with_label_values(&[dir.realm.as_str(), result])
        .inc();
    count(&dir.realm, result);
    let e = LoginEvent {
        realm: dir.realm.clone(),
        time: st.now(),
        kind: if error.is_some() {
            "LOGIN_ERROR"
        } else {
            "LOGIN"
        }
        .into(),
        user_id: user_id.map(str::to_string),
        client_id: Some(at.client_id.to_string()),
        ip: at.ip.map(str::to_string),
        error: error.map(str::to_string),
        factors: vec![SECOND_FACTOR_AMR.into()],
    };
    let line = serde_json::json!({
        "type": "login_event", "event": e.kind, "realm": e.realm, "user_id": e.user_id,
        "client_id": e.client_id, "client_ip": e.ip, "error": e.error, "factors": e.factors,
    });
    tracing::info!(target: "audit", line = line.to_string().as_str());
    st.store.add_event(&e).await
}
