//! One module per OAuth grant type; each turns a `Ctx` and the parameters it reads into a token
//! response. The token endpoint picks one by `grant_type`.

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;

use std::sync::Arc;

use super::directory::{CachedUser, Directory};
use super::error::{OAuthError, OAuthResult};
use super::state::State;
use portcullis_store::ClientRow;

/// What every grant gets.
pub struct Ctx<'a> {
    pub st: &'a State,
    pub dir: &'a Directory,
    /// The authenticated client.
    pub client: &'a ClientRow,
    /// `iss`: `{frontend}/realms/{realm}` as this request sees it.
    pub issuer: String,
    /// The client's address, for login events and brute-force counting.
    pub ip: Option<String>,
}

/// The user a code or refresh token was issued to, through `dir`'s cache; gone or disabled
/// since, it is `invalid_grant` ("User disabled") and no token is minted.
async fn enabled_user(st: &State, dir: &Directory, user_id: &str) -> OAuthResult<Arc<CachedUser>> {
    dir.user(st.store.as_ref(), user_id)
        .await?
        .filter(|c| c.user.enabled)
        .ok_or_else(|| OAuthError::InvalidGrant("User disabled".into()))
}
