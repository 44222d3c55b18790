//! The account flows that go by mail: verifying an address, "forgot password", and an admin's
//! "execute actions" mail, and what their links do when opened. A mail is queued (never
//! awaited); the callers answer the same whatever became of it. Links are action tokens
//! (`action_tokens`); one that sets a password is checked when opened and used when the form
//! is sent, so it works once.

use portcullis_store::UserRow;

use super::action_tokens::{
    self, ActionClaims, EXECUTE_ACTIONS, RESET_CREDENTIALS, TYP, VERIFY_EMAIL,
};
use super::credentials::{self, SetPasswordError};
use super::directory::Directory;
use super::mail;
use super::mail::config::SmtpConfig;
use super::mail::templates::{self, Kind, Mail};
use super::state::State;
use crate::secrets;
use portcullis_core::metrics::metrics;

/// Keycloak's required actions a mailed link can perform.
pub use super::names::{
    UPDATE_PASSWORD as ACTION_UPDATE_PASSWORD, VERIFY_EMAIL as ACTION_VERIFY_EMAIL,
};

/// What the realm is called on pages and in mails: `displayName`, else its name.
pub fn display_name(dir: &Directory) -> &str {
    dir.settings
        .accounts
        .display_name
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(&dir.realm)
}

/// The link that carries `token`, under the realm's base URL (`…/auth/realms/{realm}`).
pub fn link(realm_base: &str, token: &str) -> String {
    format!("{realm_base}/login-actions/action-token?key={token}")
}

/// A signed token for `user` to do `act` (and `rqac`), valid `lifespan` seconds from now.
fn mint(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    act: &str,
    rqac: &[String],
    lifespan: i64,
) -> anyhow::Result<String> {
    let keys = st
        .keys
        .realm(&dir.realm)
        .ok_or_else(|| anyhow::anyhow!("realm {} has no keys", dir.realm))?;
    let key = keys
        .action
        .first()
        .ok_or_else(|| anyhow::anyhow!("no action-token key"))?;
    let now = st.now();
    let claims = ActionClaims {
        typ: TYP.into(),
        jti: secrets::uuid()?,
        realm: dir.realm.clone(),
        sub: user.id.clone(),
        act: act.into(),
        rqac: rqac.to_vec(),
        iat: now,
        exp: now.saturating_add(lifespan),
        eml: user.email.clone(),
        pwd: Some(action_tokens::password_digest(
            user.password_hash.as_ref().map(|h| h.expose().as_str()),
        )),
    };
    action_tokens::sign(key, &claims)
}

fn failed(dir: &Directory, kind: Kind) {
    metrics()
        .issuer_emails_sent
        .with_label_values(&[dir.realm.as_str(), kind.label(), "error"])
        .inc();
}

/// Queues `mail` to `to` with the realm's SMTP settings; `false` (logged and counted) when
/// the realm has none that work or `to` is not an address.
fn queue(st: &State, dir: &Directory, to: Option<&str>, mail: Mail) -> bool {
    let kind = mail.kind;
    let smtp = SmtpConfig::from_settings(&dir.settings.smtp_server, &|n| std::env::var(n).ok());
    let smtp = match smtp {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::warn!(realm = %dir.realm, kind = kind.label(), "no smtpServer: mail not sent");
            failed(dir, kind);
            return false;
        }
        Err(why) => {
            tracing::warn!(realm = %dir.realm, kind = kind.label(), %why, "smtpServer unusable: mail not sent");
            failed(dir, kind);
            return false;
        }
    };
    let Some(to) = to.and_then(mail::address) else {
        tracing::warn!(realm = %dir.realm, kind = kind.label(), "user has no usable address: mail not sent");
        failed(dir, kind);
        return false;
    };
    st.mailer.send(&dir.realm, &smtp, to, mail)
}

/// Mails `user` a link that verifies their address. `lifespan`: the admin's, else the
/// realm's lifespan for links users ask for. `false` when nothing was queued.
pub fn send_verify_email(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    realm_base: &str,
    lifespan: Option<i64>,
) -> anyhow::Result<bool> {
    let lifespan = lifespan.unwrap_or(dir.settings.action_token_generated_by_user_lifespan);
    let token = mint(st, dir, user, VERIFY_EMAIL, &[], lifespan)?;
    let mail = templates::verify_email(display_name(dir), &link(realm_base, &token), lifespan);
    Ok(queue(st, dir, user.email.as_deref(), mail))
}

/// Mails `user` a link for Keycloak's `actions` (`VERIFY_EMAIL`, `UPDATE_PASSWORD`), valid
/// `lifespan` seconds (the realm's admin lifespan when `None`).
pub fn send_execute_actions(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    actions: &[String],
    realm_base: &str,
    lifespan: Option<i64>,
) -> anyhow::Result<bool> {
    let lifespan = lifespan.unwrap_or(dir.settings.action_token_generated_by_admin_lifespan);
    let token = mint(st, dir, user, EXECUTE_ACTIONS, actions, lifespan)?;
    let words: Vec<&str> = actions
        .iter()
        .map(|a| match a.as_str() {
            ACTION_VERIFY_EMAIL => "Verify Email",
            _ => "Update Password",
        })
        .collect();
    let mail = templates::execute_actions(
        display_name(dir),
        &link(realm_base, &token),
        lifespan,
        &words,
    );
    Ok(queue(st, dir, user.email.as_deref(), mail))
}

/// "Forgot password?": mails a reset link to the enabled user named by `login` (username, or
/// an address that names exactly one user) when there is one with an address. The caller
/// answers the same either way; both ways read the same rows and sign a token.
pub async fn forgot_password(
    st: &State,
    dir: &Directory,
    login: &str,
    realm_base: &str,
) -> anyhow::Result<()> {
    let realm = dir.realm.as_str();
    let login = login.trim();
    let by_name = st.store.user_by_username(realm, login).await?;
    // Both lookups always run for an address-shaped login, whoever it names.
    let by_mail = if login.contains('@') {
        st.store.users_by_email(realm, login).await?
    } else {
        Vec::new()
    };
    let user = by_name
        .or(match by_mail.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        })
        .filter(|u| u.enabled && u.service_account_client.is_none() && u.email.is_some());
    let lifespan = dir.settings.action_token_generated_by_user_lifespan;
    let stand_in = UserRow {
        id: String::new(),
        realm: realm.to_string(),
        username: String::new(),
        email: None,
        first_name: None,
        last_name: None,
        email_verified: false,
        enabled: false,
        created_at: 0,
        password_hash: None,
        service_account_client: None,
    };
    let token = mint(
        st,
        dir,
        user.as_ref().unwrap_or(&stand_in),
        RESET_CREDENTIALS,
        &[],
        lifespan,
    )?;
    let mail = templates::reset_password(display_name(dir), &link(realm_base, &token), lifespan);
    match user {
        Some(u) => {
            queue(st, dir, u.email.as_deref(), mail);
        }
        None => tracing::debug!(realm, "reset asked for no such user: no mail"),
    }
    Ok(())
}

/// Why a link does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not ours, not this realm's, or its user or their address or password changed.
    Invalid,
    Expired,
    /// Already used.
    Used,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Invalid => {
                "This link is invalid or no longer valid. Please ask for a new one."
            }
            Refusal::Expired => "This link has expired. Please ask for a new one.",
            Refusal::Used => "This link has already been used. Please ask for a new one.",
        }
    }
}

/// What opening a link did or asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The address is verified now.
    EmailVerified,
    /// The link sets a password: show the form (the link is not used yet).
    ChoosePassword,
    Refused(Refusal),
}

/// Whether the link asks for a new password.
fn sets_password(c: &ActionClaims) -> bool {
    c.act == RESET_CREDENTIALS
        || (c.act == EXECUTE_ACTIONS && c.rqac.iter().any(|a| a == ACTION_UPDATE_PASSWORD))
}

fn verifies_email(c: &ActionClaims) -> bool {
    c.act == VERIFY_EMAIL
        || (c.act == EXECUTE_ACTIONS && c.rqac.iter().any(|a| a == ACTION_VERIFY_EMAIL))
}

/// The link's claims and its user, if it is valid now (not checked: whether it was used).
async fn check(
    st: &State,
    dir: &Directory,
    token: &str,
) -> anyhow::Result<Result<(ActionClaims, UserRow), Refusal>> {
    let Some(keys) = st.keys.realm(&dir.realm) else {
        return Ok(Err(Refusal::Invalid));
    };
    let Some(c) = action_tokens::verify(&keys.action, &dir.realm, token) else {
        return Ok(Err(Refusal::Invalid));
    };
    if c.exp <= st.now() {
        return Ok(Err(Refusal::Expired));
    }
    let Some(user) = st.store.get_user(&dir.realm, &c.sub).await? else {
        return Ok(Err(Refusal::Invalid));
    };
    let same_mail = match (&c.eml, &user.email) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    };
    let digest =
        action_tokens::password_digest(user.password_hash.as_ref().map(|h| h.expose().as_str()));
    // A password link dies with the password it was issued against.
    let same_password =
        !sets_password(&c) || c.pwd.as_deref().is_some_and(|p| secrets::ct_eq(p, &digest));
    if !user.enabled || !same_mail || !same_password {
        return Ok(Err(Refusal::Invalid));
    }
    Ok(Ok((c, user)))
}

/// Marks the user's address verified.
async fn mark_verified(st: &State, user: &UserRow) -> anyhow::Result<()> {
    st.store
        .put_user(&UserRow {
            email_verified: true,
            password_hash: None,
            ..user.clone()
        })
        .await?;
    st.realm_changed(&user.realm).await
}

/// Opens a link: a verification link verifies the address (and is used); a link that sets a
/// password asks for it.
pub async fn open(st: &State, dir: &Directory, token: &str) -> anyhow::Result<Opened> {
    let (c, user) = match check(st, dir, token).await? {
        Ok(v) => v,
        Err(r) => return Ok(Opened::Refused(r)),
    };
    if sets_password(&c) {
        return Ok(Opened::ChoosePassword);
    }
    if !verifies_email(&c) {
        return Ok(Opened::Refused(Refusal::Invalid));
    }
    if !st.store.use_action_token(&dir.realm, &c.jti, c.exp).await? {
        return Ok(Opened::Refused(Refusal::Used));
    }
    mark_verified(st, &user).await?;
    tracing::info!(realm = %dir.realm, user = %user.id, "email verified");
    Ok(Opened::EmailVerified)
}

/// Why a new password was not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSet {
    Link(Refusal),
    /// The form's fault: say it and show the form again.
    Form(String),
}

/// Sets the password through a link (the form's two fields) with the realm's password policy
/// (`credentials::set_password`, which every path that sets a password calls), uses the link,
/// and ends the user's sessions and refresh tokens. Verifies the address too when the link
/// asks for it. A refused password leaves the link usable; a set one makes it invalid (its
/// password digest no longer matches) besides the store's mark.
pub async fn set_password(
    st: &State,
    dir: &Directory,
    token: &str,
    password: &str,
    confirm: &str,
) -> anyhow::Result<Result<(), NotSet>> {
    let (c, user) = match check(st, dir, token).await? {
        Ok(v) if sets_password(&v.0) => v,
        Ok(_) => return Ok(Err(NotSet::Link(Refusal::Invalid))),
        Err(r) => return Ok(Err(NotSet::Link(r))),
    };
    if let Err(why) = acceptable(password, confirm) {
        return Ok(Err(NotSet::Form(why)));
    }
    match credentials::set_password(st, dir, &user, password).await {
        Ok(()) => {}
        Err(SetPasswordError::Policy(why)) => return Ok(Err(NotSet::Form(why))),
        Err(SetPasswordError::Internal(e)) => return Err(e),
    }
    if !st.store.use_action_token(&dir.realm, &c.jti, c.exp).await? {
        // Two submissions of one form at once: the first one's password stands.
        tracing::info!(realm = %dir.realm, "a password link was used twice at once");
    }
    st.store.end_user_sessions(&dir.realm, &user.id).await?;
    if verifies_email(&c) && !user.email_verified {
        mark_verified(st, &user).await?;
    }
    tracing::info!(realm = %dir.realm, user = %user.id, "password set through a mailed link");
    Ok(Ok(()))
}

/// A new password as the forms give it: both fields the same, not empty.
pub fn acceptable(password: &str, confirm: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("Please specify password.".into());
    }
    if !secrets::ct_eq(password, confirm) {
        return Err("Passwords don't match.".into());
    }
    Ok(())
}
