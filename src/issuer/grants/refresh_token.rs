//! `refresh_token`: rotates the family's token. Presenting a token that is no longer the
//! family's current one means it leaked or was replayed: the whole family is revoked.

use crate::issuer::error::{OAuthError, OAuthResult};
use crate::issuer::token::Ctx;
use crate::issuer::tokens::{Mint, Refresh, TokenResponse, mint, new_refresh_token, user_grants};
use crate::issuer::{secrets, sessions};

pub async fn grant(ctx: &Ctx<'_>) -> OAuthResult<TokenResponse> {
    let presented = ctx.params.require("refresh_token")?;
    let invalid = |why: &str| OAuthError::InvalidGrant(why.to_string());
    let family_id = presented
        .split_once('.')
        .map(|(f, _)| f)
        .ok_or_else(|| invalid("Invalid refresh token"))?;
    let st = ctx.st;
    let family = st
        .store
        .get_family(family_id)
        .await?
        .filter(|f| f.realm == ctx.dir.realm)
        .ok_or_else(|| invalid("Invalid refresh token"))?;
    if family.client_id != ctx.client.client_id {
        return Err(invalid(
            "Invalid refresh token. Token client and authorized client don't match",
        ));
    }
    if family.revoked {
        return Err(invalid("Token is not active"));
    }
    let now = st.now();
    let s = &ctx.dir.settings;
    if now - family.updated_at > s.sso_session_idle_timeout
        || now - family.created_at > s.sso_session_max_lifespan
    {
        return Err(invalid("Token is not active"));
    }
    if let Some(sid) = &family.session_id
        && sessions::live_by_id(st, ctx.dir, sid).await?.is_none()
    {
        return Err(invalid("Session not active"));
    }
    let next = new_refresh_token(&family.id)?;
    let old_hash = secrets::token_hash(presented);
    if !st
        .store
        .rotate_family(&family.id, &old_hash, &secrets::token_hash(&next), now)
        .await?
    {
        // Not the current token of a live family: a replay of a rotated token.
        st.store.revoke_family(&family.id).await?;
        tracing::warn!(realm = %ctx.dir.realm, client.id = %ctx.client.client_id, "refresh token reuse: family revoked");
        return Err(invalid("Token is not active"));
    }
    let user = st
        .store
        .get_user(&ctx.dir.realm, &family.user_id)
        .await?
        .filter(|u| u.enabled)
        .ok_or_else(|| invalid("User disabled"))?;
    let grants = user_grants(st, ctx.dir, &user).await?;
    mint(
        st,
        Mint {
            dir: ctx.dir,
            client: ctx.client,
            user: &user,
            grants: &grants,
            issuer: ctx.issuer(),
            session_id: family.session_id.clone(),
            scope: family.scope.clone(),
            nonce: None,
            auth_time: None,
            grant_type: "refresh_token",
        },
        Some(Refresh::Rotated { token: next }),
    )
    .await
}
