// int8 depthwise conv, aarch64 plain NEON (what every NEON variant runs: a depthwise conv has no sum
// over input channels for sdot / smmla to speed up). 16 output channels per step: (x -
// input_zero_point) widened to int16, times the widened int8 weights with smlal / smlal2 into four
// int32x4 accumulators (exact); padded taps are skipped (they contribute 0, as in TFLite). With
// depth multiplier 2 each input channel feeds two adjacent output channels (zip of the 8 inputs
// with themselves). Pixels whose taps are all in range (the interior) multiply the int8 inputs as
// they are, two taps per int16 lane (smull + smlal of int8: |x * w| <= 128 * 127, so two fit int16
// when no weight is -128, checked at packing), widened into the int32 accumulators with saddw,
// which start at bias - input_zero_point * sum(w): 6 instructions per tap and 16 channels instead of 12.
// Epilogue: neon_int8_common.h, shared with the NEON convs.
#if defined(__aarch64__)
#include <algorithm>
#include <cstring>

#include "../depthwise_sweep.h"
#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kPackNR;

static_assert(kNR == kDepthwiseNR, "16-channel blocks");
// Per block of 16 output channels: the 4 parameter rows, [tap][16] int8 weights, then the
// interior's accumulator start (bias - zp * sum over taps of w, 16 int32) and a row whose first int32
// says whether the interior's int16 pairs are exact (no weight of the block is -128).
constexpr size_t kZpRowBytes = kNR * sizeof(int32_t), kFlagRowBytes = 4 * sizeof(int32_t);
inline size_t DwBlockBytes(const PackedDepthwiseInt8& w) {
  return DepthwiseBlockBytes<int8_t>(w, kPackParamBytes, kZpRowBytes + kFlagRowBytes);
}

// (x - zp) for the output channels [oc0, oc0 + n) of one input pixel, as two int16x8.
template <int M>
inline void LoadInputs(const int8_t* x, int oc0, int n, int16x8_t zp, int16x8_t* lo, int16x8_t* hi) {
  if (M == 1) {
    int8x16_t v;
    if (n == kNR) {
      v = vld1q_s8(x + oc0);
    } else {
      int8_t tmp[16] = {};
      std::memcpy(tmp, x + oc0, n);
      v = vld1q_s8(tmp);
    }
    *lo = vsubq_s16(vmovl_s8(vget_low_s8(v)), zp);
    *hi = vsubq_s16(vmovl_high_s8(v), zp);
    return;
  }
  int8x8_t v;
  if (n == kNR) {
    v = vld1_s8(x + oc0 / 2);
  } else {
    int8_t tmp[8] = {};
    std::memcpy(tmp, x + oc0 / 2, n / 2);
    v = vld1_s8(tmp);
  }
  const int16x8_t s = vsubq_s16(vmovl_s8(v), zp);
  *lo = vzip1q_s16(s, s);
  *hi = vzip2q_s16(s, s);
}

// The int8 inputs of the output channels [oc0, oc0 + 16) of one input pixel, as they are (a whole
// block; with multiplier 2 each input twice).
template <int M>
inline int8x16_t LoadRaw(const int8_t* x, int oc0) {
  if (M == 1) return vld1q_s8(x + oc0);
  const int8x8_t v = vld1_s8(x + oc0 / 2);
  return vcombine_s8(vzip1_s8(v, v), vzip2_s8(v, v));
}

// One whole 16-channel block of an interior pixel: taps in pairs, each pair's products summed in
// int16 (exact: checked at packing) and widened into the int32 accumulators. kTaps: the tap count
// when known at compile time (3x3: unrolled), else 0.
template <int M, int kTaps>
inline void InteriorBlock(const int8_t* const* x, int taps, int oc0, const int8_t* wt, const int32_t* zr,
                          const int32_t* prm, const RequantConsts& c, int8_t* o) {
  constexpr bool kMca = M == 1 && kTaps == 9;  // the llvm-mca region (kernels/tools/mca_arm.py)
  if constexpr (kMca) KCSP_MCA_BEGIN("neon_depthwise_3x3");
  const int t_count = kTaps > 0 ? kTaps : taps;
  int32x4_t a0 = vld1q_s32(zr), a1 = vld1q_s32(zr + 4), a2 = vld1q_s32(zr + 8), a3 = vld1q_s32(zr + 12);
  int t = 0;
#pragma GCC unroll 8
  for (; t + 2 <= t_count; t += 2) {
    const int8x16_t xa = LoadRaw<M>(x[t], oc0), xb = LoadRaw<M>(x[t + 1], oc0);
    const int8x16_t wa = vld1q_s8(wt + t * kNR), wb = vld1q_s8(wt + (t + 1) * kNR);
    int16x8_t lo = vmull_s8(vget_low_s8(xa), vget_low_s8(wa));
    int16x8_t hi = vmull_high_s8(xa, wa);
    lo = vmlal_s8(lo, vget_low_s8(xb), vget_low_s8(wb));
    hi = vmlal_high_s8(hi, xb, wb);
    a0 = vaddw_s16(a0, vget_low_s16(lo));
    a1 = vaddw_high_s16(a1, lo);
    a2 = vaddw_s16(a2, vget_low_s16(hi));
    a3 = vaddw_high_s16(a3, hi);
  }
  if (t < t_count) {
    const int8x16_t xa = LoadRaw<M>(x[t], oc0), wa = vld1q_s8(wt + t * kNR);
    const int16x8_t lo = vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), hi = vmull_high_s8(xa, wa);
    a0 = vaddw_s16(a0, vget_low_s16(lo));
    a1 = vaddw_high_s16(a1, lo);
    a2 = vaddw_s16(a2, vget_low_s16(hi));
    a3 = vaddw_high_s16(a3, hi);
  }
  StoreRow<true>(a0, a1, a2, a3, prm, c, o + oc0, kNR);
  if constexpr (kMca) KCSP_MCA_END("neon_depthwise_3x3");
}

template <int M>
void DepthwiseRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                   int row_begin, int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const int16x8_t zp = vdupq_n_s16(static_cast<int16_t>(w.quant_.input_zero_point));
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = DwBlockBytes(w);
  const int cout = w.geometry_.out_channels;
  const int all_taps = w.geometry_.kernel_h * w.geometry_.kernel_w;
  const size_t zp_off = bb - kZpRowBytes - kFlagRowBytes, flag_off = bb - kFlagRowBytes;
  SweepDepthwise(w, p, in, out, row_begin, row_end, [&](const int8_t* const* x, const int* tap, int taps, int8_t* o) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kNR, ++bi) {
      const int n = std::min(kNR, cout - oc0);
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wt = reinterpret_cast<const int8_t*>(base + bi * bb + kPackParamBytes);
      if (taps == all_taps && n == kNR && *reinterpret_cast<const int32_t*>(base + bi * bb + flag_off) != 0) {
        const auto* zr = reinterpret_cast<const int32_t*>(base + bi * bb + zp_off);
        if (taps == 9)
          InteriorBlock<M, 9>(x, taps, oc0, wt, zr, prm, c, o);
        else
          InteriorBlock<M, 0>(x, taps, oc0, wt, zr, prm, c, o);
        continue;
      }
      int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
      for (int i = 0; i < taps; ++i) {
        int16x8_t xl, xh;
        LoadInputs<M>(x[i], oc0, n, zp, &xl, &xh);
        const int8x16_t wv = vld1q_s8(wt + tap[i] * kNR);
        const int16x8_t wl = vmovl_s8(vget_low_s8(wv)), wh = vmovl_high_s8(wv);
        a0 = vmlal_s16(a0, vget_low_s16(xl), vget_low_s16(wl));
        a1 = vmlal_high_s16(a1, xl, wl);
        a2 = vmlal_s16(a2, vget_low_s16(xh), vget_low_s16(wh));
        a3 = vmlal_high_s16(a3, xh, wh);
      }
      StoreRow(a0, a1, a2, a3, prm, c, o + oc0, n);
    }
  });
}

}  // namespace

Status PackDepthwiseInt8Neon(PackedDepthwiseInt8* w) {
  const int taps = w->geometry_.kernel_h * w->geometry_.kernel_w, cout = w->geometry_.out_channels;
  PackDepthwiseBlocks<int8_t>(
      w, kPackParamBytes,
      [w](int32_t* prm, int oc0) {
        PackParamRows(prm, w->quant_, w->bias_.data(), w->left_shift_.data(), w->right_shift_.data(), oc0,
                      w->geometry_.out_channels);
      },
      kZpRowBytes + kFlagRowBytes, [&](uint8_t* extra, int oc0) {
        auto* zr = reinterpret_cast<int32_t*>(extra);
        bool pairs_exact = true;
        for (int j = 0; j < kNR; ++j) {
          const int32_t bias = oc0 + j < cout ? w->bias_[oc0 + j] : 0;  // wraps as the int32 sum does
          zr[j] = static_cast<int32_t>(static_cast<uint32_t>(DepthwiseZeroPointTerm(*w, oc0 + j)) +
                                       static_cast<uint32_t>(bias));
          for (int t = 0; t < taps && oc0 + j < cout; ++t)
            pairs_exact = pairs_exact && w->weights_[static_cast<size_t>(t) * cout + oc0 + j] != -128;
        }
        auto* flags = reinterpret_cast<int32_t*>(extra + kZpRowBytes);
        flags[0] = pairs_exact ? 1 : 0;
        flags[1] = flags[2] = flags[3] = 0;
      });
  return Status::Ok();
}

void DepthwiseInt8Neon(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end) {
  if (w.multiplier_ == 1)
    DepthwiseRows<1>(w, p, in, out, row_begin, row_end);
  else
    DepthwiseRows<2>(w, p, in, out, row_begin, row_end);
}

}  // namespace internal
}  // namespace keras_csp
#endif  // __aarch64__
