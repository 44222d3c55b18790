//! What introspection (RFC 7662) finds for a token: a valid access token's claims, the claims
//! of a refresh token that is its live family's current one, or nothing.

use serde_json::{Map, Value};

use super::directory::Directory;
use super::refresh_tokens::{self, RefreshClaims};
use super::state::State;
use super::verify;
use crate::secrets;

/// A token, as introspection sees it.
pub enum Introspected {
    /// A valid access token of the realm, with its claims.
    Access(Map<String, Value>),
    /// The current token of a live refresh-token family of the realm, with its claims.
    Refresh(Box<RefreshClaims>),
    Inactive,
}

/// Looks `token` up: a refresh token by its realm signature (checked first: an HMAC), then an
/// access token by the realm's published keys.
pub async fn introspect(st: &State, dir: &Directory, token: &str) -> anyhow::Result<Introspected> {
    let Some(keys) = st.keys.realm(&dir.realm) else {
        return Ok(Introspected::Inactive);
    };
    if let Some(c) = refresh_tokens::verify(&keys.refresh, &dir.realm, token) {
        return Ok(if live_refresh(st, dir, &c, token).await? {
            Introspected::Refresh(Box::new(c))
        } else {
            Introspected::Inactive
        });
    }
    if let Some(c) = verify::claims(st, dir, token, "Bearer", false).await? {
        return Ok(Introspected::Access(c));
    }
    Ok(Introspected::Inactive)
}

/// Whether the verified refresh token `token` (claims `c`) is unexpired and the current token
/// of a live family of `dir`'s realm.
async fn live_refresh(
    st: &State,
    dir: &Directory,
    c: &RefreshClaims,
    token: &str,
) -> anyhow::Result<bool> {
    let now = st.now();
    let s = &dir.settings;
    let Some(family_id) = c.family() else {
        return Ok(false);
    };
    if c.exp <= now {
        return Ok(false);
    }
    Ok(st.store.get_family(family_id).await?.is_some_and(|f| {
        f.realm == dir.realm
            && !f.revoked
            && secrets::ct_eq(&f.current_hash, &secrets::token_hash(token))
            && now - f.updated_at <= s.sso_session_idle_timeout
            && now - f.created_at <= s.sso_session_max_lifespan
    }))
}
