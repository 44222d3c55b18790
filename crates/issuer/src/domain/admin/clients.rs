//! Clients through the admin API, named by id: list (with Keycloak's `clientId` filter),
//! get, create (a confidential client without a secret gets a random one; service accounts get
//! their user), update (the fields given, over the stored ones; the client id stays), delete,
//! the secret (stored hashed, so it is shown only when made: `POST client-secret`) and the
//! service-account user. The built-in `realm-management` client cannot be deleted.

use serde_json::{Value, json};

use super::super::directory::{Directory, service_account_name};
use super::super::realm_file::ClientRep;
use super::super::realm_import::{client_row, export_client, service_account_user};
use super::super::state::State;
use super::access::REALM_MANAGEMENT;
use super::mappings::client;
use super::{Outcome, Page, Pattern, Refused, reps};
use crate::secrets;
use portcullis_store::{ClientRow, Secret};

/// `GET clients`: every client, or those whose client id is `client_id` (anywhere in it with
/// `search`), a page of them, by client id.
pub fn list(dir: &Directory, client_id: Option<&str>, search: bool, page: Page) -> Vec<Value> {
    let p = client_id.map(|c| Pattern::filter(c, !search));
    let mut rows: Vec<&ClientRow> = dir
        .clients
        .values()
        .filter(|c| {
            p.as_ref().is_none_or(|p| match p {
                // Client ids are case-sensitive in Keycloak.
                Pattern::Exact(_) => client_id == Some(c.client_id.as_str()),
                _ => p.matches(&c.client_id),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    page.apply(rows.into_iter().map(reps::client).collect())
}

pub fn get(dir: &Directory, id: &str) -> Result<Value, Refused> {
    client(dir, id).map(reps::client)
}

fn check(rep: &ClientRep) -> Result<(), Refused> {
    let id = &rep.client_id;
    if id.is_empty() || id.chars().count() > 255 || id.chars().any(char::is_control) {
        return Err(Refused::bad("clientId is required"));
    }
    Ok(())
}

async fn write(st: &State, realm: &str, row: &ClientRow) -> anyhow::Result<()> {
    st.store.put_client(row).await?;
    if row.config.service_accounts {
        let name = service_account_name(&row.client_id);
        if st.store.user_by_username(realm, &name).await?.is_none() {
            let user = service_account_user(realm, &row.client_id, st.now())?;
            st.store.put_user(&user).await?;
        }
    }
    st.realm_changed(realm).await
}

/// `POST clients`; returns the new client's id.
pub async fn create(st: &State, dir: &Directory, mut rep: ClientRep) -> Outcome<String> {
    or_refuse!(check(&rep));
    if dir.clients.contains_key(&rep.client_id) {
        return Ok(Err(Refused::conflict(format!(
            "Client {} already exists",
            rep.client_id
        ))));
    }
    if let Some(id) = rep.id.as_deref()
        && dir.clients.values().any(|c| c.id == id)
    {
        return Ok(Err(Refused::conflict(
            "Client with the same id already exists",
        )));
    }
    let confidential = !rep.public_client && rep.bearer_only != Some(true);
    if confidential && rep.secret.as_deref().is_none_or(str::is_empty) {
        // Never a confidential client without a secret; this one is known to nobody until
        // `POST client-secret` makes a new one.
        rep.secret = Some(secrets::random_token()?);
    }
    let row = client_row(&dir.realm, &rep)?;
    write(st, &dir.realm, &row).await?;
    Ok(Ok(row.id))
}

/// `PUT clients/{id}`: the fields given replace the stored ones, the others stay (Keycloak's
/// partial update); a `secret` sets a new one.
pub async fn update(st: &State, dir: &Directory, id: &str, body: Value) -> Outcome<()> {
    let existing = or_refuse!(client(dir, id)).clone();
    let Value::Object(given) = body else {
        return Ok(Err(Refused::bad(
            "a ClientRepresentation object is required",
        )));
    };
    let mut merged = serde_json::to_value(export_client(&existing))?;
    if let Value::Object(m) = &mut merged {
        m.extend(given);
    }
    let mut rep: ClientRep = match serde_json::from_value(merged) {
        Ok(r) => r,
        Err(e) => return Ok(Err(Refused::bad(format!("invalid client: {e}")))),
    };
    if rep.client_id != existing.client_id {
        return Ok(Err(Refused::bad("clientId cannot be changed")));
    }
    if rep.secret.as_deref() == Some("") || rep.secret.as_deref() == Some("**********") {
        // Keycloak's console sends the mask back; it means "unchanged".
        rep.secret = None;
    }
    let row = ClientRow {
        id: existing.id.clone(),
        ..client_row(&dir.realm, &rep)?
    };
    write(st, &dir.realm, &row).await?;
    Ok(Ok(()))
}

/// `DELETE clients/{id}`: the client, its roles and their mappings, its service-account user;
/// its refresh tokens stop working.
pub async fn delete(st: &State, dir: &Directory, id: &str) -> Outcome<()> {
    let c = or_refuse!(client(dir, id));
    if c.client_id == REALM_MANAGEMENT {
        return Ok(Err(Refused::bad("the realm-management client is built in")));
    }
    st.store.delete_client(&dir.realm, &c.client_id).await?;
    st.realm_changed(&dir.realm).await?;
    Ok(Ok(()))
}

/// `GET clients/{id}/client-secret`: Keycloak's `CredentialRepresentation` without the
/// value, which is stored hashed and shown only when made.
pub fn secret(dir: &Directory, id: &str) -> Result<Value, Refused> {
    let c = client(dir, id)?;
    if c.config.public_client || c.config.bearer_only {
        return Err(Refused::bad("the client has no secret"));
    }
    Ok(json!({"type": "secret"}))
}

/// `POST clients/{id}/client-secret`: a new random secret, shown this once.
pub async fn regenerate_secret(st: &State, dir: &Directory, id: &str) -> Outcome<Value> {
    let c = or_refuse!(client(dir, id)).clone();
    if c.config.public_client || c.config.bearer_only {
        return Ok(Err(Refused::bad("the client has no secret")));
    }
    let value = secrets::random_token()?;
    let row = ClientRow {
        secret_hash: Some(Secret(secrets::hash_client_secret(&value)?)),
        ..c
    };
    st.store.put_client(&row).await?;
    st.realm_changed(&dir.realm).await?;
    Ok(Ok(json!({"type": "secret", "value": value})))
}

/// `GET clients/{id}/service-account-user`.
pub async fn service_account(
    st: &State,
    dir: &Directory,
    id: &str,
    manage: bool,
) -> Outcome<Value> {
    let c = or_refuse!(client(dir, id));
    if !c.config.service_accounts {
        return Ok(Err(Refused::bad(
            "Service account not enabled for the client",
        )));
    }
    let name = service_account_name(&c.client_id);
    Ok(match st.store.user_by_username(&dir.realm, &name).await? {
        Some(u) => Ok(reps::user(&u, false, manage)),
        None => Err(Refused::not_found("Service account user not found")),
    })
}
