//! portcullis: an identity-aware reverse proxy gateway on Pingora.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod certs;
pub mod cli;
pub mod clock;
pub mod config;
pub mod echo;
pub mod embed;
pub mod explain;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod issuer;
pub mod lifecycle;
pub mod metrics;
pub mod mgmt;
pub mod proxy;
pub mod reload;
pub mod sidecar;
pub mod snapshot;
pub mod store;
