// Element-wise post ops, x86-64 AVX-512 VBMI (+BW): the 256-entry table as two vpermt2b of 128
// entries (index bits 0-6) and a byte blend on bit 7; the ADD in 16-lane int32 (vpmovsxbd,
// vpmulld, vpsrad, clamp, vpmovdb). 64 bytes per step; the tail and short runs (a pixel's 16 or
// 32 channels of a concat slice) 16 bytes at a time, the rest under a byte mask.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vbmi,bmi2")
// GCC 12's AVX-512 headers build their own "undefined" registers (false positives, as in the conv).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "../elementwise_internal.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vbmi,bmi2"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

struct Consts {
  __m512i t0, t1, t2, t3;  // table bytes 0-63, 64-127, 128-191, 192-255
  __m512i y_mult, r_mult, bias, zp, lo, hi;
  __m128i shift;

  explicit Consts(const Int8PostOps& ops) {
    t0 = _mm512_load_si512(ops.table_);
    t1 = _mm512_load_si512(ops.table_ + 64);
    t2 = _mm512_load_si512(ops.table_ + 128);
    t3 = _mm512_load_si512(ops.table_ + 192);
    const Int8AddParams& a = ops.add_;
    y_mult = _mm512_set1_epi32(a.y_multiplier);
    r_mult = _mm512_set1_epi32(a.r_multiplier);
    bias = _mm512_set1_epi32(a.bias);
    zp = _mm512_set1_epi32(a.output_zero_point);
    lo = _mm512_set1_epi32(a.output_min);
    hi = _mm512_set1_epi32(a.output_max);
    shift = _mm_cvtsi32_si128(a.shift);
  }
};

inline __m512i Lookup(const Consts& k, __m512i x) {
  const __m512i low = _mm512_permutex2var_epi8(k.t0, x, k.t1);
  const __m512i high = _mm512_permutex2var_epi8(k.t2, x, k.t3);
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high);
}

// 16 elements (a quarter of y and r) -> int8.
inline __m128i Add16(const Consts& k, __m128i y, __m128i r) {
  const __m512i yy = _mm512_cvtepi8_epi32(y), rr = _mm512_cvtepi8_epi32(r);
  __m512i acc = _mm512_add_epi32(_mm512_add_epi32(k.bias, _mm512_mullo_epi32(yy, k.y_mult)), _mm512_mullo_epi32(rr, k.r_mult));
  acc = _mm512_add_epi32(_mm512_sra_epi32(acc, k.shift), k.zp);
  return _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(acc, k.lo), k.hi));
}

// `quarters` (1-4) of 16 bytes are wanted: a pixel's 16 channels take one ADD quarter, not four.
template <bool kTable, bool kAdd>
inline __m512i Post(const Consts& k, __m512i v, __m512i r, int quarters = 4) {
  if (kTable) v = Lookup(k, v);
  if (kAdd) {
    __m512i out = _mm512_zextsi128_si512(Add16(k, _mm512_castsi512_si128(v), _mm512_castsi512_si128(r)));
    if (quarters > 1) out = _mm512_inserti32x4(out, Add16(k, _mm512_extracti32x4_epi32(v, 1), _mm512_extracti32x4_epi32(r, 1)), 1);
    if (quarters > 2) out = _mm512_inserti32x4(out, Add16(k, _mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(r, 2)), 2);
    if (quarters > 3) out = _mm512_inserti32x4(out, Add16(k, _mm512_extracti32x4_epi32(v, 3), _mm512_extracti32x4_epi32(r, 3)), 3);
    v = out;
  }
  return v;
}

// 64 bytes at a time, then 16 (unmasked xmm loads and stores: a pixel's 16 channels were just
// written by the conv's 16-byte stores, and a 64-byte masked load over them missed store-to-load
// forwarding, stalling on every pixel: 40 % of a YOLOv5 C3 block on Zen 4), then a masked rest.
template <bool kTable, bool kAdd>
void Run(const Consts& k, int8_t* y, const int8_t* r, int64_t n) {
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {
    const __m512i rv = kAdd ? _mm512_loadu_si512(r + c) : _mm512_setzero_si512();
    _mm512_storeu_si512(y + c, Post<kTable, kAdd>(k, _mm512_loadu_si512(y + c), rv));
  }
  for (; c + 16 <= n; c += 16) {
    const __m512i yv = _mm512_zextsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + c)));
    const __m512i rv =
        kAdd ? _mm512_zextsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + c))) : _mm512_setzero_si512();
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + c), _mm512_castsi512_si128(Post<kTable, kAdd>(k, yv, rv, 1)));
  }
  if (c < n) {
    const __mmask64 m = _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(n - c));
    const __m512i rv = kAdd ? _mm512_maskz_loadu_epi8(m, r + c) : _mm512_setzero_si512();
    _mm512_mask_storeu_epi8(y + c, m, Post<kTable, kAdd>(k, _mm512_maskz_loadu_epi8(m, y + c), rv, 1));
  }
}

}  // namespace

void PostOpsAvx512Vbmi(const Int8PostOps& ops, int8_t* y, int64_t runs, int64_t y_stride, int64_t n,
                       const int8_t* r, int64_t r_stride) {
  const Consts k(ops);
  ForEachRun(ops, y, runs, y_stride, n, r, r_stride, [&](auto table, auto add, int8_t* yi, const int8_t* ri, int64_t len) {
    Run<decltype(table)::value, decltype(add)::value>(k, yi, ri, len);
  });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
