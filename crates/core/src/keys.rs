//! The seam between token validation and the embedded issuer: the issuer implements
//! [`EmbeddedKeys`], `authn` reads it, and neither crate imports the other.

use std::sync::Arc;

/// Keys of the embedded issuer, read in-process (no HTTP). Implemented by the issuer.
///
/// `version` must change whenever the key set does; a rotated key is then trusted at once.
pub trait EmbeddedKeys: Send + Sync {
    fn key_set(&self) -> Arc<jsonwebtoken::jwk::JwkSet>;
    fn version(&self) -> u64;
}
