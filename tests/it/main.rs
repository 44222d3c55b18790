//! Integration tests: the real `portcullis` binary on free loopback ports, real TLS clients,
//! real upstream HTTP servers. One test binary (link time dominates).

mod auth;
mod cli;
mod dataplane;
mod harness;
mod idp;
mod issuer;
mod keycloak_admin;
mod keycloak_browser;
mod lifecycle;
mod rate_limit;
mod session;
mod upstream_pool;
