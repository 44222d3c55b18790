//! CORS for browser clients (Keycloak's `webOrigins`): a request whose `Origin` is a web origin
//! of one of the realm's clients (`+` = the origins of its redirect URIs) gets
//! `Access-Control-Allow-Origin` back; preflights are answered here. Others get no CORS headers,
//! so browsers refuse the cross-origin read.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::directory::Directory;
use crate::domain::state::State;
use portcullis_store::ClientRow;

fn origin_of(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri.trim_end_matches('*')).ok()?;
    Some(u.origin().ascii_serialization())
}

/// Whether `origin` is one of the client's web origins (Keycloak's `webOrigins`: `*` any,
/// `+` the origins of its redirect URIs, else the origins listed).
pub fn client_allows(c: &ClientRow, origin: &str) -> bool {
    c.config.enabled
        && c.config.web_origins.iter().any(|w| match w.as_str() {
            "*" => true,
            "+" => c
                .config
                .redirect_uris
                .iter()
                .any(|r| origin_of(r).as_deref() == Some(origin)),
            w => w.trim_end_matches('/') == origin,
        })
}

/// Whether `origin` is allowed by some client of the realm.
pub fn allowed(dir: &Directory, origin: &str) -> bool {
    dir.clients.values().any(|c| client_allows(c, origin))
}

/// `/auth/realms/{realm}/…` → `realm`.
fn realm_of(path: &str) -> Option<&str> {
    path.strip_prefix("/auth/realms/")?.split('/').next()
}

pub async fn layer(AxState(st): AxState<Arc<State>>, req: Request<Body>, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let ok = match (&origin, realm_of(req.uri().path()).and_then(|r| st.dir(r))) {
        (Some(o), Some(dir)) => allowed(&dir, o),
        _ => false,
    };
    let preflight = req.method() == Method::OPTIONS && origin.is_some();
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(o)) = (ok, origin)
        && let Ok(v) = HeaderValue::from_str(&o)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("3600"),
            );
        }
    }
    resp
}
