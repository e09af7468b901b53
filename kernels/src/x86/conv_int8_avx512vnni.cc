// int8 conv, x86-64 AVX-512 VNNI (vpdpbusd). Activations are staged as uint8 (x + 128) in a
// padded buffer whose border holds (input_zero_point + 128), so that
//   sum((x - zp) * w) = sum(u * w) - (zp + 128) * sum(w)
// holds for every tap including padding; the correction is folded into the packed bias.
// 8x16 micro-kernel, weights packed [tap][k/4][16][4], bit-exact TFLite requantization.
//
// QEMU's TCG cannot emulate AVX-512, so this file is compiled everywhere but executed (and tested)
// only on AVX-512 VNNI CPUs (run and tested on AMD Zen 4 and Intel Xeon).
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12 false positive inside avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "../sweep.h"

// clang ignores `#pragma GCC target`: give every function below the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 8;
constexpr int kNR = kPackNR;
constexpr size_t kParamBytes = kPackParamBytes;

struct RequantConsts {
  __m512i zp, mn, mx;
  __mmask16 away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;        // XNNPACK's fp32 requantization; the multiplier row holds the float scales
  __m512 fmin, fmax;  // fp32: output range relative to the zero point
};

// TFLite fixed-point requantization (MultiplyByQuantizedMultiplier), clamped.
inline __m512i RequantFixed(__m512i x, __m512i mult, __m512i lsh, __m512i rsh,
                            const RequantConsts& c) {
  x = _mm512_sllv_epi32(x, lsh);
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
  __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, mult), nudge);
  __m512i odd = _mm512_add_epi64(
      _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(mult, 32)), nudge);
  even = _mm512_srli_epi64(even, 31);
  odd = _mm512_slli_epi64(odd, 1);
  const __m512i h = _mm512_mask_blend_epi32(0xAAAA, even, odd);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rsh), one);
  const __m512i rem = _mm512_and_si512(h, mask);
  const __m512i half = _mm512_srli_epi32(mask, 1);
  const __m512i thr =
      _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(h, _mm512_setzero_si512()) & c.away, half, one);
  __m512i r = _mm512_srav_epi32(h, rsh);
  r = _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(rem, thr), r, one);
  r = _mm512_add_epi32(r, c.zp);
  return _mm512_min_epi32(_mm512_max_epi32(r, c.mn), c.mx);
}

// XNNPACK's fp32 requantization: scale, clamp, round to nearest even (MXCSR), add zero point.
inline __m512i RequantFp32(__m512i x, __m512 scale, const RequantConsts& c) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(x), scale);
  f = _mm512_min_ps(_mm512_max_ps(f, c.fmin), c.fmax);
  return _mm512_add_epi32(_mm512_cvtps_epi32(f), c.zp);
}

inline void StoreRow(__m512i acc, const int32_t* prm, const RequantConsts& c, int8_t* o, int n) {
  const __m512i x = _mm512_add_epi32(acc, _mm512_load_si512(prm));
  const __m512i mult = _mm512_load_si512(prm + 16);
  const __m512i r = c.fp32 ? RequantFp32(x, _mm512_castsi512_ps(mult), c)
                           : RequantFixed(x, mult, _mm512_load_si512(prm + 32),
                                          _mm512_load_si512(prm + 48), c);
  const __m128i v = _mm512_cvtsepi32_epi8(r);
  if (n == kNR) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
    std::memcpy(o, tmp, n);
  }
}

inline __m512i Bcast(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

void Kernel8x16(int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                const int8_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n) {
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
          c7 = c0;
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const uint8_t* a0 = a[0] + off;
    const uint8_t* a1 = a[1] + off;
    const uint8_t* a2 = a[2] + off;
    const uint8_t* a3 = a[3] + off;
    const uint8_t* a4 = a[4] + off;
    const uint8_t* a5 = a[5] + off;
    const uint8_t* a6 = a[6] + off;
    const uint8_t* a7 = a[7] + off;
    for (int k = 0; k < kp4; ++k) {
      const __m512i w0 = _mm512_load_si512(w);
      w += 64;
      c0 = _mm512_dpbusd_epi32(c0, Bcast(a0 + 4 * k), w0);
      c1 = _mm512_dpbusd_epi32(c1, Bcast(a1 + 4 * k), w0);
      c2 = _mm512_dpbusd_epi32(c2, Bcast(a2 + 4 * k), w0);
      c3 = _mm512_dpbusd_epi32(c3, Bcast(a3 + 4 * k), w0);
      c4 = _mm512_dpbusd_epi32(c4, Bcast(a4 + 4 * k), w0);
      c5 = _mm512_dpbusd_epi32(c5, Bcast(a5 + 4 * k), w0);
      c6 = _mm512_dpbusd_epi32(c6, Bcast(a6 + 4 * k), w0);
      c7 = _mm512_dpbusd_epi32(c7, Bcast(a7 + 4 * k), w0);
    }
  }
  StoreRow(c0, prm, c, o[0], n);
  if (m > 1) StoreRow(c1, prm, c, o[1], n);
  if (m > 2) StoreRow(c2, prm, c, o[2], n);
  if (m > 3) StoreRow(c3, prm, c, o[3], n);
  if (m > 4) StoreRow(c4, prm, c, o[4], n);
  if (m > 5) StoreRow(c5, prm, c, o[5], n);
  if (m > 6) StoreRow(c6, prm, c, o[6], n);
  if (m > 7) StoreRow(c7, prm, c, o[7], n);
}

// 1x1 straight from the int8 input: the weights are vpdpbusd's unsigned operand (packed as
// w + 128) and the int8 activations its signed, broadcast one (folded into the instruction as a
// memory operand), so acc = sum(w * x) + 128 * sum(x); corr[i] = 128 * sum(x_i) comes off
// before the shared requantization.
void Kernel8x16Direct(int m, const int8_t* const* a, const int32_t* corr, int kp4, const uint8_t* w,
                      const int32_t* prm, const RequantConsts& c, int8_t* const* o, int n) {
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
          c7 = c0;
  const int8_t *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5], *a6 = a[6],
               *a7 = a[7];
  for (int k = 0; k < kp4; ++k) {
    const __m512i w0 = _mm512_load_si512(w);
    w += 64;
    c0 = _mm512_dpbusd_epi32(c0, w0, Bcast(reinterpret_cast<const uint8_t*>(a0) + 4 * k));
    c1 = _mm512_dpbusd_epi32(c1, w0, Bcast(reinterpret_cast<const uint8_t*>(a1) + 4 * k));
    c2 = _mm512_dpbusd_epi32(c2, w0, Bcast(reinterpret_cast<const uint8_t*>(a2) + 4 * k));
    c3 = _mm512_dpbusd_epi32(c3, w0, Bcast(reinterpret_cast<const uint8_t*>(a3) + 4 * k));
    c4 = _mm512_dpbusd_epi32(c4, w0, Bcast(reinterpret_cast<const uint8_t*>(a4) + 4 * k));
    c5 = _mm512_dpbusd_epi32(c5, w0, Bcast(reinterpret_cast<const uint8_t*>(a5) + 4 * k));
    c6 = _mm512_dpbusd_epi32(c6, w0, Bcast(reinterpret_cast<const uint8_t*>(a6) + 4 * k));
    c7 = _mm512_dpbusd_epi32(c7, w0, Bcast(reinterpret_cast<const uint8_t*>(a7) + 4 * k));
  }
  const __m512i* cs[8] = {&c0, &c1, &c2, &c3, &c4, &c5, &c6, &c7};
  for (int i = 0; i < m; ++i)
    StoreRow(_mm512_sub_epi32(*cs[i], _mm512_set1_epi32(corr[i])), prm, c, o[i], n);
}

// 128 * sum of a pixel's int8 channels (in_channels % 4 == 0), for Kernel8x16Direct.
int32_t PixelCorrection(const int8_t* x, int cin) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc = _mm512_setzero_si512();
  int k = 0;
  for (; k + 64 <= cin; k += 64)
    acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(x + k));
  if (k < cin) {
    const __mmask64 tail = (cin - k) == 64 ? ~__mmask64{0} : ((__mmask64{1} << (cin - k)) - 1);
    acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(tail, x + k));
  }
  return static_cast<int32_t>(static_cast<uint32_t>(_mm512_reduce_add_epi32(acc)) << 7);
}

}  // namespace

// uint8 (x + 128) inputs: fold (zp + 128) * sum(w).
// 1x1 with in_channels % 4 == 0: direct (weights w + 128, fold zp * sum(w)). Otherwise the
// staged form: uint8 (x + 128) inputs, fold (zp + 128) * sum(w).
Status PackInt8Avx512Vnni(PackedConvInt8* w) {
  w->direct_1x1_ = DirectReadable1x1(w->geometry_, 4);
  if (w->direct_1x1_) return PackInt8Groups(w, w->quant_.input_zero_point, 4, 4, 0x80);
  return PackInt8Groups(w, w->quant_.input_zero_point + 128, 4, 4);
}

Status ConvInt8Avx512Vnni(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                          int8_t* out) {
  RequantConsts c;
  c.zp = _mm512_set1_epi32(w.quant_.output_zero_point);
  c.mn = _mm512_set1_epi32(w.quant_.act_min);
  c.mx = _mm512_set1_epi32(w.quant_.act_max);
  c.away = w.quant_.rounding == Rounding::kAwayFromZero ? 0xFFFF : 0;
  c.fp32 = w.quant_.rounding == Rounding::kFp32;
  c.fmin = _mm512_set1_ps(static_cast<float>(w.quant_.act_min - w.quant_.output_zero_point));
  c.fmax = _mm512_set1_ps(static_cast<float>(w.quant_.act_max - w.quant_.output_zero_point));
  const PackedBlocks blocks(w);
  const int kp4 = w.k_padded_ / 4;
  if (w.direct_1x1_) {
    return SweepInt8Direct1x1<kMR, kNR>(
        w, p, in, out, int64_t{64 * 1024}, PixelCorrection,
        [&](int m, const int8_t* const* a, const int32_t* corr, int bi, int8_t* const* o, int n) {
          Kernel8x16Direct(m, a, corr, kp4, reinterpret_cast<const uint8_t*>(blocks.weights(bi)),
                           blocks.params(bi), c, o, n);
        });
  }
  // uint8 x + 128 with border zp + 128: the (zp + 128) * sum(w) correction is in the bias.
  return SweepInt8<kMR, kNR>(
      w, p, in, out, static_cast<uint8_t>(w.quant_.input_zero_point + 128),
      [](int8_t v) { return static_cast<uint8_t>(static_cast<int>(v) + 128); }, int64_t{64 * 1024},
      [&](int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int bi,
          int8_t* const* o, int n) {
        Kernel8x16(m, a, tap_off, taps, kp4, blocks.weights(bi), blocks.params(bi), c, o, n);
      });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
