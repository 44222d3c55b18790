//! Authorization codes: issued at the authorization endpoint for a live session, stored by hash
//! with everything the exchange checks (client, redirect URI, scope, nonce, PKCE challenge);
//! `grants::authorization_code` consumes them.

use super::directory::Directory;
use super::state::State;
use crate::secrets;
use portcullis_store::{CodeRow, SessionRow};

/// What a validated authorization request binds its code to.
pub struct CodeRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    /// The PKCE challenge and its method.
    pub challenge: Option<(&'a str, &'a str)>,
}

/// Stores a new single-use code for `session`, valid for the realm's `accessCodeLifespan`;
/// returns the code (only its hash is stored).
pub async fn issue(
    st: &State,
    dir: &Directory,
    req: &CodeRequest<'_>,
    session: &SessionRow,
) -> anyhow::Result<String> {
    let code = secrets::random_token()?;
    let now = st.now();
    st.store
        .put_code(&CodeRow {
            code_hash: secrets::token_hash(&code),
            realm: dir.realm.clone(),
            client_id: req.client_id.to_string(),
            user_id: session.user_id.clone(),
            session_id: session.id.clone(),
            redirect_uri: req.redirect_uri.to_string(),
            scope: req.scope.to_string(),
            nonce: req.nonce.map(str::to_string),
            code_challenge: req.challenge.map(|c| c.0.to_string()),
            code_challenge_method: req.challenge.map(|c| c.1.to_string()),
            auth_time: session.created_at,
            expires_at: now + dir.settings.access_code_lifespan,
        })
        .await?;
    Ok(code)
}
