// Element-wise post ops, x86-64 AVX2. The 256-entry table: 16 vpshufb per vector, each looking up
// one xor-folded 16-entry row (Int8PostOps::folded_, see FoldTable in elementwise_api.cc) while the
// index walks down by 16. The ADD: int8 -> int32 (vpmovsxbd), vpmulld, vpsrad, clamp, packs.
// Runs of 32 and 16 bytes; a shorter tail goes through a 16-byte stack copy.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2")
#include <immintrin.h>

#include <cstring>

#include "../elementwise_internal.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

struct Consts {
  __m256i rows[16];
  __m256i y_mult, r_mult, bias, zp, lo, hi;
  __m128i shift;

  explicit Consts(const Int8PostOps& ops) {
    for (int k = 0; k < 16; ++k)
      rows[k] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(ops.folded_ + 16 * k)));
    const Int8AddParams& a = ops.add_;
    y_mult = _mm256_set1_epi32(a.y_multiplier);
    r_mult = _mm256_set1_epi32(a.r_multiplier);
    bias = _mm256_set1_epi32(a.bias);
    zp = _mm256_set1_epi32(a.output_zero_point);
    lo = _mm256_set1_epi32(a.output_min);
    hi = _mm256_set1_epi32(a.output_max);
    shift = _mm_cvtsi32_si128(a.shift);
  }
};

inline __m256i Lookup(const Consts& k, __m256i x) {
  const __m256i sixteen = _mm256_set1_epi8(16);
  __m256i y = _mm256_shuffle_epi8(k.rows[0], x);
  for (int j = 1; j <= 8; ++j) {
    x = _mm256_sub_epi8(x, sixteen);
    y = _mm256_xor_si256(y, _mm256_shuffle_epi8(k.rows[j], x));
  }
  for (int j = 9; j < 16; ++j) {
    x = _mm256_subs_epi8(x, sixteen);
    y = _mm256_xor_si256(y, _mm256_shuffle_epi8(k.rows[j], x));
  }
  return y;
}

// 8 elements: int8 (the low 8 bytes of y8, r8) -> the ADD's int32 result, clamped.
inline __m256i Add8(const Consts& k, __m128i y8, __m128i r8) {
  const __m256i y = _mm256_cvtepi8_epi32(y8), r = _mm256_cvtepi8_epi32(r8);
  __m256i acc = _mm256_add_epi32(_mm256_add_epi32(k.bias, _mm256_mullo_epi32(y, k.y_mult)), _mm256_mullo_epi32(r, k.r_mult));
  acc = _mm256_add_epi32(_mm256_sra_epi32(acc, k.shift), k.zp);
  return _mm256_min_epi32(_mm256_max_epi32(acc, k.lo), k.hi);
}

// 16 elements.
inline __m128i Add16(const Consts& k, __m128i y, __m128i r) {
  const __m256i a = Add8(k, y, r), b = Add8(k, _mm_unpackhi_epi64(y, y), _mm_unpackhi_epi64(r, r));
  // packs works per 128-bit lane: [a0-3 b0-3 | a4-7 b4-7]; reorder the 64-bit quarters to a, b.
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
  return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

template <bool kTable, bool kAdd>
inline __m128i Post16(const Consts& k, __m128i y, const int8_t* r) {
  if (kTable) y = _mm256_castsi256_si128(Lookup(k, _mm256_castsi128_si256(y)));
  if (kAdd) y = Add16(k, y, _mm_loadu_si128(reinterpret_cast<const __m128i*>(r)));
  return y;
}

// 32 elements: the table, then the ADD with the residuals of the low and high 16 at r_lo / r_hi.
template <bool kTable, bool kAdd>
inline __m256i Post32(const Consts& k, __m256i v, const int8_t* r_lo, const int8_t* r_hi) {
  if (kTable) v = Lookup(k, v);
  if (kAdd) {
    const __m128i lo = Add16(k, _mm256_castsi256_si128(v), _mm_loadu_si128(reinterpret_cast<const __m128i*>(r_lo)));
    const __m128i hi = Add16(k, _mm256_extracti128_si256(v, 1), _mm_loadu_si128(reinterpret_cast<const __m128i*>(r_hi)));
    v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
  }
  return v;
}

template <bool kTable, bool kAdd>
void Run(const Consts& k, int8_t* y, const int8_t* r, int64_t n) {
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + c));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c),
                        Post32<kTable, kAdd>(k, v, kAdd ? r + c : nullptr, kAdd ? r + c + 16 : nullptr));
  }
  for (; c + 16 <= n; c += 16) {
    const __m128i v = Post16<kTable, kAdd>(k, _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + c)), kAdd ? r + c : nullptr);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + c), v);
  }
  if (c < n) {
    alignas(16) int8_t yt[16] = {}, rt[16] = {};
    std::memcpy(yt, y + c, n - c);
    if (kAdd) std::memcpy(rt, r + c, n - c);
    _mm_store_si128(reinterpret_cast<__m128i*>(yt), Post16<kTable, kAdd>(k, _mm_load_si128(reinterpret_cast<const __m128i*>(yt)), rt));
    std::memcpy(y + c, yt, n - c);
  }
}

// Runs of 32j + 16 bytes (a 16-channel conv's pixels inside a wider concat buffer): each run's
// 32-byte vectors, then the 16-byte tails of two runs as one vector. Each tail alone had run the
// whole 16-vpshufb lookup on a half-empty register.
template <bool kTable, bool kAdd>
void RunPairedTails(const Consts& k, int8_t* y, int64_t runs, int64_t y_stride, const int8_t* r, int64_t r_stride,
                    int64_t n) {
  const int64_t body = n - 16;
  int64_t i = 0;
  for (; i + 2 <= runs; i += 2) {
    int8_t* y0 = y + i * y_stride;
    int8_t* y1 = y0 + y_stride;
    const int8_t* r0 = kAdd ? r + i * r_stride : nullptr;
    const int8_t* r1 = kAdd ? r0 + r_stride : nullptr;
    if (body > 0) {
      Run<kTable, kAdd>(k, y0, r0, body);
      Run<kTable, kAdd>(k, y1, r1, body);
    }
    const __m256i v = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y0 + body))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(y1 + body)), 1);
    const __m256i w = Post32<kTable, kAdd>(k, v, kAdd ? r0 + body : nullptr, kAdd ? r1 + body : nullptr);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y0 + body), _mm256_castsi256_si128(w));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y1 + body), _mm256_extracti128_si256(w, 1));
  }
  if (i < runs) Run<kTable, kAdd>(k, y + i * y_stride, kAdd ? r + i * r_stride : nullptr, n);
}

}  // namespace

void PostOpsAvx2(const Int8PostOps& ops, int8_t* y, int64_t runs, int64_t y_stride, int64_t n, const int8_t* r,
                 int64_t r_stride) {
  const Consts k(ops);
  if (runs >= 2 && n % 32 == 16) {
    WithOpKinds(ops, [&](auto table, auto add) {
      RunPairedTails<decltype(table)::value, decltype(add)::value>(k, y, runs, y_stride, r, r_stride, n);
    });
    return;
  }
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
