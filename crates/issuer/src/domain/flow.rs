//! The sign-in flow between the password and the code (Keycloak's authentication session):
//! which steps a sign-in still owes, and the state that carries it from page to page.
//!
//! # The flow
//! 1. `P/protocol/openid-connect/auth` checks the password, then `http::login_actions::begin`
//!    makes an [`AuthSession`] (the validated request's parameters, the user, the factors done,
//!    how much a second factor is needed, a CSRF token, an expiry of the realm's
//!    `accessCodeLifespanLogin`) and hands it to `advance`.
//! 2. `advance` asks [`next_step`] what is owed, in this order, and redirects there:
//!    - the **second factor** ([`Step::SecondFactor`]) when [`Need`] asks for one and the user
//!      has one (`P/login-actions/authenticate?execution=otp`); when one is required and the
//!      user has none, enrollment (`CONFIGURE_TOTP`) takes its place and counts as the factor.
//!      The second factor comes before the required actions, as in Keycloak: a password alone
//!      must not be enough to change the password or the second factor;
//!    - the user's **required actions** ([`Step::RequiredAction`], `requiredActions` in realm
//!      JSON and the admin API) in Keycloak's priority order: `CONFIGURE_TOTP`,
//!      `UPDATE_PASSWORD`, `VERIFY_EMAIL` (`P/login-actions/required-action?execution=NAME`);
//!    - then [`Step::Done`]: the SSO session is created (or, for a step-up, raised in place)
//!      with the factors as `amr`, the `LOGIN` event recorded, and the code issued to the client.
//! 3. Each step page is a GET (render) and a POST (do) of its own URL. A POST must carry the
//!    session's CSRF token and name the step [`next_step`] says is current; anything else is
//!    refused with the state untouched, so no step can be skipped by posting to a later URL.
//!    A step that is done calls `advance` again.
//!
//! The session lives in a cookie (`PORTCULLIS_AUTH_SESSION`, HttpOnly, realm path) sealed with
//! AES-256-GCM under a key derived from the realm's signing key (`seal`): every replica reads
//! it, nothing is stored, and it can't be read or changed in the browser. Replaying an older
//! cookie only rewinds to a step that is owed again (a used TOTP step stays used).
//!
//! # Adding a step
//! - A second factor: a variant of [`SecondFactor`] (passkeys are one: `Webauthn`) (its `execution`, `amr` and credential
//!   type) and an arm in `http::login_actions::authenticate_get` / `authenticate_post` calling
//!   the step's page module; the step ends with `auth.add_factor(f.amr())` and `advance`.
//!   Step-specific state between the page and its form goes in [`AuthSession::ext`].
//! - A required action: a variant of [`RequiredAction`] and arms in
//!   `http::login_actions::required_action_get` / `_post`; it ends with [`action_done`].
//! - `VERIFY_EMAIL` (listed, or owed by everyone with an unverified address when the realm has
//!   `verifyEmail`) calls [`hooks::send_verify_email`] when its page is first shown and on
//!   "resend"; it is done once the user's `emailVerified` is true (the link's handler sets it),
//!   checked each time the page is loaded or its "continue" button pressed.

pub mod hooks;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::directory::{Directory, Grants};
use super::state::State;
use crate::secrets;
use portcullis_store::{AccountSettings, UserRow};

pub use super::names::{CONFIGURE_TOTP, UPDATE_PASSWORD, VERIFY_EMAIL};

/// What `seal` binds the cookie to.
const SEAL_AAD: &str = "auth session";

/// A required action portcullis runs (others in a user's list are kept but not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequiredAction {
    ConfigureTotp,
    UpdatePassword,
    VerifyEmail,
}

impl RequiredAction {
    /// Keycloak's priority order.
    pub const ALL: [RequiredAction; 3] = [
        RequiredAction::ConfigureTotp,
        RequiredAction::UpdatePassword,
        RequiredAction::VerifyEmail,
    ];

    /// Keycloak's name (the `execution` of its page).
    pub fn name(self) -> &'static str {
        match self {
            RequiredAction::ConfigureTotp => CONFIGURE_TOTP,
            RequiredAction::UpdatePassword => UPDATE_PASSWORD,
            RequiredAction::VerifyEmail => VERIFY_EMAIL,
        }
    }
}

/// A kind of second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecondFactor {
    Otp,
    /// A passkey (`domain::passkeys`), kept in its own table.
    Webauthn,
}

impl SecondFactor {
    /// In the order offered when a user has several.
    pub const ALL: [SecondFactor; 2] = [SecondFactor::Otp, SecondFactor::Webauthn];

    /// The `execution` of its page.
    pub fn execution(self) -> &'static str {
        match self {
            SecondFactor::Otp => "otp",
            SecondFactor::Webauthn => "webauthn",
        }
    }

    /// Its RFC 8176 `amr` value.
    pub fn amr(self) -> &'static str {
        match self {
            SecondFactor::Otp => "otp",
            SecondFactor::Webauthn => super::passkeys::SECOND_FACTOR_AMR,
        }
    }

    /// The credential type that means the user has it.
    pub fn credential_type(self) -> &'static str {
        match self {
            SecondFactor::Otp => super::totp::TYPE,
            SecondFactor::Webauthn => super::passkeys::CREDENTIAL_TYPE,
        }
    }
}

/// What a sign-in still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SecondFactor(SecondFactor),
    RequiredAction(RequiredAction),
    Done,
}

impl Step {
    /// The step's page under `P/login-actions/`: (endpoint, `execution`).
    pub fn page(self) -> Option<(&'static str, &'static str)> {
        match self {
            Step::SecondFactor(f) => Some(("authenticate", f.execution())),
            Step::RequiredAction(a) => Some(("required-action", a.name())),
            Step::Done => None,
        }
    }
}

/// How much a sign-in needs a second factor (Keycloak's conditional OTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    /// Not asked (a `skipOtpRole` holder).
    Skip,
    /// Asked of users who have one (Keycloak's default browser flow).
    IfConfigured,
    /// Required: asked, or enrolled first (`forceOtpRole`, the realm's required groups,
    /// `defaultOtpOutcome=force`, or a client demanding two factors).
    Required,
}

/// The sign-in in progress; sealed in the browser's cookie.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthSession {
    pub realm: String,
    pub user_id: String,
    /// The authorization request's parameters, validated again when the code is issued.
    pub params: Vec<(String, String)>,
    /// The factors done, RFC 8176 names (`pwd`, `otp`, …).
    pub amr: Vec<String>,
    pub need: Need,
    /// Every step form's CSRF token.
    pub csrf: String,
    pub expires_at: i64,
    /// A step-up of this live SSO session: raised in place rather than replaced.
    pub upgrade_session: Option<String>,
    /// The client's address at the password step (events, brute force).
    pub ip: Option<String>,
    /// The TOTP secret being enrolled, between the page and its form.
    pub pending_totp: Option<String>,
    /// Other steps' state between a page and its form (e.g. a WebAuthn challenge), by key.
    pub ext: BTreeMap<String, String>,
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("realm", &self.realm)
            .field("user_id", &self.user_id)
            .field("amr", &self.amr)
            .field("need", &self.need)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AuthSession {
    /// A new sign-in of `user_id` after the factors `amr`, expiring after the realm's
    /// `accessCodeLifespanLogin`.
    pub fn new(
        dir: &Directory,
        now: i64,
        user_id: &str,
        params: Vec<(String, String)>,
        amr: Vec<String>,
        need: Need,
    ) -> anyhow::Result<AuthSession> {
        Ok(AuthSession {
            realm: dir.realm.clone(),
            user_id: user_id.to_string(),
            params,
            amr,
            need,
            csrf: secrets::random_token()?,
            expires_at: now + dir.settings.accounts.access_code_lifespan_login,
            upgrade_session: None,
            ip: None,
            pending_totp: None,
            ext: BTreeMap::new(),
        })
    }

    /// The cookie value.
    pub fn seal(&self, st: &State) -> anyhow::Result<String> {
        let keys = st
            .keys
            .realm(&self.realm)
            .ok_or_else(|| anyhow::anyhow!("realm {} has no keys loaded", self.realm))?;
        keys.seal.seal(SEAL_AAD, &serde_json::to_vec(self)?)
    }

    /// The session a cookie holds, if it was sealed for this realm and has not expired.
    pub fn open(st: &State, dir: &Directory, cookie: &str) -> Option<AuthSession> {
        let keys = st.keys.realm(&dir.realm)?;
        let plain = keys.seal.open(SEAL_AAD, cookie)?;
        let a: AuthSession = serde_json::from_slice(&plain).ok()?;
        (a.realm == dir.realm && st.now() <= a.expires_at).then_some(a)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn client_id(&self) -> &str {
        self.param("client_id").unwrap_or_default()
    }

    /// A factor is done.
    pub fn add_factor(&mut self, amr: &str) {
        if !self.amr.iter().any(|a| a == amr) {
            self.amr.push(amr.to_string());
        }
    }

    /// More than one factor is done.
    pub fn two_factors(&self) -> bool {
        self.amr.len() >= 2
    }
}

/// The user of the sign-in as stored now, if they still exist and are enabled.
pub async fn user(
    st: &State,
    dir: &Directory,
    auth: &AuthSession,
) -> anyhow::Result<Option<UserRow>> {
    Ok(st
        .store
        .get_user(&dir.realm, &auth.user_id)
        .await?
        .filter(|u| u.enabled))
}

/// How much the realm asks a second factor of `user` when the request demands level
/// `demanded` (their grants from the directory's cache, or expanded from this row).
pub async fn need_of(
    st: &State,
    dir: &Directory,
    user: &UserRow,
    demanded: i64,
) -> anyhow::Result<Need> {
    let cached = dir.grants_of(st.store.as_ref(), user).await?;
    Ok(second_factor_need(
        &dir.settings.accounts,
        &cached.grants,
        demanded,
    ))
}

/// What the sign-in owes next, from the user's row, credentials and required actions as
/// stored now (`fresh`: the row the caller has just read, else it is read). `None`: the user is
/// gone or disabled (the sign-in ends). A `VERIFY_EMAIL` whose address is verified meanwhile
/// leaves the user's list here.
pub async fn next_step(
    st: &State,
    dir: &Directory,
    auth: &AuthSession,
    fresh: Option<&UserRow>,
) -> anyhow::Result<Option<Step>> {
    let user = match fresh {
        Some(u) => Some(u.clone()).filter(|u| u.enabled),
        None => user(st, dir, auth).await?,
    };
    let Some(user) = user else {
        return Ok(None);
    };
    let creds = st.store.user_credentials(&dir.realm, &user.id).await?;
    let actions = st.store.user_required_actions(&user.id).await?;
    if !auth.two_factors() && auth.need != Need::Skip {
        let mut has = SecondFactor::ALL
            .into_iter()
            .find(|f| creds.iter().any(|c| c.kind == f.credential_type()));
        // Passkeys live in their own table: asked only when no other factor is there.
        if has.is_none()
            && !st
                .store
                .webauthn_credentials_of(&dir.realm, &user.id)
                .await?
                .is_empty()
        {
            has = Some(SecondFactor::Webauthn);
        }
        match (has, auth.need) {
            (Some(f), _) => return Ok(Some(Step::SecondFactor(f))),
            (None, Need::Required) => {
                return Ok(Some(Step::RequiredAction(RequiredAction::ConfigureTotp)));
            }
            _ => {}
        }
    }
    // The realm's `verifyEmail` asks it of every user with an unverified address, as Keycloak.
    let realm_wants = dir.settings.verify_email && !user.email_verified && user.email.is_some();
    for a in RequiredAction::ALL {
        let listed = actions.iter().any(|x| x == a.name());
        if !listed && (a != RequiredAction::VerifyEmail || !realm_wants) {
            continue;
        }
        if a == RequiredAction::VerifyEmail && user.email_verified {
            action_done(st, &user.id, a).await?;
            continue;
        }
        return Ok(Some(Step::RequiredAction(a)));
    }
    Ok(Some(Step::Done))
}

/// A required action is done: it leaves the user's list.
pub async fn action_done(st: &State, user_id: &str, action: RequiredAction) -> anyhow::Result<()> {
    let mut actions = st.store.user_required_actions(user_id).await?;
    if actions.iter().any(|a| a == action.name()) {
        actions.retain(|a| a != action.name());
        st.store
            .set_user_required_actions(user_id, &actions)
            .await?;
    }
    Ok(())
}

/// The level of authentication a request demands: the lowest of the `acr_values` it names
/// (any of them will do), else of the client's `default.acr.values`; `"1"`, `"2"` or a name of
/// the realm's `acr.loa.map`. Unknown values are ignored, as Keycloak does; none is 0.
pub fn demanded_level(s: &AccountSettings, acr_values: Option<&str>, defaults: &[String]) -> i64 {
    let level = |v: &str| {
        s.acr_loa_map
            .get(v)
            .copied()
            .or_else(|| v.parse::<i64>().ok())
    };
    let asked: Vec<i64> = match acr_values.filter(|v| !v.trim().is_empty()) {
        Some(v) => v.split_whitespace().filter_map(level).collect(),
        None => defaults.iter().filter_map(|v| level(v)).collect(),
    };
    asked.into_iter().min().unwrap_or(0)
}

/// The `acr` claim of a sign-in with `amr`: its level (1 or 2), named by the realm's
/// `acr.loa.map` when it names it.
pub fn acr_of(s: &AccountSettings, amr: &[String]) -> String {
    let level = if amr.len() >= 2 { 2 } else { 1 };
    s.acr_loa_map
        .iter()
        .find(|(_, l)| **l == level)
        .map_or_else(|| level.to_string(), |(name, _)| name.clone())
}

/// How much the realm's conditional second factor asks of a user with `grants`, when the
/// request demands level `demanded`.
pub fn second_factor_need(s: &AccountSettings, grants: &Grants, demanded: i64) -> Need {
    let holds = |role: &str| {
        grants.realm_roles.contains(role)
            || role.split_once('.').is_some_and(|(client, name)| {
                grants
                    .client_roles
                    .get(client)
                    .is_some_and(|r| r.contains(name))
            })
    };
    let in_group = |g: &String| {
        grants.groups.iter().any(|mine| {
            mine == g
                || mine
                    .strip_prefix(g.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    if demanded >= 2
        || s.otp_required_groups.iter().any(in_group)
        || s.otp_force_roles.iter().any(|r| holds(r))
    {
        Need::Required
    } else if s.otp_skip_roles.iter().any(|r| holds(r)) {
        Need::Skip
    } else if s.otp_default_outcome.as_deref() == Some("force") {
        Need::Required
    } else {
        Need::IfConfigured
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_second_factor() {
        let mut s = AccountSettings {
            otp_required_groups: vec!["/staff".into()],
            otp_force_roles: vec!["app.admin".into()],
            otp_skip_roles: vec!["robot".into()],
            ..AccountSettings::default()
        };
        let g = |groups: &[&str], realm: &[&str], client: &[(&str, &str)]| {
            let mut out = Grants {
                groups: groups.iter().map(|x| x.to_string()).collect(),
                realm_roles: realm.iter().map(|x| x.to_string()).collect(),
                ..Grants::default()
            };
            for (c, r) in client {
                out.client_roles
                    .entry(c.to_string())
                    .or_default()
                    .insert(r.to_string());
            }
            out
        };
        let need = |s: &AccountSettings, gr: &Grants, d| second_factor_need(s, gr, d);
        assert_eq!(need(&s, &g(&["/staff/ops"], &[], &[]), 0), Need::Required);
        assert_eq!(
            need(&s, &g(&["/staffing"], &[], &[]), 0),
            Need::IfConfigured
        );
        assert_eq!(
            need(&s, &g(&[], &[], &[("app", "admin")]), 0),
            Need::Required
        );
        assert_eq!(need(&s, &g(&[], &["robot"], &[]), 0), Need::Skip);
        assert_eq!(need(&s, &g(&[], &["robot"], &[]), 2), Need::Required);
        s.otp_default_outcome = Some("force".into());
        assert_eq!(need(&s, &g(&[], &[], &[]), 0), Need::Required);
    }

    #[test]
    fn acr_levels() {
        let mut s = AccountSettings::default();
        assert_eq!(demanded_level(&s, Some("2"), &[]), 2);
        assert_eq!(demanded_level(&s, Some("1 2"), &[]), 1);
        assert_eq!(demanded_level(&s, None, &["2".into()]), 2);
        assert_eq!(demanded_level(&s, Some("urn:x"), &["2".into()]), 0);
        s.acr_loa_map.insert("gold".into(), 2);
        assert_eq!(demanded_level(&s, Some("gold"), &[]), 2);
        assert_eq!(acr_of(&s, &["pwd".into(), "otp".into()]), "gold");
        assert_eq!(acr_of(&s, &["pwd".into()]), "1");
    }
}
