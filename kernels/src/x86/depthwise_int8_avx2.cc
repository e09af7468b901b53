// int8 depthwise conv, x86-64 AVX2 (also what AVX-512 CPUs run: a depthwise conv has no sum over
// input channels for vpdpbusd to speed up). 16 output channels per step: (x - input_zero_point) as
// int16 times the int16 weights with vpmullw, exact as |(x - zp) * w| <= 255 * 128 < 2^15, widened
// into two int32x8 accumulators; padded taps are skipped (they contribute 0, as in TFLite). With
// depth multiplier 2 each input channel feeds two adjacent output channels: 8 inputs, each
// duplicated. Pixels whose taps are all in range (the interior) take two taps per vpmaddwd on the
// int8 inputs as they are, the accumulators starting at -input_zero_point * sum(w) (packed per
// block): no (x - zp) per tap there. Epilogue: avx2_requant.h, shared with the AVX2 conv.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../depthwise_sweep.h"
#include "avx2_requant.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kRequantNR;

static_assert(kNR == kDepthwiseNR, "16-channel blocks");
inline int TapPairs(const PackedDepthwiseInt8& w) { return (w.geometry_.kernel_h * w.geometry_.kernel_w + 1) / 2; }
// Per block of 16 output channels: the parameter rows, [tap][16] int16 weights (pixels at the
// border), then per pair of taps (2p, 2p + 1; the last one paired with zeros) the two taps'
// weights interleaved in vpunpck{l,h}wd order, 2 x 16 int16 (pixels whose taps are all in range).
// Then the interior's accumulator start, -zp * sum over taps of w, 16 int32 in the accumulators'
// order (channels 0-3, 8-11, then 4-7, 12-15).
inline size_t PairBytes(const PackedDepthwiseInt8& w) { return static_cast<size_t>(TapPairs(w)) * 2 * kNR * sizeof(int16_t); }
constexpr size_t kZpRowBytes = kNR * sizeof(int32_t);
inline size_t DwBlockBytes(const PackedDepthwiseInt8& w) {
  return DepthwiseBlockBytes<int16_t>(w, kParamBytes, PairBytes(w) + kZpRowBytes);
}

// (x - zp) for the 16 output channels [oc0, oc0 + n) of one input pixel `x`, as int16 (zp = 0:
// x itself).
template <int M, bool kFull = false>
inline __m256i LoadInputs(const int8_t* x, int oc0, int n, __m256i zp) {
  if (M == 1) {
    __m128i v;
    if (kFull || n == kNR) {
      v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + oc0));
    } else {
      alignas(16) int8_t tmp[16] = {};
      std::memcpy(tmp, x + oc0, n);
      v = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    return _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), zp);
  }
  __m128i v;
  if (kFull || n == kNR) {
    v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + oc0 / 2));
  } else {
    alignas(16) int8_t tmp[16] = {};
    std::memcpy(tmp, x + oc0 / 2, n / 2);
    v = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
  }
  const __m128i s = _mm_sub_epi16(_mm_cvtepi8_epi16(v), _mm256_castsi256_si128(zp));
  return _mm256_set_m128i(_mm_unpackhi_epi16(s, s), _mm_unpacklo_epi16(s, s));
}

// One block of an interior pixel (every tap in range): two taps per vpmaddwd, (x_a, x_b)
// interleaved by channel against the packed weight pairs, the accumulators (channels {0-3, 8-11}
// and {4-7, 12-15}, put back in order before the epilogue) starting at -zp * sum(w). kTaps: the
// tap count when known at compile time (3x3: unrolled, no per-pair branch), else 0; kFull: a whole
// 16-channel block (no tail check per load). Zen 4, 1 thread, 3x3/1 56x56x144: 306-310 us with the
// runtime loop and (x - zp) per tap, 305 with the zero point folded, 254-258 unrolled.
template <int M, int kTaps, bool kFull>
inline void InteriorBlock(const int8_t* const* x, int taps, int oc0, int n, const __m256i* wp, const __m256i* zr,
                          const int32_t* prm, const RequantConsts& c, int8_t* o) {
  const int t_count = kTaps > 0 ? kTaps : taps;
  const __m256i none = _mm256_setzero_si256();
  __m256i lo = _mm256_load_si256(zr), hi = _mm256_load_si256(zr + 1);
#pragma GCC unroll 8
  for (int q = 0; 2 * q < t_count; ++q) {
    const __m256i xa = LoadInputs<M, kFull>(x[2 * q], oc0, n, none);
    const __m256i xb = 2 * q + 1 < t_count ? LoadInputs<M, kFull>(x[2 * q + 1], oc0, n, none) : none;
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), _mm256_load_si256(wp + 2 * q)));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), _mm256_load_si256(wp + 2 * q + 1)));
  }
  StoreRow(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31), prm, c, o + oc0, n);
}

template <int M>
void DepthwiseRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                   int row_begin, int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const __m256i zp = _mm256_set1_epi16(static_cast<int16_t>(w.quant_.input_zero_point));
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = DwBlockBytes(w);
  const int cout = w.geometry_.out_channels;
  const int all_taps = w.geometry_.kernel_h * w.geometry_.kernel_w;
  const size_t pair_off = bb - PairBytes(w) - kZpRowBytes, zp_off = bb - kZpRowBytes;
  SweepDepthwise(w, p, in, out, row_begin, row_end, [&](const int8_t* const* x, const int* tap, int taps, int8_t* o) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kNR, ++bi) {
      const int n = std::min(kNR, cout - oc0);
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wt = reinterpret_cast<const int16_t*>(base + bi * bb + kParamBytes);
      __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
      if (taps == all_taps) {
        const auto* wp = reinterpret_cast<const __m256i*>(base + bi * bb + pair_off);
        const auto* zr = reinterpret_cast<const __m256i*>(base + bi * bb + zp_off);
        if (n < kNR)
          InteriorBlock<M, 0, false>(x, taps, oc0, n, wp, zr, prm, c, o);
        else if (taps == 9)
          InteriorBlock<M, 9, true>(x, taps, oc0, n, wp, zr, prm, c, o);
        else
          InteriorBlock<M, 0, true>(x, taps, oc0, n, wp, zr, prm, c, o);
        continue;
      }
      for (int i = 0; i < taps; ++i) {
        const __m256i xv = LoadInputs<M>(x[i], oc0, n, zp);
        const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wt + tap[i] * kNR));
        const __m256i prod = _mm256_mullo_epi16(xv, wv);
        acc0 = _mm256_add_epi32(acc0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod)));
        acc1 = _mm256_add_epi32(acc1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1)));
      }
      StoreRow(acc0, acc1, prm, c, o + oc0, n);
    }
  });
}

}  // namespace

Status PackDepthwiseInt8Avx2(PackedDepthwiseInt8* w) {
  const int taps = w->geometry_.kernel_h * w->geometry_.kernel_w, cout = w->geometry_.out_channels;
  PackDepthwiseBlocks<int16_t>(
      w, kParamBytes,
      [w](int32_t* prm, int oc0) { PackRequantParams(prm, w->quant_, w->bias_, w->left_shift_, w->right_shift_, oc0); },
      PairBytes(*w) + kZpRowBytes, [&](uint8_t* extra, int oc0) {
        auto* wp = reinterpret_cast<int16_t*>(extra);
        auto weight = [&](int t, int j) -> int16_t {
          return t < taps && oc0 + j < cout ? w->weights_[static_cast<size_t>(t) * cout + oc0 + j] : 0;
        };
        auto* zr = reinterpret_cast<int32_t*>(extra + PairBytes(*w));
        for (int j = 0; j < kNR; ++j) zr[(j % 8) / 4 * 8 + j / 8 * 4 + j % 4] = DepthwiseZeroPointTerm(*w, oc0 + j);
        for (int q = 0; q < TapPairs(*w); ++q)
          for (int half = 0; half < 2; ++half)  // vpunpcklwd (channels 0-3, 8-11), vpunpckhwd (4-7, 12-15)
            for (int lane = 0; lane < 2; ++lane)
              for (int k = 0; k < 4; ++k) {
                const int j = lane * 8 + half * 4 + k;
                int16_t* d = wp + (2 * q + half) * 16 + lane * 8 + 2 * k;
                d[0] = weight(2 * q, j);
                d[1] = weight(2 * q + 1, j);
              }
      });
  return Status::Ok();
}

void DepthwiseInt8Avx2(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end) {
  if (w.multiplier_ == 1)
    DepthwiseRows<1>(w, p, in, out, row_begin, row_end);
  else
    DepthwiseRows<2>(w, p, in, out, row_begin, row_end);
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
