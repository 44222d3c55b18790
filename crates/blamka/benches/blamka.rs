//! Criterion micro-benchmark: one argon2id hash at Keycloak's parameters (m = 7168 KiB, t = 5,
//! p = 1), this crate against the `argon2` crate, in one run.

use std::time::Duration;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let Ok(params) = Params::new(7168, 5, 1, Some(32)) else {
        return;
    };
    let (pwd, salt) = (b"alice-pw".as_slice(), b"0123456789abcdef".as_slice());
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; 32];
    let mut g = c.benchmark_group("argon2id_keycloak");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    if portcullis_blamka::available() {
        g.bench_function("blamka", |b| {
            b.iter(|| portcullis_blamka::compute(Algorithm::Argon2id, &params, pwd, salt, &mut out))
        });
    }
    // The crate as `argon2 0.6` is best used: run-time AVX2 dispatch, memory reused (and
    // zeroed after each hash, as blamka does).
    let mut memory = vec![Block::new(); params.block_count()];
    g.bench_function("crate_reused_memory", |b| {
        b.iter(|| {
            let r = argon2.hash_password_into_with_memory(pwd, salt, &mut out, &mut memory);
            memory.fill(Block::new());
            std::hint::black_box(&mut memory);
            r
        })
    });
    // What `PasswordVerifier` does: a fresh 7 MiB allocation per hash.
    g.bench_function("crate_fresh_memory", |b| {
        b.iter(|| argon2.hash_password_into(pwd, salt, &mut out))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
