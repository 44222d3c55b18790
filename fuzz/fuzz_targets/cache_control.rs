//! Remote key-set responses: the `Cache-Control` max-age (`jwks::cache_max_age`) is always
//! within its clamp, and a JWKS body of arbitrary bytes parses into usable keys or nothing,
//! without a panic. The first byte picks which; the rest is the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

use portcullis_authn::jwks::{MAX_MAX_AGE, MIN_MAX_AGE, cache_max_age};
use portcullis_authn::keys::KeySet;

/// How many keys of a fetched JWKS body are usable for verification.
fn jwks_usable_keys(body: &[u8]) -> Option<usize> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(body).ok()?;
    Some(KeySet::parse(Arc::new(set), 1, 0).len())
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let _ = jwks_usable_keys(rest);
        return;
    }
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let age = cache_max_age(value);
    let (lo, hi) = (MIN_MAX_AGE, MAX_MAX_AGE);
    assert!((lo..=hi).contains(&age), "{value:?} -> {age}");
});
