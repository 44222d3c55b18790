//! The admin API's gate: every request needs a bearer access token of the `master` realm or of
//! the realm it manages (401 without one, or with one that does not verify, deny by default);
//! each handler names the role it needs through its `Admin<P>` extractor (403 without it);
//! and every write is recorded as an admin event once answered.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AdminError, internal};
use crate::domain::admin::access::{self, Caller, Perm};
use crate::domain::admin::events;
use crate::domain::directory::Directory;
use crate::domain::state::State;
use crate::http::urls::{ClientIp, client_ip};

fn unauthorized() -> AdminError {
    AdminError(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized".into())
}

fn forbidden() -> AdminError {
    AdminError(StatusCode::FORBIDDEN, "HTTP 403 Forbidden".into())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
}

/// `/admin/realms/{realm}/{rest}` → (`realm`, `rest`).
fn realm_and_rest(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/admin/realms/")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// The middleware in front of every admin route: authenticates, hands the `Caller` to the
/// handler, and records writes as admin events.
pub async fn authenticate(
    AxState(st): AxState<Arc<State>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let target = realm_and_rest(&path).map(|(r, _)| r.to_string());
    let Some(token) = bearer(req.headers()) else {
        return unauthorized().into_response();
    };
    let caller = match access::authenticate(&st, target.as_deref(), token).await {
        Ok(Some(c)) => c,
        Ok(None) => return unauthorized().into_response(),
        Err(e) => return internal(e).into_response(),
    };
    let method = req.method().clone();
    let ip = client_ip(req.extensions().get::<ClientIp>().copied(), req.headers());
    req.extensions_mut().insert(caller.clone());
    let resp = next.run(req).await;
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if write
        && let Some((realm, rest)) = realm_and_rest(&path)
        && st.dir_including_disabled(realm).is_some()
    {
        let mut rest = rest.to_string();
        // Keycloak's resource path of a create names the new resource.
        if resp.status() == StatusCode::CREATED
            && let Some(id) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
        {
            rest = format!("{rest}/{id}");
        }
        let status = resp.status().as_u16();
        events::record(&st, &caller, realm, method.as_str(), &rest, status, ip).await;
    }
    resp
}

/// Unknown admin paths: 404 for an authenticated caller (the middleware answered the others).
pub async fn not_found() -> AdminError {
    AdminError(StatusCode::NOT_FOUND, "HTTP 404 Not Found".into())
}

/// What an endpoint needs, as a type (`Admin<ViewUsers>`).
pub trait Needs: Send + Sync + 'static {
    const PERM: Perm;
}

macro_rules! needs {
    ($($name:ident),*) => {$(
        #[doc = concat!("Needs `Perm::", stringify!($name), "`.")]
        pub struct $name;
        impl Needs for $name {
            const PERM: Perm = Perm::$name;
        }
    )*};
}

needs!(
    Any,
    ViewRealm,
    ManageRealm,
    ViewUsers,
    ManageUsers,
    QueryGroups,
    ViewClients,
    QueryClients,
    ManageClients,
    ViewEvents
);

/// The authenticated caller, allowed `P` in the existing realm (enabled or not) the path
/// names, with that realm's current directory.
pub struct Admin<P> {
    pub caller: Caller,
    pub dir: Arc<Directory>,
    need: PhantomData<fn() -> P>,
}

impl<P> Admin<P> {
    pub fn realm(&self) -> &str {
        &self.dir.realm
    }

    /// Whether the caller may also do `p` here (e.g. `access.manage` in a user's
    /// representation).
    pub fn may(&self, p: Perm) -> bool {
        self.caller.may(&self.dir.realm, p)
    }
}

impl<P: Needs> FromRequestParts<Arc<State>> for Admin<P> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<State>) -> Result<Self, AdminError> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(unauthorized)?;
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, st)
            .await
            .map_err(|_| AdminError(StatusCode::NOT_FOUND, "HTTP 404 Not Found".into()))?;
        let name = params
            .into_iter()
            .find_map(|(k, v)| (k == "realm").then_some(v))
            .unwrap_or_default();
        let dir = st
            .admin_dir(&name)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError(StatusCode::NOT_FOUND, "Realm not found.".into()))?;
        if !caller.may(&name, P::PERM) {
            return Err(forbidden());
        }
        Ok(Admin {
            caller,
            dir,
            need: PhantomData,
        })
    }
}

/// The path parameter `k` of an admin route.
pub fn param(params: &[(String, String)], k: &str) -> String {
    params
        .iter()
        .find_map(|(n, v)| (n == k).then(|| v.clone()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_and_rest_of_admin_paths() {
        assert_eq!(
            realm_and_rest("/admin/realms/r/users/1"),
            Some(("r", "users/1"))
        );
        assert_eq!(realm_and_rest("/admin/realms/r"), Some(("r", "")));
        assert_eq!(realm_and_rest("/admin/realms"), None);
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
