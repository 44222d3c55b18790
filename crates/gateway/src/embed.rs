//! The embedded issuer inside the gateway: hosted (`embed/hosted.rs`) in builds with the cargo
//! feature `issuer` (the default), absent (`embed/absent.rs`) in the sidecar build, which
//! leaves the issuer, its store and sqlx out. Both halves offer the same names, so the rest of
//! the gateway holds an `Option<Arc<EmbeddedIssuer>>` and needs no `cfg` of its own.

use bytes::Bytes;

#[cfg(not(feature = "issuer"))]
mod absent;
#[cfg(feature = "issuer")]
mod hosted;

#[cfg(not(feature = "issuer"))]
pub use absent::{EmbeddedIssuer, Listener, attach};
#[cfg(feature = "issuer")]
pub use hosted::{EmbeddedIssuer, Listener, attach};

/// Whether this build can host the issuer (`[issuer]`, `embedded:issuer`, `jwks_uri =
/// "embedded"`).
pub const AVAILABLE: bool = cfg!(feature = "issuer");

/// Why a build without the feature refuses the config that asks for the issuer.
pub const NOT_BUILT: &str = "this build has no embedded issuer (feature `issuer`)";

/// One sample of the issuer's store, for `lifecycle::StoreMetrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSample {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
    /// How long taking a connection waited (`None`: none came within the probe's bound).
    pub acquire_wait: Option<std::time::Duration>,
    /// Live sessions per realm, when asked for and the database answered.
    pub sessions: Option<Vec<(String, u64)>>,
}

/// The issuer's answer, whole.
pub type Answer = http::Response<Bytes>;

/// What a command does with the embedded issuer (`[issuer]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerUse {
    /// `run`: started (database opened and migrated, realms imported, keys made).
    Start,
    /// `explain`: its published keys read from an existing database; nothing is written.
    ReadKeys,
    /// `check`: realm files checked, the database never opened.
    CheckOnly,
}
