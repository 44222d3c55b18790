//! Router-level and import tests of the issuer on a real SQLite file (and PostgreSQL where the
//! test is about storage).

mod account;
mod accounts;
mod accounts_actions;
mod accounts_otp;
mod admin;
mod admin_access;
mod counting;
mod email_verified;
mod flow;
mod harness;
mod import;
mod keycloak_js;
mod keys;
mod mail;
mod mail_flows;
mod mail_sign_in;
mod mail_tls;
mod refresh;
mod store_calls;
mod token;
