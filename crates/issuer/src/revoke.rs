//! `P/revoke` (RFC 7009): a refresh token revokes its family, an access token its `jti`. Only the
//! client the token was issued to may revoke it; unknown tokens still answer 200.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::error::{OAuthError, OAuthResult};
use super::params::Params;
use super::{State, client_auth, secrets, verify};

pub async fn revoke(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<StatusCode> {
    let dir = st
        .dir(&realm)
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(&dir, &headers, &params)?;
    let token = params.require("token")?;
    if token.matches('.').count() == 2 {
        if let Some(c) = verify::claims(&st, &dir, token, "Bearer", false).await?
            && c.get("azp").and_then(Value::as_str) == Some(client.client_id.as_str())
            && let (Some(jti), Some(exp)) = (
                c.get("jti").and_then(Value::as_str),
                c.get("exp").and_then(Value::as_i64),
            )
        {
            st.store.revoke_jti(jti, exp).await?;
        }
    } else if let Some((family_id, _)) = token.split_once('.')
        && let Some(f) = st.store.get_family(family_id).await?
        && f.client_id == client.client_id
        && f.realm == realm
        && secrets::ct_eq(&f.current_hash, &secrets::token_hash(token))
    {
        st.store.revoke_family(&f.id).await?;
    }
    Ok(StatusCode::OK)
}
