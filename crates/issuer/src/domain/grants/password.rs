//! `password` (resource owner credentials): only for clients with `directAccessGrantsEnabled`.
//! Creates an SSO session (the `sid`) and a refresh-token family.
//!
//! The user row the credential check read is the one minted with: its grants come from the
//! directory's cache, or are expanded from that row (roles and groups), never from a second
//! read of the user.
//!
//! The realm's conditional second factor holds here too, as Keycloak's direct grant flow: a
//! user who is asked for one sends the current code as `totp`; one who must have one and has
//! none, or who has required actions pending, gets "Account is not fully set up".

use super::Ctx;
use crate::domain::credentials;
use crate::domain::directory::Grants;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::flow::{self, Need};
use crate::domain::otp;
use crate::domain::sessions;
use crate::domain::tokens::{Mint, Refresh, TokenResponse, effective_scope, mint};

/// The grant's parameters; `username` and `password` are required, checked after the client
/// may use the grant at all.
pub struct Request<'a> {
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// A TOTP code (Keycloak's direct grant OTP parameter).
    pub totp: Option<&'a str>,
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
    let cached = ctx.dir.grants_of(ctx.st.store.as_ref(), &user).await?;
    let amr = second_factor(ctx, &user.id, &cached.grants, req.totp).await?;
    let ip = ctx.ip.as_deref();
    credentials::record_login(
        ctx.st,
        &ctx.dir.realm,
        &user.id,
        &ctx.client.client_id,
        ip,
        &amr,
    )
    .await?;
    let (session, _cookie) = sessions::create(ctx.st, &ctx.dir.realm, &user.id, &amr).await?;
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
            amr: &amr,
            grant_type: "password",
        },
        Some(Refresh::New { code_hash: None }),
    )
    .await
}

/// The factors of a direct grant after the password: `pwd`, and `otp` when the realm asks the
/// user for it (then `totp` must be the current code).
async fn second_factor(
    ctx: &Ctx<'_>,
    user_id: &str,
    grants: &Grants,
    totp: Option<&str>,
) -> OAuthResult<Vec<String>> {
    let st = ctx.st;
    let realm = ctx.dir.realm.as_str();
    let not_set_up = || OAuthError::InvalidGrant("Account is not fully set up".into());
    let invalid = || OAuthError::InvalidGrant("Invalid user credentials".into());
    let mut amr = vec!["pwd".to_string()];
    if !st.store.user_required_actions(user_id).await?.is_empty() {
        return Err(not_set_up());
    }
    let need = flow::second_factor_need(&ctx.dir.settings.accounts, grants, 0);
    if need == Need::Skip {
        return Ok(amr);
    }
    let creds = st.store.user_credentials(realm, user_id).await?;
    let has_otp = creds.iter().any(|c| c.kind == otp::TYPE);
    match (has_otp, need) {
        (true, _) => {
            let code = totp.ok_or_else(invalid)?;
            let client = ctx.client.client_id.as_str();
            match otp::verify(st, ctx.dir, user_id, code, ctx.ip.as_deref(), client).await? {
                otp::Check::Valid => amr.push("otp".into()),
                _ => return Err(invalid()),
            }
        }
        (false, Need::Required) => return Err(not_set_up()),
        (false, _) => {}
    }
    Ok(amr)
}
