//! `B/.well-known/openid-configuration` and `P/certs`, both built from memory.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::realm::Realm;
use super::urls::{Bases, Listener, bases, listener};
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::signing;
use crate::domain::state::State;

pub fn document(realm: &str, b: &Bases) -> Value {
    let front = b.realm(realm);
    let back = b.backchannel_realm(realm);
    let p = |base: &str, rest: &str| format!("{base}/protocol/openid-connect/{rest}");
    json!({
        "issuer": front,
        "authorization_endpoint": p(&front, "auth"),
        "token_endpoint": p(&back, "token"),
        "introspection_endpoint": p(&back, "token/introspect"),
        "userinfo_endpoint": p(&back, "userinfo"),
        "end_session_endpoint": p(&front, "logout"),
        "check_session_iframe": p(&front, "login-status-iframe.html"),
        "jwks_uri": p(&back, "certs"),
        "revocation_endpoint": p(&back, "revoke"),
        "grant_types_supported": ["authorization_code", "refresh_token", "password", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing::ALGORITHMS,
        "userinfo_signing_alg_values_supported": ["none"],
        "scopes_supported": ["openid", "profile", "email", "roles", "groups"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid",
            "azp", "preferred_username", "email", "email_verified", "name", "given_name",
            "family_name", "groups", "realm_access", "resource_access"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}

pub async fn openid_configuration(
    AxState(st): AxState<Arc<State>>,
    realm: Realm,
    ext: Option<Extension<Listener>>,
    headers: HeaderMap,
) -> Json<Value> {
    let b = bases(st.frontend_url.as_deref(), &headers, listener(ext));
    Json(document(&realm.name, &b))
}

pub async fn certs(AxState(st): AxState<Arc<State>>, realm: Realm) -> OAuthResult<Response> {
    let keys = st
        .keys
        .realm(&realm.name)
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let mut resp = keys.jwks_json.clone().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
