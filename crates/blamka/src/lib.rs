//! Argon2 (RFC 9106, version 0x13) with a hand-scheduled AVX2 compression function and
//! per-thread block memory that is zeroed after each hash and given back to the OS when the
//! thread ends.
//!
//! The RustCrypto `argon2` crate (0.6) dispatches to AVX2 at run time, but only by compiling
//! its scalar compression function with AVX2 enabled and leaving the vectorisation to LLVM. At
//! Keycloak's parameters (argon2id, 7 MiB, t = 5) that costs 1.5–1.7× the CPU of this
//! implementation, also with the crate's block memory reused per thread
//! (`benches/README.md`, "argon2: blamka against the crate"). This crate computes the same
//! function with hand-scheduled AVX2 (four 64-bit lanes per instruction, two independent
//! BLAKE2b rounds interleaved to hide the multiply latency, byte-shuffle rotations, no block
//! copies) and reuses each thread's block memory. It only runs where the CPU has AVX2:
//! `compute` returns `None` otherwise and callers use the crate. The tests check it bit for bit
//! against the crate over every type and a spread of parameters.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::cell::RefCell;
use std::hint::black_box;

use argon2::{Algorithm, Params};
use blake2::digest::block_api::{UpdateCore, VariableOutputCore};
use blake2::digest::block_buffer::LazyBuffer;
use blake2::{Blake2b512, Blake2bVarCore, Digest};

#[cfg(target_arch = "x86_64")]
mod avx2;
mod region;
#[cfg(test)]
mod tests;

pub use region::Region;

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
    /// Kept between hashes so a login neither allocates nor page-faults in 7 MiB; all zero
    /// between hashes; unmapped when the thread ends.
    static MEMORY: RefCell<Region<Block>> = const { RefCell::new(Region::new()) };
}

/// Whether the fast path can run on this CPU.
#[must_use]
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
/// fast path handles (the caller then uses the `argon2` crate). The block memory is zeroed
/// before this returns: it is derived from the password.
#[must_use]
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
    let lane_len = (params.m_cost() as usize / (SYNC_POINTS * lanes.max(1))) * SYNC_POINTS;
    let block_count = lane_len * lanes;
    if lanes == 0 || passes == 0 || lane_len < 2 * SYNC_POINTS {
        return None;
    }
    let mut h0 = initial_hash(alg, params, pwd, salt, out.len())?;
    let res = MEMORY
        .try_with(|cell| {
            let mut mem = cell.try_borrow_mut().ok()?;
            let blocks = mem.get(block_count, Block::ZERO)?;
            let res = fill(alg, blocks, &h0, lanes, lane_len, passes)
                .and_then(|()| finalize(blocks, lanes, lane_len, out));
            wipe(blocks);
            if mem.mapped_bytes() > KEEP_BYTES {
                mem.release();
            }
            res
        })
        .ok()
        .flatten();
    wipe(&mut h0);
    res
}

/// Zeroes what held password-derived state; `black_box` keeps the stores from being
/// optimised away as dead (the memory is kept or freed right after).
fn wipe<T: Copy + Default>(v: &mut [T]) {
    v.fill(T::default());
    black_box(v);
}

impl Default for Block {
    fn default() -> Block {
        Block::ZERO
    }
}

/// The tag: H' of the XOR of every lane's last block (RFC 9106 §3.2, steps 7–8).
fn finalize(blocks: &[Block], lanes: usize, lane_len: usize, out: &mut [u8]) -> Option<()> {
    let mut last = [*blocks.get(lane_len - 1)?];
    for l in 1..lanes {
        let b = blocks.get(l * lane_len + lane_len - 1)?;
        for (x, y) in last[0].0.iter_mut().zip(b.0.iter()) {
            *x ^= y;
        }
    }
    let mut bytes = [0u8; 1024];
    for (c, w) in bytes.chunks_exact_mut(8).zip(last[0].0.iter()) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    let res = h_prime(&[&bytes], out);
    wipe(&mut last);
    wipe(&mut bytes);
    res
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
