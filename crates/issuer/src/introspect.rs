//! `P/token/introspect` (RFC 7662): client-authenticated; active access tokens answer with their
//! claims, refresh tokens with their family's state; anything else is `{"active": false}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::error::{OAuthError, OAuthResult};
use super::params::Params;
use super::{State, client_auth, secrets, verify};

pub async fn introspect(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<Json<Value>> {
    let dir = st
        .dir(&realm)
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(&dir, &headers, &params)?;
    if client.config.public_client {
        return Err(OAuthError::InvalidClient(
            "Public clients cannot introspect".into(),
        ));
    }
    let token = params.require("token")?;
    if token.matches('.').count() == 2 {
        if let Some(mut c) = verify::claims(&st, &dir, token, "Bearer", false).await? {
            c.insert("active".into(), true.into());
            c.insert(
                "client_id".into(),
                c.get("azp").cloned().unwrap_or(Value::Null),
            );
            c.insert(
                "username".into(),
                c.get("preferred_username").cloned().unwrap_or(Value::Null),
            );
            c.insert("token_type".into(), "Bearer".into());
            return Ok(Json(Value::Object(c)));
        }
    } else if let Some((family_id, _)) = token.split_once('.') {
        let now = st.now();
        let s = &dir.settings;
        if let Some(f) = st.store.get_family(family_id).await?.filter(|f| {
            f.realm == realm
                && !f.revoked
                && secrets::ct_eq(&f.current_hash, &secrets::token_hash(token))
                && now - f.updated_at <= s.sso_session_idle_timeout
                && now - f.created_at <= s.sso_session_max_lifespan
        }) {
            return Ok(Json(json!({
                "active": true,
                "token_type": "Refresh",
                "client_id": f.client_id,
                "sub": f.user_id,
                "scope": f.scope,
                "sid": f.session_id,
                "iat": f.updated_at,
                "exp": f.updated_at + s.sso_session_idle_timeout,
            })));
        }
    }
    Ok(Json(json!({ "active": false })))
}
