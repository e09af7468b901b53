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
  // Accumulators: v16-v31 (pixel p, channels 4j..4j+3 in v(16 + 4p + j)), stored to acc at the end.
  // Assembly, taps and channels: compiled from intrinsics, GCC 12 moved accumulators between
  // registers every step (84 instructions, 72 % / 65 % of the smlal peak on the cortex-a53 / a55
  // models of llvm-mca-19) and clang 19 did worse (~63 %). Per step of 4 channels: the 4 pixels'
  // int16 x in v0-v3 (smlal's by-element operand must be in v0-v15), loaded at one offset
  // register whose adds also counts the steps (post-indexed loads issued 4 cycles apart on the A53
  // model); 4 x 16 weights widened in place (low halves v4-v7, high halves v8-v11), lanes 2 and 3
  // between the MACs of lanes 0 and 1, so no MAC waits for its widening. Model figures: 78 % (A53),
  // 71 % (A55), 100 % (A76, A710).
  alignas(16) int32_t acc[64];
  if (taps > 0 && kp > 0) {
    const int16_t *p0, *p1, *p2, *p3;
    int32_t* store = acc;  // the stores post-increment it: an in-out operand, not acc itself
    int64_t kk, t = taps, off;
    const int64_t* offs = tap_off;
    asm volatile(
          KCSP_ZERO_V16_V31
          "2:\n"
          "ldr %[off], [%[offs]], #8\n"
          // past the tap's channels: kk runs from -8 * steps up to 0, its adds counting the steps
          "add %[off], %[off], %[steps], lsl #2\n"
          "add %[p0], %[a0], %[off], lsl #1\n"
          "add %[p1], %[a1], %[off], lsl #1\n"
          "add %[p2], %[a2], %[off], lsl #1\n"
          "add %[p3], %[a3], %[off], lsl #1\n"
          "neg %[kk], %[steps], lsl #3\n"
          "1:\n" KCSP_MCA_ASM_BEGIN("neon_mlal_4x16")
          "ldr d0, [%[p0], %[kk]]\n"
          "ldp q4, q5, [%[w]]\n"
          "ldr d1, [%[p1], %[kk]]\n"
          "ldr d2, [%[p2], %[kk]]\n"
          "ldr d3, [%[p3], %[kk]]\n"
          "adds %[kk], %[kk], #8\n"  // the flags for b.ne (nothing after sets them)
          "sxtl2 v8.8h, v4.16b\n"
          "sxtl v4.8h, v4.8b\n"
          "ldp q6, q7, [%[w], #32]\n"
          "add %[w], %[w], #64\n"
          "sxtl2 v9.8h, v5.16b\n"
          "sxtl v5.8h, v5.8b\n"
          "smlal v16.4s, v4.4h, v0.h[0]\n"
          "smlal2 v17.4s, v4.8h, v0.h[0]\n"
          "smlal v18.4s, v8.4h, v0.h[0]\n"
          "smlal2 v19.4s, v8.8h, v0.h[0]\n"
          "smlal v20.4s, v4.4h, v1.h[0]\n"
          "smlal2 v21.4s, v4.8h, v1.h[0]\n"
          "sxtl2 v10.8h, v6.16b\n"
          "smlal v22.4s, v8.4h, v1.h[0]\n"
          "smlal2 v23.4s, v8.8h, v1.h[0]\n"
          "smlal v24.4s, v4.4h, v2.h[0]\n"
          "smlal2 v25.4s, v4.8h, v2.h[0]\n"
          "sxtl v6.8h, v6.8b\n"
          "smlal v26.4s, v8.4h, v2.h[0]\n"
          "smlal2 v27.4s, v8.8h, v2.h[0]\n"
          "smlal v28.4s, v4.4h, v3.h[0]\n"
          "smlal2 v29.4s, v4.8h, v3.h[0]\n"
          "smlal v30.4s, v8.4h, v3.h[0]\n"
          "smlal2 v31.4s, v8.8h, v3.h[0]\n"
          "smlal v16.4s, v5.4h, v0.h[1]\n"
          "smlal2 v17.4s, v5.8h, v0.h[1]\n"
          "smlal v18.4s, v9.4h, v0.h[1]\n"
          "smlal2 v19.4s, v9.8h, v0.h[1]\n"
          "smlal v20.4s, v5.4h, v1.h[1]\n"
          "smlal2 v21.4s, v5.8h, v1.h[1]\n"
          "sxtl2 v11.8h, v7.16b\n"
          "smlal v22.4s, v9.4h, v1.h[1]\n"
          "smlal2 v23.4s, v9.8h, v1.h[1]\n"
          "smlal v24.4s, v5.4h, v2.h[1]\n"
          "smlal2 v25.4s, v5.8h, v2.h[1]\n"
          "sxtl v7.8h, v7.8b\n"
          "smlal v26.4s, v9.4h, v2.h[1]\n"
          "smlal2 v27.4s, v9.8h, v2.h[1]\n"
          "smlal v28.4s, v5.4h, v3.h[1]\n"
          "smlal2 v29.4s, v5.8h, v3.h[1]\n"
          "smlal v30.4s, v9.4h, v3.h[1]\n"
          "smlal2 v31.4s, v9.8h, v3.h[1]\n"
          KCSP_MLAL_4X16_LANE(2, 6, 10)
          KCSP_MLAL_4X16_LANE(3, 7, 11)
          KCSP_MCA_ASM_END("neon_mlal_4x16")
          "b.ne 1b\n"
          "subs %[t], %[t], #1\n"
          "b.ne 2b\n"
          "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[store]], #64\n"
          "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[store]], #64\n"
          "st1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[store]], #64\n"
          "st1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[store]]\n"
          : [p0] "=&r"(p0), [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3), [kk] "=&r"(kk), [off] "=&r"(off),
            [t] "+r"(t), [offs] "+r"(offs), [w] "+r"(w), [store] "+r"(store)
          : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [steps] "r"(static_cast<int64_t>(kp / 4))
          : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
  } else {
    std::memset(acc, 0, sizeof(acc));
  }
  const int32x4_t c00 = vld1q_s32(acc), c01 = vld1q_s32(acc + 4), c02 = vld1q_s32(acc + 8), c03 = vld1q_s32(acc + 12);
  const int32x4_t c10 = vld1q_s32(acc + 16), c11 = vld1q_s32(acc + 20), c12 = vld1q_s32(acc + 24), c13 = vld1q_s32(acc + 28);
  const int32x4_t c20 = vld1q_s32(acc + 32), c21 = vld1q_s32(acc + 36), c22 = vld1q_s32(acc + 40), c23 = vld1q_s32(acc + 44);
  const int32x4_t c30 = vld1q_s32(acc + 48), c31 = vld1q_s32(acc + 52), c32 = vld1q_s32(acc + 56), c33 = vld1q_s32(acc + 60);
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
  if (w.RunsWinograd(int64_t{p.out_h} * p.out_w)) return ConvInt8NeonWinograd(w, p, in, out);
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
