//! What introspection (RFC 7662) finds for a token: a valid access token's claims, a live
//! refresh token's family, or nothing.

use serde_json::{Map, Value};

use super::directory::Directory;
use super::state::State;
use super::verify;
use crate::secrets;
use portcullis_store::FamilyRow;

/// A token, as introspection sees it.
pub enum Introspected {
    /// A valid access token of the realm, with its claims.
    Access(Map<String, Value>),
    /// The current token of a live refresh-token family of the realm.
    Refresh(FamilyRow),
    Inactive,
}

/// Looks `token` up: three dot-separated parts are an access token, `{family}.{secret}` a
/// refresh token.
pub async fn introspect(st: &State, dir: &Directory, token: &str) -> anyhow::Result<Introspected> {
    if token.matches('.').count() == 2 {
        if let Some(c) = verify::claims(st, dir, token, "Bearer", false).await? {
            return Ok(Introspected::Access(c));
        }
    } else if let Some((family_id, _)) = token.split_once('.') {
        let now = st.now();
        let s = &dir.settings;
        if let Some(f) = st.store.get_family(family_id).await?.filter(|f| {
            f.realm == dir.realm
                && !f.revoked
                && secrets::ct_eq(&f.current_hash, &secrets::token_hash(token))
                && now - f.updated_at <= s.sso_session_idle_timeout
                && now - f.created_at <= s.sso_session_max_lifespan
        }) {
            return Ok(Introspected::Refresh(f));
        }
    }
    Ok(Introspected::Inactive)
}
