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

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../sweep.h"

// clang ignores `#pragma GCC target`: give every function below the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 8;          // pixels per tile
constexpr int kNR = kPackNR;    // channels per packed block (one zmm of int32)
constexpr int kTileBlocks = 2;  // packed blocks per tile: 8 x 32 channels, 16 accumulators
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

inline __m512i Bcast(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// Weights and parameters of the NB adjacent 16-channel packed blocks a tile covers.
template <int NB>
struct TileBlocks {
  const int8_t* w[NB];
  const int32_t* prm[NB];
};

// MR pixels x NB*16 channels, MR*NB independent accumulators (enough to cover vpdpbusd's latency at
// two per cycle), NB weight loads and MR broadcasts per MR*NB vpdpbusd. kDirect: 1x1 from the
// int8 input (weights w + 128 as the unsigned operand, the activation broadcast folded in as the
// signed memory operand; corr[i] = 128 * sum(x_i) comes off); otherwise uint8 staged activations,
// the taps' offsets from a[i].
// Not inlined: inside the sweep's loops GCC spilled accumulators to the stack.
template <int MR, int NB, bool kDirect>
__attribute__((noinline)) void KernelTile(int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                       const TileBlocks<NB>& b, const int32_t* corr, const RequantConsts& c,
                       int8_t* const* o, int n) {
  __m512i acc[MR][NB];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_si512();
  const int8_t* w[NB];
#pragma GCC unroll 2
  for (int j = 0; j < NB; ++j) w[j] = b.w[j];
  for (int t = 0; t < taps; ++t) {
    const uint8_t* ap[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) ap[i] = a[i] + tap_off[t];
    for (int k = 0; k < 4 * kp4; k += 4) {
      __m512i wv[NB];
#pragma GCC unroll 2
      for (int j = 0; j < NB; ++j) {
        wv[j] = _mm512_load_si512(w[j]);
        w[j] += 64;
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512i x = Bcast(ap[i] + k);
#pragma GCC unroll 2
        for (int j = 0; j < NB; ++j)
          acc[i][j] = kDirect ? _mm512_dpbusd_epi32(acc[i][j], wv[j], x) : _mm512_dpbusd_epi32(acc[i][j], x, wv[j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    const __m512i sub = _mm512_set1_epi32(kDirect ? corr[i] : 0);
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) {
      const int nj = std::min(kNR, n - j * kNR);
      if (nj > 0) StoreRow(_mm512_sub_epi32(acc[i][j], sub), b.prm[j], c, o[i] + j * kNR, nj);
    }
  }
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
  const int packed_blocks = (w.geometry_.out_channels + kNR - 1) / kNR;
  // Tile `ti` covers packed blocks 2 ti and 2 ti + 1 (one when the last is alone).
  auto tile = [&](auto direct, int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int ti,
                  const int32_t* corr, int8_t* const* o, int n) {
    constexpr bool kDirect = decltype(direct)::value;
    const int b0 = ti * kTileBlocks;
    if (b0 + 1 < packed_blocks) {
      const TileBlocks<2> b{{blocks.weights(b0), blocks.weights(b0 + 1)}, {blocks.params(b0), blocks.params(b0 + 1)}};
      KernelTile<kMR, 2, kDirect>(m, a, tap_off, taps, kp4, b, corr, c, o, n);
    } else {
      const TileBlocks<1> b{{blocks.weights(b0)}, {blocks.params(b0)}};
      KernelTile<kMR, 1, kDirect>(m, a, tap_off, taps, kp4, b, corr, c, o, n);
    }
  };
  constexpr int kTileNR = kTileBlocks * kNR;
  if (w.direct_1x1_) {
    static const int64_t kNoOffset = 0;
    return SweepInt8Direct1x1<kMR, kTileNR>(
        w, p, in, out, int64_t{64 * 1024}, PixelCorrection,
        [&](int m, const int8_t* const* a, const int32_t* corr, int ti, int8_t* const* o, int n) {
          tile(std::true_type{}, m, reinterpret_cast<const uint8_t* const*>(a), &kNoOffset, 1, ti, corr, o, n);
        });
  }
  // uint8 x + 128 with border zp + 128: the (zp + 128) * sum(w) correction is in the bias.
  return SweepInt8<kMR, kTileNR>(
      w, p, in, out, static_cast<uint8_t>(w.quant_.input_zero_point + 128),
      [](int8_t v) { return static_cast<uint8_t>(static_cast<int>(v) + 128); }, int64_t{64 * 1024},
      [&](int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int ti, int8_t* const* o, int n) {
        tile(std::false_type{}, m, a, tap_off, taps, ti, nullptr, o, n);
      });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
