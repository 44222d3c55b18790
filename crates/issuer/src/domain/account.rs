//! The account console's domain (`B/account/`): who is signed in (the realm's SSO session),
//! their sessions, and changing their password. Every function takes the signed-in user's id
//! from the session and acts on that user's rows only: an id from a form that is not theirs
//! is "not found".

use super::credentials::{self, SetPasswordError};
use super::directory::Directory;
use super::sessions::{self, alive};
use super::state::State;
use portcullis_store::{SessionRow, UserRow};

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
