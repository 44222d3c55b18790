//! Checking tokens this issuer signed: signature against the realm's published keys, expiry by
//! the injected clock, the realm's issuer path, the session still live and the jti not revoked.

use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::directory::Directory;
use super::sessions;
use super::state::State;

/// The claims of a valid token of `typ` (`Bearer` or `ID`), or `None`. With `allow_expired`
/// (logout's `id_token_hint`) expiry and session liveness are not checked.
pub async fn claims(
    st: &State,
    dir: &Directory,
    token: &str,
    typ: &str,
    allow_expired: bool,
) -> anyhow::Result<Option<Map<String, Value>>> {
    let Some(keys) = st.keys.realm(&dir.realm) else {
        return Ok(None);
    };
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some((alg, key)) = header.kid.as_deref().and_then(|k| keys.decoding.get(k)) else {
        return Ok(None);
    };
    // The key's own algorithm, never the header's choice.
    let mut v = Validation::new(*alg);
    // Expiry is checked below against the injected clock; audience is the caller's business.
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v) else {
        return Ok(None);
    };
    let c = data.claims;
    let suffix = format!("/realms/{}", dir.realm);
    let iss_ok = c
        .get("iss")
        .and_then(Value::as_str)
        .is_some_and(|i| i.ends_with(&suffix));
    let typ_ok = c.get("typ").and_then(Value::as_str) == Some(typ);
    if !iss_ok || !typ_ok {
        return Ok(None);
    }
    if allow_expired {
        return Ok(Some(c));
    }
    let now = st.now();
    if c.get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|e| e <= now)
    {
        return Ok(None);
    }
    if let Some(jti) = c.get("jti").and_then(Value::as_str)
        && st.store.is_jti_revoked(jti).await?
    {
        return Ok(None);
    }
    if let Some(sid) = c.get("sid").and_then(Value::as_str) {
        let live = st
            .store
            .session_by_id(sid)
            .await?
            .is_some_and(|s| sessions::alive(dir, &s, now));
        if !live {
            return Ok(None);
        }
    }
    Ok(Some(c))
}
