//! Entry points for the `fuzz/` targets (feature `fuzzing`, off by default).
//!
//! The parsers that see hostile bytes are crate-private; these thin wrappers let the fuzz crate
//! reach them without making the internals public API. Everything already public (path
//! normalization, routing, config loaders, forwarded headers, `Authenticator`) is used directly.

use std::sync::Arc;

use http::HeaderMap;

use crate::authn::AuthnError;
use crate::authn::{jwks, jwt, keys};

/// The token of an `Authorization` value (`jwt::bearer_token`).
pub fn bearer_token(
    authorization: Option<&[u8]>,
    max_token_bytes: usize,
) -> Result<&str, AuthnError> {
    jwt::bearer_token(authorization, max_token_bytes)
}

/// `jwt::check_charset`.
pub fn check_charset(token: &str) -> Result<(), AuthnError> {
    jwt::check_charset(token)
}

/// `jwt::segments`.
pub fn segments(token: &str) -> Result<(&str, &str, &str), AuthnError> {
    jwt::segments(token)
}

/// `jwt::parse_header`: the algorithm's name and the `kid`.
pub fn parse_header(segment: &str) -> Result<(String, Option<String>), AuthnError> {
    jwt::parse_header(segment).map(|h| (format!("{:?}", h.alg), h.kid))
}

/// What `jwt::parse` made of a token, as plain data.
pub struct ParsedToken<'a> {
    pub alg: String,
    pub kid: Option<String>,
    pub message: &'a str,
    pub signature: &'a str,
    pub issuer: Option<String>,
}

/// `jwt::parse`.
pub fn parse_token(token: &str) -> Result<ParsedToken<'_>, AuthnError> {
    jwt::parse(token).map(|p| ParsedToken {
        alg: format!("{:?}", p.header.alg),
        kid: p.header.kid.clone(),
        issuer: p.issuer().map(str::to_owned),
        message: p.message,
        signature: p.signature,
    })
}

/// `jwks::cache_max_age`, with the bounds it clamps to.
pub fn cache_max_age(value: &str) -> u64 {
    jwks::cache_max_age(value)
}

pub const CACHE_MAX_AGE_BOUNDS: (u64, u64) = (60, 24 * 3600);

/// How many keys of a fetched JWKS body are usable for verification (`KeySet::parse`).
pub fn jwks_usable_keys(body: &[u8]) -> Option<usize> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(body).ok()?;
    Some(keys::KeySet::parse(Arc::new(set), 1, 0).keys.len())
}

/// An OAuth form or query (`issuer::params::Params::parse`): the value of each `keys` entry.
pub fn oauth_params(raw: &[u8], keys: &[&str]) -> Result<Vec<Option<String>>, String> {
    let p = crate::issuer::params::Params::parse(raw).map_err(|e| e.description().to_owned())?;
    Ok(keys.iter().map(|k| p.get(k).map(str::to_owned)).collect())
}

/// The `client_secret_basic` credentials of a request (`issuer::client_auth`).
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, String> {
    crate::issuer::client_auth::basic_credentials(headers).map_err(|e| e.description().to_owned())
}

/// `issuer::redirect::allowed`.
pub fn redirect_allowed(registered: &[String], requested: &str) -> bool {
    crate::issuer::redirect::allowed(registered, requested)
}

/// `issuer::redirect::with_params`.
pub fn redirect_with_params(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    crate::issuer::redirect::with_params(uri, params)
}

/// A cookie of the request (`issuer::login::cookie`).
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    crate::issuer::login::cookie(headers, name)
}

/// The issuer's frontend and backchannel base URLs for a request (`issuer::urls::bases`).
pub fn issuer_bases(
    frontend_url: Option<&str>,
    headers: &HeaderMap,
    internal: bool,
) -> (String, String) {
    use crate::issuer::urls::{Listener, bases};
    let listener = if internal {
        Listener::Internal
    } else {
        Listener::Public
    };
    let b = bases(frontend_url, headers, listener);
    (b.frontend, b.backchannel)
}

/// The client address the issuer logs and rate-limits by (`issuer::urls::client_ip`).
pub fn issuer_client_ip(headers: &HeaderMap) -> Option<String> {
    crate::issuer::urls::client_ip(None, headers)
}
