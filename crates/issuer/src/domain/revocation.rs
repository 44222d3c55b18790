//! Revocation (RFC 7009): a refresh token revokes its family, an access token its `jti`, only
//! when `client_id` is the client the token was issued to. Unknown tokens are no error.

use serde_json::Value;

use super::directory::Directory;
use super::refresh_tokens;
use super::state::State;
use super::verify;
use crate::secrets;

/// Revokes `token` if it is a valid token of `dir`'s realm issued to `client_id`.
pub async fn revoke(
    st: &State,
    dir: &Directory,
    client_id: &str,
    token: &str,
) -> anyhow::Result<()> {
    let Some(keys) = st.keys.realm(&dir.realm) else {
        return Ok(());
    };
    if let Some(c) = refresh_tokens::verify(&keys.refresh, &dir.realm, token) {
        if c.azp == client_id
            && let Some(family_id) = c.family()
            && let Some(f) = st.store.get_family(family_id).await?
            && f.client_id == client_id
            && f.realm == dir.realm
            && secrets::ct_eq(&f.current_hash, &secrets::token_hash(token))
        {
            st.store.revoke_family(&f.id).await?;
        }
    } else if let Some(c) = verify::claims(st, dir, token, "Bearer", false).await?
        && c.get("azp").and_then(Value::as_str) == Some(client_id)
        && let (Some(jti), Some(exp)) = (
            c.get("jti").and_then(Value::as_str),
            c.get("exp").and_then(Value::as_i64),
        )
    {
        st.store.revoke_jti(jti, exp).await?;
    }
    Ok(())
}
