//! Remote key-set responses: the `Cache-Control` max-age (`jwks::cache_max_age`) is always
//! within its clamp, and a JWKS body of arbitrary bytes parses into usable keys or nothing,
//! without a panic. The first byte picks which; the rest is the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::fuzzing::{CACHE_MAX_AGE_BOUNDS, cache_max_age, jwks_usable_keys};

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
    let (lo, hi) = CACHE_MAX_AGE_BOUNDS;
    assert!((lo..=hi).contains(&age), "{value:?} -> {age}");
});
