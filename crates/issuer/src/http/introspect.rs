//! `P/token/introspect` (RFC 7662): client-authenticated; active access and refresh tokens
//! answer with their claims; anything else is `{"active": false}`.
//! `domain::introspection` finds the token; the RFC's JSON is built here.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::client_auth;
use super::params::Params;
use super::realm::Realm;
use crate::domain::error::{OAuthError, OAuthResult};
use crate::domain::introspection::{Introspected, introspect as look_up};
use crate::domain::state::State;

pub async fn introspect(
    AxState(st): AxState<Arc<State>>,
    realm: Realm,
    headers: HeaderMap,
    body: Bytes,
) -> OAuthResult<Json<Value>> {
    let dir = &realm.dir;
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(dir, &headers, &params)?;
    if client.config.public_client {
        return Err(OAuthError::InvalidClient(
            "Public clients cannot introspect".into(),
        ));
    }
    let token = params.require("token")?;
    Ok(Json(match look_up(&st, dir, token).await? {
        Introspected::Access(mut c) => {
            c.insert("active".into(), true.into());
            c.insert(
                "client_id".into(),
                c.get("azp").cloned().unwrap_or(Value::Null),
            );
            c.insert(
                "username".into(),
                c.get("preferred_username").cloned().unwrap_or(Value::Null),
            );
            c.insert("token_type".into(), "Bearer".into());
            Value::Object(c)
        }
        Introspected::Refresh(c) => {
            let mut v = serde_json::to_value(&c).map_err(anyhow::Error::from)?;
            if let Some(m) = v.as_object_mut() {
                m.insert("active".into(), true.into());
                m.insert("client_id".into(), c.azp.clone().into());
                m.insert("token_type".into(), c.typ.clone().into());
            }
            v
        }
        Introspected::Inactive => json!({ "active": false }),
    }))
}
