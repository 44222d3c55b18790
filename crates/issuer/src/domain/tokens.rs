//! Minting tokens: access tokens and id tokens with Keycloak's claims, and refresh tokens
//! (`refresh_tokens`: HS512 JWTs naming a family that rotates in the store).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::directory::{Directory, Grants};
use super::error::OAuthResult;
use super::keys::RealmKeys;
use super::refresh_tokens::{self, RefreshClaims, Subject};
use super::state::State;
use crate::secrets;
use portcullis_core::metrics::metrics;
use portcullis_store::{ClientRow, FamilyRow, UserRow};

/// What a grant hands over for minting.
pub struct Mint<'a> {
    pub dir: &'a Directory,
    pub client: &'a ClientRow,
    pub user: &'a UserRow,
    pub grants: &'a Grants,
    /// `iss`: `{frontend}/realms/{realm}`.
    pub issuer: String,
    pub session_id: Option<String>,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
    /// The factors of the sign-in (RFC 8176 names); empty when unknown (client credentials,
    /// refreshes): then `acr` is "1" and there is no `amr` claim.
    pub amr: &'a [String],
    pub grant_type: &'static str,
}

/// RFC 6749 §5.1 response, with Keycloak's extra fields.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(rename = "not-before-policy")]
    pub not_before_policy: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    pub scope: String,
}

/// The scope a token carries: what was asked for among what we know, plus Keycloak's default
/// client scopes `profile` and `email`.
pub fn effective_scope(requested: Option<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    let asked: Vec<&str> = requested.unwrap_or("").split_whitespace().collect();
    if asked.contains(&"openid") {
        out.push("openid");
    }
    for s in ["profile", "email"] {
        out.push(s);
    }
    for s in asked {
        if matches!(s, "roles" | "groups" | "offline_access") && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

fn has_scope(scope: &str, s: &str) -> bool {
    scope.split(' ').any(|x| x == s)
}

/// Claims about the user shared by access tokens, id tokens and userinfo.
pub fn user_claims(
    mut c: Map<String, Value>,
    user: &UserRow,
    grants: &Grants,
    client: &ClientRow,
) -> Map<String, Value> {
    c.insert("preferred_username".into(), user.username.clone().into());
    if let Some(e) = &user.email {
        c.insert("email".into(), e.clone().into());
    }
    // Keycloak's `email verified` mapper (scope `email`) puts it in even without an address.
    c.insert("email_verified".into(), user.email_verified.into());
    if let Some(g) = &user.first_name {
        c.insert("given_name".into(), g.clone().into());
    }
    if let Some(f) = &user.last_name {
        c.insert("family_name".into(), f.clone().into());
    }
    let name: Vec<&str> = [&user.first_name, &user.last_name]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !name.is_empty() {
        c.insert("name".into(), name.join(" ").into());
    }
    if let Some(mapper) = &client.config.group_mapper {
        let groups: Vec<Value> = grants
            .groups
            .iter()
            .map(|p| {
                if mapper.full_path {
                    p.clone()
                } else {
                    p.rsplit('/').next().unwrap_or(p).to_string()
                }
                .into()
            })
            .collect();
        c.insert(mapper.claim.clone(), Value::Array(groups));
    }
    c
}

pub async fn mint(st: &State, m: Mint<'_>, refresh: Option<Refresh>) -> OAuthResult<TokenResponse> {
    let now = st.now();
    let s = &m.dir.settings;
    let keys = st
        .keys
        .realm(&m.dir.realm)
        .ok_or_else(|| anyhow::anyhow!("realm {} has no keys loaded", m.dir.realm))?;
    let client_id = m.client.client_id.clone();

    let mut aud: Vec<String> = m.grants.client_roles.keys().cloned().collect();
    if !aud.contains(&client_id) {
        aud.insert(0, client_id.clone());
    }
    let aud = if aud.len() == 1 {
        Value::from(client_id.clone())
    } else {
        Value::from(aud)
    };
    let mut base = Map::new();
    base.insert("exp".into(), (now + s.access_token_lifespan).into());
    base.insert("iat".into(), now.into());
    if let Some(t) = m.auth_time {
        base.insert("auth_time".into(), t.into());
    }
    base.insert("jti".into(), secrets::uuid()?.into());
    base.insert("iss".into(), m.issuer.clone().into());
    base.insert("sub".into(), m.user.id.clone().into());
    base.insert("azp".into(), client_id.clone().into());
    if let Some(sid) = &m.session_id {
        base.insert("sid".into(), sid.clone().into());
    }
    base.insert("acr".into(), super::flow::acr_of(&s.accounts, m.amr).into());
    if !m.amr.is_empty() {
        base.insert("amr".into(), m.amr.into());
    }

    // The id token starts from the same claims; copied only when one is asked for.
    let id_base = has_scope(&m.scope, "openid").then(|| base.clone());
    let mut access = base;
    access.insert("aud".into(), aud);
    access.insert("typ".into(), "Bearer".into());
    access.insert("scope".into(), m.scope.clone().into());
    access.insert(
        "realm_access".into(),
        json!({ "roles": m.grants.realm_roles.iter().collect::<Vec<_>>() }),
    );
    let resource: Map<String, Value> = m
        .grants
        .client_roles
        .iter()
        .map(|(c, r)| (c.clone(), json!({ "roles": r.iter().collect::<Vec<_>>() })))
        .collect();
    access.insert("resource_access".into(), Value::Object(resource));
    let access = user_claims(access, m.user, m.grants, m.client);
    let access_token = keys.signer.sign("JWT", &access)?;

    let id_token = if let Some(mut id) = id_base {
        id.insert("aud".into(), client_id.clone().into());
        id.insert("typ".into(), "ID".into());
        if let Some(n) = &m.nonce {
            id.insert("nonce".into(), n.clone().into());
        }
        let id = user_claims(id, m.user, m.grants, m.client);
        Some(keys.signer.sign("JWT", &id)?)
    } else {
        None
    };

    let (refresh_token, refresh_expires_in) = match refresh {
        Some(r) => (
            Some(r.issue(st, &keys, &m, now).await?),
            s.sso_session_idle_timeout,
        ),
        None => (None, 0),
    };
    metrics()
        .issuer_tokens_issued
        .with_label_values(&[m.dir.realm.as_str(), m.grant_type])
        .inc();
    Ok(TokenResponse {
        access_token,
        expires_in: s.access_token_lifespan,
        refresh_expires_in,
        refresh_token,
        token_type: "Bearer",
        id_token,
        not_before_policy: 0,
        session_state: m.session_id.clone(),
        scope: m.scope,
    })
}

/// How the refresh token of a response comes about.
pub enum Refresh {
    /// A new family (first tokens of a login), remembering the code that started it.
    New { code_hash: Option<String> },
    /// The family rotated by the `refresh_token` grant: its new current token.
    Rotated { token: String },
}

impl Refresh {
    async fn issue(
        self,
        st: &State,
        keys: &RealmKeys,
        m: &Mint<'_>,
        now: i64,
    ) -> OAuthResult<String> {
        match self {
            Refresh::Rotated { token, .. } => Ok(token),
            Refresh::New { code_hash } => {
                let id = secrets::uuid()?;
                let claims = RefreshClaims::new(
                    &id,
                    &Subject {
                        issuer: &m.issuer,
                        user_id: &m.user.id,
                        client_id: &m.client.client_id,
                        session_id: m.session_id.as_deref(),
                        scope: &m.scope,
                    },
                    now,
                    m.dir.settings.sso_session_idle_timeout,
                )?;
                let token = refresh_tokens::sign(keys.refresh_signer()?, &claims)?;
                st.store
                    .create_family(&FamilyRow {
                        id,
                        realm: m.dir.realm.clone(),
                        client_id: m.client.client_id.clone(),
                        user_id: m.user.id.clone(),
                        session_id: m.session_id.clone(),
                        scope: m.scope.clone(),
                        current_hash: secrets::token_hash(&token),
                        code_hash,
                        created_at: now,
                        updated_at: now,
                        revoked: false,
                    })
                    .await?;
                Ok(token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_normalised() {
        assert_eq!(
            effective_scope(Some("openid groups bogus")),
            "openid profile email groups"
        );
        assert_eq!(effective_scope(None), "profile email");
    }
}
