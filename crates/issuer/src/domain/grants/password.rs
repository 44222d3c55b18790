//! `password` (resource owner credentials): only for clients with `directAccessGrantsEnabled`.
//! Creates an SSO session (the `sid`) and a refresh-token family.
//!
//! The user row the credential check read is the one minted with: its grants come from the
//! directory's cache, or are expanded from that row (roles and groups), never from a second
//! read of the user.

use super::Ctx;
use crate::domain::credentials;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::sessions;
use crate::domain::tokens::{Mint, Refresh, TokenResponse, effective_scope, mint};

/// The grant's parameters; `username` and `password` are required, checked after the client
/// may use the grant at all.
pub struct Request<'a> {
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub scope: Option<&'a str>,
}

pub async fn grant(ctx: &Ctx<'_>, req: &Request<'_>) -> OAuthResult<TokenResponse> {
    if !ctx.client.config.direct_access_grants {
        return Err(OAuthError::UnauthorizedClient(
            "Client not allowed for direct access grants".into(),
        ));
    }
    let username = req
        .username
        .ok_or_else(|| OAuthError::missing_parameter("username"))?;
    let password = req
        .password
        .ok_or_else(|| OAuthError::missing_parameter("password"))?;
    let user = credentials::check(
        ctx.st,
        ctx.dir,
        username,
        password,
        ctx.ip.as_deref(),
        &ctx.client.client_id,
    )
    .await?
    .map_err(|f| match f {
        credentials::Failure::Disabled => OAuthError::InvalidGrant("Account disabled".into()),
        _ => OAuthError::InvalidGrant("Invalid user credentials".into()),
    })?;
    let (session, _cookie) = sessions::create(ctx.st, &ctx.dir.realm, &user.id).await?;
    let cached = ctx.dir.grants_of(ctx.st.store.as_ref(), &user).await?;
    mint(
        ctx.st,
        Mint {
            dir: ctx.dir,
            client: ctx.client,
            user: &user,
            grants: &cached.grants,
            issuer: ctx.issuer.clone(),
            session_id: Some(session.id),
            scope: effective_scope(req.scope),
            nonce: None,
            auth_time: Some(ctx.st.now()),
            grant_type: "password",
        },
        Some(Refresh::New { code_hash: None }),
    )
    .await
}
