//! portcullis' data plane on Pingora: the guard, routing, the authentication and authorization
//! phases, forwarded and identity headers, listeners, reload, the management listener, the
//! audit log, and the in-process embedding of the issuer. Nothing imports this crate but the
//! binary.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod audit;
pub mod certs;
pub mod embed;
pub mod explain;
pub mod handover;
pub mod lifecycle;
pub mod mgmt;
pub mod proxy;
pub mod reload;
pub mod snapshot;
