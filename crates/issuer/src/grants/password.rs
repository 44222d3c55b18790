//! `password` (resource owner credentials): only for clients with `directAccessGrantsEnabled`.
//! Creates an SSO session (the `sid`) and a refresh-token family.

use crate::credentials;
use crate::error::{OAuthError, OAuthResult};
use crate::sessions;
use crate::token::Ctx;
use crate::tokens::{Mint, Refresh, TokenResponse, effective_scope, mint};

pub async fn grant(ctx: &Ctx<'_>) -> OAuthResult<TokenResponse> {
    if !ctx.client.config.direct_access_grants {
        return Err(OAuthError::UnauthorizedClient(
            "Client not allowed for direct access grants".into(),
        ));
    }
    let username = ctx.params.require("username")?;
    let password = ctx.params.require("password")?;
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
    // Grants from the directory's cache; the user row is the one the login just read.
    let cached = ctx
        .dir
        .user(ctx.st.store.as_ref(), &user.id)
        .await?
        .ok_or_else(|| OAuthError::InvalidGrant("Invalid user credentials".into()))?;
    mint(
        ctx.st,
        Mint {
            dir: ctx.dir,
            client: ctx.client,
            user: &user,
            grants: &cached.grants,
            issuer: ctx.issuer(),
            session_id: Some(session.id),
            scope: effective_scope(ctx.params.get("scope")),
            nonce: None,
            auth_time: Some(ctx.st.now()),
            grant_type: "password",
        },
        Some(Refresh::New { code_hash: None }),
    )
    .await
}
