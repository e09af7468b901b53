// int8 conv, x86-64 AVX2. Activations are staged once per call as int16 (x - input_zero_point)
// in a spatially padded buffer (so padded taps contribute exactly 0, as in TFLite), weights are
// prepacked as int16 pairs; the 5x16 micro-kernel (10 accumulators: 6x16 spills with GCC) uses vpmaddwd (exact, no int16 saturation).
// Requantization is a vectorized, bit-exact transcription of TFLite's
// MultiplyByQuantizedMultiplier.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <cstring>

#include "../sweep.h"

// clang ignores `#pragma GCC target`: give every function below the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

#ifndef KCSP_AVX2_MR
#define KCSP_AVX2_MR 5
#endif
constexpr int kMR = KCSP_AVX2_MR;
constexpr int kNR = 16;
#ifndef KCSP_CHUNK_BYTES
#define KCSP_CHUNK_BYTES (96 * 1024)
#endif
constexpr int64_t kChunkBytes = KCSP_CHUNK_BYTES;
// Per output-channel block, 16 x int32 each: bias, multiplier, multiplier of the odd lanes moved
// to the even positions (for vpmuldq), left shift, right shift, (1 << right shift) - 1, and that
// mask >> 1 (the rounding threshold), and the fp32 requantization scale (float bits).
enum ParamRow { kBias = 0, kMult, kMultOdd, kLeftShift, kRightShift, kMask, kHalf, kScale, kParamRows };
constexpr size_t kParamBytes = kParamRows * kNR * sizeof(int32_t);

inline size_t BlockBytes(const PackedConvInt8& w) {
  const int taps = w.geometry_.kernel_h * w.geometry_.kernel_w;
  return kParamBytes + static_cast<size_t>(taps) * w.k_padded_ * kNR * sizeof(int16_t);
}

struct RequantConsts {
  __m256i zp, mn, mx;
  bool left_shift;  // some channel has a positive shift (effective scale >= 1)
  __m256i away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;     // XNNPACK's fp32 requantization instead of the fixed-point one
  __m256 fmin, fmax;  // fp32: output range relative to the zero point
};

inline __m256i Row(const int32_t* prm, int row, int half) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + row * kNR + half * 8));
}

inline __m256i Requant(__m256i acc, const int32_t* prm, int half, const RequantConsts& c) {
  __m256i x = _mm256_add_epi32(acc, Row(prm, kBias, half));
  if (c.fp32) {
    // As XNNPACK: cvt, multiply, clamp, round to nearest even (default MXCSR), add zero point.
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(x), _mm256_castsi256_ps(Row(prm, kScale, half)));
    f = _mm256_min_ps(_mm256_max_ps(f, c.fmin), c.fmax);
    return _mm256_add_epi32(_mm256_cvtps_epi32(f), c.zp);
  }
  if (c.left_shift) x = _mm256_sllv_epi32(x, Row(prm, kLeftShift, half));
  // SaturatingRoundingDoublingHighMul: floor((x * m + 2^30) / 2^31) (m >= 0, no saturation case).
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, Row(prm, kMult, half)), nudge);
  __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(x, 32), Row(prm, kMultOdd, half)), nudge);
  even = _mm256_srli_epi64(even, 31);
  odd = _mm256_slli_epi64(odd, 1);
  const __m256i h = _mm256_blend_epi32(even, odd, 0xAA);
  // RoundingDivideByPOT: ties away from zero (reference) or up (optimized TFLite).
  const __m256i rsh = Row(prm, kRightShift, half);
  const __m256i rem = _mm256_and_si256(h, Row(prm, kMask, half));
  const __m256i thr = _mm256_sub_epi32(
      Row(prm, kHalf, half),
      _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), h), c.away));
  __m256i r = _mm256_sub_epi32(_mm256_srav_epi32(h, rsh), _mm256_cmpgt_epi32(rem, thr));
  r = _mm256_add_epi32(r, c.zp);
  r = _mm256_max_epi32(r, c.mn);
  return _mm256_min_epi32(r, c.mx);
}

inline void StoreRow(__m256i acc0, __m256i acc1, const int32_t* prm, const RequantConsts& c,
                     int8_t* o, int n) {
  const __m256i r0 = Requant(acc0, prm, 0, c);
  const __m256i r1 = Requant(acc1, prm, 1, c);
  __m256i p16 = _mm256_packs_epi32(r0, r1);
  p16 = _mm256_permute4x64_epi64(p16, 0xD8);
  const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
  if (n == kNR) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), p8);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), p8);
    std::memcpy(o, tmp, n);
  }
}

inline __m256i Bcast(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

// MR output pixels x 16 output channels.
template <int MR>
void KernelMx16(int m, const int16_t* const* a, const int64_t* tap_off, int taps, int kp2,
                const int16_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const int16_t* ap[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ap[i] = a[i] + off;
    for (int k = 0; k < kp2; ++k) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16));
      w += 32;
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256i b = Bcast(ap[i] + 2 * k);
        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b, w0));
        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b, w1));
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    if (i < m) StoreRow(acc[i][0], acc[i][1], prm, c, o[i], n);
}

}  // namespace

Status PackInt8Avx2(PackedConvInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int taps = g.kernel_h * g.kernel_w;
  w->nr_ = kNR;
  w->k_padded_ = RoundUp(g.in_channels, 2);
  const int kp2 = w->k_padded_ / 2;
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wp = reinterpret_cast<int16_t*>(base + bi * bb + kParamBytes);
    for (int j = 0; j < kNR; ++j) {
      const int oc = bi * kNR + j;
      if (oc >= g.out_channels) continue;
      const int32_t rs = w->right_shift_[oc];
      const int32_t mask = static_cast<int32_t>((int64_t{1} << rs) - 1);
      prm[kBias * kNR + j] = w->bias_[oc];
      prm[kMult * kNR + j] = w->quant_.output_multiplier[oc];
      if (j % 2 == 1) prm[kMultOdd * kNR + j - 1] = w->quant_.output_multiplier[oc];
      prm[kLeftShift * kNR + j] = w->left_shift_[oc];
      prm[kRightShift * kNR + j] = rs;
      prm[kMask * kNR + j] = mask;
      prm[kHalf * kNR + j] = mask >> 1;
      if (w->quant_.rounding == Rounding::kFp32)
        std::memcpy(&prm[kScale * kNR + j], &w->quant_.requant_scale[oc], sizeof(float));
      for (int t = 0; t < taps; ++t)
        for (int k = 0; k < g.in_channels; ++k)
          wp[((static_cast<size_t>(t) * kp2 + k / 2) * kNR + j) * 2 + (k % 2)] =
              w->weights_[(static_cast<size_t>(oc) * taps + t) * g.in_channels + k];
    }
  }
  return Status::Ok();
}

Status ConvInt8Avx2(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  RequantConsts c;
  c.zp = _mm256_set1_epi32(w.quant_.output_zero_point);
  c.mn = _mm256_set1_epi32(w.quant_.act_min);
  c.mx = _mm256_set1_epi32(w.quant_.act_max);
  c.away = _mm256_set1_epi32(w.quant_.rounding == Rounding::kAwayFromZero ? -1 : 0);
  c.left_shift = false;
  for (int s : w.left_shift_) c.left_shift = c.left_shift || s > 0;
  c.fp32 = w.quant_.rounding == Rounding::kFp32;
  c.fmin = _mm256_set1_ps(static_cast<float>(w.quant_.act_min - w.quant_.output_zero_point));
  c.fmax = _mm256_set1_ps(static_cast<float>(w.quant_.act_max - w.quant_.output_zero_point));
  const size_t bb = BlockBytes(w);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const int kp2 = w.k_padded_ / 2;
  const int16_t zp = static_cast<int16_t>(w.quant_.input_zero_point);
  // int16 (x - zp): padded taps contribute exactly 0, as in TFLite.
  return SweepInt8<kMR, kNR>(
      w, p, in, out, int16_t{0}, [zp](int8_t v) { return static_cast<int16_t>(v - zp); },
      kChunkBytes,
      [&](int m, const int16_t* const* a, const int64_t* tap_off, int taps, int bi,
          int8_t* const* o, int n) {
        const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
        const auto* wp = reinterpret_cast<const int16_t*>(base + bi * bb + kParamBytes);
        KernelMx16<kMR>(m, a, tap_off, taps, kp2, wp, prm, c, o, n);
      });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
