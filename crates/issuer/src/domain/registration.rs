//! Self-registration (`registrationAllowed`): a new user from the registration form's fields,
//! checked as the admin API checks a new user (username and address unique, the address one
//! plain address, the password by the realm's `passwordPolicy`), then the verification mail
//! when the realm has `verifyEmail` (whose sign-in flow then asks for the verified address).

use portcullis_store::{Secret, UserRow};

use super::accounts;
use super::directory::Directory;
use super::mail;
use super::password_policy;
use super::state::State;
use crate::secrets;

/// The registration form's fields.
#[derive(Clone, Copy)]
pub struct Form<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub password: &'a str,
    pub confirm: &'a str,
}

impl std::fmt::Debug for Form<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Form")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn text_ok(v: &str, max: usize) -> bool {
    v.chars().count() <= max && !v.chars().any(char::is_control)
}

/// What is wrong with the form, in words, before the store is asked.
fn check_form(f: &Form<'_>) -> Result<(), String> {
    let username = f.username.trim();
    if username.is_empty() {
        return Err("Please specify username.".into());
    }
    if !text_ok(username, 255) || username.contains(char::is_whitespace) {
        return Err("Invalid username.".into());
    }
    if f.email.trim().is_empty() {
        return Err("Please specify email.".into());
    }
    if mail::address(f.email.trim()).is_none() {
        return Err("Invalid email address.".into());
    }
    if !text_ok(f.first_name, 255) || !text_ok(f.last_name, 255) {
        return Err("Invalid name.".into());
    }
    accounts::acceptable(f.password, f.confirm)
}

/// Registers the user the form describes, or says in words why not. The verification mail
/// is only queued: the page says the same whatever becomes of it.
pub async fn register(
    st: &State,
    dir: &Directory,
    f: &Form<'_>,
    realm_base: &str,
) -> anyhow::Result<Result<UserRow, String>> {
    if !dir.settings.registration_allowed {
        return Ok(Err("Registration is not allowed.".into()));
    }
    if let Err(why) = check_form(f) {
        return Ok(Err(why));
    }
    let realm = dir.realm.as_str();
    let (username, email) = (f.username.trim(), f.email.trim());
    if st.store.user_by_username(realm, username).await?.is_some() {
        return Ok(Err("Username already exists.".into()));
    }
    if !st.store.users_by_email(realm, email).await?.is_empty() {
        return Ok(Err("Email already exists.".into()));
    }
    let name = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let mut user = UserRow {
        id: secrets::uuid()?,
        realm: realm.to_string(),
        username: username.to_lowercase(),
        email: Some(email.to_string()),
        first_name: name(f.first_name),
        last_name: name(f.last_name),
        email_verified: false,
        enabled: true,
        created_at: st.now(),
        password_hash: None,
        service_account_client: None,
    };
    // The realm's password policy, as everywhere a password is set (a new user has no
    // history to compare with).
    let policy = password_policy::parse(
        dir.settings
            .accounts
            .password_policy
            .as_deref()
            .unwrap_or_default(),
    );
    if let Err(why) = policy.check(f.password, &user) {
        return Ok(Err(why));
    }
    let pw = f.password.to_string();
    let hash = secrets::on_hashing_thread(move || secrets::hash_password(&pw)).await??;
    user.password_hash = Some(Secret(hash));
    st.store.put_user(&user).await?;
    tracing::info!(realm, user = %user.id, "user registered");
    if dir.settings.verify_email {
        accounts::send_verify_email(st, dir, &user, realm_base, None)?;
    }
    Ok(Ok(user))
}
