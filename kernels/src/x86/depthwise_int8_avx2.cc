// int8 depthwise conv, x86-64 AVX2 (also what AVX-512 CPUs run: a depthwise conv has no sum over
// input channels for vpdpbusd to speed up). 16 output channels per step: (x - input_zero_point) as
// int16 times the int16 weights with vpmullw, exact as |(x - zp) * w| <= 255 * 128 < 2^15, widened
// into two int32x8 accumulators; padded taps are skipped (they contribute 0, as in TFLite). With
// depth multiplier 2 each input channel feeds two adjacent output channels: 8 inputs, each
// duplicated. Pixels whose taps are all in range (the interior) take two taps per vpmaddwd on the
// int8 inputs as they are, the accumulators starting at -input_zero_point * sum(w) (packed per
// block): no (x - zp) per tap there. 3-column kernels of 3 or 4 rows at stride 1 or 2 across take
// the column path instead, as the dot-product kernels: a column's rows paired (0, 1) and (2, 3 or
// zero) and interleaved once, kept for every output pixel whose window holds it; padded taps read a
// zero-point row, so border pixels take the same path. Epilogue: avx2_requant.h,
// shared with the AVX2 conv.
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
// The column path's weights, after the interior's start row: per kernel column kx, the row pairs
// (0, 1) and (2, 3) (a row past kernel_h: zero weights), each in the vpunpck{l,h}wd order.
inline bool ColumnPath(const PackedDepthwiseInt8& w) {
  return w.multiplier_ <= 2 && DotColumnPath(w.geometry_) && w.geometry_.kernel_h >= 3;
}
inline size_t ColumnBytes(const PackedDepthwiseInt8& w) {
  return ColumnPath(w) ? 3 * 2 * 2 * kNR * sizeof(int16_t) : 0;
}
inline size_t DwBlockBytes(const PackedDepthwiseInt8& w) {
  return DepthwiseBlockBytes<int16_t>(w, kParamBytes, PairBytes(w) + kZpRowBytes + ColumnBytes(w));
}

// Multiplier 2: the 8 inputs of block oc0 (n / 2 of them), each sign-extended into the int16 lanes
// of its two outputs: a broadcast load (no shuffle), one vpshufb putting each input in the high byte
// of its lanes, one arithmetic shift (a widening and two unpacks before: three shuffles; the column
// path's x2 3x3s were 1.7-2.1x faster with it on the Xeon).
template <bool kFull>
inline __m256i LoadDuplicated(const int8_t* x, int oc0, int n) {
  int64_t b = 0;
  if (kFull || n == kNR)
    std::memcpy(&b, x + oc0 / 2, sizeof(b));
  else
    std::memcpy(&b, x + oc0 / 2, static_cast<size_t>(n / 2));
  const __m256i high = _mm256_setr_epi8(-1, 0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3,  //
                                        -1, 4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7);
  return _mm256_srai_epi16(_mm256_shuffle_epi8(_mm256_set1_epi64x(b), high), 8);
}

// (x - zp) for the 16 output channels [oc0, oc0 + n) of one input pixel `x`, as int16 (zp = 0:
// x itself).
template <int M, bool kFull = false>
inline __m256i LoadInputs(const int8_t* x, int oc0, int n, __m256i zp) {
  if constexpr (M == 2) return _mm256_sub_epi16(LoadDuplicated<kFull>(x, oc0, n), zp);
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

// One column's rows as two interleaved pairs: (row 0, row 1) and (row 2, row 3 or zero), each as
// the vpunpck{l,h}wd halves (channels {0-3, 8-11} and {4-7, 12-15}).
struct Column {
  __m256i a_lo, a_hi, b_lo, b_hi;
};

// 3-column kernels at stride 1 or 2 across: one block along an output row, each column's pairs
// interleaved once and kept for the next pixels. 12 vpmaddwd per pixel for 9 taps, against 10 on
// the interior path, but 3 loads and 4 unpacks per new column instead of 9 and 10 per pixel (Zen 4,
// 1 thread, avx2 variant: 112x112x32 3x3/1 363 -> 186 us, 56x56x144 254 -> 221 us, 112 -> 56 x96
// /2 186 -> 136 us).
template <int M, bool kFull, int kStride, bool kFour>
void ColumnBlockRow(const int8_t* const* rows, const int8_t* zp_row, int in_w, int64_t pixel_stride, int ix0,
                    int out_w, int64_t out_pixel_stride, int oc0, int n, const __m256i* cw, const __m256i* zr,
                    const int32_t* prm, const RequantConsts& c, int8_t* o) {
  const int8_t* const row[4] = {rows[0], rows[1], rows[2], kFour ? rows[3] : nullptr};
  const __m256i none = _mm256_setzero_si256();
  auto column = [&](int ix) {
    const int8_t* x[4];
    ColumnPointers<kFour>(row, zp_row, in_w, pixel_stride, ix, x);
    const __m256i r0 = LoadInputs<M, kFull>(x[0], oc0, n, none), r1 = LoadInputs<M, kFull>(x[1], oc0, n, none);
    const __m256i r2 = LoadInputs<M, kFull>(x[2], oc0, n, none);
    const __m256i r3 = kFour ? LoadInputs<M, kFull>(x[3], oc0, n, none) : none;
    return Column{_mm256_unpacklo_epi16(r0, r1), _mm256_unpackhi_epi16(r0, r1), _mm256_unpacklo_epi16(r2, r3),
                  _mm256_unpackhi_epi16(r2, r3)};
  };
  auto madd = [&](__m256i acc, __m256i v, int i) { return _mm256_add_epi32(acc, _mm256_madd_epi16(v, _mm256_load_si256(cw + i))); };
  Column left = column(ix0), mid = kStride == 1 ? column(ix0 + 1) : left;
  for (int ox = 0; ox < out_w; ++ox, ix0 += kStride) {
    if (kStride != 1) mid = column(ix0 + 1);
    const Column right = column(ix0 + 2);
    __m256i lo = _mm256_load_si256(zr), hi = _mm256_load_si256(zr + 1);
    lo = madd(madd(lo, left.a_lo, 0), left.b_lo, 2);
    hi = madd(madd(hi, left.a_hi, 1), left.b_hi, 3);
    lo = madd(madd(lo, mid.a_lo, 4), mid.b_lo, 6);
    hi = madd(madd(hi, mid.a_hi, 5), mid.b_hi, 7);
    lo = madd(madd(lo, right.a_lo, 8), right.b_lo, 10);
    hi = madd(madd(hi, right.a_hi, 9), right.b_hi, 11);
    StoreRow(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31), prm, c,
             o + ox * out_pixel_stride + oc0, n);
    left = kStride == 1 ? mid : right;
    mid = right;
  }
}

template <int M>
void ColumnRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
                int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = DwBlockBytes(w);
  const int blocks = (w.geometry_.out_channels + kNR - 1) / kNR;
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + blocks * bb);
  const size_t zr_off = bb - ColumnBytes(w) - kZpRowBytes, cw_off = bb - ColumnBytes(w);
  SweepColumnBlocks<kNR>(w, p, in, out, row_begin, row_end,
                         [&](const int8_t* const* rows, int8_t* orow, int oc0, int bi, int n, auto full, auto stride,
                             auto four) {
    ColumnBlockRow<M, decltype(full)::value, decltype(stride)::value, decltype(four)::value>(
        rows, zp_row, p.in_w, p.in.pixel_stride, -p.pad_left, p.out_w, p.out.pixel_stride, oc0, n,
        reinterpret_cast<const __m256i*>(base + bi * bb + cw_off), reinterpret_cast<const __m256i*>(base + bi * bb + zr_off),
        reinterpret_cast<const int32_t*>(base + bi * bb), c, orow);
  });
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
  const ConvGeometry& g = w->geometry_;
  const int blocks = (cout + kNR - 1) / kNR;
  const size_t zp_row_bytes = ColumnPath(*w) ? DotZeroPointRowBytes(*w) : 0;
  uint8_t* base = PackDepthwiseBlocks<int16_t>(
      w, kParamBytes,
      [w](int32_t* prm, int oc0) { PackRequantParams(prm, w->quant_, w->bias_, w->left_shift_, w->right_shift_, oc0); },
      PairBytes(*w) + kZpRowBytes + ColumnBytes(*w), [&](uint8_t* extra, int oc0) {
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
        if (!ColumnPath(*w)) return;
        // column kx, pair r (rows 2r, 2r + 1), half: 16 int16 at ((kx * 2 + r) * 2 + half) * 16
        auto* cw = reinterpret_cast<int16_t*>(extra + PairBytes(*w) + kZpRowBytes);
        auto tap = [&](int ky, int kx) { return ky < g.kernel_h ? ky * g.kernel_w + kx : taps; };  // taps: zero
        for (int kx = 0; kx < 3; ++kx)
          for (int r = 0; r < 2; ++r)
            for (int half = 0; half < 2; ++half)
              for (int lane = 0; lane < 2; ++lane)
                for (int k = 0; k < 4; ++k) {
                  const int j = lane * 8 + half * 4 + k;
                  int16_t* d = cw + ((kx * 2 + r) * 2 + half) * 16 + lane * 8 + 2 * k;
                  d[0] = weight(tap(2 * r, kx), j);
                  d[1] = weight(tap(2 * r + 1, kx), j);
                }
      },
      zp_row_bytes);
  if (zp_row_bytes > 0)
    std::memset(base + blocks * DwBlockBytes(*w), static_cast<uint8_t>(w->quant_.input_zero_point), zp_row_bytes);
  return Status::Ok();
}

void DepthwiseInt8Avx2(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end) {
  if (ColumnPath(w) && w.multiplier_ == 1)
    ColumnRows<1>(w, p, in, out, row_begin, row_end);
  else if (ColumnPath(w))
    ColumnRows<2>(w, p, in, out, row_begin, row_end);
  else if (w.multiplier_ == 1)
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
