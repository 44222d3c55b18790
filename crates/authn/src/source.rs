//! Where a trust block's asymmetric keys come from (the embedded issuer or a remote JWKS), and
//! finding the key for one token's header in them.
//!
//! Above `keys` (one parsed set) and `jwks` (the remote caches), so neither imports the other
//! back: `jwks` only needs `KeySet` and the generation counter.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::error::AuthnError;
use super::jwks::RemoteJwks;
use super::jwt::Header;
use super::keys::{HsSecret, KeySet, Lookup, ResolvedKey, next_generation};
use portcullis_core::keys::EmbeddedKeys;

/// The embedded issuer's keys, re-read when its version moves or a `kid` is unknown.
pub(crate) struct EmbeddedSource {
    provider: Arc<dyn EmbeddedKeys>,
    set: ArcSwap<KeySet>,
}

impl EmbeddedSource {
    pub(crate) fn new(provider: Arc<dyn EmbeddedKeys>) -> Self {
        let version = provider.version();
        let set = KeySet::parse(provider.key_set(), next_generation(), version);
        Self {
            provider,
            set: ArcSwap::from_pointee(set),
        }
    }

    /// The current set, re-parsed only when the issuer's version or key set changed.
    fn current(&self, force_reread: bool) -> Arc<KeySet> {
        let set = self.set.load_full();
        let version = self.provider.version();
        if version == set.source_version && !force_reread {
            return set;
        }
        let raw = self.provider.key_set();
        // Pointer equality first: an unknown `kid` must not cost a parse when nothing changed.
        if Arc::ptr_eq(&raw, &set.raw) || *raw == *set.raw {
            if version == set.source_version {
                return set;
            }
            // Same keys under a new version label: keep the generation, so cached tokens stay.
            let relabeled = Arc::new(KeySet::parse(raw, set.generation, version));
            self.set.store(relabeled.clone());
            return relabeled;
        }
        let fresh = Arc::new(KeySet::parse(raw, next_generation(), version));
        self.set.store(fresh.clone());
        fresh
    }
}

/// Where a trust block's asymmetric keys come from.
pub(crate) enum KeySource {
    Remote(Arc<RemoteJwks>),
    Embedded(EmbeddedSource),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Remote(r) => write!(f, "Remote({})", r.uri()),
            KeySource::Embedded(_) => f.write_str("Embedded"),
        }
    }
}

impl KeySource {
    pub(crate) fn remote(&self) -> Option<&Arc<RemoteJwks>> {
        match self {
            KeySource::Remote(r) => Some(r),
            KeySource::Embedded(_) => None,
        }
    }

    /// The generation of the keys now in force, for checking verified-token cache entries.
    pub(crate) fn current_generation(&self) -> u64 {
        match self {
            KeySource::Remote(r) => r.current().generation,
            KeySource::Embedded(e) => e.current(false).generation,
        }
    }

    /// The keys now loaded, without fetching anything (for `explain`).
    pub(crate) fn loaded(&self) -> Arc<KeySet> {
        match self {
            KeySource::Remote(r) => r.current(),
            KeySource::Embedded(e) => e.current(false),
        }
    }

    /// Finds the key for a verified-to-be-allowed header; may refetch a remote set (rate-limited).
    pub(crate) async fn resolve<'a>(
        &self,
        header: &Header,
        hs: Option<&'a HsSecret>,
    ) -> Result<ResolvedKey<'a>, AuthnError> {
        if header.alg.family() == AlgorithmFamily::Hmac {
            return hs.map(ResolvedKey::Hs).ok_or(AuthnError::ALG_NOT_ALLOWED);
        }
        let kid = header.kid.as_deref();
        match self {
            KeySource::Embedded(e) => {
                let set = e.current(false);
                match lookup(set, kid, header.alg) {
                    Err(err) if err == AuthnError::UNKNOWN_KID => {
                        lookup(e.current(true), kid, header.alg)
                    }
                    other => other,
                }
            }
            KeySource::Remote(r) => {
                let set = r.usable_set().await?;
                match lookup(set, kid, header.alg) {
                    Err(err) if err == AuthnError::UNKNOWN_KID => {
                        let set = r.refetch_for_unknown_kid().await?;
                        lookup(set, kid, header.alg)
                    }
                    other => other,
                }
            }
        }
    }

    /// Like `resolve`, from the keys already loaded (no I/O).
    pub(crate) fn resolve_loaded<'a>(
        &self,
        header: &Header,
        hs: Option<&'a HsSecret>,
    ) -> Result<ResolvedKey<'a>, AuthnError> {
        if header.alg.family() == AlgorithmFamily::Hmac {
            return hs.map(ResolvedKey::Hs).ok_or(AuthnError::ALG_NOT_ALLOWED);
        }
        lookup(self.loaded(), header.kid.as_deref(), header.alg)
    }
}

fn lookup(
    set: Arc<KeySet>,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<ResolvedKey<'static>, AuthnError> {
    match set.find(kid, alg) {
        Lookup::Found(index) => Ok(ResolvedKey::Set { set, index }),
        Lookup::Mismatch => Err(AuthnError::KEY_MISMATCH),
        Lookup::Unknown => Err(AuthnError::UNKNOWN_KID),
    }
}
