//! Client authentication for the token, introspection and revocation endpoints:
//! `client_secret_basic` or `client_secret_post`, secrets compared in constant time.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::directory::Directory;
use super::error::{OAuthError, OAuthResult};
use super::params::Params;
use super::secrets;
use portcullis_store::ClientRow;

/// Identifies and authenticates the calling client. Public clients present only `client_id`.
pub fn authenticate<'d>(
    dir: &'d Directory,
    headers: &HeaderMap,
    params: &Params,
) -> OAuthResult<&'d ClientRow> {
    let basic = basic_credentials(headers)?;
    if basic.is_some() && (params.get("client_secret").is_some()) {
        return Err(OAuthError::InvalidRequest(
            "more than one client authentication method".into(),
        ));
    }
    let (client_id, secret) = match basic {
        Some((id, secret)) => {
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::InvalidRequest("client_id mismatch".into()));
            }
            (id, Some(secret))
        }
        None => (
            params
                .get("client_id")
                .ok_or_else(|| OAuthError::InvalidClient("client authentication required".into()))?
                .to_string(),
            params.get("client_secret").map(str::to_string),
        ),
    };
    let invalid =
        || OAuthError::InvalidClient("Invalid client or Invalid client credentials".into());
    let Some(client) = dir.clients.get(&client_id).filter(|c| c.config.enabled) else {
        // Same work as a real check, so unknown ids are not told apart by timing.
        let _ = secrets::verify_client_secret(secret.as_deref().unwrap_or(""), "sha256$x$y");
        return Err(invalid());
    };
    if client.config.public_client {
        return Ok(client);
    }
    let (Some(secret), Some(stored)) = (secret, client.secret_hash.as_ref()) else {
        return Err(invalid());
    };
    if secrets::verify_client_secret(&secret, stored.expose()) {
        Ok(client)
    } else {
        Err(invalid())
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> OAuthResult<Option<(String, String)>> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let v = v.to_str().map_err(|_| bad())?;
    let Some(b64) = v
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Ok(None);
    };
    let raw = STANDARD.decode(b64).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
            .ok_or_else(bad)
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}
