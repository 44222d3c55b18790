//! `P/revoke` (RFC 7009): a refresh token revokes its family, an access token its `jti`. Only the
//! client the token was issued to may revoke it (`domain::revocation`); unknown tokens still
//! answer 200.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};

use super::client_auth;
use super::params::Params;
use super::realm::Realm;
use crate::domain::error::OAuthResult;
use crate::domain::revocation;
use crate::domain::state::State;

pub async fn revoke(
    AxState(st): AxState<Arc<State>>,
    realm: Realm,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<StatusCode> {
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(&realm.dir, &headers, &params)?;
    let token = params.require("token")?;
    revocation::revoke(&st, &realm.dir, &client.client_id, token).await?;
    Ok(StatusCode::OK)
}
