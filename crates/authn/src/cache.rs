//! The verified-token cache: a repeat token skips signature verification, never the clock.
//!
//! Keyed by the SHA-256 of the exact token (so a 16 KiB token costs 32 bytes of key and no
//! token is kept in memory). An entry lives until `min(exp + leeway, insert + ttl)`, is checked
//! against the injected clock on every hit, and is only trusted while the issuer's key set is
//! the one it was verified with (the caller compares generations).

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::claims::Window;
use portcullis_core::identity::Principal;

pub(crate) type CacheKey = [u8; 32];

/// The key is a SHA-256 digest, uniform already, and only verified tokens are inserted, so the
/// map's hash is the digest's first eight bytes rather than SipHash over all of it again.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length then its bytes: keep the bytes.
        if let Some(head) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*head);
        }
    }

    fn write_usize(&mut self, _len: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Entry {
    principal: Arc<Principal>,
    trust: usize,
    generation: u64,
    valid_from: u64,
    valid_until: u64,
}

/// A hit: who, and which trust block and key generation vouched for it.
pub(crate) struct Hit {
    pub principal: Arc<Principal>,
    pub trust: usize,
    pub generation: u64,
}

pub(crate) struct TokenCache {
    map: DashMap<CacheKey, Entry, BuildHasherDefault<DigestHasher>>,
    ttl: u64,
    max_entries: usize,
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            map: DashMap::default(),
            ttl: ttl.as_secs(),
            max_entries,
        }
    }

    /// The key of `token`, or `None` when the cache is disabled.
    pub(crate) fn key(&self, token: &str) -> Option<CacheKey> {
        if self.max_entries == 0 || self.ttl == 0 {
            return None;
        }
        Some(Sha256::digest(token.as_bytes()).into())
    }

    /// A live entry at `now`; an expired one is dropped.
    pub(crate) fn get(&self, key: &CacheKey, now: u64) -> Option<Hit> {
        let live = {
            let e = self.map.get(key)?;
            (now >= e.valid_from && now < e.valid_until).then(|| Hit {
                principal: Arc::clone(&e.principal),
                trust: e.trust,
                generation: e.generation,
            })
        };
        if live.is_none() {
            self.map.remove(key);
        }
        live
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        self.map.remove(key);
    }

    pub(crate) fn insert(
        &self,
        key: CacheKey,
        principal: &Arc<Principal>,
        trust: usize,
        generation: u64,
        window: &Window,
        now: u64,
    ) {
        if self.max_entries == 0 {
            return;
        }
        let valid_until = window.valid_until.min(now.saturating_add(self.ttl));
        if valid_until <= now {
            return;
        }
        if self.map.len() >= self.max_entries {
            self.evict(now);
        }
        self.map.insert(
            key,
            Entry {
                principal: Arc::clone(principal),
                trust,
                generation,
                valid_from: window.valid_from,
                valid_until,
            },
        );
    }

    /// Makes room: first the expired entries, then (if still full) an arbitrary tenth.
    fn evict(&self, now: u64) {
        self.map.retain(|_, e| e.valid_until > now);
        if self.map.len() >= self.max_entries {
            let victims: Vec<CacheKey> = self
                .map
                .iter()
                .take((self.max_entries / 10).max(1))
                .map(|e| *e.key())
                .collect();
            for k in victims {
                self.map.remove(&k);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_digest_hashes_to_its_own_first_bytes() {
        let build = BuildHasherDefault::<DigestHasher>::default();
        let mut a: CacheKey = [7; 32];
        a[..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
        // If the array's Hash ever fed its length through `write`, every key would collide.
        assert_eq!(build.hash_one(a), 0x0123_4567_89ab_cdef);
        let b: CacheKey = Sha256::digest(b"another token").into();
        assert_ne!(build.hash_one(a), build.hash_one(b));
    }
}
