//! argon2id alone at the realm's parameters (Keycloak's defaults: m = 7168 KiB, t = 5, p = 1,
//! 32-byte tag), as the issuer verifies a password: blamka where it runs, else the crate in
//! reused memory. `benches/load/issuer.sh` times N hashes on the issuer's CPU (CPU time, from
//! outside) as the floor of a password login.
//!
//! usage: argon2id_floor [N]   (default 100; prints N)

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let Ok(params) = Params::new(7168, 5, 1, Some(32)) else {
        std::process::exit(1);
    };
    let (pwd, salt) = (b"alice-pw".as_slice(), b"0123456789abcdef".as_slice());
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut memory = Vec::new();
    let mut out = [0u8; 32];
    for _ in 0..n {
        if portcullis_blamka::compute(Algorithm::Argon2id, &params, pwd, salt, &mut out).is_none() {
            // What the issuer does without AVX2 (`secrets::hash_with_crate`).
            if memory.is_empty() {
                memory = vec![Block::new(); params.block_count()];
            }
            if argon2
                .hash_password_into_with_memory(pwd, salt, &mut out, &mut memory)
                .is_err()
            {
                std::process::exit(1);
            }
            memory.fill(Block::new());
        }
        std::hint::black_box(&mut out);
    }
    println!("{n}");
}
