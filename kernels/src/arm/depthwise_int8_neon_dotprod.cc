// int8 depthwise conv, aarch64 NEON with the dot-product extension (what the dotprod, i8mm and SME
// variants run). As the AVX-512 VNNI kernel: a depthwise conv has no sum over input channels but
// one over taps, and sdot sums four taps per output channel. Per 16 output channels and group of
// four taps, the taps' 16 input bytes are interleaved by channel (zip1/zip2 of bytes, then of
// halfwords: four registers of 4 channels x 4 taps, in channel order) and multiplied by weights
// packed in that order: 4 sdot per 256 MACs, where the plain NEON kernel needs 10 instructions per
// 32 MACs. sdot multiplies signed by signed: sum((x - zp) * w) = sum(x * w) - zp * sum(w), the
// second term folded into the packed bias; padded taps read a row of zero points, so border pixels
// take the same path. Taps are grouped as DotSlot says (depthwise_sweep.h); the 3-column kernels at
// stride 1 or 2 across interleave each input column once per row and block and keep it in
// registers for the next pixels. Multiplier 2: 8 inputs interleaved, then each dword duplicated
// (zip1/zip2 of 32-bit lanes with themselves). Epilogue: neon_int8_common.h, shared with the convs.
#if defined(__aarch64__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../depthwise_sweep.h"
#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kPackNR;  // 16 output channels per block
constexpr size_t kGroupBytes = 4 * 16;
inline size_t BlockBytes(const PackedDepthwiseInt8& w) {
  return kPackParamBytes + DotTapGroups(w.geometry_) * kGroupBytes;
}
inline int Blocks(const PackedDepthwiseInt8& w) { return (w.geometry_.out_channels + kNR - 1) / kNR; }

// Four taps' inputs interleaved by channel: q[i] = channels 4i .. 4i + 3 of the block, 4 taps each.
struct Quarters {
  int8x16_t q[4];
};

// The inputs block oc0 reads at one tap: 16 (M = 1) or 8 (M = 2) bytes; kFull: the whole block
// (else the n channels are copied first: a plain load could read past the slice).
template <int M, bool kFull>
inline int8x16_t LoadTap(const int8_t* x, int oc0, int n) {
  const int8_t* s = x + oc0 / M;
  if constexpr (kFull) return M == 1 ? vld1q_s8(s) : vcombine_s8(vld1_s8(s), vld1_s8(s));
  int8_t tmp[16] = {};
  std::memcpy(tmp, s, static_cast<size_t>(n / M));
  return vld1q_s8(tmp);
}

// kFour: the fourth slot holds a tap; else its weights are zero and it takes a zero register.
template <int M, bool kFull, bool kFour = true>
inline Quarters Interleave(const int8_t* const* x, int oc0, int n) {
  const int8x16_t t0 = LoadTap<M, kFull>(x[0], oc0, n), t1 = LoadTap<M, kFull>(x[1], oc0, n);
  const int8x16_t t2 = LoadTap<M, kFull>(x[2], oc0, n);
  const int8x16_t t3 = kFour ? LoadTap<M, kFull>(x[3], oc0, n) : vdupq_n_s8(0);
  const int16x8_t lo01 = vreinterpretq_s16_s8(vzip1q_s8(t0, t1)), lo23 = vreinterpretq_s16_s8(vzip1q_s8(t2, t3));
  if constexpr (M == 1) {
    const int16x8_t hi01 = vreinterpretq_s16_s8(vzip2q_s8(t0, t1)), hi23 = vreinterpretq_s16_s8(vzip2q_s8(t2, t3));
    return {{vreinterpretq_s8_s16(vzip1q_s16(lo01, lo23)), vreinterpretq_s8_s16(vzip2q_s16(lo01, lo23)),
             vreinterpretq_s8_s16(vzip1q_s16(hi01, hi23)), vreinterpretq_s8_s16(vzip2q_s16(hi01, hi23))}};
  } else {
    // inputs 0-3 and 4-7 (4 taps each), each dword then feeding output channels 2c and 2c + 1
    const int32x4_t a = vreinterpretq_s32_s16(vzip1q_s16(lo01, lo23)), b = vreinterpretq_s32_s16(vzip2q_s16(lo01, lo23));
    return {{vreinterpretq_s8_s32(vzip1q_s32(a, a)), vreinterpretq_s8_s32(vzip2q_s32(a, a)),
             vreinterpretq_s8_s32(vzip1q_s32(b, b)), vreinterpretq_s8_s32(vzip2q_s32(b, b))}};
  }
}

// Group g's weights times the interleaved inputs, into the block's four accumulators.
inline void Dot(int32x4_t* acc, const Quarters& t, const int8_t* wg) {
  for (int q = 0; q < 4; ++q) acc[q] = vdotq_s32(acc[q], t.q[q], vld1q_s8(wg + 16 * q));
}

// The accumulators start at the block's (folded) bias: the epilogue then adds nothing.
inline void BiasStart(int32x4_t* acc, const int32_t* prm) {
  for (int q = 0; q < 4; ++q) acc[q] = vld1q_s32(prm + 4 * q);
}

// One block of one output pixel: x[4 * groups] tap pointers, prm / wg the block's parameters and weights.
template <int M, bool kFull>
void PixelBlock(const int8_t* const* x, int groups, int oc0, int n, const int32_t* prm, const int8_t* wg,
                const RequantConsts& c, int8_t* o) {
  int32x4_t acc[4];
  BiasStart(acc, prm);
  for (int g = 0; g < groups; ++g) Dot(acc, Interleave<M, kFull>(x + 4 * g, oc0, n), wg + g * kGroupBytes);
  StoreRow<true>(acc[0], acc[1], acc[2], acc[3], prm, c, o + oc0, n);
}

// Any kernel: every output pixel gathers its taps' pointers into their slots.
template <int M>
void PixelRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
               int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = w.geometry_.out_channels, groups = DotTapGroups(w.geometry_);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepDotDepthwise(w, p, in, out, row_begin, row_end, zp_row, [&](const int8_t* const* x, int8_t* o) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kNR, ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wg = reinterpret_cast<const int8_t*>(base + bi * bb + kPackParamBytes);
      const int n = std::min(kNR, cout - oc0);
      if (n == kNR)
        PixelBlock<M, true>(x, groups, oc0, n, prm, wg, c, o);
      else
        PixelBlock<M, false>(x, groups, oc0, n, prm, wg, c, o);
    }
  });
}

// 3-column kernels of up to 4 rows at stride 1 or 2 across (DotColumnPath): one block along an
// output row, the columns' interleaved inputs kept for the next pixels.
template <int M, bool kFull, int kStride, bool kFour>
void ColumnBlockRow(const int8_t* const* rows, const int8_t* zp_row, int in_w, int64_t pixel_stride, int ix0,
                    int out_w, int64_t out_pixel_stride, int oc0, int n, const int32_t* prm, const int8_t* wg,
                    const RequantConsts& c, int8_t* o) {
  // the row pointers copied: read through `rows`, they were reloaded after every int8 store (which
  // may alias them), spilled, and the A55 model's column step stalled on them (136 -> 104 cycles)
  const int8_t* const row[4] = {rows[0], rows[1], rows[2], kFour ? rows[3] : nullptr};
  // always_inline: GCC called the multiplier-2 columns out of line, spilling the live columns.
  auto column = [&](int ix) __attribute__((always_inline)) {
    const int8_t* x[4];
    ColumnPointers<kFour>(row, zp_row, in_w, pixel_stride, ix, x);
    return Interleave<M, kFull, kFour>(x, oc0, n);
  };
  // the llvm-mca region (kernels/tools/mca_arm.py): one output pixel's 16 channels of a 3x3/1.
  // Not unrolled: the columns would change roles by name instead of by register moves (clang's 8
  // mov per pixel), but three columns live across a pixel spill (clang: 52 -> 121 cycles, A76 model).
  constexpr bool kMca = M == 1 && kFull && kStride == 1 && !kFour;
  Quarters left = column(ix0), mid = kStride == 1 ? column(ix0 + 1) : left;
  for (int ox = 0; ox < out_w; ++ox, ix0 += kStride) {
    if constexpr (kMca) KCSP_MCA_BEGIN("neon_dotprod_depthwise_3x3");
    if (kStride != 1) mid = column(ix0 + 1);
    const Quarters right = column(ix0 + 2);
    int32x4_t acc[4];
    BiasStart(acc, prm);
    Dot(acc, left, wg);
    Dot(acc, mid, wg + kGroupBytes);
    Dot(acc, right, wg + 2 * kGroupBytes);
    StoreRow<true>(acc[0], acc[1], acc[2], acc[3], prm, c, o + ox * out_pixel_stride + oc0, kFull ? kNR : n);
    left = kStride == 1 ? mid : right;
    mid = right;
    if constexpr (kMca) KCSP_MCA_END("neon_dotprod_depthwise_3x3");
  }
}

template <int M>
void ColumnRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
                int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepColumnBlocks<kNR>(w, p, in, out, row_begin, row_end,
                         [&](const int8_t* const* rows, int8_t* orow, int oc0, int bi, int n, auto full, auto stride,
                             auto four) {
    ColumnBlockRow<M, decltype(full)::value, decltype(stride)::value, decltype(four)::value>(
        rows, zp_row, p.in_w, p.in.pixel_stride, -p.pad_left, p.out_w, p.out.pixel_stride, oc0, n,
        reinterpret_cast<const int32_t*>(base + bi * bb), reinterpret_cast<const int8_t*>(base + bi * bb + kPackParamBytes),
        c, orow);
  });
}

template <int M>
void Rows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int r0, int r1) {
  if (DotColumnPath(w.geometry_))
    ColumnRows<M>(w, p, in, out, r0, r1);
  else
    PixelRows<M>(w, p, in, out, r0, r1);
}

}  // namespace

Status PackDepthwiseInt8NeonDotprod(PackedDepthwiseInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int cout = g.out_channels, groups = DotTapGroups(g);
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + DotZeroPointRowBytes(*w)));
  std::vector<int32_t> bias(cout);
  for (int oc = 0; oc < cout; ++oc) bias[oc] = DotFoldedBias(*w, oc, w->quant_.input_zero_point);
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    PackParamRows(reinterpret_cast<int32_t*>(base + bi * bb), w->quant_, bias.data(), w->left_shift_.data(),
                  w->right_shift_.data(), bi * kNR, cout);
    auto* wg = reinterpret_cast<int8_t*>(base + bi * bb + kPackParamBytes);
    for (int j = 0; j < kNR && bi * kNR + j < cout; ++j)
      for (int gi = 0; gi < groups; ++gi)
        for (int k = 0; k < 4; ++k) {
          const int t = DotSlotTap(g, gi, k);
          wg[gi * kGroupBytes + 4 * j + k] = t < 0 ? 0 : w->weights_[static_cast<size_t>(t) * cout + bi * kNR + j];
        }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(w->quant_.input_zero_point), DotZeroPointRowBytes(*w));
  return Status::Ok();
}

void DepthwiseInt8NeonDotprod(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                              int row_begin, int row_end) {
  if (w.multiplier_ == 1)
    Rows<1>(w, p, in, out, row_begin, row_end);
  else
    Rows<2>(w, p, in, out, row_begin, row_end);
}

}  // namespace internal
}  // namespace keras_csp

#pragma GCC pop_options
#endif  // __aarch64__
