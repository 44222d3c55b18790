//! `P/token`: authenticates the client and dispatches on `grant_type`, nothing else.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::directory::Directory;
use super::error::{OAuthError, OAuthResult};
use super::params::Params;
use super::urls::{Bases, bases, client_ip};
use super::{ClientIp, Listener, State, client_auth, grants};
use portcullis_store::ClientRow;

/// What every grant gets.
pub struct Ctx<'a> {
    pub st: &'a State,
    pub dir: &'a Directory,
    pub client: &'a ClientRow,
    pub params: &'a Params,
    pub bases: Bases,
    pub ip: Option<String>,
}

impl Ctx<'_> {
    pub fn issuer(&self) -> String {
        self.bases.realm(&self.dir.realm)
    }
}

pub async fn token(
    AxState(st): AxState<Arc<State>>,
    Path(realm): Path<String>,
    listener: Option<axum::Extension<Listener>>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<Response> {
    let dir = st
        .dir(&realm)
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let params = Params::parse(&body)?;
    let grant_type = params.require("grant_type")?.to_string();
    let client = client_auth::authenticate(&dir, &headers, &params)?;
    let ctx = Ctx {
        st: &st,
        dir: &dir,
        client,
        params: &params,
        bases: bases(
            st.frontend_url.as_deref(),
            &headers,
            super::discovery::listener(listener),
        ),
        ip: client_ip(ip.map(|e| e.0), &headers),
    };
    let resp = match grant_type.as_str() {
        "authorization_code" => grants::authorization_code::grant(&ctx).await?,
        "refresh_token" => grants::refresh_token::grant(&ctx).await?,
        "client_credentials" => grants::client_credentials::grant(&ctx).await?,
        "password" => grants::password::grant(&ctx).await?,
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
