//! `P/userinfo` (GET and POST): the signed-in user's claims for a valid bearer access token.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::{OAuthError, OAuthResult};
use super::params::Params;
use super::tokens::user_claims;
use super::{State, verify};

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

pub async fn userinfo(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<Json<Value>> {
    let dir = st
        .dir(&realm)
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let form = Params::parse(&body).unwrap_or_default();
    let token = bearer(&headers)
        .or(form.get("access_token"))
        .ok_or_else(|| OAuthError::InvalidToken("Token not provided".into()))?;
    let invalid = || OAuthError::InvalidToken("Token verification failed".into());
    let claims = verify::claims(&st, &dir, token, "Bearer", false)
        .await?
        .ok_or_else(invalid)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    // The user as the store has them now (another replica's or the CLI's change included).
    let dir = st
        .fresh_dir(&realm)
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
    Ok(Json(Value::Object(user_claims(base, user, grants, client))))
}
