// int8 depthwise conv, x86-64 AVX-512 VNNI. A depthwise conv has no sum over input channels, but
// it has one over taps: vpdpbusd sums four taps per output channel. Per 64 output channels and
// group of four taps, the taps' 64 input bytes are interleaved by channel in registers
// (vpunpck{l,h}bw, then vpunpck{l,h}wd: four zmm, each 16 channels x 4 taps) and multiplied by
// weights packed in that order: 4 vpdpbusd per 256 MACs, where the AVX2 kernel needs ~20
// instructions per 32. The unpacks keep each 128-bit lane's channels, and the epilogue's packs
// (PackClamp4) undo them: the outputs come out in channel order with no cross-lane permute.
//
// Unsigned inputs for vpdpbusd: x + 128 (the sign bit flipped), so that
//   sum((x - zp) * w) = sum((x + 128) * w) - (zp + 128) * sum(w),
// the second term folded into the packed bias. Padded taps read a row of zero points (x - zp = 0)
// like every other tap (XNNPACK's indirection), so border pixels take the same path; a group's
// unused tap slots have zero weights. Kernels of up to 4 rows group taps by column, and the
// 3-column ones at stride 1 or 2 across interleave each input column once per row and block
// (ColumnRows). Multiplier 2: output channels 2c and 2c + 1 read input channel c; the 32 inputs
// of a block are interleaved in ymm and each dword duplicated by a two-source permute
// (Interleave2). Epilogue and requantization (all three roundings, bit-exact): avx512_requant.h, shared with the conv.
//
// QEMU's TCG cannot emulate AVX-512: compiled everywhere, executed and tested on AVX-512 VNNI CPUs.
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

#include "../depthwise_sweep.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#endif

#include "avx512_requant.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kBlock = 64;  // output channels per packed block: four zmm accumulators
// Per block: 4 quarters x 4 parameter rows x 16 int32 (bias folded, multiplier or fp32 scale,
// left shift, right shift), then per group of 4 taps 4 x 64 weight bytes. Quarter q's lane j is
// channel 16 * (j / 4) + 4 * q + j % 4 of the block (the unpacks' order).
constexpr size_t kParamBytes = 4 * 4 * 16 * sizeof(int32_t);
constexpr size_t kGroupBytes = 4 * 64;
inline int BlockChannel(int q, int j) { return 16 * (j / 4) + 4 * q + j % 4; }
inline size_t BlockBytes(const PackedDepthwiseInt8& w) { return kParamBytes + DotTapGroups(w.geometry_) * kGroupBytes; }
inline int Blocks(const PackedDepthwiseInt8& w) { return (w.geometry_.out_channels + kBlock - 1) / kBlock; }

// Multiplier 1: the 64 (kFull) or n inputs of block oc0 at one tap, as uint8 x + 128.
template <bool kFull>
inline __m512i LoadTap(const int8_t* x, int oc0, int n) {
  const __m512i v = kFull ? _mm512_loadu_si512(x + oc0) : _mm512_maskz_loadu_epi8((~__mmask64{0}) >> (64 - n), x + oc0);
  return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
}

// Multiplier 2: the 32 (kFull) or n / 2 inputs that block oc0's outputs read at one tap, uint8 x + 128.
template <bool kFull>
inline __m256i LoadHalfTap(const int8_t* x, int oc0, int n) {
  const __m256i v = kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + oc0 / 2))
                          : _mm256_maskz_loadu_epi8((~__mmask32{0}) >> (32 - n / 2), x + oc0 / 2);
  return _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
}

// Four taps' inputs interleaved by channel: quarter q = 16 channels x 4 taps, lane j holding
// channel BlockChannel(q, j).
struct Quarters {
  __m512i q[4];
};

// kFour: the fourth slot holds a tap; else its weights are zero and it takes a zero register.
template <bool kFull, bool kFour = true>
inline Quarters Interleave1(const int8_t* const* x, int oc0, int n) {
  const __m512i t0 = LoadTap<kFull>(x[0], oc0, n), t1 = LoadTap<kFull>(x[1], oc0, n);
  const __m512i t2 = LoadTap<kFull>(x[2], oc0, n);
  const __m512i t3 = kFour ? LoadTap<kFull>(x[3], oc0, n) : _mm512_setzero_si512();
  const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);
  const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);
  return {{_mm512_unpacklo_epi16(lo01, lo23), _mm512_unpackhi_epi16(lo01, lo23), _mm512_unpacklo_epi16(hi01, hi23),
           _mm512_unpackhi_epi16(hi01, hi23)}};
}

// Multiplier 2: the 32 input channels interleaved in ymm (a = inputs {0-3, 16-19}, b = {4-7, 20-23},
// c = {8-11, 24-27}, d = {12-15, 28-31}, 4 taps each), then each input's dword duplicated into
// the two outputs it feeds, in BlockChannel order, by one two-source dword permute per quarter:
// outputs 16L + k (k < 4) read input 8L + k / 2, in a (L even) or c (L odd); the next four
// outputs input 8L + 2 + k / 2.
template <bool kFull, bool kFour = true>
inline Quarters Interleave2(const int8_t* const* x, int oc0, int n) {
  const __m256i t0 = LoadHalfTap<kFull>(x[0], oc0, n), t1 = LoadHalfTap<kFull>(x[1], oc0, n);
  const __m256i t2 = LoadHalfTap<kFull>(x[2], oc0, n);
  const __m256i t3 = kFour ? LoadHalfTap<kFull>(x[3], oc0, n) : _mm256_setzero_si256();
  const __m256i lo01 = _mm256_unpacklo_epi8(t0, t1), hi01 = _mm256_unpackhi_epi8(t0, t1);
  const __m256i lo23 = _mm256_unpacklo_epi8(t2, t3), hi23 = _mm256_unpackhi_epi8(t2, t3);
  const __m512i a = _mm512_castsi256_si512(_mm256_unpacklo_epi16(lo01, lo23));
  const __m512i b = _mm512_castsi256_si512(_mm256_unpackhi_epi16(lo01, lo23));
  const __m512i c = _mm512_castsi256_si512(_mm256_unpacklo_epi16(hi01, hi23));
  const __m512i d = _mm512_castsi256_si512(_mm256_unpackhi_epi16(hi01, hi23));
  const __m512i first = _mm512_setr_epi32(0, 0, 1, 1, 16, 16, 17, 17, 4, 4, 5, 5, 20, 20, 21, 21);
  const __m512i second = _mm512_setr_epi32(2, 2, 3, 3, 18, 18, 19, 19, 6, 6, 7, 7, 22, 22, 23, 23);
  return {{_mm512_permutex2var_epi32(a, first, c), _mm512_permutex2var_epi32(a, second, c),
           _mm512_permutex2var_epi32(b, first, d), _mm512_permutex2var_epi32(b, second, d)}};
}

// One block of one output pixel: x[4 * groups] tap pointers (input channel 0 of the tap's pixel,
// or the zero-point row), wg the block's packed weights, prm its parameter rows.
template <int M, bool kFull, int kGroups>
inline void Block(const int8_t* const* x, int groups, int oc0, int n, const int32_t* prm, const int8_t* wg,
                  const RequantConsts& c, int8_t* o) {
  const int g_count = kGroups > 0 ? kGroups : groups;
  __m512i acc[4];
  for (int q = 0; q < 4; ++q) acc[q] = _mm512_load_si512(prm + 64 * q);  // the folded bias
#pragma GCC unroll 4
  for (int g = 0; g < g_count; ++g) {
    const Quarters t = M == 1 ? Interleave1<kFull>(x + 4 * g, oc0, n) : Interleave2<kFull>(x + 4 * g, oc0, n);
    const int8_t* wq = wg + g * kGroupBytes;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[q] = _mm512_dpbusd_epi32(acc[q], t.q[q], _mm512_load_si512(wq + 64 * q));
  }
  StoreQuarters<kFull>(acc, prm, c, o, oc0, n);
}

// Any kernel: every output pixel gathers its taps' pointers into their slots.
template <int M, int kGroups>
void PixelRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
               int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_, false, true);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = w.geometry_.out_channels, groups = kGroups > 0 ? kGroups : DotTapGroups(w.geometry_);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepDotDepthwise(w, p, in, out, row_begin, row_end, zp_row, [&](const int8_t* const* x, int8_t* o) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kBlock, ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wg = reinterpret_cast<const int8_t*>(base + bi * bb + kParamBytes);
      const int n = std::min(kBlock, cout - oc0);
      if (n == kBlock)
        Block<M, true, kGroups>(x, groups, oc0, n, prm, wg, c, o);
      else
        Block<M, false, kGroups>(x, groups, oc0, n, prm, wg, c, o);
    }
  });
}

// 3-column kernels of up to 4 rows, stride 1 or 2 across (DotColumnPath): per block, the row's
// output pixels in order, each column's taps interleaved once and kept in registers for the next
// pixels whose windows hold it (stride 1: one new column per pixel instead of three; stride 2:
// two). Zen 4, 1 thread, 3x3/1 28x28x384: 69-70 us with every pixel interleaving its 3 groups, 42 us.
// kStride: 1 or 2; kFour: a 4-row kernel (else the fourth slot is a zero register).
template <int M, bool kFull, int kStride, bool kFour>
void ColumnBlockRow(const int8_t* const* rows, const int8_t* zp_row, int in_w, int64_t pixel_stride, int ix0,
                    int out_w, int64_t out_pixel_stride, int oc0, int n, const int32_t* prm,
                    const int8_t* wg, const RequantConsts& c, int8_t* o) {
  auto column = [&](int ix) {
    const int8_t* x[4];
    ColumnPointers<kFour>(rows, zp_row, in_w, pixel_stride, ix, x);
    return M == 1 ? Interleave1<kFull, kFour>(x, oc0, n) : Interleave2<kFull, kFour>(x, oc0, n);
  };
  Quarters left = column(ix0), mid = kStride == 1 ? column(ix0 + 1) : left;
  for (int ox = 0; ox < out_w; ++ox, ix0 += kStride) {
    if (kStride != 1) mid = column(ix0 + 1);
    const Quarters right = column(ix0 + 2);
    __m512i acc[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      acc[q] = _mm512_dpbusd_epi32(_mm512_load_si512(prm + 64 * q), left.q[q], _mm512_load_si512(wg + 64 * q));
      acc[q] = _mm512_dpbusd_epi32(acc[q], mid.q[q], _mm512_load_si512(wg + kGroupBytes + 64 * q));
      acc[q] = _mm512_dpbusd_epi32(acc[q], right.q[q], _mm512_load_si512(wg + 2 * kGroupBytes + 64 * q));
    }
    StoreQuarters<kFull>(acc, prm, c, o + ox * out_pixel_stride, oc0, n);
    left = kStride == 1 ? mid : right;
    mid = right;
  }
}

// Multiplier-1 tails of at most 32 channels: the same interleave in ymm (lanes 0-7 of each quarter),
// half the vector work of a whole block; the epilogue runs on the widened zmm and stores n bytes.
// Zen 4, 1 thread: 112x112x32 104 -> 93 us, 56x56x144 78 -> 74.5 us. The x2 tails the same way
// measured no faster, and the x2 full blocks slower (the column sweep's code changed around them).
struct HalfQuarters {
  __m256i q[4];
};

template <bool kFour>
inline HalfQuarters InterleaveHalf1(const int8_t* const* x, int oc0, int n) {
  const __mmask32 m = (~__mmask32{0}) >> (32 - n);
  auto load = [&](const int8_t* p) {
    return _mm256_xor_si256(_mm256_maskz_loadu_epi8(m, p + oc0), _mm256_set1_epi8(static_cast<char>(0x80)));
  };
  const __m256i t0 = load(x[0]), t1 = load(x[1]), t2 = load(x[2]);
  const __m256i t3 = kFour ? load(x[3]) : _mm256_setzero_si256();
  const __m256i lo01 = _mm256_unpacklo_epi8(t0, t1), hi01 = _mm256_unpackhi_epi8(t0, t1);
  const __m256i lo23 = _mm256_unpacklo_epi8(t2, t3), hi23 = _mm256_unpackhi_epi8(t2, t3);
  return {{_mm256_unpacklo_epi16(lo01, lo23), _mm256_unpackhi_epi16(lo01, lo23), _mm256_unpacklo_epi16(hi01, hi23),
           _mm256_unpackhi_epi16(hi01, hi23)}};
}

template <int kStride, bool kFour>
void ColumnHalfBlockRow(const int8_t* const* rows, const int8_t* zp_row, int in_w, int64_t pixel_stride, int ix0,
                        int out_w, int64_t out_pixel_stride, int oc0, int n, const int32_t* prm, const int8_t* wg,
                        const RequantConsts& c, int8_t* o) {
  auto column = [&](int ix) {
    const int8_t* x[4];
    ColumnPointers<kFour>(rows, zp_row, in_w, pixel_stride, ix, x);
    return InterleaveHalf1<kFour>(x, oc0, n);
  };
  auto row = [](const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); };
  HalfQuarters left = column(ix0), mid = kStride == 1 ? column(ix0 + 1) : left;
  for (int ox = 0; ox < out_w; ++ox, ix0 += kStride) {
    if (kStride != 1) mid = column(ix0 + 1);
    const HalfQuarters right = column(ix0 + 2);
    __m512i acc[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      __m256i a = _mm256_dpbusd_epi32(row(prm + 64 * q), left.q[q], row(wg + 64 * q));
      a = _mm256_dpbusd_epi32(a, mid.q[q], row(wg + kGroupBytes + 64 * q));
      acc[q] = _mm512_castsi256_si512(_mm256_dpbusd_epi32(a, right.q[q], row(wg + 2 * kGroupBytes + 64 * q)));
    }
    StoreQuarters<false>(acc, prm, c, o + ox * out_pixel_stride, oc0, n);
    left = kStride == 1 ? mid : right;
    mid = right;
  }
}

template <int M>
void ColumnRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
                int row_end) {
  const ConvGeometry& g = w.geometry_;
  const RequantConsts c = MakeRequantConsts(w.quant_, false, true);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepDotColumns(w, p, in, out, row_begin, row_end, [&](const int8_t* const* rows, int8_t* orow) {
    for (int oc0 = 0, bi = 0; oc0 < g.out_channels; oc0 += kBlock, ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wg = reinterpret_cast<const int8_t*>(base + bi * bb + kParamBytes);
      const int n = std::min(kBlock, g.out_channels - oc0);
      if constexpr (M == 1) {
        if (n <= 32) {
          DispatchColumnBlockRow(g, false, [&](auto, auto stride, auto four) {
            ColumnHalfBlockRow<decltype(stride)::value, decltype(four)::value>(
                rows, zp_row, p.in_w, p.in.pixel_stride, -p.pad_left, p.out_w, p.out.pixel_stride, oc0, n, prm, wg,
                c, orow);
          });
          continue;
        }
      }
      DispatchColumnBlockRow(g, n == kBlock, [&](auto full, auto stride, auto four) {
        ColumnBlockRow<M, decltype(full)::value, decltype(stride)::value, decltype(four)::value>(
            rows, zp_row, p.in_w, p.in.pixel_stride, -p.pad_left, p.out_w, p.out.pixel_stride, oc0, n, prm, wg, c,
            orow);
      });
    }
  });
}

}  // namespace

Status PackDepthwiseInt8Avx512Vnni(PackedDepthwiseInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int cout = g.out_channels, groups = DotTapGroups(g);
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + DotZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wg = reinterpret_cast<int8_t*>(base + bi * bb + kParamBytes);
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 16; ++j) {
        const int oc = bi * kBlock + BlockChannel(q, j);
        if (oc >= cout) continue;  // zero parameters and weights: the lane's output is not stored
        // inputs x + 128: the bias folds -(zp + 128) * sum(w)
        PackParamLane(prm + 64 * q + j, quant, DotFoldedBias(*w, oc, quant.input_zero_point + 128),
                      w->left_shift_[oc], w->right_shift_[oc], oc);
        for (int gi = 0; gi < groups; ++gi)
          for (int k = 0; k < 4; ++k) {
            const int t = DotSlotTap(g, gi, k);
            wg[gi * kGroupBytes + q * 64 + 4 * j + k] = t < 0 ? 0 : w->weights_[static_cast<size_t>(t) * cout + oc];
          }
      }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), DotZeroPointRowBytes(*w));
  return Status::Ok();
}

void DepthwiseInt8Avx512Vnni(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                             int row_begin, int row_end) {
  DispatchDotDepthwise(
      w, [&](auto m) { ColumnRows<decltype(m)::value>(w, p, in, out, row_begin, row_end); },
      [&](auto m, auto groups) { PixelRows<decltype(m)::value, decltype(groups)::value>(w, p, in, out, row_begin, row_end); });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
