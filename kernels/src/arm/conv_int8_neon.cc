// int8 conv for aarch64 CPUs without the dot-product extension (Cortex-A53, A57, A72, A73): the
// fallback below neon_dotprod, instead of the scalar reference.
// Activations are staged as int16 x - input_zero_point (so padding is 0 and nothing is folded);
// weights packed [tap][k][16] int8 and widened in registers. 4x16 micro-kernel: 16 int32x4
// accumulators, one smlal-by-lane each per input channel (XNNPACK's "mlal lane" scheme).
// |x - zp| <= 255 and |w| <= 127: each product fits in int32 as the scalar reference's does.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../sweep.h"
#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 4;
constexpr int kNR = kPackNR;

// i16_out: o[i] receive int16 x - zero point (Conv2DInt8Chain) instead of int8.
void Kernel4x16(int m, const int16_t* const* a, const int64_t* tap_off, int taps, int kp,
                const int8_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n, bool i16_out) {
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00;
  int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  int32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  int32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const int16_t* a0 = a[0] + off;
    const int16_t* a1 = a[1] + off;
    const int16_t* a2 = a[2] + off;
    const int16_t* a3 = a[3] + off;
    for (int k = 0; k < kp; k += 4) {  // kp % 4 == 0 (zero-padded channels)
      KCSP_MCA_BEGIN("neon_mlal_4x16");
      const int16x4_t x0 = vld1_s16(a0 + k), x1 = vld1_s16(a1 + k);
      const int16x4_t x2 = vld1_s16(a2 + k), x3 = vld1_s16(a3 + k);
#define KCSP_MLAL_LANE(L)                                                                        \
  {                                                                                             \
    const int8x16_t wv = vld1q_s8(w);                                                           \
    w += 16;                                                                                    \
    const int16x8_t wl = vmovl_s8(vget_low_s8(wv)), wh = vmovl_high_s8(wv);                     \
    const int16x4_t w0 = vget_low_s16(wl), w2 = vget_low_s16(wh);                               \
    c00 = vmlal_lane_s16(c00, w0, x0, L); c01 = vmlal_high_lane_s16(c01, wl, x0, L);             \
    c02 = vmlal_lane_s16(c02, w2, x0, L); c03 = vmlal_high_lane_s16(c03, wh, x0, L);             \
    c10 = vmlal_lane_s16(c10, w0, x1, L); c11 = vmlal_high_lane_s16(c11, wl, x1, L);             \
    c12 = vmlal_lane_s16(c12, w2, x1, L); c13 = vmlal_high_lane_s16(c13, wh, x1, L);             \
    c20 = vmlal_lane_s16(c20, w0, x2, L); c21 = vmlal_high_lane_s16(c21, wl, x2, L);             \
    c22 = vmlal_lane_s16(c22, w2, x2, L); c23 = vmlal_high_lane_s16(c23, wh, x2, L);             \
    c30 = vmlal_lane_s16(c30, w0, x3, L); c31 = vmlal_high_lane_s16(c31, wl, x3, L);             \
    c32 = vmlal_lane_s16(c32, w2, x3, L); c33 = vmlal_high_lane_s16(c33, wh, x3, L);             \
  }
      KCSP_MLAL_LANE(0)
      KCSP_MLAL_LANE(1)
      KCSP_MLAL_LANE(2)
      KCSP_MLAL_LANE(3)
#undef KCSP_MLAL_LANE
      KCSP_MCA_END("neon_mlal_4x16");
    }
  }
  if (i16_out) {
    StoreRowInt16(c00, c01, c02, c03, prm, c, o[0], n);
    if (m > 1) StoreRowInt16(c10, c11, c12, c13, prm, c, o[1], n);
    if (m > 2) StoreRowInt16(c20, c21, c22, c23, prm, c, o[2], n);
    if (m > 3) StoreRowInt16(c30, c31, c32, c33, prm, c, o[3], n);
    return;
  }
  StoreRow(c00, c01, c02, c03, prm, c, o[0], n);
  if (m > 1) StoreRow(c10, c11, c12, c13, prm, c, o[1], n);
  if (m > 2) StoreRow(c20, c21, c22, c23, prm, c, o[2], n);
  if (m > 3) StoreRow(c30, c31, c32, c33, prm, c, o[3], n);
}

}  // namespace

// int16 x - zp inputs: nothing to fold.
Status PackInt8Neon(PackedConvInt8* w) { return PackInt8Groups(w, 0, 1, 4); }

Status ConvInt8Neon(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const PackedBlocks blocks(w);
  const int kp = w.k_padded_;
  const int16_t zp = static_cast<int16_t>(w.quant_.input_zero_point);
  const bool i16_out = p.out_i16;
  return SweepInt8<kMR, kNR>(
      w, p, in, out, int16_t{0}, [zp](int8_t v) { return static_cast<int16_t>(v - zp); },
      int64_t{64 * 1024},
      [&](int m, const int16_t* const* a, const int64_t* tap_off, int taps, int bi,
          int8_t* const* o, int n) {
        Kernel4x16(m, a, tap_off, taps, kp, blocks.weights(bi), blocks.params(bi), c, o, n, i16_out);
      });
}

}  // namespace internal
}  // namespace keras_csp
#endif  // __aarch64__
