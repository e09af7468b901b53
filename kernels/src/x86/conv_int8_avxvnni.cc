// int8 conv, x86-64 AVX-VNNI: the 256-bit, VEX-encoded vpdpbusd of CPUs with VNNI but no
// AVX-512 (Intel Alder Lake and later client cores, Sierra Forest; also on AMD Zen 5).
// The same packing as the AVX-512 VNNI variant (PackInt8Vpdpbusd, [tap][k/4][16][4], bias and
// zero-point correction folded in); a 16-channel block is two ymm registers. 16 ymm registers:
// a 6x16 tile is 12 accumulators (starting at the bias), 2 weight vectors and 1 broadcast, so 8
// loads feed 12 vpdpbusd, two K steps per loop iteration; tiles of 1-3 pixels split K over
// accumulator sets instead (KernelTail). fp32 requantization runs XNNPACK's epilogue on two
// pixels at a time (StorePixelPairFp32); measured on an Intel Xeon against the per-pixel float clamp, conversion
// and packs it replaced: 1x1 128->128 at 56x56 1.07x, 256->128 at 28x28 1.04x, 3x3 convs ~1.01x.
//   KxK: activations staged as uint8 (x + 128) with a (zp + 128) border (see the AVX-512 file).
//   1x1 (any in_channels): read in place; weights packed as uint8 w + 128 are the unsigned
//   operand and the int8 activations the signed one, 128 * sum(x) per pixel comes off at the end
//   (a partial last group of 4 reads past the slice into bytes whose packed weights are zero);
//   with up to 32 output or 128 input channels (direct_1x1_xor_) the broadcast activations' sign
//   bit is flipped in registers instead, against signed weights (the vpxor goes to the shuffle
//   port, which the 256-bit vpdpbusd leaves idle; see conv_api.cc).
//   Stems (KxK, 1-3 input channels) take whole kernel rows as taps (PackedConvInt8::row_taps_).
// Run and tested where the CPU has AVX-VNNI (AMD Zen 5, Intel Xeon Sapphire Rapids in this
// project); compiled everywhere.
// KCSP_AVXVNNI_AS_EVEX (a test build, CMake option of the same name): the same code with the
// EVEX-encoded 256-bit vpdpbusd of AVX-512 VNNI + VL (same semantics), so that CPUs with AVX-512
// but no AVX-VNNI (Zen 4, Intel Xeon before Sapphire Rapids' AVX-VNNI) run and test this variant.
#if defined(__x86_64__)
#pragma GCC push_options
#if defined(KCSP_AVXVNNI_AS_EVEX)
#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512vnni")
#define KCSP_DPBUSD256 _mm256_dpbusd_epi32
#else
#pragma GCC target("avx2,fma,avxvnni")
#define KCSP_DPBUSD256 _mm256_dpbusd_avx_epi32
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../sweep.h"
#include "store_bytes.h"

#if defined(__clang__) && defined(KCSP_AVXVNNI_AS_EVEX)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avxvnni"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 6;
constexpr int kNR = kPackNR;  // 16 = two ymm

struct RequantConsts {
  __m256i zp, mn, mx;
  __m256i away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;     // XNNPACK's fp32 requantization; the multiplier row holds the float scales
  bool clamp;    // fp32: clamp before the conversion (PackedConvInt8::fp32_clamp_before_convert_)
  bool u8_out;   // write x + 128 as uint8 (ConvProblem::out_u8: the next conv's staging)
  __m256 fmax;   // fp32: upper output bound relative to the zero point (keeps vcvtps2dq in range)
  __m256i zp16, mn8, mx8;  // fp32: zero point (int16 lanes), activation range (int8 lanes)
};

inline __m256i ParamRow(const int32_t* prm, int row, int half) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + row * kPackNR + half * 8));
}

// 8 channels of a PackParamRows block, x = acc + bias: bit-exact TFLite MultiplyByQuantizedMultiplier
// plus the zero point, clamped (the fixed-point modes; fp32 takes StorePixelPairFp32).
inline __m256i RequantFixed(__m256i x, const int32_t* prm, int half, const RequantConsts& c) {
  const __m256i mult = ParamRow(prm, 1, half);
  x = _mm256_sllv_epi32(x, ParamRow(prm, 2, half));
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, mult), nudge);
  __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mult, 32)), nudge);
  even = _mm256_srli_epi64(even, 31);
  odd = _mm256_slli_epi64(odd, 1);
  const __m256i h = _mm256_blend_epi32(even, odd, 0xAA);
  const __m256i rsh = ParamRow(prm, 3, half);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rsh), one);
  const __m256i rem = _mm256_and_si256(h, mask);
  const __m256i thr = _mm256_sub_epi32(
      _mm256_srli_epi32(mask, 1), _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), h), c.away));
  __m256i r = _mm256_sub_epi32(_mm256_srav_epi32(h, rsh), _mm256_cmpgt_epi32(rem, thr));
  r = _mm256_add_epi32(r, c.zp);
  return _mm256_min_epi32(_mm256_max_epi32(r, c.mn), c.mx);
}

inline void StoreRowFixed(__m256i lo, __m256i hi, const int32_t* prm, const RequantConsts& c, int8_t* o, int n) {
  __m256i p16 = _mm256_packs_epi32(RequantFixed(lo, prm, 0, c), RequantFixed(hi, prm, 1, c));
  p16 = _mm256_permute4x64_epi64(p16, 0xD8);
  __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
  if (c.u8_out) p8 = _mm_xor_si128(p8, _mm_set1_epi8(static_cast<char>(0x80)));  // int8 v -> uint8 v + 128
  StoreBytes16(p8, o, n);
}

// XNNPACK's fp32 requantization of two pixels' 16 channels (x = acc + bias; scale: the block's
// float scales), XNNPACK's epilogue: scale, upper clamp only where the conversion could overflow
// (below, INT_MIN saturates the same way), round to nearest even, saturating packs with the zero
// point added in int16, the clamp in int8 (bit-identical to clamping in float with integer
// bounds), one vpermd for both pixels; o1 may be null (an odd last pixel).
inline void StorePixelPairFp32(__m256i lo0, __m256i hi0, __m256i lo1, __m256i hi1, const __m256* scale,
                               const RequantConsts& c, int8_t* o0, int8_t* o1, int n) {
  auto convert = [&](__m256i x, int half) {
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(x), scale[half]);
    if (c.clamp) f = _mm256_min_ps(f, c.fmax);
    return _mm256_cvtps_epi32(f);
  };
  // packs_epi32: per 128-bit lane 4 lo then 4 hi channels; packs_epi16 interleaves the pixels by
  // 64-bit halves: dwords [p0 0-3, p0 8-11, p1 0-3, p1 8-11 | p0 4-7, p0 12-15, p1 4-7, p1 12-15].
  const __m256i p0 = _mm256_adds_epi16(_mm256_packs_epi32(convert(lo0, 0), convert(hi0, 1)), c.zp16);
  const __m256i p1 = _mm256_adds_epi16(_mm256_packs_epi32(convert(lo1, 0), convert(hi1, 1)), c.zp16);
  __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p0, p1), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  q = _mm256_min_epi8(_mm256_max_epi8(q, c.mn8), c.mx8);
  if (c.u8_out) q = _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));  // int8 v -> uint8 v + 128
  StoreBytes16(_mm256_castsi256_si128(q), o0, n);
  if (o1 != nullptr) StoreBytes16(_mm256_extracti128_si256(q, 1), o1, n);
}

// Requantizes and stores the first m of an R-pixel tile's rows (lo, hi: channels 0-7, 8-15 of
// acc + bias); kCorr: corr[i] = 128 * sum(x_i) comes off first (the direct 1x1 form).
template <int R, bool kCorr>
__attribute__((always_inline)) inline void StoreTile(__m256i (&lo)[R], __m256i (&hi)[R], int m, const int32_t* prm,
                                                     const int32_t* corr, const RequantConsts& c, int8_t* const* o,
                                                     int n) {
  if (kCorr)
    for (int i = 0; i < m; ++i) {
      const __m256i sub = _mm256_set1_epi32(corr[i]);
      lo[i] = _mm256_sub_epi32(lo[i], sub);
      hi[i] = _mm256_sub_epi32(hi[i], sub);
    }
  if (c.fp32) {
    const __m256 scale[2] = {_mm256_castsi256_ps(ParamRow(prm, 1, 0)), _mm256_castsi256_ps(ParamRow(prm, 1, 1))};
    for (int i = 0; i < m; i += 2) {
      const int j = i + 1 < R ? i + 1 : i;  // R odd: the last pixel pairs with itself (not stored twice)
      StorePixelPairFp32(lo[i], hi[i], lo[j], hi[j], scale, c, o[i], i + 1 < m ? o[i + 1] : nullptr, n);
    }
    return;
  }
  for (int i = 0; i < m; ++i) StoreRowFixed(lo[i], hi[i], prm, c, o[i], n);
}

inline __m256i Bcast(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

// vpdpbusd with the operands in the kernel's order: uint8 activations first (staged, or sign-flipped
// in registers); direct (1x1 in place), the uint8 weights first and the int8 activations second.
template <bool kWeightsFirst>
inline __m256i Dot(__m256i acc, __m256i act, __m256i wt) {
  return kWeightsFirst ? KCSP_DPBUSD256(acc, wt, act) : KCSP_DPBUSD256(acc, act, wt);
}

// 6 pixels x 16 channels; the accumulators are named (not an array) so that all 15 live vectors
// stay in the 16 ymm registers, and start at the bias. kDirect: a[i] are int8 pixels read in place,
// corr[i] = 128 * sum comes off (kXor: PackedConvInt8::direct_1x1_xor_, the broadcast activations'
// sign bit flipped instead, signed weights, no corr); otherwise a[i] are staged uint8 pixels and
// tap_off the taps' offsets.
// kPrefetch: a block's first tile in a sweep on a small image (PrefetchFirstTiles) asks for each
// step's weight line 1 KB ahead: there the weights come from L3 or DRAM and meet few pixels.
template <bool kDirect, bool kXor, bool kPrefetch>
void Kernel6x16(int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int kp4, const int8_t* w,
                const int32_t* prm, const int32_t* corr, const RequantConsts& c, int8_t* const* o, int n) {
  const __m256i bias0 = ParamRow(prm, 0, 0), bias1 = ParamRow(prm, 0, 1);
  __m256i c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1,
          c30 = bias0, c31 = bias1, c40 = bias0, c41 = bias1, c50 = bias0, c51 = bias1;
  // k indexes the pixels' bytes and kw = 16 k the weights' (one weight pointer bumped per step
  // and an int k had made 5 scalar ops per 12 vpdpbusd; now 3: in-process A/B on the Xeon,
  // 1.04-1.15x on 1x1 and 3x3 convs). Two steps per iteration: 3 per 24 (Golden Cove issues them
  // to the ports the 256-bit vpdpbusd runs on too; 1x1 convs 1.02-1.03x in paired processes).
  const int64_t kp = 4 * int64_t{kp4};
  constexpr bool kWeightsFirst = kDirect && !kXor;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  auto bcast = [flip](const uint8_t* p) {
    const __m256i b = Bcast(p);
    return kXor ? _mm256_xor_si256(b, flip) : b;
  };
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const uint8_t *a0 = a[0] + off, *a1 = a[1] + off, *a2 = a[2] + off, *a3 = a[3] + off,
                  *a4 = a[4] + off, *a5 = a[5] + off;
#pragma GCC unroll 2
    for (int64_t k = 0, kw = 0; k < kp; k += 4, kw += 64) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + kw));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + kw + 32));
      if constexpr (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(w + kw + 1024), _MM_HINT_T0);
      __m256i b = bcast(a0 + k);
      c00 = Dot<kWeightsFirst>(c00, b, w0), c01 = Dot<kWeightsFirst>(c01, b, w1);
      b = bcast(a1 + k);
      c10 = Dot<kWeightsFirst>(c10, b, w0), c11 = Dot<kWeightsFirst>(c11, b, w1);
      b = bcast(a2 + k);
      c20 = Dot<kWeightsFirst>(c20, b, w0), c21 = Dot<kWeightsFirst>(c21, b, w1);
      b = bcast(a3 + k);
      c30 = Dot<kWeightsFirst>(c30, b, w0), c31 = Dot<kWeightsFirst>(c31, b, w1);
      b = bcast(a4 + k);
      c40 = Dot<kWeightsFirst>(c40, b, w0), c41 = Dot<kWeightsFirst>(c41, b, w1);
      b = bcast(a5 + k);
      c50 = Dot<kWeightsFirst>(c50, b, w0), c51 = Dot<kWeightsFirst>(c51, b, w1);
    }
    w += 16 * kp;
  }
  __m256i lo[kMR] = {c00, c10, c20, c30, c40, c50};
  __m256i hi[kMR] = {c01, c11, c21, c31, c41, c51};
  StoreTile<kMR, kDirect && !kXor>(lo, hi, m, prm, corr, c, o, n);
}

// Tiles of R <= 3 pixels (an image's or a band's last pixels: a 7x7 image's 49th), which Kernel6x16
// would run as 6: 2R chains of dependent vpdpbusd are too few to cover its latency (5 cycles, two
// per cycle), so K is split over kSets accumulator sets summed at the end (as the AVX-512 kernel's
// 1-4 pixel tiles). Not inlined into the sweep's tile lambda: Kernel6x16's code there is sensitive
// to what sits beside it.
template <int R, bool kDirect, bool kXor>
__attribute__((noinline)) void KernelTail(const uint8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                                          const int8_t* w, const int32_t* prm, const int32_t* corr,
                                          const RequantConsts& c, int8_t* const* o, int n) {
  static_assert(R >= 1 && R <= 3, "Kernel6x16 takes 4 pixels and up");
  constexpr int kSets = R == 1 ? 4 : R == 2 ? 3 : 2;  // 8-12 accumulators
  constexpr bool kWeightsFirst = kDirect && !kXor;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i acc[kSets][R][2];
#pragma GCC unroll 4
  for (int s = 0; s < kSets; ++s)
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) acc[s][i][h] = s == 0 ? ParamRow(prm, 0, h) : _mm256_setzero_si256();
  const int64_t kp = 4 * int64_t{kp4};
  for (int t = 0; t < taps; ++t) {
    const uint8_t* ap[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) ap[i] = a[i] + tap_off[t];
    auto step = [&](int64_t k, int64_t kw, int s) __attribute__((always_inline)) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + kw));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + kw + 32));
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m256i b = kXor ? _mm256_xor_si256(Bcast(ap[i] + k), flip) : Bcast(ap[i] + k);
        acc[s][i][0] = Dot<kWeightsFirst>(acc[s][i][0], b, w0);
        acc[s][i][1] = Dot<kWeightsFirst>(acc[s][i][1], b, w1);
      }
    };
    int64_t k = 0, kw = 0;
    if constexpr (kSets > 1)
      for (; k + 4 * kSets <= kp; k += 4 * kSets, kw += 64 * kSets)
#pragma GCC unroll 4
        for (int s = 0; s < kSets; ++s) step(k + 4 * s, kw + 64 * s, s);
    for (; k < kp; k += 4, kw += 64) step(k, kw, 0);
    w += 16 * kp;
  }
  __m256i lo[R], hi[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    lo[i] = acc[0][i][0], hi[i] = acc[0][i][1];
#pragma GCC unroll 4
    for (int s = 1; s < kSets; ++s) {
      lo[i] = _mm256_add_epi32(lo[i], acc[s][i][0]);
      hi[i] = _mm256_add_epi32(hi[i], acc[s][i][1]);
    }
  }
  StoreTile<R, kWeightsFirst>(lo, hi, R, prm, corr, c, o, n);  // the tile is exactly R pixels (Tile)
}

// A sweep tile of m pixels: KernelTail for m <= 3, else Kernel6x16 (kPrefetch: see there). 4 and
// 5 pixels keep the 6-pixel tile: 8-10 chains already cover most of the latency.
template <bool kDirect, bool kXor, bool kPrefetch>
__attribute__((always_inline)) inline void Tile(int m, const uint8_t* const* a, const int64_t* tap_off, int taps,
                                                int kp4, const int8_t* w, const int32_t* prm, const int32_t* corr,
                                                const RequantConsts& c, int8_t* const* o, int n) {
  switch (m) {
    case 1: return KernelTail<1, kDirect, kXor>(a, tap_off, taps, kp4, w, prm, corr, c, o, n);
    case 2: return KernelTail<2, kDirect, kXor>(a, tap_off, taps, kp4, w, prm, corr, c, o, n);
    case 3: return KernelTail<3, kDirect, kXor>(a, tap_off, taps, kp4, w, prm, corr, c, o, n);
    default: return Kernel6x16<kDirect, kXor, kPrefetch>(m, a, tap_off, taps, kp4, w, prm, corr, c, o, n);
  }
}

// 128 * sum of each pixel's in_channels int8 channels (any count), for the direct Kernel6x16: per 8
// pixels one vpdpbusd(ones, x) accumulator each, then one transposing add tree (lane i = pixel
// i's sum), as the AVX-512 kernel does for 16 (one pixel at a time, the horizontal sum cost about
// as much as a 1x1 16->16 conv's products). The last partial 32 bytes: a dword-masked load
// (vpmaskmovd does not fault on masked-out dwords, so nothing past the pixel's dwords is read)
// and a byte mask for a partial last dword.
void PixelCorrections(const int8_t* const* px, int count, int cin, int32_t* out) {
  const __m256i ones = _mm256_set1_epi8(1);
  const int full = cin / 32 * 32, rest = cin - full;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i dwords = _mm256_cmpgt_epi32(_mm256_set1_epi32((rest + 3) / 4), lane);
  const __m256i bytes = _mm256_cmpgt_epi8(_mm256_set1_epi8(static_cast<char>(rest)),
                                          _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31));
  for (int p0 = 0; p0 < count; p0 += 8) {
    const int np = std::min(8, count - p0);
    __m256i v[8];
    for (int i = 0; i < 8; ++i) {
      __m256i acc = _mm256_setzero_si256();
      if (i < np) {
        const int8_t* x = px[p0 + i];
        for (int k = 0; k < full; k += 32)
          acc = KCSP_DPBUSD256(acc, ones, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k)));
        if (rest > 0)
          acc = KCSP_DPBUSD256(acc, ones, _mm256_and_si256(bytes, _mm256_maskload_epi32(
                                                                      reinterpret_cast<const int*>(x + full), dwords)));
      }
      v[i] = acc;
    }
    // 8 -> 4: per 128-bit lane [a0+a2, b0+b2, a1+a3, b1+b3] (a = pixel 2j, b = 2j + 1).
    for (int j = 0; j < 4; ++j)
      v[j] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * j], v[2 * j + 1]),
                              _mm256_unpackhi_epi32(v[2 * j], v[2 * j + 1]));
    // 4 -> 2: pixels 4j .. 4j + 3 in both 128-bit lanes of v[j].
    for (int j = 0; j < 2; ++j)
      v[j] = _mm256_add_epi32(_mm256_unpacklo_epi64(v[2 * j], v[2 * j + 1]),
                              _mm256_unpackhi_epi64(v[2 * j], v[2 * j + 1]));
    // 2 -> 1: the two lanes summed, pixels 0-3 low, 4-7 high.
    const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(v[0], v[1], 0x20),
                                          _mm256_permute2x128_si256(v[0], v[1], 0x31));
    _mm256_maskstore_epi32(out + p0, _mm256_cmpgt_epi32(_mm256_set1_epi32(np), lane), _mm256_slli_epi32(sums, 7));
  }
}

}  // namespace

Status ConvInt8AvxVnni(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  RequantConsts c;
  c.zp = _mm256_set1_epi32(w.quant_.output_zero_point);
  c.mn = _mm256_set1_epi32(w.quant_.act_min);
  c.mx = _mm256_set1_epi32(w.quant_.act_max);
  c.away = _mm256_set1_epi32(w.quant_.rounding == Rounding::kAwayFromZero ? -1 : 0);
  c.fp32 = w.quant_.rounding == Rounding::kFp32;
  c.clamp = w.fp32_clamp_before_convert_;
  c.u8_out = p.out_u8;
  c.fmax = _mm256_set1_ps(static_cast<float>(w.quant_.act_max - w.quant_.output_zero_point));
  c.zp16 = _mm256_set1_epi16(static_cast<int16_t>(w.quant_.output_zero_point));
  c.mn8 = _mm256_set1_epi8(static_cast<char>(w.quant_.act_min));
  c.mx8 = _mm256_set1_epi8(static_cast<char>(w.quant_.act_max));
  const PackedBlocks blocks(w);
  const int kp4 = w.k_padded_ / 4;
  const bool small_image = PrefetchFirstTiles(p);
  if (w.direct_1x1_) {
    // direct_1x1_xor_: the activations' sign bit flipped in the tile, nothing taken off per pixel.
    auto direct = [&](auto flip, auto corrections) {
      constexpr bool kXor = decltype(flip)::value;
      return SweepInt8Direct1x1<kMR, kNR>(
          w, p, in, out, int64_t{64 * 1024}, corrections,
          [&](int m, const int8_t* const* a, const int32_t* corr, int bi, int8_t* const* o, int n, bool first) {
            static const int64_t kNoOffset = 0;
            const auto* au = reinterpret_cast<const uint8_t* const*>(a);
            if (first && small_image)
              Tile<true, kXor, true>(m, au, &kNoOffset, 1, kp4, blocks.weights(bi), blocks.params(bi), corr, c, o, n);
            else
              Tile<true, kXor, false>(m, au, &kNoOffset, 1, kp4, blocks.weights(bi), blocks.params(bi), corr, c, o, n);
          });
    };
    return w.direct_1x1_xor_ ? direct(std::true_type{}, nullptr) : direct(std::false_type{}, PixelCorrections);
  }
  return SweepInt8<kMR, kNR>(
      w, p, in, out, static_cast<uint8_t>(w.quant_.input_zero_point + 128),
      [](int8_t v) { return static_cast<uint8_t>(static_cast<int>(v) + 128); }, int64_t{64 * 1024},
      [&](int m, const uint8_t* const* a, const int64_t* tap_off, int taps, int bi, int8_t* const* o, int n,
          bool first) {
        if (first && small_image)
          Tile<false, false, true>(m, a, tap_off, taps, kp4, blocks.weights(bi), blocks.params(bi), nullptr, c, o, n);
        else
          Tile<false, false, false>(m, a, tap_off, taps, kp4, blocks.weights(bi), blocks.params(bi), nullptr, c, o, n);
      });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
