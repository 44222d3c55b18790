//! Verification keys: JWKs parsed once into `DecodingKey`s, looked up by `kid` and algorithm.
//!
//! A key is only ever used with an algorithm its type allows (RSA keys for RS/PS, P-256 for
//! ES256, P-384 for ES384, Ed25519 for EdDSA) and, when the JWK names an `alg`, only that one.
//! Symmetric (`oct`) JWKs are never loaded: HS algorithms use the configured `hs_secret` alone.
//!
//! Where a set comes from (the embedded issuer, a remote JWKS) is `source`'s concern; this
//! module only parses and searches one set, and numbers set generations for both.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// The generation of tokens verified with the `hs_secret`: it can only change by a reload,
/// which drops the whole cache. Key-set generations start above it.
pub(crate) const HS_GENERATION: u64 = 0;

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A fresh generation number, unique across every key set of the process.
pub(crate) fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// The shared secret of HS256/384/512. Its `Debug` never shows it.
pub(crate) struct HsSecret(DecodingKey);

impl HsSecret {
    pub(crate) fn new(secret: &str) -> Self {
        Self(DecodingKey::from_secret(secret.as_bytes()))
    }
}

impl fmt::Debug for HsSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One verification key and the algorithms it may verify.
pub(crate) struct ParsedKey {
    pub kid: Option<String>,
    algs: Vec<Algorithm>,
    pub key: DecodingKey,
}

impl ParsedKey {
    fn from_jwk(jwk: &Jwk) -> Option<ParsedKey> {
        match &jwk.common.public_key_use {
            None | Some(PublicKeyUse::Signature) => {}
            Some(_) => return None,
        }
        // A JWK's own `alg` narrows it to that algorithm; an unsupported one (RSA-OAEP) drops it.
        let named = match jwk.common.key_algorithm {
            Some(a) => Some(Algorithm::try_from(a).ok()?),
            None => None,
        };
        let (family_algs, key): (Vec<Algorithm>, DecodingKey) = match &jwk.algorithm {
            AlgorithmParameters::RSA(p) => (
                AlgorithmFamily::Rsa.algorithms().to_vec(),
                DecodingKey::from_rsa_components(&p.n, &p.e).ok()?,
            ),
            AlgorithmParameters::EllipticCurve(p) => {
                let alg = match p.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    _ => return None,
                };
                (vec![alg], DecodingKey::from_ec_components(&p.x, &p.y).ok()?)
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => (
                vec![Algorithm::EdDSA],
                DecodingKey::from_ed_components(&p.x).ok()?,
            ),
            _ => return None,
        };
        let algs = match named {
            Some(a) if family_algs.contains(&a) => vec![a],
            Some(_) => return None,
            None => family_algs,
        };
        Some(ParsedKey {
            kid: jwk.common.key_id.clone(),
            algs,
            key,
        })
    }

    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algs.contains(&alg)
    }
}

/// The keys of one issuer at one moment. Immutable; replaced whole on a change.
pub struct KeySet {
    pub(crate) generation: u64,
    pub(crate) keys: Vec<ParsedKey>,
    /// What the keys were parsed from, to tell a real change from a refetch of the same set.
    pub(crate) raw: Arc<JwkSet>,
    /// The embedded issuer's version this set was read at (0 for remote sets).
    pub(crate) source_version: u64,
}

/// Outcome of looking a token's key up in a set.
pub(crate) enum Lookup {
    Found(usize),
    /// The `kid` exists, but not for this algorithm (key confusion attempt or misconfiguration).
    Mismatch,
    Unknown,
}

impl KeySet {
    pub(crate) fn empty() -> Self {
        Self {
            generation: next_generation(),
            keys: Vec::new(),
            raw: Arc::new(JwkSet { keys: Vec::new() }),
            source_version: 0,
        }
    }

    /// Parses every usable signing key of `raw`; the rest (encryption, `oct`, unknown) is skipped.
    /// `generation` tells cached tokens which set verified them; `source_version` is the
    /// embedded issuer's version the set was read at (0 for remote sets).
    pub fn parse(raw: Arc<JwkSet>, generation: u64, source_version: u64) -> Self {
        let keys = raw.keys.iter().filter_map(ParsedKey::from_jwk).collect();
        Self {
            generation,
            keys,
            raw,
            source_version,
        }
    }

    /// How many usable verification keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key (every token's key would be unknown).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for `kid` and `alg`. Without a `kid`, only an unambiguous key is used.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        match kid {
            Some(kid) => {
                let mut seen = false;
                for (i, k) in self.keys.iter().enumerate() {
                    if k.kid.as_deref() == Some(kid) {
                        if k.allows(alg) {
                            return Lookup::Found(i);
                        }
                        seen = true;
                    }
                }
                if seen {
                    Lookup::Mismatch
                } else {
                    Lookup::Unknown
                }
            }
            None => {
                let mut fits = self.keys.iter().enumerate().filter(|(_, k)| k.allows(alg));
                match (fits.next(), fits.next()) {
                    (Some((i, _)), None) => Lookup::Found(i),
                    _ => Lookup::Unknown,
                }
            }
        }
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.kid.clone()).collect()
    }
}

/// A key chosen for one token, with the generation of the set it came from.
pub(crate) enum ResolvedKey<'a> {
    Set { set: Arc<KeySet>, index: usize },
    Hs(&'a HsSecret),
}

impl ResolvedKey<'_> {
    pub(crate) fn key(&self) -> Option<&DecodingKey> {
        match self {
            ResolvedKey::Set { set, index } => set.keys.get(*index).map(|k| &k.key),
            ResolvedKey::Hs(s) => Some(&s.0),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        match self {
            ResolvedKey::Set { set, .. } => set.generation,
            ResolvedKey::Hs(_) => HS_GENERATION,
        }
    }
}
