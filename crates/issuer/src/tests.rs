//! Router-level and import tests of the issuer on a real SQLite file (and PostgreSQL where the
//! test is about storage).

mod admin;
mod counting;
mod flow;
mod harness;
mod import;
mod keycloak_js;
mod keys;
mod refresh;
mod store_calls;
mod token;
