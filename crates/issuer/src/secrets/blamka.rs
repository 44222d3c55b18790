//! Argon2 (RFC 9106, version 0x13) with an AVX2 compression function and per-thread memory.
//!
//! The RustCrypto `argon2` crate relies on auto-vectorisation of a scalar compression function;
//! at Keycloak's parameters (argon2id, 7 MiB, t = 5) that and a fresh 7 MiB allocation per
//! hash made a password login cost more CPU than the peers'. This module computes the same
//! function with hand-scheduled AVX2 (four 64-bit lanes per instruction, two independent
//! BLAKE2b rounds interleaved to hide the multiply latency, byte-shuffle rotations, no block
//! copies) and reuses each thread's block memory. It is only used when the CPU has AVX2;
//! `compute` returns `None` otherwise and callers use the crate. The tests check it bit for bit
//! against the crate over every type and a spread of parameters.

use std::cell::RefCell;

use argon2::{Algorithm, Params};
use blake2::digest::block_api::{UpdateCore, VariableOutputCore};
use blake2::digest::block_buffer::LazyBuffer;
use blake2::{Blake2b512, Blake2bVarCore, Digest};

const WORDS: usize = 128;
const SYNC_POINTS: usize = 4;
/// Per-thread block memory above this is freed after each hash instead of kept.
const KEEP_BYTES: usize = 64 << 20;

/// One 1 KiB Argon2 block.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u64; WORDS]);

impl Block {
    const ZERO: Block = Block([0; WORDS]);

    fn from_bytes(b: &[u8; 1024]) -> Block {
        let mut out = Block::ZERO;
        for (w, c) in out.0.iter_mut().zip(b.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(c);
            *w = u64::from_le_bytes(le);
        }
        out
    }
}

thread_local! {
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether the fast path can run on this CPU.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Argon2 v0x13 of `pwd` and `salt` into `out` (its length is the tag length), with no secret
/// and no associated data. `None` when this CPU lacks AVX2 or the inputs are outside what the
/// fast path handles (the caller then uses the `argon2` crate).
pub fn compute(
    alg: Algorithm,
    params: &Params,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Option<()> {
    if !available() || out.len() < 4 || !params.data().is_empty() {
        return None;
    }
    let lanes = params.p_cost() as usize;
    let passes = params.t_cost() as usize;
    // m' = 4·p·⌊m / 4p⌋ blocks (Params guarantees m ≥ 8p).
    let lane_len = (params.m_cost() as usize / (SYNC_POINTS * lanes)) * SYNC_POINTS;
    let block_count = lane_len * lanes;
    if lanes == 0 || passes == 0 || lane_len < 2 * SYNC_POINTS {
        return None;
    }
    let h0 = initial_hash(alg, params, pwd, salt, out.len())?;
    MEMORY.with(|cell| {
        let mut mem = cell.borrow_mut();
        if mem.len() < block_count {
            mem.clear();
            mem.shrink_to_fit();
            mem.resize(block_count, Block::ZERO);
        }
        let blocks = &mut mem[..block_count];
        let res = fill(alg, blocks, &h0, lanes, lane_len, passes).and_then(|()| {
            let mut last = blocks[lane_len - 1];
            for l in 1..lanes {
                let b = &blocks[l * lane_len + lane_len - 1];
                for (x, y) in last.0.iter_mut().zip(b.0.iter()) {
                    *x ^= y;
                }
            }
            let mut bytes = [0u8; 1024];
            for (c, w) in bytes.chunks_exact_mut(8).zip(last.0.iter()) {
                c.copy_from_slice(&w.to_le_bytes());
            }
            h_prime(&[&bytes], out)
        });
        if mem.len() * size_of::<Block>() > KEEP_BYTES {
            *mem = Vec::new();
        }
        res
    })
}

fn type_code(alg: Algorithm) -> u32 {
    match alg {
        Algorithm::Argon2d => 0,
        Algorithm::Argon2i => 1,
        Algorithm::Argon2id => 2,
    }
}

/// H0 (RFC 9106 §3.2, step 1).
fn initial_hash(
    alg: Algorithm,
    params: &Params,
    pwd: &[u8],
    salt: &[u8],
    tag_len: usize,
) -> Option<[u8; 64]> {
    let le = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
    let mut h = Blake2b512::new();
    h.update(params.p_cost().to_le_bytes());
    h.update(le(tag_len)?);
    h.update(params.m_cost().to_le_bytes());
    h.update(params.t_cost().to_le_bytes());
    h.update(0x13u32.to_le_bytes());
    h.update(type_code(alg).to_le_bytes());
    h.update(le(pwd.len())?);
    h.update(pwd);
    h.update(le(salt.len())?);
    h.update(salt);
    h.update(0u32.to_le_bytes()); // no secret
    h.update(0u32.to_le_bytes()); // no associated data
    Some(h.finalize().into())
}

/// BLAKE2b with a digest length of `out.len()` (1..=64) over the concatenated `inputs`.
fn blake2b_var(inputs: &[&[u8]], out: &mut [u8]) -> Option<()> {
    let mut core = Blake2bVarCore::new(out.len()).ok()?;
    let mut buf = LazyBuffer::default();
    for i in inputs {
        buf.digest_blocks(i, |b| core.update_blocks(b));
    }
    let mut full = Default::default();
    core.finalize_variable_core(&mut buf, &mut full);
    out.copy_from_slice(full.get(..out.len())?);
    Some(())
}

/// H' (RFC 9106 §3.3): the variable-length hash, `LE32(T) || inputs`.
fn h_prime(inputs: &[&[u8]], out: &mut [u8]) -> Option<()> {
    let t = u32::try_from(out.len()).ok()?.to_le_bytes();
    let mut all: Vec<&[u8]> = Vec::with_capacity(inputs.len() + 1);
    all.push(&t);
    all.extend_from_slice(inputs);
    if out.len() <= 64 {
        return blake2b_var(&all, out);
    }
    let mut v = [0u8; 64];
    blake2b_var(&all, &mut v)?;
    let (head, mut rest) = out.split_at_mut(32);
    head.copy_from_slice(&v[..32]);
    while rest.len() > 64 {
        let mut next = [0u8; 64];
        blake2b_var(&[&v], &mut next)?;
        v = next;
        let (chunk, tail) = rest.split_at_mut(32);
        chunk.copy_from_slice(&v[..32]);
        rest = tail;
    }
    blake2b_var(&[&v], rest)
}

/// Fills every block (RFC 9106 §3.2 steps 3–6, §3.4 indexing).
fn fill(
    alg: Algorithm,
    blocks: &mut [Block],
    h0: &[u8; 64],
    lanes: usize,
    lane_len: usize,
    passes: usize,
) -> Option<()> {
    let seg_len = lane_len / SYNC_POINTS;
    for l in 0..lanes {
        let lane = u32::try_from(l).ok()?.to_le_bytes();
        for i in 0..2u32 {
            let mut b = [0u8; 1024];
            h_prime(&[h0, &i.to_le_bytes(), &lane], &mut b)?;
            *blocks.get_mut(l * lane_len + i as usize)? = Block::from_bytes(&b);
        }
    }
    let block_count = blocks.len();
    for pass in 0..passes {
        for slice in 0..SYNC_POINTS {
            // Lanes of one slice only read other lanes' finished slices, so doing them in
            // turn gives what parallel lanes would.
            for lane in 0..lanes {
                let independent = match alg {
                    Algorithm::Argon2i => true,
                    Algorithm::Argon2id => pass == 0 && slice < SYNC_POINTS / 2,
                    Algorithm::Argon2d => false,
                };
                let mut input = Block::ZERO;
                let mut address = Block::ZERO;
                if independent {
                    input.0[..6].copy_from_slice(&[
                        pass as u64,
                        lane as u64,
                        slice as u64,
                        block_count as u64,
                        passes as u64,
                        u64::from(type_code(alg)),
                    ]);
                }
                let first = if pass == 0 && slice == 0 { 2 } else { 0 };
                if independent && first != 0 {
                    next_addresses(&mut address, &mut input);
                }
                let base = lane * lane_len + slice * seg_len;
                // The block before a lane's first is its last (from the previous pass).
                let mut prev = if slice == 0 && first == 0 {
                    base + lane_len - 1
                } else {
                    base + first - 1
                };
                for idx in first..seg_len {
                    let cur = base + idx;
                    let rand = if independent {
                        if idx % WORDS == 0 {
                            next_addresses(&mut address, &mut input);
                        }
                        address.0[idx % WORDS]
                    } else {
                        blocks.get(prev)?.0[0]
                    };
                    let ref_lane = if pass == 0 && slice == 0 {
                        lane
                    } else {
                        ((rand >> 32) as usize) % lanes
                    };
                    let same = ref_lane == lane;
                    let area = match (pass, same) {
                        (0, true) => slice * seg_len + idx - 1,
                        (0, false) => slice * seg_len - usize::from(idx == 0),
                        (_, true) => lane_len - seg_len + idx - 1,
                        (_, false) => lane_len - seg_len - usize::from(idx == 0),
                    };
                    let j1 = rand & 0xffff_ffff;
                    let x = (j1 * j1) >> 32;
                    let y = ((area as u64) * x) >> 32;
                    let rel = area - 1 - y as usize;
                    let start = if pass != 0 && slice != SYNC_POINTS - 1 {
                        (slice + 1) * seg_len
                    } else {
                        0
                    };
                    let ref_index = ref_lane * lane_len + (start + rel) % lane_len;
                    compress_at(blocks, prev, ref_index, cur, pass != 0)?;
                    prev = cur;
                }
            }
        }
    }
    Some(())
}

/// The next 128 data-independent addresses: G(0, G(0, input)) after bumping the counter.
fn next_addresses(address: &mut Block, input: &mut Block) {
    input.0[6] = input.0[6].wrapping_add(1);
    let mut tmp = [Block::ZERO, *input, Block::ZERO];
    // tmp[2] = G(0, input); then address = G(0, tmp[2]).
    let _ = compress_at(&mut tmp, 0, 1, 2, false);
    tmp[1] = tmp[2];
    let _ = compress_at(&mut tmp, 0, 1, 2, false);
    *address = tmp[2];
}

/// `blocks[cur] = G(blocks[prev], blocks[refi])`, XORed into the old `blocks[cur]` when
/// `xor` (passes after the first). The three indices are distinct by construction.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn compress_at(
    blocks: &mut [Block],
    prev: usize,
    refi: usize,
    cur: usize,
    xor: bool,
) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            let [x, y, out] = blocks.get_disjoint_mut([prev, refi, cur]).ok()?;
            // SAFETY: AVX2 was detected on this CPU.
            unsafe { avx2::compress(x, y, out, xor) };
            return Some(());
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Block;

    /// `a + b + 2·lo32(a)·lo32(b)` per 64-bit lane: BlaMka's multiply-add.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn fbla(a: __m256i, b: __m256i) -> __m256i {
        let m = _mm256_mul_epu32(a, b);
        _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(m, m))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn ror32(x: __m256i) -> __m256i {
        _mm256_shuffle_epi32::<0b10_11_00_01>(x)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn ror24(x: __m256i) -> __m256i {
        let idx = _mm256_setr_epi8(
            3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12,
            13, 14, 15, 8, 9, 10,
        );
        _mm256_shuffle_epi8(x, idx)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn ror16(x: __m256i) -> __m256i {
        let idx = _mm256_setr_epi8(
            2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11,
            12, 13, 14, 15, 8, 9,
        );
        _mm256_shuffle_epi8(x, idx)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn ror63(x: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_srli_epi64::<63>(x), _mm256_add_epi64(x, x))
    }

    /// BLAKE2b's G with BlaMka on two independent sets of four quarter-rounds, interleaved
    /// step by step: one G is a serial chain of multiplies, so two overlap their latencies.
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn g2(
        a: &mut __m256i,
        b: &mut __m256i,
        c: &mut __m256i,
        d: &mut __m256i,
        e: &mut __m256i,
        f: &mut __m256i,
        h: &mut __m256i,
        k: &mut __m256i,
    ) {
        *a = fbla(*a, *b);
        *e = fbla(*e, *f);
        *d = ror32(_mm256_xor_si256(*d, *a));
        *k = ror32(_mm256_xor_si256(*k, *e));
        *c = fbla(*c, *d);
        *h = fbla(*h, *k);
        *b = ror24(_mm256_xor_si256(*b, *c));
        *f = ror24(_mm256_xor_si256(*f, *h));
        *a = fbla(*a, *b);
        *e = fbla(*e, *f);
        *d = ror16(_mm256_xor_si256(*d, *a));
        *k = ror16(_mm256_xor_si256(*k, *e));
        *c = fbla(*c, *d);
        *h = fbla(*h, *k);
        *b = ror63(_mm256_xor_si256(*b, *c));
        *f = ror63(_mm256_xor_si256(*f, *h));
    }

    /// P on rows r and r+1 (each 16 consecutive words v0..v15 = a | b | c | d): the column
    /// step, then the diagonal step with lane i of b, c, d rotated to lane i-1, i-2, i-3, and back.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn row(s: &mut [__m256i; 32], r: usize) {
        let (mut a, mut b, mut c, mut d) = (s[4 * r], s[4 * r + 1], s[4 * r + 2], s[4 * r + 3]);
        let q = r + 1;
        let (mut e, mut f, mut h, mut k) = (s[4 * q], s[4 * q + 1], s[4 * q + 2], s[4 * q + 3]);
        g2(
            &mut a, &mut b, &mut c, &mut d, &mut e, &mut f, &mut h, &mut k,
        );
        b = _mm256_permute4x64_epi64::<0b00_11_10_01>(b);
        c = _mm256_permute4x64_epi64::<0b01_00_11_10>(c);
        d = _mm256_permute4x64_epi64::<0b10_01_00_11>(d);
        f = _mm256_permute4x64_epi64::<0b00_11_10_01>(f);
        h = _mm256_permute4x64_epi64::<0b01_00_11_10>(h);
        k = _mm256_permute4x64_epi64::<0b10_01_00_11>(k);
        g2(
            &mut a, &mut b, &mut c, &mut d, &mut e, &mut f, &mut h, &mut k,
        );
        s[4 * r] = a;
        s[4 * r + 1] = _mm256_permute4x64_epi64::<0b10_01_00_11>(b);
        s[4 * r + 2] = _mm256_permute4x64_epi64::<0b01_00_11_10>(c);
        s[4 * r + 3] = _mm256_permute4x64_epi64::<0b00_11_10_01>(d);
        s[4 * q] = e;
        s[4 * q + 1] = _mm256_permute4x64_epi64::<0b10_01_00_11>(f);
        s[4 * q + 2] = _mm256_permute4x64_epi64::<0b01_00_11_10>(h);
        s[4 * q + 3] = _mm256_permute4x64_epi64::<0b00_11_10_01>(k);
    }

    /// Swaps the two 64-bit words inside each 128-bit half.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn swap(x: __m256i) -> __m256i {
        _mm256_shuffle_epi32::<0b01_00_11_10>(x)
    }

    /// P on columns 2k and 2k+1. Column j is the word pairs (2j, 2j+1) of rows 0..7, so
    /// register k of row r holds that row's pair of column 2k (low half) and of 2k+1 (high
    /// half). Per half: a0 = rows 0 = (v0 v1), a1 = row 1 = (v2 v3), b0/b1 = rows 2/3,
    /// c0/c1 = rows 4/5, d0/d1 = rows 6/7.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn col(s: &mut [__m256i; 32], k: usize) {
        let (mut a0, mut a1) = (s[k], s[4 + k]);
        let (mut b0, mut b1) = (s[8 + k], s[12 + k]);
        let (mut c0, mut c1) = (s[16 + k], s[20 + k]);
        let (mut d0, mut d1) = (s[24 + k], s[28 + k]);
        g2(
            &mut a0, &mut b0, &mut c0, &mut d0, &mut a1, &mut b1, &mut c1, &mut d1,
        );
        // Diagonals: (v0 v1) meet (v5 v6), (v10 v11), (v15 v12); (v2 v3) meet (v7 v4),
        // (v8 v9), (v13 v14).
        let mut e0 = swap(_mm256_blend_epi32::<0b0011_0011>(b0, b1));
        let mut e1 = swap(_mm256_blend_epi32::<0b1100_1100>(b0, b1));
        let mut f0 = swap(_mm256_blend_epi32::<0b1100_1100>(d0, d1));
        let mut f1 = swap(_mm256_blend_epi32::<0b0011_0011>(d0, d1));
        g2(
            &mut a0, &mut e0, &mut c1, &mut f0, &mut a1, &mut e1, &mut c0, &mut f1,
        );
        s[k] = a0;
        s[4 + k] = a1;
        s[8 + k] = swap(_mm256_blend_epi32::<0b1100_1100>(e0, e1));
        s[12 + k] = swap(_mm256_blend_epi32::<0b0011_0011>(e0, e1));
        s[16 + k] = c0;
        s[20 + k] = c1;
        s[24 + k] = swap(_mm256_blend_epi32::<0b0011_0011>(f0, f1));
        s[28 + k] = swap(_mm256_blend_epi32::<0b1100_1100>(f0, f1));
    }

    /// `*out = G(x, y)`, or `*out ^= G(x, y)` when `xor`.
    #[target_feature(enable = "avx2")]
    pub fn compress(x: &Block, y: &Block, out: &mut Block, xor: bool) {
        let xp = x.0.as_ptr().cast::<__m256i>();
        let yp = y.0.as_ptr().cast::<__m256i>();
        let op = out.0.as_mut_ptr().cast::<__m256i>();
        let mut s = [_mm256_setzero_si256(); 32];
        let mut r = [_mm256_setzero_si256(); 32];
        for i in 0..32 {
            // SAFETY: a Block is 1 KiB aligned to 64 bytes, so 32 aligned __m256i; the
            // references make every pointer valid, and `out` is exclusive.
            let v = unsafe {
                _mm256_xor_si256(_mm256_load_si256(xp.add(i)), _mm256_load_si256(yp.add(i)))
            };
            s[i] = v;
            // SAFETY: as above.
            r[i] = if xor {
                _mm256_xor_si256(v, unsafe { _mm256_load_si256(op.add(i)) })
            } else {
                v
            };
        }
        for i in (0..8).step_by(2) {
            row(&mut s, i);
        }
        for k in 0..4 {
            col(&mut s, k);
        }
        for i in 0..32 {
            // SAFETY: as above.
            unsafe { _mm256_store_si256(op.add(i), _mm256_xor_si256(s[i], r[i])) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Argon2, Version};

    #[test]
    fn matches_the_argon2_crate() {
        if !available() {
            return;
        }
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
            compute(alg, &params, &pwd, &salt, &mut got).unwrap();
            assert_eq!(want, got, "{alg:?} m={m} t={t} p={p} len={len}");
        }
        // Keycloak's parameters, with memory reused from the cases above.
        let params = Params::new(7168, 5, 1, Some(32)).unwrap();
        let (mut want, mut got) = ([0u8; 32], [0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into(b"alice-pw", b"saltsaltsalt", &mut want)
            .unwrap();
        compute(
            Algorithm::Argon2id,
            &params,
            b"alice-pw",
            b"saltsaltsalt",
            &mut got,
        )
        .unwrap();
        assert_eq!(want, got);
    }
}
