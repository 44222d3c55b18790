//! portcullis' data plane on Pingora: the guard, routing, the authentication and authorization
//! phases, forwarded and identity headers, listeners, reload, the management listener, the
//! audit log, rate limits, and the in-process embedding of the issuer. Nothing imports this
//! crate but the binary.
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
pub mod limit;
pub mod mgmt;
pub mod proxy;
pub mod reload;
pub mod session;
pub mod snapshot;
pub mod tls;
