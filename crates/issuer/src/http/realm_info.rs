//! `B` itself (`GET /auth/realms/{realm}`): Keycloak's public realm information
//! (`PublishedRealmRepresentation`), which python-keycloak's `public_key()` and older adapters
//! read: the realm's active signing key as base64 DER SubjectPublicKeyInfo and its service
//! URLs. Public and uncached; any origin may read it, as in Keycloak.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::realm::Realm;
use super::urls::{Listener, bases, listener};
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::state::State;

pub async fn realm_info(
    AxState(st): AxState<Arc<State>>,
    realm: Realm,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
) -> OAuthResult<Response> {
    let keys = st
        .keys
        .realm(&realm.name)
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let base = bases(st.frontend_url.as_deref(), &headers, listener(ext)).realm(&realm.name);
    let body = json!({
        "realm": realm.name,
        "public_key": STANDARD.encode(keys.signer.public_key_der()?),
        "token-service": format!("{base}/protocol/openid-connect"),
        "account-service": format!("{base}/account"),
        // Keycloak's realm `notBefore`: no push of a not-before policy here.
        "tokens-not-before": 0,
    });
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The CORS layer answers registered origins with credentials; anyone else may still read.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(resp)
}
