//! The admin API's mails: `execute-actions-email` (a link for Keycloak's required actions
//! `VERIFY_EMAIL` and `UPDATE_PASSWORD`) and `send-verify-email`. The mail is queued; a realm
//! without a usable SMTP server is an error here, as in Keycloak ("Failed to send …").

use super::super::accounts::{self, ACTION_UPDATE_PASSWORD, ACTION_VERIFY_EMAIL};
use super::super::directory::Directory;
use super::super::state::State;
use super::{Outcome, Refused};
use portcullis_store::UserRow;

/// The user, if they can be mailed: they exist, are enabled and have an address.
async fn mailable(st: &State, realm: &str, id: &str) -> Outcome<UserRow> {
    let Some(u) = st.store.get_user(realm, id).await? else {
        return Ok(Err(Refused::not_found("User not found")));
    };
    if u.email.as_deref().is_none_or(str::is_empty) {
        return Ok(Err(Refused::bad("User email missing")));
    }
    if !u.enabled {
        return Ok(Err(Refused::bad("User is disabled")));
    }
    Ok(Ok(u))
}

fn lifespan_ok(lifespan: Option<i64>) -> Result<(), Refused> {
    match lifespan {
        Some(l) if l <= 0 => Err(Refused::bad("Invalid lifespan")),
        _ => Ok(()),
    }
}

/// Mails the user a link performing `actions`, valid `lifespan` seconds (the realm's admin
/// lifespan by default). `realm_base`: the realm's URL the link starts with.
pub async fn execute_actions_email(
    st: &State,
    dir: &Directory,
    id: &str,
    actions: &[String],
    lifespan: Option<i64>,
    realm_base: &str,
) -> Outcome<()> {
    or_refuse!(lifespan_ok(lifespan));
    let known = [ACTION_VERIFY_EMAIL, ACTION_UPDATE_PASSWORD];
    if actions.is_empty() || actions.iter().any(|a| !known.contains(&a.as_str())) {
        return Ok(Err(Refused::bad("Provided invalid required actions")));
    }
    let mut unique: Vec<String> = Vec::new();
    for a in actions {
        if !unique.contains(a) {
            unique.push(a.clone());
        }
    }
    let u = or_refuse!(mailable(st, &dir.realm, id).await?);
    if !accounts::send_execute_actions(st, dir, &u, &unique, realm_base, lifespan)? {
        anyhow::bail!("Failed to send execute actions email");
    }
    Ok(Ok(()))
}

/// Mails the user a link verifying their address.
pub async fn send_verify_email(
    st: &State,
    dir: &Directory,
    id: &str,
    lifespan: Option<i64>,
    realm_base: &str,
) -> Outcome<()> {
    or_refuse!(lifespan_ok(lifespan));
    let u = or_refuse!(mailable(st, &dir.realm, id).await?);
    let lifespan = lifespan.or(Some(dir.settings.action_token_generated_by_admin_lifespan));
    if !accounts::send_verify_email(st, dir, &u, realm_base, lifespan)? {
        anyhow::bail!("Failed to send verify email");
    }
    Ok(Ok(()))
}
