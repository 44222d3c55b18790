//! Tests: bit for bit against the `argon2` crate, the AVX2 path really running where the CPU
//! has AVX2, and the block memory zeroed after each hash.

use super::*;
use argon2::{Argon2, Version};

/// Whether this machine has AVX2, asked of the kernel rather than of `available()`, so a
/// broken detection fails the tests instead of quietly sending every hash to the slow path.
fn machine_has_avx2() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(info) => info
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "avx2")),
        // Not Linux: CPUID is the only witness.
        Err(_) => {
            #[cfg(target_arch = "x86_64")]
            {
                std::arch::is_x86_feature_detected!("avx2")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        }
    }
}

fn keycloak() -> Params {
    Params::new(7168, 5, 1, Some(32)).unwrap()
}

#[test]
fn avx2_path_runs_where_the_cpu_has_avx2() {
    // Fails, never skips: on an AVX2 machine the fast path must be taken (at Keycloak's
    // parameters too); without AVX2 it must decline so the caller uses the crate.
    let has = machine_has_avx2();
    assert_eq!(available(), has, "AVX2 in /proc/cpuinfo: {has}");
    let mut out = [0u8; 32];
    let ran = compute(
        Algorithm::Argon2id,
        &keycloak(),
        b"pw",
        b"saltsalt",
        &mut out,
    );
    assert_eq!(ran.is_some(), has, "AVX2 on this machine: {has}");
}

#[test]
fn matches_the_argon2_crate() {
    let has = machine_has_avx2();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..48 {
        let alg = [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d][case % 3];
        let p = (rnd() % 4 + 1) as u32;
        let m = 8 * p + (rnd() % 300) as u32;
        let t = (rnd() % 4 + 1) as u32;
        let len = [4usize, 16, 32, 33, 64, 65, 100][(rnd() % 7) as usize];
        let params = Params::new(m, t, p, Some(len)).unwrap();
        let pwd: Vec<u8> = (0..rnd() % 40).map(|_| rnd() as u8).collect();
        let salt: Vec<u8> = (0..8 + rnd() % 20).map(|_| rnd() as u8).collect();
        let (mut want, mut got) = (vec![0u8; len], vec![0u8; len]);
        Argon2::new(alg, Version::V0x13, params.clone())
            .hash_password_into(&pwd, &salt, &mut want)
            .unwrap();
        let ran = compute(alg, &params, &pwd, &salt, &mut got);
        assert_eq!(ran.is_some(), has, "{alg:?} m={m} t={t} p={p} len={len}");
        if has {
            assert_eq!(want, got, "{alg:?} m={m} t={t} p={p} len={len}");
        }
    }
    // Keycloak's parameters, with memory reused from the cases above.
    let params = keycloak();
    let (mut want, mut got) = ([0u8; 32], [0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into(b"alice-pw", b"saltsaltsalt", &mut want)
        .unwrap();
    let ran = compute(
        Algorithm::Argon2id,
        &params,
        b"alice-pw",
        b"saltsaltsalt",
        &mut got,
    );
    assert_eq!(ran.is_some(), has);
    if has {
        assert_eq!(want, got);
    }
}

#[test]
fn memory_is_zeroed_after_each_hash_and_large_memory_freed() {
    let mut out = [0u8; 32];
    let _ = compute(
        Algorithm::Argon2d,
        &keycloak(),
        b"pw",
        b"saltsalt",
        &mut out,
    );
    let kept = MEMORY.with(|m| m.borrow().mapped_bytes());
    assert_eq!(kept, if machine_has_avx2() { 7168 * 1024 } else { 0 });
    let zero = |m: &RefCell<Region<Block>>| {
        let mut m = m.borrow_mut();
        let n = m.mapped_bytes() / 1024;
        m.get(n, Block::ZERO)
            .unwrap()
            .iter()
            .all(|b| b.0.iter().all(|w| *w == 0))
    };
    assert!(MEMORY.with(zero));
    // A smaller hash uses the front of the kept memory and leaves it zeroed too.
    let small = Params::new(64, 2, 2, Some(32)).unwrap();
    let _ = compute(Algorithm::Argon2i, &small, b"pw", b"saltsalt", &mut out);
    assert_eq!(MEMORY.with(|m| m.borrow().mapped_bytes()), kept);
    assert!(MEMORY.with(zero));
    // Above KEEP_BYTES the memory is given back.
    let big = Params::new((KEEP_BYTES / 1024) as u32 + 64, 1, 1, Some(32)).unwrap();
    let _ = compute(Algorithm::Argon2id, &big, b"pw", b"saltsalt", &mut out);
    assert_eq!(MEMORY.with(|m| m.borrow().mapped_bytes()), 0);
}

#[test]
fn block_memory_is_returned_to_the_os_when_its_thread_ends() {
    // The mapping is gone once its thread has ended (unmapped, not merely freed into an
    // allocator that keeps it): no mapping in /proc/self/maps covers its range any more. The
    // size is one no other test maps, so another test's mapping cannot fill the hole.
    if !machine_has_avx2() {
        return;
    }
    let m_cost = 7236;
    let covered = |(start, len): (usize, usize)| {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .any(|l| {
                let range = l.split_whitespace().next().unwrap();
                let (a, b) = range.split_once('-').unwrap();
                let a = usize::from_str_radix(a, 16).unwrap();
                let b = usize::from_str_radix(b, 16).unwrap();
                a <= start && start + len <= b
            })
    };
    let (range, while_alive) = std::thread::spawn(move || {
        let params = Params::new(m_cost, 1, 1, Some(32)).unwrap();
        let mut out = [0u8; 32];
        compute(Algorithm::Argon2id, &params, b"pw", b"saltsalt", &mut out).unwrap();
        let range = MEMORY.with(|m| {
            let mut m = m.borrow_mut();
            let len = m.mapped_bytes();
            (m.get(1, Block::ZERO).unwrap().as_ptr() as usize, len)
        });
        (range, covered(range))
    })
    .join()
    .unwrap();
    assert_eq!(range.1, m_cost as usize * 1024);
    assert!(while_alive);
    assert!(!covered(range), "the block memory outlived its thread");
}

#[test]
fn regions_grow_keep_their_values_and_release() {
    let mut r = Region::<u64>::new();
    assert_eq!(r.mapped_bytes(), 0);
    r.get(3, 7).unwrap().copy_from_slice(&[1, 2, 3]);
    assert_eq!(r.mapped_bytes(), 4096);
    // Growing within the mapping keeps the values and initialises the new ones.
    assert_eq!(r.get(5, 9).unwrap(), &[1, 2, 3, 9, 9]);
    assert_eq!(r.get(2, 0).unwrap(), &[1, 2]);
    // Past the mapping: a fresh one, all `init`.
    assert_eq!(
        r.get(1000, 4).unwrap().iter().filter(|v| **v == 4).count(),
        1000
    );
    assert_eq!(r.mapped_bytes(), 8192);
    r.release();
    assert_eq!(r.mapped_bytes(), 0);
    assert_eq!(r.get(1, 5).unwrap(), &[5]);
}

#[test]
fn declines_what_the_fast_path_does_not_handle() {
    let mut out = [0u8; 32];
    let mut b = argon2::ParamsBuilder::new();
    b.m_cost(64).t_cost(1).p_cost(1);
    b.data(argon2::AssociatedData::new(b"ad").unwrap());
    let with_data = b.build().unwrap();
    assert!(
        compute(
            Algorithm::Argon2id,
            &with_data,
            b"pw",
            b"saltsalt",
            &mut out
        )
        .is_none()
    );
    let mut short = [0u8; 3];
    assert!(
        compute(
            Algorithm::Argon2id,
            &keycloak(),
            b"pw",
            b"saltsalt",
            &mut short
        )
        .is_none()
    );
}
