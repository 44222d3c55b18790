//! `authorization_code`: the code is single-use, short-lived, bound to its client, redirect URI
//! and PKCE challenge. A second use revokes what the first issued (RFC 6749 §4.1.2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::sessions;
use crate::domain::tokens::{Mint, Refresh, TokenResponse, mint};
use crate::secrets;
use portcullis_store::{CodeRow, CodeUse};

/// The grant's parameters.
pub struct Request<'a> {
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

pub async fn grant(ctx: &Ctx<'_>, req: &Request<'_>) -> OAuthResult<TokenResponse> {
    let st = ctx.st;
    let (code, redirect_uri) = (req.code, req.redirect_uri);
    let code_hash = secrets::token_hash(code);
    let invalid = |why: &str| OAuthError::InvalidGrant(why.to_string());
    let row = match st.store.consume_code(&code_hash, st.now()).await? {
        CodeUse::Fresh(row) => row,
        CodeUse::Reused(row) => {
            st.store.revoke_families_from_code(&code_hash).await?;
            tracing::warn!(realm = %row.realm, client.id = %row.client_id, "authorization code reuse: issued tokens revoked");
            return Err(invalid("Code not valid"));
        }
        CodeUse::Unknown => return Err(invalid("Code not valid")),
    };
    if row.realm != ctx.dir.realm || row.client_id != ctx.client.client_id {
        return Err(invalid("Code not valid"));
    }
    if st.now() > row.expires_at {
        return Err(invalid("Code not valid"));
    }
    if redirect_uri != Some(row.redirect_uri.as_str()) {
        return Err(invalid("Incorrect redirect_uri"));
    }
    check_pkce(&row, req.code_verifier, ctx.client.config.public_client)?;
    let session = sessions::live_by_id(st, ctx.dir, &row.session_id)
        .await?
        .ok_or_else(|| invalid("Session not active"))?;
    // Another replica's or the CLI's change to the user counts at once, as for refreshes.
    let dir = st
        .fresh_dir(&ctx.dir.realm)
        .await?
        .ok_or_else(|| OAuthError::NotFound("Realm does not exist".into()))?;
    let cached = super::enabled_user(st, &dir, &row.user_id).await?;
    mint(
        st,
        Mint {
            dir: ctx.dir,
            client: ctx.client,
            user: &cached.user,
            grants: &cached.grants,
            issuer: ctx.issuer.clone(),
            session_id: Some(session.id),
            scope: row.scope.clone(),
            nonce: row.nonce.clone(),
            auth_time: Some(row.auth_time),
            amr: &session.amr,
            grant_type: "authorization_code",
        },
        Some(Refresh::New {
            code_hash: Some(code_hash),
        }),
    )
    .await
}

/// RFC 7636 §4.6. Public clients always need S256 (enforced at the authorization endpoint
/// too); a verifier without a challenge is refused, as Keycloak does.
fn check_pkce(row: &CodeRow, verifier: Option<&str>, public: bool) -> OAuthResult<()> {
    let bad = |why: &str| Err(OAuthError::InvalidGrant(why.to_string()));
    match (&row.code_challenge, verifier) {
        (None, None) if !public => Ok(()),
        (None, None) => bad("PKCE code verifier not specified"),
        (None, Some(_)) => {
            bad("PKCE code verifier specified but challenge not present in authorization")
        }
        (Some(_), None) => bad("PKCE code verifier not specified"),
        (Some(challenge), Some(v)) => {
            let valid_shape = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !valid_shape {
                return bad("Invalid code verifier");
            }
            let computed = match row.code_challenge_method.as_deref() {
                Some("plain") => v.to_string(),
                _ => URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())),
            };
            if secrets::ct_eq(&computed, challenge) {
                Ok(())
            } else {
                bad("PKCE verification failed")
            }
        }
    }
}
