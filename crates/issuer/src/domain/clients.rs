//! Client authentication against the realm's directory: a public client by its id, a
//! confidential one by its secret, compared in constant time; an unknown id costs the same work.

use std::borrow::Cow;

use super::directory::Directory;
use super::error::{OAuthError, OAuthResult};
use crate::secrets;
use portcullis_store::{ClientConfig, ClientRow};

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

/// Keycloak's client for the account console (`B/account/`).
pub const ACCOUNT_CONSOLE: &str = "account-console";

/// The client a browser sign-in names: the realm's own, else, for [`ACCOUNT_CONSOLE`], a
/// built-in one as Keycloak creates in every realm (public, PKCE, redirect only to the
/// console). Not in the directory, so the token endpoint does not know it: the console signs
/// in through the SSO session and never redeems its codes.
pub fn browser_client<'d>(dir: &'d Directory, client_id: &str) -> Option<Cow<'d, ClientRow>> {
    if let Some(c) = dir.clients.get(client_id) {
        return Some(Cow::Borrowed(c));
    }
    (client_id == ACCOUNT_CONSOLE).then(|| {
        Cow::Owned(ClientRow {
            id: ACCOUNT_CONSOLE.into(),
            realm: dir.realm.clone(),
            client_id: ACCOUNT_CONSOLE.into(),
            secret_hash: None,
            config: ClientConfig {
                enabled: true,
                public_client: true,
                redirect_uris: vec![format!("/realms/{}/account/*", dir.realm)],
                standard_flow: true,
                pkce_method: Some("S256".into()),
                name: Some("${client_account-console}".into()),
                root_url: Some("${authBaseUrl}".into()),
                ..ClientConfig::default()
            },
        })
    })
}
