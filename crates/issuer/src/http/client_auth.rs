//! Client credentials of a request to the token, introspection and revocation endpoints:
//! `client_secret_basic` or `client_secret_post`, never both; `domain::clients` checks them.
//! `basic_credentials` is public for the `client_auth` fuzz target.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::params::Params;
use crate::domain::clients;
use crate::domain::directory::Directory;
use crate::domain::error::{OAuthError, OAuthResult};
use portcullis_store::ClientRow;

/// Identifies and authenticates the calling client. Public clients present only `client_id`.
pub(crate) fn authenticate<'d>(
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
    clients::authenticate(dir, &client_id, secret.as_deref())
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1): the
/// decoded id and secret, `None` without Basic credentials, `invalid_client` when malformed.
pub fn basic_credentials(headers: &HeaderMap) -> OAuthResult<Option<(String, String)>> {
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
