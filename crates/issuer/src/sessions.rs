//! SSO sessions: created at login, found by the hash of their cookie, alive while within the
//! realm's idle timeout and max lifespan.

use super::State;
use super::directory::Directory;
use super::secrets;
use portcullis_store::SessionRow;

pub const COOKIE: &str = "PORTCULLIS_SESSION";

/// Creates a session; returns it and the cookie value (only its hash is stored).
pub async fn create(
    st: &State,
    realm: &str,
    user_id: &str,
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
    };
    st.store.create_session(&row).await?;
    Ok((row, cookie))
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
