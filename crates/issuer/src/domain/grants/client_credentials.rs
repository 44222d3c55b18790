//! `client_credentials`: a confidential client with `serviceAccountsEnabled` acts as its
//! service-account user, with that user's roles. No refresh token (Keycloak's default).

use super::Ctx;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::tokens::{Mint, TokenResponse, effective_scope, mint};

/// The grant for `ctx.client`, with the `scope` asked for.
pub async fn grant(ctx: &Ctx<'_>, scope: Option<&str>) -> OAuthResult<TokenResponse> {
    let c = &ctx.client.config;
    if c.public_client || !c.service_accounts {
        return Err(OAuthError::UnauthorizedClient(
            "Client not enabled to retrieve service account".into(),
        ));
    }
    // Loaded with the realm's directory (and reloaded when users or clients change).
    let sa = ctx
        .dir
        .service_accounts
        .get(&ctx.client.client_id)
        .filter(|sa| sa.0.enabled)
        .ok_or_else(|| OAuthError::UnauthorizedClient("service account user is missing".into()))?;
    let (user, grants) = (&sa.0, &sa.1);
    mint(
        ctx.st,
        Mint {
            dir: ctx.dir,
            client: ctx.client,
            user,
            grants,
            issuer: ctx.issuer.clone(),
            session_id: None,
            scope: effective_scope(scope),
            nonce: None,
            auth_time: None,
            amr: &[],
            grant_type: "client_credentials",
        },
        None,
    )
    .await
}
