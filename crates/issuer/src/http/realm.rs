//! The realm a request names (`{realm}` in its path) as an axum extractor: a handler that takes
//! a `Realm` gets the realm's directory, or the request is answered with its endpoint's "realm
//! does not exist" response. The one place every endpoint looks its realm up.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::login;
use crate::domain::admin::access::MASTER;
use crate::domain::directory::Directory;
use crate::domain::error::OAuthError;
use crate::domain::state::State;

/// How an endpoint answers a realm that does not exist, and which realms exist for it.
pub trait Missing: Send + Sync + 'static {
    /// Whether a disabled realm counts as existing (the admin API manages disabled realms).
    const DISABLED_TOO: bool = false;

    /// The answer when the realm does not exist.
    fn response() -> Response;
}

/// The OAuth endpoints: `404 {"error": "not_found", "error_description": "Realm does not
/// exist"}`.
pub struct OAuth;

impl Missing for OAuth {
    fn response() -> Response {
        OAuthError::NotFound("Realm does not exist".into()).into_response()
    }
}

/// The browser's pages (authorization, logout): the HTML error page.
pub struct Page;

impl Missing for Page {
    fn response() -> Response {
        login::error_page(StatusCode::NOT_FOUND, "Realm does not exist.")
    }
}

/// Set on requests to the admin plane (the management listener's router): the `master` realm,
/// which only administers, exists only there.
#[derive(Debug, Clone, Copy)]
pub struct AdminPlane;

/// An existing realm named by the request's path; `M` says what answers when there is none.
pub struct Realm<M = OAuth> {
    /// The name as the path gives it.
    pub name: String,
    pub dir: Arc<Directory>,
    missing: PhantomData<fn() -> M>,
}

impl<M: Missing> FromRequestParts<Arc<State>> for Realm<M> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<State>) -> Result<Self, Response> {
        // Name-value pairs, so routes with more parameters than `{realm}` (the admin API's)
        // work too; one short list, no map, per request.
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        let name = params
            .into_iter()
            .find_map(|(k, v)| (k == "realm").then_some(v))
            .unwrap_or_default();
        if name == MASTER && parts.extensions.get::<AdminPlane>().is_none() {
            return Err(M::response());
        }
        let dir = if M::DISABLED_TOO {
            st.dir_including_disabled(&name)
        } else {
            st.dir(&name)
        };
        match dir {
            Some(dir) => Ok(Realm {
                name,
                dir,
                missing: PhantomData,
            }),
            None => Err(M::response()),
        }
    }
}
