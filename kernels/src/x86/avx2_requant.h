// The AVX2 int8 requantization epilogue, shared by the conv and depthwise AVX2 kernels: per block
// of 16 output channels, kParamRows rows of 16 int32 parameters, and a vectorized, bit-exact
// transcription of TFLite's MultiplyByQuantizedMultiplier (ties away from zero or up) or of
// XNNPACK's fp32 requantization. Include it after `#pragma GCC target("avx2,fma")` (clang, which
// ignores that pragma, gets its own target attribute below); everything is in an anonymous namespace.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "keras_csp/conv.h"
#include "store_bytes.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kRequantNR = 16;

// How an int8 kernel's sums leave it: XNNPACK's fp32 requantization two pixels at a time, the
// fixed-point one (TFLite's roundings), or int16 x - zero point for the next conv's staging
// (Conv2DInt8Chain). The AVX2 conv kernels choose it at compile time.
enum class Epilogue { kFp32, kFixed, kInt16 };

// An int16 pair (two consecutive K elements of a staged pixel) in every dword lane: the vpmaddwd
// operand of the AVX2 conv kernels' register tiles.
inline __m256i BroadcastPair(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}
// bias, multiplier, multiplier of the odd lanes moved to the even positions (for vpmuldq), left
// shift, right shift, (1 << right shift) - 1, that mask >> 1 (the rounding threshold), and the
// fp32 requantization scale (float bits).
enum ParamRow { kBias = 0, kMult, kMultOdd, kLeftShift, kRightShift, kMask, kHalf, kScale, kParamRows };
constexpr size_t kParamBytes = kParamRows * kRequantNR * sizeof(int32_t);

// The parameter rows of output channels [oc0, oc0 + 16) (those < quant's channel count).
inline void PackRequantParams(int32_t* prm, const Int8QuantParams& q, const std::vector<int32_t>& bias,
                              const std::vector<int32_t>& left_shift, const std::vector<int32_t>& right_shift,
                              int oc0) {
  const int oc_total = static_cast<int>(bias.size());
  for (int j = 0; j < kRequantNR; ++j) {
    const int oc = oc0 + j;
    if (oc >= oc_total) continue;
    const int32_t rs = right_shift[oc];
    const int32_t mask = static_cast<int32_t>((int64_t{1} << rs) - 1);
    prm[kBias * kRequantNR + j] = bias[oc];
    prm[kMult * kRequantNR + j] = q.output_multiplier[oc];
    if (j % 2 == 1) prm[kMultOdd * kRequantNR + j - 1] = q.output_multiplier[oc];
    prm[kLeftShift * kRequantNR + j] = left_shift[oc];
    prm[kRightShift * kRequantNR + j] = rs;
    prm[kMask * kRequantNR + j] = mask;
    prm[kHalf * kRequantNR + j] = mask >> 1;
    if (q.rounding == Rounding::kFp32) std::memcpy(&prm[kScale * kRequantNR + j], &q.requant_scale[oc], sizeof(float));
  }
}

struct RequantConsts {
  __m256i zp, mn, mx;
  bool left_shift;  // some channel has a positive shift (effective scale >= 1)
  __m256i away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;     // XNNPACK's fp32 requantization instead of the fixed-point one
  __m256 fmin, fmax;  // fp32: output range relative to the zero point
  __m256i zp16;       // fp32: output zero point, int16 lanes (Fp32Int16Sums)
  __m128i mn8;        // fp32: lower output bound, int8 lanes (Fp32Int16Sums)
};

inline RequantConsts MakeRequantConsts(const Int8QuantParams& q, const std::vector<int32_t>& left_shift) {
  RequantConsts c;
  c.zp = _mm256_set1_epi32(q.output_zero_point);
  c.mn = _mm256_set1_epi32(q.act_min);
  c.mx = _mm256_set1_epi32(q.act_max);
  c.away = _mm256_set1_epi32(q.rounding == Rounding::kAwayFromZero ? -1 : 0);
  c.left_shift = false;
  for (int s : left_shift) c.left_shift = c.left_shift || s > 0;
  c.fp32 = q.rounding == Rounding::kFp32;
  c.fmin = _mm256_set1_ps(static_cast<float>(q.act_min - q.output_zero_point));
  c.fmax = _mm256_set1_ps(static_cast<float>(q.act_max - q.output_zero_point));
  c.zp16 = _mm256_set1_epi16(static_cast<int16_t>(q.output_zero_point));
  c.mn8 = _mm_set1_epi8(static_cast<char>(q.act_min));
  return c;
}

// The epilogue of a call: the chain's int16 staging where the output is one (ConvProblem::out_i16),
// else the quantization's requantization.
inline Epilogue EpilogueFor(bool out_i16, const RequantConsts& c) {
  return out_i16 ? Epilogue::kInt16 : c.fp32 ? Epilogue::kFp32 : Epilogue::kFixed;
}

inline __m256i Row(const int32_t* prm, int row, int half) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + row * kRequantNR + half * 8));
}

// x = accumulator + bias (kernels whose accumulators start at the bias call this directly).
inline __m256i RequantSum(__m256i x, const int32_t* prm, int half, const RequantConsts& c) {
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

// XNNPACK's fp32 epilogue for 16 channels whose sums x0 / x1 hold the bias, up to int16: scale,
// clamp from above in float (so the conversion cannot overflow; below, INT_MIN saturates the same
// way), round to nearest even, saturating pack with the zero point added in int16. The lower bound
// follows in int8: the same bytes as RequantSum's float clamp on both sides plus the int32 zero
// point, four instructions fewer per 16 outputs. Lanes: per 128-bit lane 4 channels of x0, then 4 of x1.
inline __m256i Fp32Int16Sums(__m256i x0, __m256i x1, const int32_t* prm, const RequantConsts& c) {
  auto convert = [&](__m256i x, int half) {
    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(x), _mm256_castsi256_ps(Row(prm, kScale, half)));
    return _mm256_cvtps_epi32(_mm256_min_ps(f, c.fmax));
  };
  return _mm256_adds_epi16(_mm256_packs_epi32(convert(x0, 0), convert(x1, 1)), c.zp16);
}

// Two pixels' int16 lanes (each: channels 0-3, 8-11 | 4-7, 12-15) as bytes in channel order: pixel 0
// in the low half, pixel 1 in the high half. An in-lane pack, then one vpermd: packs_epi16
// interleaves the pixels by 64-bit halves, dwords [p0 0-3, p0 8-11, p1 0-3, p1 8-11 | p0 4-7, p0 12-15,
// p1 4-7, p1 12-15]. One pixel alone: p1 = p0, its bytes in the low half.
inline __m256i PackPixelPair(__m256i p0, __m256i p1) {
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p0, p1), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The fp32 epilogue for two pixels' 16 channels whose sums already hold the bias: the two pixels
// share the int16 -> int8 pack, one vpermd and the lower clamp. o1 may be null (an odd last pixel).
inline void StorePixelPairFp32Sums(__m256i lo0, __m256i hi0, __m256i lo1, __m256i hi1, const int32_t* prm,
                                   const RequantConsts& c, int8_t* o0, int8_t* o1, int n) {
  __m256i q = PackPixelPair(Fp32Int16Sums(lo0, hi0, prm, c), Fp32Int16Sums(lo1, hi1, prm, c));
  q = _mm256_max_epi8(q, _mm256_broadcastsi128_si256(c.mn8));
  StoreBytes16(_mm256_castsi256_si128(q), o0, n);
  if (o1 != nullptr) StoreBytes16(_mm256_extracti128_si256(q, 1), o1, n);
}

// 16 channels whose sums already hold the bias, requantized and stored (n <= 16 of them): fp32 one
// pixel at a time, or fixed point.
__attribute__((always_inline)) inline void StoreRowSums(__m256i x0, __m256i x1, const int32_t* prm, const RequantConsts& c, int8_t* o, int n) {
  // Both paths' int16 lanes: channels 0-3, 8-11 | 4-7, 12-15. PackPixelPair's one vpermd is the only
  // cross-lane op on the pixel's latency chain (vpermq + vextracti128 before).
  const __m256i p16 = c.fp32 ? Fp32Int16Sums(x0, x1, prm, c)
                             : _mm256_packs_epi32(RequantSum(x0, prm, 0, c), RequantSum(x1, prm, 1, c));
  const __m128i v = _mm256_castsi256_si128(PackPixelPair(p16, p16));
  StoreBytes16(c.fp32 ? _mm_max_epi8(v, c.mn8) : v, o, n);  // fixed point: RequantSum clamped in int32
}

// 16 channels (two int32x8 accumulators) requantized and stored (n <= 16 of them).
__attribute__((always_inline)) inline void StoreRow(__m256i acc0, __m256i acc1, const int32_t* prm, const RequantConsts& c,
                     int8_t* o, int n) {
  StoreRowSums(_mm256_add_epi32(acc0, Row(prm, kBias, 0)), _mm256_add_epi32(acc1, Row(prm, kBias, 1)), prm, c, o, n);
}

// 32 channels held as four quarters of 8 (the AVX-VNNI depthwise and grouped kernels: quarter q's
// lane j is channel 16 * (j / 4) + 4q + j % 4), put back in order (channels 0-7: quarters 0 and 1
// of lane 0, 8-15: quarters 2 and 3, 16-31: the same of lane 1), requantized with the two 16-channel
// parameter blocks at prm and stored (n <= 32 of them). Forced inline: GCC called it once per pixel
// from the AVX-VNNI depthwise column path, spilling the kept columns around each call (Xeon, 56x56x144
// 3x3/1: 211 -> 177 us, minima of 10 paired processes).
__attribute__((always_inline)) inline void StoreQuarters32(const __m256i* acc, const int32_t* prm, const RequantConsts& c, int8_t* o, int n) {
  StoreRow(_mm256_permute2x128_si256(acc[0], acc[1], 0x20), _mm256_permute2x128_si256(acc[2], acc[3], 0x20), prm,
           c, o, n < 16 ? n : 16);
  if (n > 16)
    StoreRow(_mm256_permute2x128_si256(acc[0], acc[1], 0x31), _mm256_permute2x128_si256(acc[2], acc[3], 0x31),
             prm + kParamBytes / sizeof(int32_t), c, o + 16, n - 16);
}

// The same 16 channels as int16 x - zero point, the next conv's AVX2 staging (Conv2DInt8Chain):
// n <= 16 values, 2n bytes at o.
// Sums: x0 / x1 already hold the bias.
inline void StoreRowInt16Sums(__m256i x0, __m256i x1, const int32_t* prm, const RequantConsts& c, int8_t* o,
                              int n) {
  const __m256i r0 = _mm256_sub_epi32(RequantSum(x0, prm, 0, c), c.zp);
  const __m256i r1 = _mm256_sub_epi32(RequantSum(x1, prm, 1, c), c.zp);
  const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
  if (n == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), p16);
  } else {
    alignas(32) int16_t tmp[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), p16);
    std::memcpy(o, tmp, static_cast<size_t>(n) * sizeof(int16_t));
  }
}

}  // namespace
}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif  // __x86_64__
