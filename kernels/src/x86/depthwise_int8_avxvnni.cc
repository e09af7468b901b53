// int8 depthwise conv, x86-64 AVX-VNNI (the 256-bit VEX vpdpbusd of Intel client cores without
// AVX-512), multipliers 1 and 2: the AVX-512 VNNI kernel's design (depthwise_int8_avx512vnni.cc) at
// half the width. vpdpbusd sums four taps per output channel: per 32 output channels and group of four
// taps, the taps' 32 input bytes (x + 128) are interleaved by channel (vpunpck{l,h}bw, then
// vpunpck{l,h}wd: four ymm of 8 channels x 4 taps, quarter q's lane j holding channel
// 16 * (j / 4) + 4q + j % 4) and multiplied by weights packed in that order; the bias folds
// -(zp + 128) * sum(w). Padded taps read a row of zero points. The 3-column kernels at stride 1 or
// 2 across interleave each input column once per row and block and keep it for the next pixels.
// Multiplier 2: a block's 32 outputs read 16 inputs, interleaved once and each dword duplicated
// into the two outputs it feeds (Interleave2). The AVX2 kernel (depthwise_int8_avx2.cc), which these
// CPUs ran before, sums two taps per vpmaddwd on int16 inputs. Epilogue: avx2_requant.h.
// KCSP_AVXVNNI_AS_EVEX: the EVEX-encoded vpdpbusd (a test build, as for conv_int8_avxvnni.cc).
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
#include <type_traits>

#include "../depthwise_sweep.h"

#if defined(__clang__) && defined(KCSP_AVXVNNI_AS_EVEX)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avxvnni"))), apply_to = function)
#endif

#include "avx2_requant.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kBlock = 32;  // output channels per packed block: four ymm accumulators
// Per block: two 16-channel parameter blocks (avx2_requant.h, bias folded), then per group of 4
// taps 4 quarters x 32 weight bytes.
constexpr size_t kGroupBytes = 4 * 32;
inline int BlockChannel(int q, int j) { return 16 * (j / 4) + 4 * q + j % 4; }
inline size_t BlockBytes(const PackedDepthwiseInt8& w) {
  return 2 * kParamBytes + DotTapGroups(w.geometry_) * kGroupBytes;
}
inline int Blocks(const PackedDepthwiseInt8& w) { return (w.geometry_.out_channels + kBlock - 1) / kBlock; }

// The 32 (kFull) or n inputs of block oc0 at one tap, as uint8 x + 128. A tail of 16 (144, 48,
// 80 channels) is one 16-byte load into lane 0; other tails are copied first (AVX-VNNI CPUs have no
// masked loads). 56x56x144 on the EVEX test build: 245 us with every tail copied, 159 us.
template <bool kFull>
inline __m256i LoadTap(const int8_t* x, int oc0, int n) {
  __m256i v;
  if constexpr (kFull) {
    v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + oc0));
  } else if (n == 16) {
    v = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + oc0)));
  } else {
    alignas(32) int8_t tmp[32] = {};
    std::memcpy(tmp, x + oc0, static_cast<size_t>(n));
    v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
  }
  return _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
}

// Multiplier 2: the 16 (kFull) or n / 2 inputs that block oc0's outputs read at one tap, uint8
// x + 128, in both 128-bit lanes (broadcast loads: no shuffle).
template <bool kFull>
inline __m256i LoadHalfTap(const int8_t* x, int oc0, int n) {
  const int8_t* p = x + oc0 / 2;
  __m256i v;
  if constexpr (kFull) {
    v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else if (n == 16) {
    int64_t b;
    std::memcpy(&b, p, sizeof(b));
    v = _mm256_set1_epi64x(b);
  } else {
    alignas(16) int8_t tmp[16] = {};
    std::memcpy(tmp, p, static_cast<size_t>(n / 2));
    v = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
  }
  return _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
}

struct Quarters {
  __m256i q[4];
};

// Four taps' inputs interleaved by channel; kFour: the fourth slot holds a tap (else zeros).
template <bool kFull, bool kFour = true>
inline Quarters Interleave1(const int8_t* const* x, int oc0, int n) {
  const __m256i t0 = LoadTap<kFull>(x[0], oc0, n), t1 = LoadTap<kFull>(x[1], oc0, n);
  const __m256i t2 = LoadTap<kFull>(x[2], oc0, n);
  const __m256i t3 = kFour ? LoadTap<kFull>(x[3], oc0, n) : _mm256_setzero_si256();
  const __m256i lo01 = _mm256_unpacklo_epi8(t0, t1), hi01 = _mm256_unpackhi_epi8(t0, t1);
  const __m256i lo23 = _mm256_unpacklo_epi8(t2, t3), hi23 = _mm256_unpackhi_epi8(t2, t3);
  return {{_mm256_unpacklo_epi16(lo01, lo23), _mm256_unpackhi_epi16(lo01, lo23), _mm256_unpacklo_epi16(hi01, hi23),
           _mm256_unpackhi_epi16(hi01, hi23)}};
}

// Multiplier 2: the 16 inputs of four taps interleaved by channel (inputs 0-7 in lane 0, 8-15 in
// lane 1: one blend of the two unpacks of each tap pair), then each input's dword duplicated into
// the two outputs it feeds, in BlockChannel order: quarter q's lane j is output 16 * (j / 4) + 4q +
// j % 4, which reads input 8 * (j / 4) + 2q + (j % 4) / 2. In-lane unpacks only.
template <bool kFull, bool kFour = true>
inline Quarters Interleave2(const int8_t* const* x, int oc0, int n) {
  const __m256i t0 = LoadHalfTap<kFull>(x[0], oc0, n), t1 = LoadHalfTap<kFull>(x[1], oc0, n);
  const __m256i t2 = LoadHalfTap<kFull>(x[2], oc0, n);
  const __m256i t3 = kFour ? LoadHalfTap<kFull>(x[3], oc0, n) : _mm256_setzero_si256();
  const __m256i x01 = _mm256_blend_epi32(_mm256_unpacklo_epi8(t0, t1), _mm256_unpackhi_epi8(t0, t1), 0xF0);
  const __m256i x23 = _mm256_blend_epi32(_mm256_unpacklo_epi8(t2, t3), _mm256_unpackhi_epi8(t2, t3), 0xF0);
  const __m256i ac = _mm256_unpacklo_epi16(x01, x23);  // inputs 0-3 | 8-11, four taps each
  const __m256i bd = _mm256_unpackhi_epi16(x01, x23);  // inputs 4-7 | 12-15
  return {{_mm256_unpacklo_epi32(ac, ac), _mm256_unpackhi_epi32(ac, ac), _mm256_unpacklo_epi32(bd, bd),
           _mm256_unpackhi_epi32(bd, bd)}};
}

template <int M, bool kFull, bool kFour = true>
inline Quarters Interleave(const int8_t* const* x, int oc0, int n) {
  if constexpr (M == 1)
    return Interleave1<kFull, kFour>(x, oc0, n);
  else
    return Interleave2<kFull, kFour>(x, oc0, n);
}

inline __m256i Weights(const int8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }

// One block of one output pixel: x[4 * groups] tap pointers, wg the block's packed weights.
template <int M, bool kFull, int kGroups>
inline void Block(const int8_t* const* x, int groups, int oc0, int n, const int32_t* prm, const int8_t* wg,
                  const RequantConsts& c, int8_t* o) {
  const int g_count = kGroups > 0 ? kGroups : groups;
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
#pragma GCC unroll 4
  for (int g = 0; g < g_count; ++g) {
    const Quarters t = Interleave<M, kFull>(x + 4 * g, oc0, n);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[q] = KCSP_DPBUSD256(acc[q], t.q[q], Weights(wg + g * kGroupBytes + 32 * q));
  }
  StoreQuarters32(acc, prm, c, o + oc0, n);
}

template <int M, int kGroups>
void PixelRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
               int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = w.geometry_.out_channels, groups = kGroups > 0 ? kGroups : DotTapGroups(w.geometry_);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepDotDepthwise(w, p, in, out, row_begin, row_end, zp_row, [&](const int8_t* const* x, int8_t* o) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kBlock, ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wg = reinterpret_cast<const int8_t*>(base + bi * bb + 2 * kParamBytes);
      const int n = std::min(kBlock, cout - oc0);
      if (n == kBlock)
        Block<M, true, kGroups>(x, groups, oc0, n, prm, wg, c, o);
      else
        Block<M, false, kGroups>(x, groups, oc0, n, prm, wg, c, o);
    }
  });
}

// 3-column kernels of up to 4 rows at stride 1 or 2 across: per block, the row's output pixels in
// order, each column's taps interleaved once and kept for the next pixels whose windows hold it.
template <int M, bool kFull, int kStride, bool kFour>
void ColumnBlockRow(const int8_t* const* rows, const int8_t* zp_row, int in_w, int64_t pixel_stride, int ix0,
                    int out_w, int64_t out_pixel_stride, int oc0, int n, const int32_t* prm, const int8_t* wg,
                    const RequantConsts& c, int8_t* o) {
  auto column = [&](int ix) {
    const int8_t* x[4];
    ColumnPointers<kFour>(rows, zp_row, in_w, pixel_stride, ix, x);
    return Interleave<M, kFull, kFour>(x, oc0, n);
  };
  Quarters left = column(ix0), mid = kStride == 1 ? column(ix0 + 1) : left;
  for (int ox = 0; ox < out_w; ++ox, ix0 += kStride) {
    if (kStride != 1) mid = column(ix0 + 1);
    const Quarters right = column(ix0 + 2);
    __m256i acc[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      acc[q] = KCSP_DPBUSD256(_mm256_setzero_si256(), left.q[q], Weights(wg + 32 * q));
      acc[q] = KCSP_DPBUSD256(acc[q], mid.q[q], Weights(wg + kGroupBytes + 32 * q));
      acc[q] = KCSP_DPBUSD256(acc[q], right.q[q], Weights(wg + 2 * kGroupBytes + 32 * q));
    }
    StoreQuarters32(acc, prm, c, o + ox * out_pixel_stride + oc0, n);
    left = kStride == 1 ? mid : right;
    mid = right;
  }
}

template <int M>
void ColumnRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
                int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepColumnBlocks<kBlock>(w, p, in, out, row_begin, row_end,
                            [&](const int8_t* const* rows, int8_t* orow, int oc0, int bi, int n, auto full, auto stride,
                                auto four) {
    ColumnBlockRow<M, decltype(full)::value, decltype(stride)::value, decltype(four)::value>(
        rows, zp_row, p.in_w, p.in.pixel_stride, -p.pad_left, p.out_w, p.out.pixel_stride, oc0, n,
        reinterpret_cast<const int32_t*>(base + bi * bb), reinterpret_cast<const int8_t*>(base + bi * bb + 2 * kParamBytes),
        c, orow);
  });
}

}  // namespace

Status PackDepthwiseInt8AvxVnni(PackedDepthwiseInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int cout = g.out_channels, groups = DotTapGroups(g);
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + DotZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  std::vector<int32_t> bias(cout);  // inputs x + 128: the bias folds -(zp + 128) * sum(w)
  for (int oc = 0; oc < cout; ++oc) bias[oc] = DotFoldedBias(*w, oc, quant.input_zero_point + 128);
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    PackRequantParams(prm, quant, bias, w->left_shift_, w->right_shift_, bi * kBlock);
    if (bi * kBlock + 16 < cout)
      PackRequantParams(prm + kParamBytes / sizeof(int32_t), quant, bias, w->left_shift_, w->right_shift_,
                        bi * kBlock + 16);
    auto* wg = reinterpret_cast<int8_t*>(base + bi * bb + 2 * kParamBytes);
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 8; ++j) {
        const int oc = bi * kBlock + BlockChannel(q, j);
        if (oc >= cout) continue;  // zero weights: the lane's output is not stored
        for (int gi = 0; gi < groups; ++gi)
          for (int k = 0; k < 4; ++k) {
            const int t = DotSlotTap(g, gi, k);
            wg[gi * kGroupBytes + q * 32 + 4 * j + k] = t < 0 ? 0 : w->weights_[static_cast<size_t>(t) * cout + oc];
          }
      }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), DotZeroPointRowBytes(*w));
  return Status::Ok();
}

void DepthwiseInt8AvxVnni(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
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
