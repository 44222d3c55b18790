//! Router-level and import tests of the issuer on a real SQLite file (and PostgreSQL where the
//! test is about storage).

mod admin;
mod flow;
mod harness;
mod import;
mod keys;
mod token;
