//! The AVX2 compression function G: BLAKE2b's round with BlaMka's multiply-add, four 64-bit
//! lanes per instruction.

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
        3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13,
        14, 15, 8, 9, 10,
    );
    _mm256_shuffle_epi8(x, idx)
}

#[target_feature(enable = "avx2")]
#[inline]
fn ror16(x: __m256i) -> __m256i {
    let idx = _mm256_setr_epi8(
        2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12,
        13, 14, 15, 8, 9,
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
        let v =
            unsafe { _mm256_xor_si256(_mm256_load_si256(xp.add(i)), _mm256_load_si256(yp.add(i))) };
        s[i] = v;
        r[i] = if xor {
            // SAFETY: as above.
            let o = unsafe { _mm256_load_si256(op.add(i)) };
            _mm256_xor_si256(v, o)
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
