//! `refresh_token`: rotates the family's token. Presenting a token that is no longer the
//! family's current one means it leaked or was replayed: the whole family is revoked.
//!
//! The token is checked first in memory (`refresh_tokens::verify`: an HMAC, no RSA, no store),
//! so forged, tampered, old-format and other realms' tokens never reach the store; the next
//! token is made from the presented one's claims before the rotation commits its hash.
//!
//! The common case is one store statement, shared with the rotations asked at the same time
//! (`rotations`): the rotation checks every condition itself (`Store::rotate_live_families`)
//! and returns the realm's revision; the user and grants come
//! from the directory's cache, reloaded first when the revision is newer than the directory.
//! Only a refused rotation reads the family back to tell why.

use super::Ctx;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::refresh_tokens;
use crate::domain::sessions;
use crate::domain::tokens::{Mint, Refresh, TokenResponse, mint};
use crate::secrets;
use portcullis_store::{Rotated, Rotation};

fn invalid(why: &str) -> OAuthError {
    OAuthError::InvalidGrant(why.to_string())
}

/// The grant for the `presented` refresh token.
pub async fn grant(ctx: &Ctx<'_>, presented: &str) -> OAuthResult<TokenResponse> {
    let st = ctx.st;
    let keys = st
        .keys
        .realm(&ctx.dir.realm)
        .ok_or_else(|| anyhow::anyhow!("realm {} has no keys loaded", ctx.dir.realm))?;
    let old = refresh_tokens::verify(&keys.refresh, &ctx.dir.realm, presented)
        .ok_or_else(|| invalid("Invalid refresh token"))?;
    let family_id = old
        .family()
        .ok_or_else(|| invalid("Invalid refresh token"))?;
    if old.azp != ctx.client.client_id {
        return Err(invalid(
            "Invalid refresh token. Token client and authorized client don't match",
        ));
    }
    // No expiry check here: `exp` is the family's idle window, which the rotation checks, and
    // an expired token that was rotated away must still reach `refused` as a replay.
    let now = st.now();
    let s = &ctx.dir.settings;
    let next_claims = old.renewed(&ctx.issuer, now, s.sso_session_idle_timeout)?;
    let next = refresh_tokens::sign(keys.refresh_signer()?, &next_claims)?;
    let old_hash = secrets::token_hash(presented);
    let rotation = Rotation {
        family_id,
        realm: &ctx.dir.realm,
        client_id: &ctx.client.client_id,
        old_hash: &old_hash,
        new_hash: &secrets::token_hash(&next),
        now,
        active_since: now.saturating_sub(s.sso_session_idle_timeout),
        created_since: now.saturating_sub(s.sso_session_max_lifespan),
    };
    let Some(Rotated {
        family,
        realm_revision,
    }) = st.rotations.rotate(&rotation).await?
    else {
        return Err(refused(ctx, family_id, &old_hash, now).await?);
    };
    // A change since our directory was loaded (a sync, another replica's admin write) shows
    // in this very token.
    let dir = st
        .dir_at(&ctx.dir.realm, realm_revision)
        .await?
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let client = dir
        .clients
        .get(&ctx.client.client_id)
        .filter(|c| c.config.enabled)
        .ok_or_else(|| {
            OAuthError::InvalidClient("Invalid client or Invalid client credentials".into())
        })?;
    let cached = super::enabled_user(st, &dir, &family.user_id).await?;
    mint(
        st,
        Mint {
            dir: &dir,
            client,
            user: &cached.user,
            grants: &cached.grants,
            issuer: ctx.issuer.clone(),
            session_id: family.session_id,
            scope: family.scope,
            nonce: None,
            auth_time: None,
            amr: &old.amr,
            grant_type: "refresh_token",
        },
        Some(Refresh::Rotated { token: next }),
    )
    .await
}

/// Why the rotation was refused, checked in Keycloak's order; a live family whose current token
/// is not the presented one is a replay, and is revoked.
async fn refused(
    ctx: &Ctx<'_>,
    family_id: &str,
    old_hash: &str,
    now: i64,
) -> OAuthResult<OAuthError> {
    let st = ctx.st;
    let Some(family) = st
        .store
        .get_family(family_id)
        .await?
        .filter(|f| f.realm == ctx.dir.realm)
    else {
        return Ok(invalid("Invalid refresh token"));
    };
    if family.client_id != ctx.client.client_id {
        return Ok(invalid(
            "Invalid refresh token. Token client and authorized client don't match",
        ));
    }
    let s = &ctx.dir.settings;
    if family.revoked
        || now - family.updated_at > s.sso_session_idle_timeout
        || now - family.created_at > s.sso_session_max_lifespan
    {
        return Ok(invalid("Token is not active"));
    }
    if let Some(sid) = &family.session_id {
        let live = st
            .store
            .session_by_id(sid)
            .await?
            .is_some_and(|sess| sessions::alive(ctx.dir, &sess, now));
        if !live {
            return Ok(invalid("Session not active"));
        }
    }
    if family.current_hash != old_hash {
        // Not the current token of a live family: a replay of a rotated token.
        st.store.revoke_family(&family.id).await?;
        tracing::warn!(realm = %ctx.dir.realm, client.id = %ctx.client.client_id, "refresh token reuse: family revoked");
    }
    Ok(invalid("Token is not active"))
}
