//! portcullis: an identity-aware reverse proxy gateway on Pingora. This crate is the binary's
//! shell (the command line, the sidecar's generated config, the echo upstream); the work is
//! done by the crates under `crates/` (ARCHITECTURE.md).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cli;
pub mod echo;
pub mod sidecar;
