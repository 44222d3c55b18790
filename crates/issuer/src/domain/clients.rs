//! Client authentication against the realm's directory: a public client by its id, a
//! confidential one by its secret, compared in constant time; an unknown id costs the same work.

use super::directory::Directory;
use super::error::{OAuthError, OAuthResult};
use crate::secrets;
use portcullis_store::ClientRow;

/// The enabled client `client_id` of `dir`, if `secret` is its secret (public clients need
/// none).
pub fn authenticate<'d>(
    dir: &'d Directory,
    client_id: &str,
    secret: Option<&str>,
) -> OAuthResult<&'d ClientRow> {
    let invalid =
        || OAuthError::InvalidClient("Invalid client or Invalid client credentials".into());
    // Bearer-only clients (`realm-management`) only name roles; they never get tokens.
    let Some(client) = dir
        .clients
        .get(client_id)
        .filter(|c| c.config.enabled && !c.config.bearer_only)
    else {
        // Same work as a real check, so unknown ids are not told apart by timing.
        let _ = secrets::verify_client_secret(secret.unwrap_or(""), "sha256$x$y");
        return Err(invalid());
    };
    if client.config.public_client {
        return Ok(client);
    }
    let (Some(secret), Some(stored)) = (secret, client.secret_hash.as_ref()) else {
        return Err(invalid());
    };
    if secrets::verify_client_secret(secret, stored.expose()) {
        Ok(client)
    } else {
        Err(invalid())
    }
}
