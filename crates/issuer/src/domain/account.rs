//! The account console's domain (`B/account/`): who is signed in (the realm's SSO session),
//! their sessions, changing their password, and their TOTP authenticators. Every function takes the signed-in user's id
//! from the session and acts on that user's rows only: an id from a form that is not theirs
//! is "not found".

use super::credentials::{self, SetPasswordError};
use super::directory::Directory;
use super::otp;
use super::sessions::{self, alive};
use super::state::State;
use portcullis_store::{CredentialRow, SessionRow, UserRow};

/// The live session of `cookie` and its user, the session's idle timer restarted; `None` when
/// there is no such session or its user is gone or disabled.
pub async fn signed_in(
    st: &State,
    dir: &Directory,
    cookie: &str,
) -> anyhow::Result<Option<(SessionRow, UserRow)>> {
    let Some(s) = sessions::live_by_cookie(st, dir, cookie).await? else {
        return Ok(None);
    };
    let Some(user) = st
        .store
        .get_user(&dir.realm, &s.user_id)
        .await?
        .filter(|u| u.enabled)
    else {
        return Ok(None);
    };
    st.store.touch_session(&s.id, st.now()).await?;
    Ok(Some((s, user)))
}

/// A live session of the user with the clients holding its tokens.
pub struct SessionView {
    pub session: SessionRow,
    pub clients: Vec<String>,
}

/// The user's live sessions, oldest first.
pub async fn sessions_of(
    st: &State,
    dir: &Directory,
    user_id: &str,
) -> anyhow::Result<Vec<SessionView>> {
    let now = st.now();
    let mut out = Vec::new();
    for s in st.store.user_sessions(&dir.realm, user_id).await? {
        if alive(dir, &s, now) {
            let clients = st.store.session_clients(&s.id).await?;
            out.push(SessionView {
                session: s,
                clients,
            });
        }
    }
    Ok(out)
}

/// Ends the user's session `id` (its refresh tokens stop working); `false` when no live
/// session of this user has that id.
pub async fn end_session(
    st: &State,
    dir: &Directory,
    user_id: &str,
    id: &str,
) -> anyhow::Result<bool> {
    match st.store.session_by_id(id).await? {
        Some(s) if s.user_id == user_id && alive(dir, &s, st.now()) => {
            sessions::end(st, dir, &s, Some(super::clients::ACCOUNT_CONSOLE)).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Ends every live session of the user but `keep`; how many.
pub async fn end_other_sessions(
    st: &State,
    dir: &Directory,
    user_id: &str,
    keep: &str,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for v in sessions_of(st, dir, user_id).await? {
        if v.session.id != keep {
            sessions::end(st, dir, &v.session, Some(super::clients::ACCOUNT_CONSOLE)).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Changes `user`'s password to `new` if `current` is theirs. A wrong current password counts
/// toward brute-force protection like a failed login (and a locked account is refused). The
/// answer on refusal is the message for the page.
pub async fn change_password(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    current: &str,
    new: &str,
    confirm: &str,
    ip: Option<&str>,
) -> anyhow::Result<Result<(), String>> {
    if new != confirm {
        return Ok(Err("The new passwords do not match.".into()));
    }
    if new.is_empty() {
        return Ok(Err("Enter a new password.".into()));
    }
    let console = super::clients::ACCOUNT_CONSOLE;
    match credentials::check(st, dir, &user.username, current, ip, console).await? {
        Ok(u) if u.id == user.id => {}
        Ok(_) | Err(_) => return Ok(Err("The current password is not correct.".into())),
    }
    // The realm's password policy (and history) applies here as everywhere a password is set.
    match credentials::set_password(st, dir, user, new).await {
        Ok(()) => {}
        Err(SetPasswordError::Policy(m)) => return Ok(Err(m)),
        Err(SetPasswordError::Internal(e)) => return Err(e),
    }
    tracing::info!(target: "audit", event = "UPDATE_PASSWORD", realm = %dir.realm, user.id = %user.id, "password changed in the account console");
    Ok(Ok(()))
}

/// What the console's TOTP enrollment seals into its form: the secret being enrolled, bound
/// to the session (a form copied into another session does not open).
pub(crate) fn totp_aad(session_id: &str) -> String {
    format!("account totp\0{session_id}")
}

/// The user's TOTP credentials, oldest first.
pub async fn totp_of(
    st: &State,
    dir: &Directory,
    user_id: &str,
) -> anyhow::Result<Vec<CredentialRow>> {
    let mut v: Vec<CredentialRow> = st
        .store
        .user_credentials(&dir.realm, user_id)
        .await?
        .into_iter()
        .filter(|c| c.kind == otp::TYPE)
        .collect();
    v.sort_by_key(|c| c.created_at);
    Ok(v)
}

/// Removes the user's TOTP credential `id`; `false` when it is not one of theirs.
pub async fn remove_totp(
    st: &State,
    dir: &Directory,
    user_id: &str,
    id: &str,
) -> anyhow::Result<bool> {
    if !totp_of(st, dir, user_id).await?.iter().any(|c| c.id == id) {
        return Ok(false);
    }
    let removed = st.store.delete_credential(&dir.realm, user_id, id).await?;
    if removed {
        tracing::info!(target: "audit", event = "REMOVE_TOTP", realm = %dir.realm, user.id = %user_id, "TOTP removed in the account console");
    }
    Ok(removed)
}

/// A TOTP enrollment shown in the console: the QR code and key, and the secret sealed for its
/// form (`pending`).
pub struct TotpStart {
    pub enrollment: otp::Enrollment,
    pub pending: String,
}

/// Starts enrolling a TOTP authenticator for `user` in session `session_id`: a new secret, or
/// the one `pending` carries (a wrong code shows the same QR code again).
pub fn totp_start(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    session_id: &str,
    display: &str,
    pending: Option<&str>,
) -> anyhow::Result<TotpStart> {
    let keys = st
        .keys
        .realm(&dir.realm)
        .ok_or_else(|| anyhow::anyhow!("realm {} has no keys loaded", dir.realm))?;
    let aad = totp_aad(session_id);
    let secret = match pending.and_then(|p| keys.seal.open(&aad, p)) {
        Some(s) => String::from_utf8(s)?,
        None => otp::new_secret()?,
    };
    let enrollment = otp::enrollment(&dir.settings.accounts, display, &user.username, &secret)?;
    let pending = keys.seal.seal(&aad, secret.as_bytes())?;
    Ok(TotpStart {
        enrollment,
        pending,
    })
}

/// Finishes an enrollment `totp_start` began in this session: stores the authenticator if
/// `code` is its current code. `None` when the form's secret is not this session's.
pub async fn totp_finish(
    st: &State,
    dir: &Directory,
    user_id: &str,
    session_id: &str,
    pending: &str,
    code: &str,
    label: Option<&str>,
) -> anyhow::Result<Option<bool>> {
    let Some(keys) = st.keys.realm(&dir.realm) else {
        anyhow::bail!("realm {} has no keys loaded", dir.realm);
    };
    let Some(secret) = keys.seal.open(&totp_aad(session_id), pending) else {
        return Ok(None);
    };
    let secret = String::from_utf8(secret)?;
    let label = label.map(str::trim).filter(|l| !l.is_empty());
    Ok(Some(
        otp::enroll(st, dir, user_id, &secret, code, label).await?,
    ))
}
