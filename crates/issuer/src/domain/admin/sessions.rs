//! SSO sessions through the admin API: a user's live sessions (Keycloak's
//! `UserSessionRepresentation`), signing a user out everywhere, and ending one session. Ending
//! revokes the refresh tokens bound to it at once.

use serde_json::{Map, Value, json};

use super::super::directory::Directory;
use super::super::sessions::alive;
use super::super::state::State;
use super::{Outcome, Refused};

/// `GET users/{id}/sessions`: the user's live sessions, oldest first.
pub async fn of_user(st: &State, dir: &Directory, user_id: &str) -> Outcome<Vec<Value>> {
    let Some(user) = st.store.get_user(&dir.realm, user_id).await? else {
        return Ok(Err(Refused::not_found("User not found")));
    };
    let now = st.now();
    let mut out = Vec::new();
    for s in st.store.user_sessions(&dir.realm, user_id).await? {
        if !alive(dir, &s, now) {
            continue;
        }
        let clients: Map<String, Value> = st
            .store
            .session_clients(&s.id)
            .await?
            .into_iter()
            .map(|c| {
                let id = dir
                    .clients
                    .get(&c)
                    .map_or_else(|| c.clone(), |x| x.id.clone());
                (id, Value::from(c))
            })
            .collect();
        out.push(json!({
            "id": s.id, "username": user.username, "userId": user.id,
            "start": s.created_at.saturating_mul(1000),
            "lastAccess": s.last_seen.saturating_mul(1000),
            "rememberMe": false, "clients": clients, "transientUser": false,
        }));
    }
    Ok(Ok(out))
}

/// `POST users/{id}/logout`: ends every session of the user and revokes all their refresh
/// tokens (offline ones too).
pub async fn logout_user(st: &State, realm: &str, user_id: &str) -> Outcome<()> {
    if st.store.get_user(realm, user_id).await?.is_none() {
        return Ok(Err(Refused::not_found("User not found")));
    }
    st.store.end_user_sessions(realm, user_id).await?;
    Ok(Ok(()))
}

/// `DELETE sessions/{id}`: ends one session of the realm.
pub async fn delete(st: &State, realm: &str, session_id: &str) -> Outcome<()> {
    match st.store.session_by_id(session_id).await? {
        Some(s) if s.realm == realm && !s.ended => {
            st.store.end_session(&s.id).await?;
            Ok(Ok(()))
        }
        _ => Ok(Err(Refused::not_found("Session not found"))),
    }
}
