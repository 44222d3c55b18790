//! The issuer's HTTP layer: the routes, and a handler per endpoint that extracts what the
//! request carries, calls `domain`, and renders the answer. Nothing here touches the store.

pub mod account;
pub mod action_token;
pub mod admin;
pub mod auth_request;
pub mod authorize;
pub mod client_auth;
pub mod cors;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod login;
pub mod login_actions;
pub mod logout;
pub mod mail_pages;
pub mod pages;
pub mod params;
pub mod passkeys;
pub mod realm;
pub mod realm_info;
pub mod redirect;
pub mod registration;
pub mod reset_credentials;
pub mod revoke;
pub mod session_iframe;
pub mod token;
pub mod urls;
pub mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::domain::state::State;

/// Every Keycloak path under `/auth/realms/{realm}/…`.
pub(crate) fn router(state: Arc<State>) -> Router {
    let p = "/auth/realms/{realm}/protocol/openid-connect";
    let a = "/auth/realms/{realm}/login-actions";
    Router::new()
        .route("/auth/realms/{realm}", get(realm_info::realm_info))
        .route(
            "/auth/realms/{realm}/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(&format!("{p}/certs"), get(discovery::certs))
        .route(&format!("{p}/token"), post(token::token))
        .route(
            &format!("{p}/auth"),
            get(authorize::get).post(authorize::post),
        )
        .route(
            "/auth/realms/{realm}/login-actions/authenticate",
            get(login_actions::authenticate_get).post(login_actions::authenticate_post),
        )
        .route(
            "/auth/realms/{realm}/login-actions/required-action",
            get(login_actions::required_action_get).post(login_actions::required_action_post),
        )
        .route(
            &format!("{p}/userinfo"),
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            &format!("{p}/token/introspect"),
            post(introspect::introspect),
        )
        .route(&format!("{p}/revoke"), post(revoke::revoke))
        .route(
            &format!("{p}/3p-cookies/step1.html"),
            get(session_iframe::step1),
        )
        .route(
            &format!("{p}/3p-cookies/step2.html"),
            get(session_iframe::step2),
        )
        .route(
            &format!("{p}/login-status-iframe.html"),
            get(session_iframe::status),
        )
        .route(
            &format!("{p}/login-status-iframe.html/init"),
            get(session_iframe::init),
        )
        .route(
            &format!("{p}/logout"),
            get(logout::logout).post(logout::logout),
        )
        .route(&format!("{p}/registrations"), get(registration::get))
        .route(
            &format!("{a}/registration"),
            get(registration::get).post(registration::post),
        )
        .route(
            &format!("{a}/reset-credentials"),
            get(reset_credentials::get).post(reset_credentials::post),
        )
        .route(
            &format!("{a}/action-token"),
            get(action_token::get).post(action_token::post),
        )
        .route(
            "/auth/realms/{realm}/login-actions/webauthn-options",
            post(passkeys::login_options),
        )
        .route(
            "/auth/realms/{realm}/login-actions/webauthn-second-factor-options",
            post(passkeys::second_factor_options),
        )
        .route(login::WEBAUTHN_JS_PATH, get(passkeys::script))
        .merge(account_routes())
        // Preflights for unrouted methods never reach a handler: the layer answers them.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::layer,
        ))
        .with_state(state)
}

/// The account console (`account.rs`), Keycloak's path.
fn account_routes() -> Router<Arc<State>> {
    let a = "/auth/realms/{realm}/account";
    Router::new()
        .route(a, get(account::overview))
        .route(&format!("{a}/"), get(account::overview))
        .route(
            &format!("{a}/password"),
            get(account::password_page).post(account::change_password),
        )
        .route(
            &format!("{a}/passkeys"),
            get(account::passkeys_page).post(account::add_passkey),
        )
        .route(
            &format!("{a}/passkeys/options"),
            post(account::passkey_options),
        )
        .route(
            &format!("{a}/passkeys/remove"),
            post(account::remove_passkey),
        )
        .route(
            &format!("{a}/totp"),
            get(account::totp_page).post(account::add_totp),
        )
        .route(&format!("{a}/totp/remove"), post(account::remove_totp))
        .route(&format!("{a}/sessions"), get(account::sessions_page))
        .route(&format!("{a}/sessions/end"), post(account::end_session))
        .route(
            &format!("{a}/sessions/end-others"),
            post(account::end_other_sessions),
        )
        .route(&format!("{a}/sign-out"), post(account::sign_out))
}

/// The admin API and its token endpoints (`admin::router`), for the management listener.
pub(crate) fn admin_router(state: Arc<State>) -> Router {
    admin::router(state)
}
