//! portcullis' shared vocabulary: the config schema and its diagnostics, the clock, routing
//! (route tables, path normalization, canonical prefixes), the identity a request stands for,
//! the metric handles, and the [`keys::EmbeddedKeys`] seam. It imports none of our crates.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod clock;
pub mod config;
pub mod forwarded;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod normalize;
pub mod route;
