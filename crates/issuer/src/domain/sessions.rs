//! SSO sessions: created at login, found by the hash of their cookie, alive while within the
//! realm's idle timeout and max lifespan, ended by a new login or a logout (in the browser, or
//! by a client with a refresh token).

use super::directory::Directory;
use super::error::{OAuthError, OAuthResult};
use super::refresh_tokens;
use super::state::State;
use crate::secrets;
use portcullis_store::{LoginEvent, SessionRow};

/// Creates a session signed in with the factors `amr`; returns it and the cookie value (only
/// its hash is stored).
pub async fn create(
    st: &State,
    realm: &str,
    user_id: &str,
    amr: &[String],
) -> anyhow::Result<(SessionRow, String)> {
    let cookie = secrets::random_token()?;
    let now = st.now();
    let row = SessionRow {
        id: secrets::uuid()?,
        realm: realm.to_string(),
        user_id: user_id.to_string(),
        cookie_hash: secrets::token_hash(&cookie),
        created_at: now,
        last_seen: now,
        ended: false,
        amr: amr.to_vec(),
    };
    st.store.create_session(&row).await?;
    Ok((row, cookie))
}

/// A login's new session. A login always starts a new session (fixation defence): the live
/// session of `old_cookie`, if any, ends first. Failing to find the old one does not stop the
/// login; failing to end it does.
pub async fn replace(
    st: &State,
    dir: &Directory,
    old_cookie: Option<&str>,
    user_id: &str,
    amr: &[String],
) -> anyhow::Result<(SessionRow, String)> {
    if let Some(c) = old_cookie
        && let Ok(Some(old)) = live_by_cookie(st, dir, c).await
    {
        st.store.end_session(&old.id).await?;
    }
    create(st, &dir.realm, user_id, amr).await
}

pub fn alive(dir: &Directory, s: &SessionRow, now: i64) -> bool {
    !s.ended
        && s.realm == dir.realm
        && now - s.last_seen <= dir.settings.sso_session_idle_timeout
        && now - s.created_at <= dir.settings.sso_session_max_lifespan
}

/// The live session with `id`, touched (its idle timer restarts).
pub async fn live_by_id(
    st: &State,
    dir: &Directory,
    id: &str,
) -> anyhow::Result<Option<SessionRow>> {
    let now = st.now();
    match st.store.session_by_id(id).await? {
        Some(s) if alive(dir, &s, now) => {
            st.store.touch_session(&s.id, now).await?;
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

/// Raises a live session's factors to `amr` (a step-up done).
pub async fn raise(st: &State, s: &mut SessionRow, amr: &[String]) -> anyhow::Result<()> {
    st.store.set_session_amr(&s.id, amr).await?;
    s.amr = amr.to_vec();
    Ok(())
}

/// The live session named by a cookie value.
pub async fn live_by_cookie(
    st: &State,
    dir: &Directory,
    cookie: &str,
) -> anyhow::Result<Option<SessionRow>> {
    let now = st.now();
    match st
        .store
        .session_by_cookie(&secrets::token_hash(cookie))
        .await?
    {
        Some(s) if alive(dir, &s, now) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// RP-initiated logout: ends the live session of `cookie`, else the session `hint_sid` (an
/// `id_token_hint`'s `sid`, alive or not, of this realm), revoking its refresh tokens, and
/// records a `LOGOUT` event. Nothing to end is not an error.
pub async fn logout(
    st: &State,
    dir: &Directory,
    cookie: Option<&str>,
    hint_sid: Option<&str>,
    client_id: Option<&str>,
) -> anyhow::Result<()> {
    let mut session = None;
    if let Some(c) = cookie {
        session = live_by_cookie(st, dir, c).await?;
    }
    if session.is_none()
        && let Some(sid) = hint_sid
    {
        session = st
            .store
            .session_by_id(sid)
            .await?
            .filter(|s| s.realm == dir.realm);
    }
    match session {
        Some(s) => end(st, dir, &s, client_id).await,
        None => Ok(()),
    }
}

/// Logout by a client with a refresh token (Keycloak's `POST P/logout` with `refresh_token`,
/// as python-keycloak's `logout()` sends it): the token must be signed for this realm and
/// issued to `client_id`, expired or not (the client is leaving). Its session ends, which
/// revokes every refresh family of the session (so its access tokens go inactive too); its own
/// family is revoked as well. A session already ended is no error.
pub async fn logout_with_refresh_token(
    st: &State,
    dir: &Directory,
    client_id: &str,
    token: &str,
) -> OAuthResult<()> {
    let keys = st
        .keys
        .realm(&dir.realm)
        .ok_or_else(|| anyhow::anyhow!("realm {} has no keys loaded", dir.realm))?;
    let c = refresh_tokens::verify(&keys.refresh, &dir.realm, token)
        .ok_or_else(|| OAuthError::InvalidGrant("Invalid refresh token".into()))?;
    if c.azp != client_id {
        return Err(OAuthError::InvalidGrant(
            "Invalid refresh token. Token client and authorized client don't match".into(),
        ));
    }
    if let Some(family) = c.family() {
        st.store.revoke_family(family).await?;
    }
    if let Some(sid) = &c.sid
        && let Some(s) = st
            .store
            .session_by_id(sid)
            .await?
            .filter(|s| s.realm == dir.realm && !s.ended)
    {
        end(st, dir, &s, Some(client_id)).await?;
    }
    Ok(())
}

/// Ends session `s` (and its refresh families) and records a `LOGOUT` event.
pub(super) async fn end(
    st: &State,
    dir: &Directory,
    s: &SessionRow,
    client_id: Option<&str>,
) -> anyhow::Result<()> {
    st.store.end_session(&s.id).await?;
    st.store
        .add_event(&LoginEvent {
            realm: dir.realm.clone(),
            time: st.now(),
            kind: "LOGOUT".into(),
            user_id: Some(s.user_id.clone()),
            client_id: client_id.map(str::to_string),
            ip: None,
            error: None,
            factors: Vec::new(),
        })
        .await?;
    tracing::info!(target: "audit", event = "LOGOUT", realm = %dir.realm, user.id = %s.user_id, "login event");
    Ok(())
}
