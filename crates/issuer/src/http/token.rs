//! `P/token`: authenticates the client and dispatches on `grant_type` to `domain::grants`,
//! handing each grant the parameters it reads; nothing else.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::client_auth;
use super::params::Params;
use super::realm::Realm;
use super::urls::{ClientIp, Listener, bases, client_ip, listener};
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::grants::Ctx;
use crate::domain::grants::authorization_code;
use crate::domain::grants::client_credentials;
use crate::domain::grants::password;
use crate::domain::grants::refresh_token;
use crate::domain::state::State;

/// The password grant's `error_description` for a wrong username or password (or a locked
/// account, which answers the same).
const INVALID_USER_CREDENTIALS: &str = "Invalid user credentials";

pub async fn token(
    AxState(st): AxState<Arc<State>>,
    realm: Realm,
    ext: Option<Extension<Listener>>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<Response> {
    let dir = realm.dir.as_ref();
    let params = Params::parse(&body)?;
    let grant_type = params.require("grant_type")?;
    let client = client_auth::authenticate(dir, &headers, &params)?;
    let ctx = Ctx {
        st: &st,
        dir,
        client,
        issuer: bases(st.frontend_url.as_deref(), &headers, listener(ext)).realm(&dir.realm),
        ip: client_ip(ip.map(|e| e.0), &headers),
    };
    let resp = match grant_type {
        "authorization_code" => {
            let req = authorization_code::Request {
                code: params.require("code")?,
                redirect_uri: params.get("redirect_uri"),
                code_verifier: params.get("code_verifier"),
            };
            authorization_code::grant(&ctx, &req).await?
        }
        "refresh_token" => refresh_token::grant(&ctx, params.require("refresh_token")?).await?,
        "client_credentials" => client_credentials::grant(&ctx, params.get("scope")).await?,
        "password" => {
            // Checked in the grant, after the client's right to use it.
            let req = password::Request {
                username: params.get("username"),
                password: params.get("password"),
                scope: params.get("scope"),
                totp: params.get("totp"),
            };
            match password::grant(&ctx, &req).await {
                // Keycloak answers a wrong password with 401 (python-keycloak raises its
                // `KeycloakAuthenticationError` on it); other grant errors stay 400.
                Err(OAuthError::InvalidGrant(d)) if d == INVALID_USER_CREDENTIALS => {
                    return Ok(
                        OAuthError::InvalidGrant(d).into_response_with(StatusCode::UNAUTHORIZED)
                    );
                }
                other => other?,
            }
        }
        other => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "unsupported grant_type: {}",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    let mut r = Json(resp).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}
