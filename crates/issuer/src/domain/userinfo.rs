//! The claims `userinfo` answers with: the user of a valid bearer access token, as the store
//! has them now.

use serde_json::{Map, Value};

use super::directory::Directory;
use super::error::{OAuthError, OAuthResult};
use super::state::State;
use super::tokens::user_claims;
use super::verify;

/// The `sub` and user claims for `token`, an access token of `dir`'s realm; `invalid_token`
/// when it is not valid, or its user or client is gone or disabled.
pub async fn claims(st: &State, dir: &Directory, token: &str) -> OAuthResult<Map<String, Value>> {
    let invalid = || OAuthError::InvalidToken("Token verification failed".into());
    let claims = verify::claims(st, dir, token, "Bearer", false)
        .await?
        .ok_or_else(invalid)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    // The user as the store has them now (another replica's or the CLI's change included).
    let dir = st
        .fresh_dir(&dir.realm)
        .await?
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let cached = dir
        .user(st.store.as_ref(), sub)
        .await?
        .filter(|c| c.user.enabled)
        .ok_or_else(invalid)?;
    let (user, grants) = (&cached.user, &cached.grants);
    let client = claims
        .get("azp")
        .and_then(Value::as_str)
        .and_then(|c| dir.clients.get(c))
        .ok_or_else(invalid)?;
    let mut base = Map::new();
    base.insert("sub".into(), user.id.clone().into());
    Ok(user_claims(base, user, grants, client))
}
