//! Applying a realm template to the store (create, or `--sync` without touching runtime data),
//! and exporting a realm back to a template without hashes or secrets. `check_references` is
//! public for `portcullis check` and the `realm_json` fuzz target.

use std::collections::{BTreeMap, BTreeSet};

use super::admin::management;
use super::directory::{Directory, service_account_name};
use super::realm_accounts;
use super::realm_file::{
    ClientRep, CompositesRep, GroupRep, ProtocolMapperRep, RealmFile, RoleRep, RolesRep, UserRep,
};
use super::realm_mail;
use super::seal::SealKeys;
use super::signing;
use crate::secrets;
use portcullis_store::{
    ClientConfig, ClientRow, GroupMapper, GroupRow, RealmRow, RealmSettings, RoleRef, RoleRow,
    Secret, Store, UserRow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Synced,
    /// The realm exists and this was not a sync: left untouched (Keycloak's `--import-realm`).
    Skipped,
}

/// Applies `file`. Without `sync`, an existing realm is left as it is. With `sync`, users,
/// groups, roles and clients are added or updated; sessions, codes and refresh tokens stay.
/// Users first stored now get the system clock's time as their creation time.
pub async fn apply(store: &dyn Store, file: &RealmFile, sync: bool) -> anyhow::Result<Outcome> {
    let now = i64::try_from(portcullis_core::clock::system().now_unix()).unwrap_or(i64::MAX);
    apply_at(store, file, sync, now).await
}

/// `apply` at `now` (Unix seconds), the creation time of users first stored.
pub async fn apply_at(
    store: &dyn Store,
    file: &RealmFile,
    sync: bool,
    now: i64,
) -> anyhow::Result<Outcome> {
    check_references(file)?;
    let stored = store.get_realm(&file.realm).await?;
    let exists = stored.is_some();
    if exists && !sync {
        return Ok(Outcome::Skipped);
    }
    let realm = &file.realm;
    let mut row = realm_row(file);
    realm_mail::apply(
        file,
        &mut row.settings,
        stored.as_ref().map(|r| &r.settings),
    );
    store.put_realm(&row).await?;

    let roles = file.roles.clone().unwrap_or_default();
    let all_roles = role_list(&roles);
    for (role, rep) in &all_roles {
        store
            .put_role_row(
                realm,
                &RoleRow {
                    role: role.clone(),
                    description: rep.description.clone(),
                },
            )
            .await?;
    }
    for (role, rep) in &all_roles {
        let children = rep
            .composites
            .as_ref()
            .map(composite_refs)
            .unwrap_or_default();
        store.set_role_composites(realm, role, &children).await?;
    }

    let mut groups = Vec::new();
    flatten_groups(&file.groups, None, &mut groups);
    for (path, parent, g) in &groups {
        store
            .put_group(&GroupRow {
                id: given_id(g.id.as_deref())?,
                realm: realm.clone(),
                path: path.clone(),
                name: g.name.clone(),
                parent: parent.clone(),
            })
            .await?;
        let roles = refs(&g.realm_roles, &g.client_roles);
        store.set_group_roles(realm, path, &roles).await?;
    }

    for c in &file.clients {
        store.put_client(&client_row(realm, c)?).await?;
        if c.service_accounts_enabled == Some(true) {
            let user = service_account_user(realm, &c.client_id, now)?;
            store.put_user(&user).await?;
        }
    }

    // TOTP secrets are sealed with the realm's key, made now if the realm has none yet.
    let has_otp = file
        .users
        .iter()
        .any(|u| u.credentials.iter().any(|c| c.kind == super::totp::TYPE));
    let seal = match has_otp {
        true => {
            let alg = realm_row(file).settings.default_signature_algorithm;
            Some(realm_accounts::seal_keys(store, realm, &alg, now).await?)
        }
        false => None,
    };
    for u in &file.users {
        put_user(store, realm, u, now, seal.as_ref()).await?;
    }
    // Keycloak makes every realm's `realm-management` client and roles itself; files may
    // reference them without defining them.
    management::ensure_realm_management(store, realm).await?;
    // Last, once everything is written: running issuers reload on their next refresh grant.
    store.bump_realm_revision(realm).await?;
    Ok(if exists {
        Outcome::Synced
    } else {
        Outcome::Created
    })
}

/// Adds or updates one user of the file (matched by username), with their password, groups and
/// roles; a user first stored gets `now` as their creation time.
async fn put_user(
    store: &dyn Store,
    realm: &str,
    u: &UserRep,
    now: i64,
    seal: Option<&SealKeys>,
) -> anyhow::Result<()> {
    let password = u
        .credentials
        .iter()
        .find(|c| c.kind == "password")
        .and_then(|c| c.value.clone());
    let password_hash = match password {
        Some(p) => Some(Secret(
            secrets::on_hashing_thread(move || secrets::hash_password(&p)).await??,
        )),
        None => None,
    };
    let username = match &u.service_account_client_id {
        Some(c) => service_account_name(c),
        None => u.username.clone(),
    };
    store
        .put_user(&UserRow {
            id: given_id(u.id.as_deref())?,
            realm: realm.to_string(),
            username: username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            email_verified: u.email_verified.unwrap_or(false),
            enabled: u.enabled.unwrap_or(true),
            created_at: now,
            password_hash,
            service_account_client: u.service_account_client_id.clone(),
        })
        .await?;
    let Some(stored) = store.user_by_username(realm, &username).await? else {
        anyhow::bail!("user {username} vanished during import");
    };
    store.set_user_groups(&stored.id, &u.groups).await?;
    store
        .set_user_roles(&stored.id, &refs(&u.realm_roles, &u.client_roles))
        .await?;
    match seal {
        Some(seal) => realm_accounts::import_user(store, seal, realm, &stored.id, u, now).await,
        None => {
            let empty = SealKeys::derive(realm, &[], "")?;
            realm_accounts::import_user(store, &empty, realm, &stored.id, u, now).await
        }
    }
}

fn realm_row(f: &RealmFile) -> RealmRow {
    let d = RealmSettings::default();
    RealmRow {
        name: f.realm.clone(),
        enabled: f.enabled.unwrap_or(true),
        settings: RealmSettings {
            access_token_lifespan: f.access_token_lifespan.unwrap_or(d.access_token_lifespan),
            access_code_lifespan: f.access_code_lifespan.unwrap_or(d.access_code_lifespan),
            sso_session_idle_timeout: f
                .sso_session_idle_timeout
                .unwrap_or(d.sso_session_idle_timeout),
            sso_session_max_lifespan: f
                .sso_session_max_lifespan
                .unwrap_or(d.sso_session_max_lifespan),
            brute_force_protected: f.brute_force_protected.unwrap_or(d.brute_force_protected),
            failure_factor: f.failure_factor.unwrap_or(d.failure_factor),
            wait_increment_seconds: f.wait_increment_seconds.unwrap_or(d.wait_increment_seconds),
            max_failure_wait_seconds: f
                .max_failure_wait_seconds
                .unwrap_or(d.max_failure_wait_seconds),
            max_delta_time_seconds: f.max_delta_time_seconds.unwrap_or(d.max_delta_time_seconds),
            default_signature_algorithm: f
                .default_signature_algorithm
                .clone()
                .unwrap_or(d.default_signature_algorithm),
            accounts: realm_accounts::settings(&f.accounts),
            // The mail settings: `realm_mail::apply`.
            ..RealmSettings::default()
        },
    }
}

pub(crate) fn client_row(realm: &str, c: &ClientRep) -> anyhow::Result<ClientRow> {
    let group_mapper = c
        .protocol_mappers
        .iter()
        .find(|m| m.protocol_mapper == "oidc-group-membership-mapper")
        .map(|m| GroupMapper {
            claim: m
                .config
                .get("claim.name")
                .and_then(|v| v.as_str())
                .unwrap_or("groups")
                .to_string(),
            full_path: m
                .config
                .get("full.path")
                .is_none_or(|v| v.as_str() == Some("true") || v.as_bool() == Some(true)),
        });
    let secret_hash = match (&c.secret, c.public_client) {
        (Some(s), false) => Some(Secret(secrets::hash_client_secret(s)?)),
        _ => None,
    };
    Ok(ClientRow {
        id: given_id(c.id.as_deref())?,
        realm: realm.to_string(),
        client_id: c.client_id.clone(),
        secret_hash,
        config: ClientConfig {
            enabled: c.enabled.unwrap_or(true),
            public_client: c.public_client,
            redirect_uris: c.redirect_uris.clone(),
            web_origins: c.web_origins.clone(),
            standard_flow: c.standard_flow_enabled.unwrap_or(true),
            direct_access_grants: c.direct_access_grants_enabled.unwrap_or(false),
            service_accounts: c.service_accounts_enabled.unwrap_or(false),
            pkce_method: c
                .attribute("pkce.code.challenge.method")
                .map(str::to_string),
            post_logout_redirect_uris: c
                .attribute("post.logout.redirect.uris")
                .map(|s| s.split("##").map(str::to_string).collect())
                .unwrap_or_default(),
            group_mapper,
            name: c.name.clone(),
            description: c.description.clone(),
            root_url: c.root_url.clone(),
            base_url: c.base_url.clone(),
            admin_url: c.admin_url.clone(),
            bearer_only: c.bearer_only.unwrap_or(false),
            default_acr_values: c
                .attribute("default.acr.values")
                .map(|s| s.split("##").map(str::to_string).collect())
                .unwrap_or_default(),
        },
    })
}

/// A representation's id when it is one we can put in a URL path (Keycloak's are UUIDs), else a
/// new UUID.
pub(crate) fn given_id(id: Option<&str>) -> anyhow::Result<String> {
    match id {
        Some(id) if valid_id(id) => Ok(id.to_string()),
        _ => secrets::uuid(),
    }
}

/// 1 to 64 ASCII letters, digits, `-` or `_`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn service_account_user(
    realm: &str,
    client_id: &str,
    now: i64,
) -> anyhow::Result<UserRow> {
    Ok(UserRow {
        id: secrets::uuid()?,
        realm: realm.to_string(),
        username: service_account_name(client_id),
        email: None,
        first_name: None,
        last_name: None,
        email_verified: false,
        enabled: true,
        created_at: now,
        password_hash: None,
        service_account_client: Some(client_id.to_string()),
    })
}

fn role_list(roles: &RolesRep) -> Vec<(RoleRef, RoleRep)> {
    let mut out: Vec<(RoleRef, RoleRep)> = roles
        .realm
        .iter()
        .map(|r| (RoleRef::realm(&r.name), r.clone()))
        .collect();
    for (client, list) in &roles.client {
        out.extend(
            list.iter()
                .map(|r| (RoleRef::client(client, &r.name), r.clone())),
        );
    }
    out
}

fn composite_refs(c: &CompositesRep) -> Vec<RoleRef> {
    refs(&c.realm, &c.client)
}

pub(crate) fn refs(realm: &[String], client: &BTreeMap<String, Vec<String>>) -> Vec<RoleRef> {
    let mut out: Vec<RoleRef> = realm.iter().map(RoleRef::realm).collect();
    for (c, names) in client {
        out.extend(names.iter().map(|n| RoleRef::client(c, n)));
    }
    out
}

/// Depth-first (path, parent path, group) list; Keycloak computes paths from names.
fn flatten_groups<'a>(
    groups: &'a [GroupRep],
    parent: Option<&str>,
    out: &mut Vec<(String, Option<String>, &'a GroupRep)>,
) {
    for g in groups {
        let path = format!("{}/{}", parent.unwrap_or(""), g.name);
        out.push((path.clone(), parent.map(str::to_string), g));
        flatten_groups(&g.sub_groups, Some(&path), out);
    }
}

/// Every dangling reference at once: unknown roles (in composites, groups, users) and groups.
pub fn check_references(f: &RealmFile) -> anyhow::Result<()> {
    let roles = f.roles.clone().unwrap_or_default();
    let mut defined: BTreeSet<RoleRef> = role_list(&roles).into_iter().map(|(r, _)| r).collect();
    defined.extend(management::builtin_roles());
    let mut groups = Vec::new();
    flatten_groups(&f.groups, None, &mut groups);
    let paths: BTreeSet<&str> = groups.iter().map(|(p, _, _)| p.as_str()).collect();
    let mut errors = Vec::new();
    if let Some(a) = &f.default_signature_algorithm
        && !signing::ALGORITHMS.contains(&a.as_str())
    {
        errors.push(format!(
            "defaultSignatureAlgorithm \"{a}\" is not one of {}",
            signing::ALGORITHMS.join(", ")
        ));
    }
    let check = |errors: &mut Vec<String>, where_: String, list: Vec<RoleRef>| {
        for r in list.into_iter().filter(|r| !defined.contains(r)) {
            let name = match &r.client {
                Some(c) => format!("{c}/{}", r.name),
                None => r.name.clone(),
            };
            errors.push(format!("{where_}: unknown role \"{name}\""));
        }
    };
    for (role, rep) in role_list(&roles) {
        let children = rep
            .composites
            .as_ref()
            .map(composite_refs)
            .unwrap_or_default();
        check(&mut errors, format!("role {}", role.name), children);
    }
    for (path, _, g) in &groups {
        check(
            &mut errors,
            format!("group {path}"),
            refs(&g.realm_roles, &g.client_roles),
        );
    }
    for u in &f.users {
        check(
            &mut errors,
            format!("user {}", u.username),
            refs(&u.realm_roles, &u.client_roles),
        );
        for g in u.groups.iter().filter(|g| !paths.contains(g.as_str())) {
            errors.push(format!("user {}: unknown group \"{g}\"", u.username));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("realm {}: {}", f.realm, errors.join("; "))
    }
}

/// The realm as a template: no password hashes, no client secrets.
pub async fn export(store: &dyn Store, realm: &str) -> anyhow::Result<RealmFile> {
    let Some(dir) = Directory::load(store, realm).await? else {
        anyhow::bail!("realm {realm} does not exist");
    };
    let s = &dir.settings;
    let mut roles = RolesRep::default();
    for RoleRow { role, description } in store.list_role_rows(realm).await? {
        let children = dir.composites_of(&role);
        let mut comp = CompositesRep::default();
        for c in children {
            match &c.client {
                None => comp.realm.push(c.name.clone()),
                Some(cl) => comp
                    .client
                    .entry(cl.clone())
                    .or_default()
                    .push(c.name.clone()),
            }
        }
        let rep = RoleRep {
            name: role.name.clone(),
            description,
            composite: !children.is_empty(),
            composites: (!children.is_empty()).then_some(comp),
        };
        match &role.client {
            None => roles.realm.push(rep),
            Some(c) => roles.client.entry(c.clone()).or_default().push(rep),
        }
    }
    let group_roles = store.list_group_roles(realm).await?;
    let rows = store.list_groups(realm).await?;
    let groups = export_groups(&rows, None, &group_roles);

    let keys = store.list_keys(realm).await?;
    let active = keys.iter().find(|k| k.active).map(|k| k.kid.clone());
    let seal = SealKeys::derive(realm, &keys, active.as_deref().unwrap_or_default())?;
    let mut users = Vec::new();
    for u in store.list_users(realm).await? {
        let (realm_roles, client_roles) = split(store.user_roles(&u.id).await?);
        let (required_actions, credentials) =
            realm_accounts::export_user(store, &seal, realm, &u.id).await?;
        users.push(UserRep {
            id: Some(u.id.clone()),
            username: u.username,
            email: u.email,
            email_verified: Some(u.email_verified),
            first_name: u.first_name,
            last_name: u.last_name,
            enabled: Some(u.enabled),
            created_timestamp: Some(u.created_at.saturating_mul(1000)),
            credentials,
            required_actions,
            groups: store.user_groups(&u.id).await?,
            realm_roles,
            client_roles,
            service_account_client_id: u.service_account_client,
        });
    }
    let mut clients: Vec<ClientRep> = dir.clients.values().map(export_client).collect();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let mut file = RealmFile {
        realm: realm.to_string(),
        enabled: Some(dir.enabled),
        access_token_lifespan: Some(s.access_token_lifespan),
        access_code_lifespan: Some(s.access_code_lifespan),
        sso_session_idle_timeout: Some(s.sso_session_idle_timeout),
        sso_session_max_lifespan: Some(s.sso_session_max_lifespan),
        brute_force_protected: Some(s.brute_force_protected),
        failure_factor: Some(s.failure_factor),
        wait_increment_seconds: Some(s.wait_increment_seconds),
        max_failure_wait_seconds: Some(s.max_failure_wait_seconds),
        max_delta_time_seconds: Some(s.max_delta_time_seconds),
        default_signature_algorithm: Some(s.default_signature_algorithm.clone()),
        roles: Some(roles),
        groups,
        users,
        clients,
        accounts: realm_accounts::file(&s.accounts),
        ..RealmFile::default()
    };
    realm_mail::export(s, &mut file);
    Ok(file)
}

pub(crate) fn split(roles: Vec<RoleRef>) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut realm = Vec::new();
    let mut client: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in roles {
        match r.client {
            None => realm.push(r.name),
            Some(c) => client.entry(c).or_default().push(r.name),
        }
    }
    (realm, client)
}

pub(crate) fn export_groups(
    rows: &[GroupRow],
    parent: Option<&str>,
    group_roles: &[(String, RoleRef)],
) -> Vec<GroupRep> {
    rows.iter()
        .filter(|g| g.parent.as_deref() == parent)
        .map(|g| {
            let mine = group_roles
                .iter()
                .filter(|(p, _)| p == &g.path)
                .map(|(_, r)| r.clone())
                .collect();
            let (realm_roles, client_roles) = split(mine);
            GroupRep {
                id: Some(g.id.clone()),
                name: g.name.clone(),
                path: Some(g.path.clone()),
                sub_groups: export_groups(rows, Some(&g.path), group_roles),
                realm_roles,
                client_roles,
            }
        })
        .collect()
}

pub(crate) fn export_client(c: &ClientRow) -> ClientRep {
    let cfg = &c.config;
    let mut attributes = BTreeMap::new();
    if let Some(m) = &cfg.pkce_method {
        attributes.insert("pkce.code.challenge.method".to_string(), m.clone().into());
    }
    if !cfg.default_acr_values.is_empty() {
        attributes.insert(
            "default.acr.values".to_string(),
            cfg.default_acr_values.join("##").into(),
        );
    }
    if !cfg.post_logout_redirect_uris.is_empty() {
        attributes.insert(
            "post.logout.redirect.uris".to_string(),
            cfg.post_logout_redirect_uris.join("##").into(),
        );
    }
    let protocol_mappers = cfg
        .group_mapper
        .iter()
        .map(|m| ProtocolMapperRep {
            name: "groups".into(),
            protocol: Some("openid-connect".into()),
            protocol_mapper: "oidc-group-membership-mapper".into(),
            config: [
                ("full.path".to_string(), m.full_path.to_string().into()),
                ("claim.name".to_string(), m.claim.clone().into()),
            ]
            .into_iter()
            .collect(),
        })
        .collect();
    ClientRep {
        id: Some(c.id.clone()),
        client_id: c.client_id.clone(),
        name: cfg.name.clone(),
        description: cfg.description.clone(),
        root_url: cfg.root_url.clone(),
        base_url: cfg.base_url.clone(),
        admin_url: cfg.admin_url.clone(),
        bearer_only: Some(cfg.bearer_only),
        enabled: Some(cfg.enabled),
        secret: None,
        public_client: cfg.public_client,
        redirect_uris: cfg.redirect_uris.clone(),
        web_origins: cfg.web_origins.clone(),
        standard_flow_enabled: Some(cfg.standard_flow),
        direct_access_grants_enabled: Some(cfg.direct_access_grants),
        service_accounts_enabled: Some(cfg.service_accounts),
        attributes,
        protocol_mappers,
    }
}
