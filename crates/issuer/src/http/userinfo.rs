//! `P/userinfo` (GET and POST): the signed-in user's claims for a valid bearer access token,
//! from the `Authorization` header or the form's `access_token`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::params::Params;
use super::realm::Realm;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::state::State;
use crate::domain::userinfo;

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
    realm: Realm,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<Json<Value>> {
    let form = Params::parse(&body).unwrap_or_default();
    let token = bearer(&headers)
        .or(form.get("access_token"))
        .ok_or_else(|| OAuthError::InvalidToken("Token not provided".into()))?;
    let claims = userinfo::claims(&st, &realm.dir, token).await?;
    Ok(Json(Value::Object(claims)))
}
