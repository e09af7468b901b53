// int8 depthwise conv, aarch64 plain NEON (what every NEON variant runs: a depthwise conv has no sum
// over input channels for sdot / smmla to speed up). 16 output channels per step: (x -
// input_zero_point) widened to int16, times the widened int8 weights with smlal / smlal2 into four
// int32x4 accumulators (exact); padded taps are skipped (they contribute 0, as in TFLite). With
// depth multiplier 2 each input channel feeds two adjacent output channels (zip of the 8 inputs
// with themselves). Epilogue: neon_int8_common.h, shared with the NEON convs.
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
// Per block of 16 output channels: the 4 parameter rows, then [tap][16] int8 weights.
inline size_t DwBlockBytes(const PackedDepthwiseInt8& w) { return DepthwiseBlockBytes<int8_t>(w, kPackParamBytes); }

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

template <int M>
void DepthwiseRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                   int row_begin, int row_end) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const int16x8_t zp = vdupq_n_s16(static_cast<int16_t>(w.quant_.input_zero_point));
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = DwBlockBytes(w);
  const int cout = w.geometry_.out_channels;
  SweepDepthwise(w, p, in, out, row_begin, row_end, [&](const int8_t* const* x, const int* tap, int taps, int8_t* o) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kNR, ++bi) {
      const int n = std::min(kNR, cout - oc0);
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wt = reinterpret_cast<const int8_t*>(base + bi * bb + kPackParamBytes);
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
  PackDepthwiseBlocks<int8_t>(w, kPackParamBytes, [w](int32_t* prm, int oc0) {
    PackParamRows(prm, w->quant_, w->bias_.data(), w->left_shift_.data(), w->right_shift_.data(), oc0,
                  w->geometry_.out_channels);
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
