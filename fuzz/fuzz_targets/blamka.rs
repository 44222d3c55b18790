//! `portcullis_blamka::compute` against the `argon2` crate on parameters, passwords and salts
//! from the fuzz input: where the CPU has AVX2 it must hash (never decline a v1.3 hash without
//! associated data) and give the crate's tag bit for bit; without AVX2 it must decline.

#![no_main]

use argon2::{Algorithm, Argon2, Params, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, m, t, p, len, salt_len, rest @ ..] = data else {
        return;
    };
    let alg = [Algorithm::Argon2d, Algorithm::Argon2i, Algorithm::Argon2id][usize::from(*a % 3)];
    let p = u32::from(*p % 4) + 1;
    // Small memories keep an input cheap; odd sizes exercise m' = 4p·⌊m / 4p⌋.
    let m = 8 * p + u32::from(*m) * 2;
    let t = u32::from(*t % 3) + 1;
    let len = usize::from(*len % 125) + 4;
    let salt_len = (usize::from(*salt_len % 57) + 8).min(rest.len());
    let (salt, pwd) = rest.split_at(salt_len);
    let Ok(params) = Params::new(m, t, p, Some(len)) else {
        return;
    };
    let mut want = vec![0u8; len];
    if Argon2::new(alg, Version::V0x13, params.clone())
        .hash_password_into(pwd, salt, &mut want)
        .is_err()
    {
        // Outside the crate's bounds (salt shorter than 8 bytes): nothing to compare.
        return;
    }
    let mut got = vec![0u8; len];
    let ran = portcullis_blamka::compute(alg, &params, pwd, salt, &mut got);
    assert_eq!(ran.is_some(), portcullis_blamka::available(), "{alg:?} m={m} t={t} p={p} len={len}");
    if ran.is_some() {
        assert_eq!(got, want, "{alg:?} m={m} t={t} p={p} len={len}");
    }
});
