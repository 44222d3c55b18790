//! Users through the admin API: search and count with Keycloak's filters, create (username
//! unique, case-insensitive; email unique), update, delete (sessions end, refresh tokens are
//! revoked), reset a password, and group membership. Group and role assignments never hand out
//! admin roles the caller does not hold.

use std::collections::BTreeSet;

use serde_json::Value;

use super::super::credentials::{self, SetPasswordError};
use super::super::directory::Directory;
use super::super::names::{CONFIGURE_TOTP, UPDATE_PASSWORD, VERIFY_EMAIL};
use super::super::password_policy;
use super::super::realm_file::{CredentialRep, UserRep};
use super::super::realm_import::{given_id, refs};
use super::super::state::State;
use super::super::totp::TYPE as TOTP_TYPE;
use super::access::Caller;
use super::{Outcome, Page, Pattern, Refused, groups, reps};
use crate::secrets;
use portcullis_store::{RoleRef, Secret, UserRow};

/// Keycloak's user list filters.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Username, names or email: `"x"` exact, `*x*` anywhere, `x` prefix; `id:X` by id.
    pub search: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The attribute filters match whole values instead of anywhere.
    pub exact: bool,
    pub enabled: Option<bool>,
    pub email_verified: Option<bool>,
    pub page: Page,
    pub brief: bool,
}

impl UserQuery {
    fn has_attribute_filter(&self) -> bool {
        self.username.is_some()
            || self.email.is_some()
            || self.first_name.is_some()
            || self.last_name.is_some()
    }

    fn keeps(&self, u: &UserRow) -> bool {
        fn field(f: &Option<String>) -> &str {
            f.as_deref().unwrap_or("")
        }
        if let Some(s) = &self.search {
            if let Some(id) = s.trim().strip_prefix("id:") {
                return u.id == id.trim();
            }
            // Service accounts are not people: searches and the plain list leave them out.
            if u.service_account_client.is_some() {
                return false;
            }
            let p = Pattern::parse(s);
            if !s.trim().trim_matches('*').is_empty()
                && ![
                    u.username.as_str(),
                    field(&u.email),
                    field(&u.first_name),
                    field(&u.last_name),
                ]
                .iter()
                .any(|v| p.matches(v))
            {
                return false;
            }
        } else if !self.has_attribute_filter() && u.service_account_client.is_some() {
            return false;
        }
        let attr = |want: &Option<String>, have: &str| {
            want.as_deref()
                .is_none_or(|w| Pattern::filter(w, self.exact).matches(have))
        };
        attr(&self.username, &u.username)
            && attr(&self.email, field(&u.email))
            && attr(&self.first_name, field(&u.first_name))
            && attr(&self.last_name, field(&u.last_name))
            && self.enabled.is_none_or(|e| e == u.enabled)
            && self.email_verified.is_none_or(|e| e == u.email_verified)
    }
}

async fn matching(st: &State, realm: &str, q: &UserQuery) -> anyhow::Result<Vec<UserRow>> {
    let mut users = st.store.list_users(realm).await?;
    users.retain(|u| q.keeps(u));
    Ok(users)
}

/// The users `q` selects, a page of them (at most 100 unless `max` says otherwise).
pub async fn list(
    st: &State,
    realm: &str,
    q: &UserQuery,
    manage: bool,
) -> anyhow::Result<Vec<Value>> {
    let users = q.page.or_max(100).apply(matching(st, realm, q).await?);
    Ok(users
        .iter()
        .map(|u| reps::user(u, q.brief, manage))
        .collect())
}

/// How many users `q` selects (paging aside).
pub async fn count(st: &State, realm: &str, q: &UserQuery) -> anyhow::Result<usize> {
    Ok(matching(st, realm, q).await?.len())
}

pub async fn get(st: &State, realm: &str, id: &str, manage: bool) -> anyhow::Result<Option<Value>> {
    match st.store.get_user(realm, id).await? {
        Some(u) => Ok(Some(full(st, realm, &u, manage).await?)),
        None => Ok(None),
    }
}

async fn existing(st: &State, realm: &str, id: &str) -> Outcome<UserRow> {
    Ok(st
        .store
        .get_user(realm, id)
        .await?
        .ok_or_else(|| Refused::not_found("User not found")))
}

/// A text field of a representation: no control characters (header and log injection), at
/// most 255 characters.
fn plain(what: &str, v: &str) -> Result<(), Refused> {
    if v.chars().count() > 255 || v.chars().any(char::is_control) {
        return Err(Refused::bad(format!("invalid {what}")));
    }
    Ok(())
}

fn check_rep(rep: &UserRep) -> Result<(), Refused> {
    for (what, v) in [
        ("firstName", &rep.first_name),
        ("lastName", &rep.last_name),
        ("email", &rep.email),
    ] {
        if let Some(v) = v {
            plain(what, v)?;
        }
    }
    // One plain address (lettre's parser): never a list, a display name or a header.
    if let Some(e) = rep.email.as_deref().filter(|e| !e.is_empty())
        && super::super::mail::address(e).is_none()
    {
        return Err(Refused::bad("invalid email"));
    }
    Ok(())
}

async fn password_hash(
    dir: &Directory,
    rep: &UserRep,
    user: &UserRow,
) -> anyhow::Result<Result<Option<Secret<String>>, Refused>> {
    let Some(c) = rep.credentials.iter().find(|c| c.kind == "password") else {
        return Ok(Ok(None));
    };
    let Some(pw) = c.value.clone().filter(|v| !v.is_empty()) else {
        return Ok(Err(Refused::bad("password must not be empty")));
    };
    // The realm's policy holds here too (its history only where the password is replaced
    // through reset-password or the sign-in flow).
    let policy = password_policy::parse(
        dir.settings
            .accounts
            .password_policy
            .as_deref()
            .unwrap_or_default(),
    );
    if let Err(m) = policy.check(&pw, user) {
        return Ok(Err(Refused::bad(m)));
    }
    Ok(Ok(Some(Secret(
        secrets::on_hashing_thread(move || secrets::hash_password(&pw)).await??,
    ))))
}

/// Whether another user of the realm has `email` (Keycloak refuses duplicate emails).
async fn email_taken(
    st: &State,
    realm: &str,
    email: Option<&str>,
    not: &str,
) -> anyhow::Result<bool> {
    let Some(e) = email.filter(|e| !e.is_empty()) else {
        return Ok(false);
    };
    Ok(st.store.list_users(realm).await?.iter().any(|u| {
        u.id != not
            && u.email
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(e))
    }))
}

/// The groups and roles a representation assigns, checked: they exist, and the caller may
/// hand out what they grant.
async fn assignments(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    rep: &UserRep,
) -> Outcome<(Vec<String>, Vec<RoleRef>)> {
    let groups = st.store.list_groups(&dir.realm).await?;
    if let Some(g) = rep
        .groups
        .iter()
        .find(|p| !groups.iter().any(|g| &g.path == *p))
    {
        return Ok(Err(Refused::bad(format!("Group {g} not found"))));
    }
    let roles = refs(&rep.realm_roles, &rep.client_roles);
    let known: BTreeSet<RoleRef> = st.store.list_roles(&dir.realm).await?.into_iter().collect();
    if let Some(r) = roles.iter().find(|r| !known.contains(r)) {
        return Ok(Err(Refused::bad(format!("Role {} not found", r.name))));
    }
    if !caller.may_grant(&dir.realm, &dir.expand(&roles, &rep.groups)) {
        return Ok(Err(Refused::Forbidden(
            "cannot grant admin roles the caller does not hold".into(),
        )));
    }
    Ok(Ok((rep.groups.clone(), roles)))
}

/// Creates a user (with `credentials`' password, `groups` by path, and roles); returns the id.
pub async fn create(st: &State, dir: &Directory, caller: &Caller, rep: UserRep) -> Outcome<String> {
    let realm = dir.realm.as_str();
    if rep.username.trim().is_empty() {
        return Ok(Err(Refused::bad("User name is missing")));
    }
    or_refuse!(plain("username", &rep.username).and_then(|()| check_rep(&rep)));
    if st
        .store
        .user_by_username(realm, &rep.username)
        .await?
        .is_some()
    {
        return Ok(Err(Refused::conflict("User exists with same username")));
    }
    if email_taken(st, realm, rep.email.as_deref(), "").await? {
        return Ok(Err(Refused::conflict("User exists with same email")));
    }
    let (groups, roles) = or_refuse!(assignments(st, dir, caller, &rep).await?);
    let actions = or_refuse!(required_actions(&rep));
    let draft = UserRow {
        id: String::new(),
        realm: realm.to_string(),
        username: rep.username.trim().to_string(),
        email: rep.email.clone(),
        first_name: None,
        last_name: None,
        email_verified: false,
        enabled: true,
        created_at: 0,
        password_hash: None,
        service_account_client: None,
    };
    let hash = or_refuse!(password_hash(dir, &rep, &draft).await?);
    let id = given_id(rep.id.as_deref())?;
    if st.store.get_user(realm, &id).await?.is_some() {
        return Ok(Err(Refused::conflict("User exists with same id")));
    }
    st.store
        .put_user(&UserRow {
            id: id.clone(),
            realm: realm.to_string(),
            username: rep.username.trim().to_string(),
            email: rep.email.filter(|e| !e.is_empty()),
            first_name: rep.first_name,
            last_name: rep.last_name,
            email_verified: rep.email_verified.unwrap_or(false),
            enabled: rep.enabled.unwrap_or(true),
            created_at: st.now(),
            password_hash: hash,
            service_account_client: None,
        })
        .await?;
    st.store.set_user_groups(&id, &groups).await?;
    st.store.set_user_roles(&id, &roles).await?;
    if let Some(a) = actions {
        st.store.set_user_required_actions(&id, &a).await?;
    }
    Ok(Ok(id))
}

/// Updates the fields given; `enabled: false` disables the user (their logins and refreshes
/// then fail), `credentials` set the password. Groups and roles, when given, replace the
/// user's (an extension: Keycloak ignores them here).
pub async fn update(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    id: &str,
    rep: UserRep,
) -> Outcome<()> {
    let realm = dir.realm.as_str();
    let u = or_refuse!(existing(st, realm, id).await?);
    if !rep.username.is_empty() && !rep.username.trim().eq_ignore_ascii_case(&u.username) {
        return Ok(Err(Refused::bad("username cannot be changed")));
    }
    or_refuse!(check_rep(&rep));
    if email_taken(st, realm, rep.email.as_deref(), &u.id).await? {
        return Ok(Err(Refused::conflict("User exists with same email")));
    }
    let (groups, roles) = or_refuse!(assignments(st, dir, caller, &rep).await?);
    let actions = or_refuse!(required_actions(&rep));
    let hash = or_refuse!(password_hash(dir, &rep, &u).await?);
    let row = UserRow {
        email: rep
            .email
            .map_or(u.email.clone(), |e| (!e.is_empty()).then_some(e)),
        first_name: rep.first_name.or(u.first_name.clone()),
        last_name: rep.last_name.or(u.last_name.clone()),
        email_verified: rep.email_verified.unwrap_or(u.email_verified),
        enabled: rep.enabled.unwrap_or(u.enabled),
        password_hash: hash,
        ..u
    };
    st.store.put_user(&row).await?;
    if !rep.groups.is_empty() {
        st.store.set_user_groups(&row.id, &groups).await?;
    }
    if !roles.is_empty() {
        st.store.set_user_roles(&row.id, &roles).await?;
    }
    if let Some(a) = actions {
        st.store.set_user_required_actions(&row.id, &a).await?;
    }
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}

/// Deletes the user: their sessions end and their refresh tokens stop working at once.
pub async fn delete(st: &State, realm: &str, id: &str) -> Outcome<()> {
    if !st.store.delete_user(realm, id).await? {
        return Ok(Err(Refused::not_found("User not found")));
    }
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}

/// `PUT users/{id}/reset-password` with a `CredentialRepresentation` of type `password`: set
/// under the realm's password policy (`credentials::set_password`); `temporary: true` makes
/// the user change it at their next sign-in (`UPDATE_PASSWORD`), as Keycloak does.
pub async fn reset_password(st: &State, realm: &str, id: &str, cred: CredentialRep) -> Outcome<()> {
    let u = or_refuse!(existing(st, realm, id).await?);
    if !(cred.kind.is_empty() || cred.kind == "password") {
        return Ok(Err(Refused::bad("only password credentials can be reset")));
    }
    let Some(pw) = cred.value.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(Err(Refused::bad("password must not be empty")));
    };
    let Some(dir) = st.admin_dir(realm).await? else {
        return Ok(Err(Refused::not_found("Realm not found")));
    };
    match credentials::set_password(st, &dir, &u, pw).await {
        Ok(()) => {}
        Err(SetPasswordError::Policy(m)) => return Ok(Err(Refused::bad(m))),
        Err(SetPasswordError::Internal(e)) => return Err(e),
    }
    if cred.temporary == Some(true) {
        let mut actions = st.store.user_required_actions(&u.id).await?;
        if !actions.iter().any(|a| a == UPDATE_PASSWORD) {
            actions.push(UPDATE_PASSWORD.into());
            st.store.set_user_required_actions(&u.id, &actions).await?;
        }
    }
    Ok(Ok(()))
}

/// A user's `requiredActions` from a representation: known names only (Keycloak refuses
/// others too).
fn required_actions(rep: &UserRep) -> Result<Option<Vec<String>>, Refused> {
    let Some(list) = &rep.required_actions else {
        return Ok(None);
    };
    if let Some(bad) = list.iter().find(|a| {
        ![
            VERIFY_EMAIL,
            UPDATE_PASSWORD,
            CONFIGURE_TOTP,
            "UPDATE_PROFILE",
            "TERMS_AND_CONDITIONS",
        ]
        .contains(&a.as_str())
    }) {
        return Err(Refused::bad(format!("unknown required action: {bad}")));
    }
    Ok(Some(list.clone()))
}

/// The representation of one user, with their required actions and whether they have TOTP.
async fn full(st: &State, realm: &str, u: &UserRow, manage: bool) -> anyhow::Result<Value> {
    let mut v = reps::user(u, false, manage);
    let actions = st.store.user_required_actions(&u.id).await?;
    let totp = st
        .store
        .user_credentials(realm, &u.id)
        .await?
        .iter()
        .any(|c| c.kind == TOTP_TYPE);
    v["requiredActions"] = actions.into();
    v["totp"] = totp.into();
    Ok(v)
}

/// The user's groups (direct memberships) as brief representations, optionally only those
/// whose name matches `search`.
pub async fn groups_of(
    st: &State,
    realm: &str,
    id: &str,
    search: Option<&str>,
    page: Page,
    brief: bool,
) -> Outcome<Vec<Value>> {
    or_refuse!(existing(st, realm, id).await?);
    let paths = st.store.user_groups(id).await?;
    let all = st.store.list_groups(realm).await?;
    let roles = st.store.list_group_roles(realm).await?;
    let pattern = search.map(Pattern::parse);
    let mine: Vec<Value> = all
        .iter()
        .filter(|g| paths.contains(&g.path))
        .filter(|g| pattern.as_ref().is_none_or(|p| p.matches(&g.name)))
        .map(|g| reps::group(g, &all, &roles, brief, 0))
        .collect();
    Ok(Ok(page.apply(mine)))
}

/// `PUT users/{id}/groups/{groupId}`: adds the user to the group.
pub async fn join(
    st: &State,
    dir: &Directory,
    caller: &Caller,
    id: &str,
    group_id: &str,
) -> Outcome<()> {
    let realm = dir.realm.as_str();
    or_refuse!(existing(st, realm, id).await?);
    let (g, _) = or_refuse!(groups::by_id(st, realm, group_id).await?);
    if !caller.may_grant(realm, &dir.expand(&[], std::slice::from_ref(&g.path))) {
        return Ok(Err(Refused::Forbidden(
            "the group grants admin roles the caller does not hold".into(),
        )));
    }
    st.store.add_user_group(id, &g.path).await?;
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}

/// `DELETE users/{id}/groups/{groupId}`: removes the user from the group.
pub async fn leave(st: &State, realm: &str, id: &str, group_id: &str) -> Outcome<()> {
    or_refuse!(existing(st, realm, id).await?);
    let (g, _) = or_refuse!(groups::by_id(st, realm, group_id).await?);
    st.store.remove_user_group(id, &g.path).await?;
    st.realm_changed(realm).await?;
    Ok(Ok(()))
}
