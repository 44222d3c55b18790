//! Tests of bearer-token authentication: one test per attack, the cache against a manual
//! clock, config validation, and remote JWKS against a real local HTTP server.

mod attacks;
mod cache;
mod config;
mod remote;
mod support;
