// int8 conv, aarch64 NEON with the ARMv8.2 dot-product extension (sdot).
// Raw int8 activations are staged in a padded buffer whose border holds input_zero_point, so
//   sum((x - zp) * w) = sum(x * w) - zp * sum(w)
// for every tap including padding; the correction is folded into the packed bias.
// 1x1 convs read the int8 input slice in place instead.
// 6x16 micro-kernel in assembly (16 channels of input per 16-byte load, lane-indexed sdot),
// weights packed [tap][k/4][16][4]. A full tile under the fp32 requantization is requantized by the
// assembly from its registers (KCSP_FP32_REQUANT_6X16); other tiles use neon_int8_common.h's epilogue.
// Tiles of 1-3 pixels run KernelTail instead (intrinsics, no wasted rows).
#if defined(__aarch64__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 6;
constexpr int kNR = kPackNR;

// XNNPACK's fp32 requantization of the 6x16 tile in v8-v31 (pixel p's channels 4q..4q+3 in
// v(8 + 4p + q)), as StoreRow does it: scale (v0-v3, per quarter), round to nearest even, narrow
// to int16 with saturation, add the zero point (v4, int16), narrow to int8, clamp (v5, v6), store
// at x9-x14. Each step runs over the 24 (or 6) registers before the next: on the in-order
// Cortex-A55 model the tile took 135 cycles instead of 231 with one pixel after the other, and
// 429 through acc and StoreRow before (kernels/tools/mca_arm.py).
#define KCSP_EACH_PIXEL(S) S(8, 9, 10, 11, x9) S(12, 13, 14, 15, x10) S(16, 17, 18, 19, x11) \
  S(20, 21, 22, 23, x12) S(24, 25, 26, 27, x13) S(28, 29, 30, 31, x14)
#define KCSP_SCVTF(a, b, c, d, o) "scvtf v" #a ".4s, v" #a ".4s\n scvtf v" #b ".4s, v" #b ".4s\n" \
  "scvtf v" #c ".4s, v" #c ".4s\n scvtf v" #d ".4s, v" #d ".4s\n"
#define KCSP_FMUL(a, b, c, d, o) "fmul v" #a ".4s, v" #a ".4s, v0.4s\n fmul v" #b ".4s, v" #b ".4s, v1.4s\n" \
  "fmul v" #c ".4s, v" #c ".4s, v2.4s\n fmul v" #d ".4s, v" #d ".4s, v3.4s\n"
#define KCSP_FCVTNS(a, b, c, d, o) "fcvtns v" #a ".4s, v" #a ".4s\n fcvtns v" #b ".4s, v" #b ".4s\n" \
  "fcvtns v" #c ".4s, v" #c ".4s\n fcvtns v" #d ".4s, v" #d ".4s\n"
#define KCSP_SQXTN16(a, b, c, d, o) "sqxtn v" #a ".4h, v" #a ".4s\n sqxtn v" #c ".4h, v" #c ".4s\n"
#define KCSP_SQXTN16_HIGH(a, b, c, d, o) "sqxtn2 v" #a ".8h, v" #b ".4s\n sqxtn2 v" #c ".8h, v" #d ".4s\n"
#define KCSP_ADD_ZP(a, b, c, d, o) "sqadd v" #a ".8h, v" #a ".8h, v4.8h\n sqadd v" #c ".8h, v" #c ".8h, v4.8h\n"
#define KCSP_SQXTN8(a, b, c, d, o) "sqxtn v" #a ".8b, v" #a ".8h\n"
#define KCSP_SQXTN8_HIGH(a, b, c, d, o) "sqxtn2 v" #a ".16b, v" #c ".8h\n"
#define KCSP_MAX(a, b, c, d, o) "smax v" #a ".16b, v" #a ".16b, v5.16b\n"
#define KCSP_MIN(a, b, c, d, o) "smin v" #a ".16b, v" #a ".16b, v6.16b\n"
#define KCSP_STORE(a, b, c, d, o) "str q" #a ", [" #o "]\n"
#define KCSP_FP32_REQUANT_6X16                                                                           \
  KCSP_EACH_PIXEL(KCSP_SCVTF) KCSP_EACH_PIXEL(KCSP_FMUL) KCSP_EACH_PIXEL(KCSP_FCVTNS)                   \
  KCSP_EACH_PIXEL(KCSP_SQXTN16) KCSP_EACH_PIXEL(KCSP_SQXTN16_HIGH) KCSP_EACH_PIXEL(KCSP_ADD_ZP)         \
  KCSP_EACH_PIXEL(KCSP_SQXTN8) KCSP_EACH_PIXEL(KCSP_SQXTN8_HIGH) KCSP_EACH_PIXEL(KCSP_MAX)              \
  KCSP_EACH_PIXEL(KCSP_MIN) KCSP_EACH_PIXEL(KCSP_STORE)

// 6 pixels x 16 channels: 24 accumulators (v8-v31), 6 pixel registers (v0-v5: 16 input channels
// each, indexed by lane) and two weight registers (v6, v7) loaded one step ahead: per 16 input
// channels, 96 sdot for 22 loads. Written in assembly (taps and channel loops included) so that
// the schedule is ours: gcc's, from intrinsics, put dependent sdot next to each other and copied
// accumulators around: 39 % of the sdot peak on the in-order Cortex-A55 model and 86 % on the
// A76 (kernels/tools/mca_arm.py). (24 "+w" operands would exceed gcc's 30-operand limit, so the
// accumulators stay in fixed registers and are stored to `acc` at the end.)
void Kernel6x16(int m, const int8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                const int8_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n) {
  alignas(16) int32_t acc[kMR * kNR];
  const int64_t k16 = kp4 / 4, krem = kp4 % 4;  // steps of 16 input channels, then of 4
  // A full tile under the fp32 requantization (XNNPACK's numerics, the runtime's default) leaves
  // the assembly requantized and stored; other tiles go through acc and StoreRow.
  const int64_t fast = (KCSP_MCA_FP32_ONLY || c.fp32) && m == kMR && n == kNR;
  __asm__ volatile(
      // The accumulators start at the bias (16 channels in v8-v11, copied to the other pixels).
      "ldp q8, q9, [%[prm]]\n"
      "ldp q10, q11, [%[prm], #32]\n"
      "mov v12.16b, v8.16b\n"
      "mov v13.16b, v9.16b\n"
      "mov v14.16b, v10.16b\n"
      "mov v15.16b, v11.16b\n"
      "mov v16.16b, v8.16b\n"
      "mov v17.16b, v9.16b\n"
      "mov v18.16b, v10.16b\n"
      "mov v19.16b, v11.16b\n"
      "mov v20.16b, v8.16b\n"
      "mov v21.16b, v9.16b\n"
      "mov v22.16b, v10.16b\n"
      "mov v23.16b, v11.16b\n"
      "mov v24.16b, v8.16b\n"
      "mov v25.16b, v9.16b\n"
      "mov v26.16b, v10.16b\n"
      "mov v27.16b, v11.16b\n"
      "mov v28.16b, v8.16b\n"
      "mov v29.16b, v9.16b\n"
      "mov v30.16b, v10.16b\n"
      "mov v31.16b, v11.16b\n"
      "mov x15, %[taps]\n"
      "mov x16, %[tap_off]\n"
      "2:\n"
      "ldr x17, [x16], #8\n"
      "ldp x9, x10, [%[a]]\n"
      "ldp x11, x12, [%[a], #16]\n"
      "ldp x13, x14, [%[a], #32]\n"
      "add x9, x9, x17\n"
      "add x10, x10, x17\n"
      "add x11, x11, x17\n"
      "add x12, x12, x17\n"
      "add x13, x13, x17\n"
      "add x14, x14, x17\n"
      // The 16-channel loop reads the pixels at one offset, x7, that runs from -16 * k16 up to 0
      // with the pointers moved past the channels first: one `adds` per step advances all six
      // pixels and counts the steps (before: six adds and a subs; on the in-order cortex-a55
      // model every instruction costs an issue slot: 75.6 % -> 80.0 % of the sdot peak).
      "lsl x7, %[k16], #4\n"
      "cbz x7, 3f\n"
      "add x9, x9, x7\n"
      "add x10, x10, x7\n"
      "add x11, x11, x7\n"
      "add x12, x12, x7\n"
      "add x13, x13, x7\n"
      "add x14, x14, x7\n"
      "neg x7, x7\n"
      KCSP_MCA_ASM_BEGIN("neon_dotprod_6x16")
      "1:\n"
      "ldr q0, [x9, x7]\n"
      "ldr q1, [x10, x7]\n"
      "ldr q2, [x11, x7]\n"
      "ldr q3, [x12, x7]\n"
      "ldr q4, [x13, x7]\n"
      "ldr q5, [x14, x7]\n"
      "adds x7, x7, #16\n"  // the flags for the b.ne at the end (nothing in between sets them)
      "ldr q6, [%[w]]\n"
      "sdot v8.4s, v6.16b, v0.4b[0]\n"
      "sdot v12.4s, v6.16b, v1.4b[0]\n"
      "ldr q7, [%[w], #16]\n"
      "sdot v16.4s, v6.16b, v2.4b[0]\n"
      "sdot v20.4s, v6.16b, v3.4b[0]\n"
      "sdot v24.4s, v6.16b, v4.4b[0]\n"
      "sdot v28.4s, v6.16b, v5.4b[0]\n"
      "sdot v9.4s, v7.16b, v0.4b[0]\n"
      "sdot v13.4s, v7.16b, v1.4b[0]\n"
      "ldr q6, [%[w], #32]\n"
      "sdot v17.4s, v7.16b, v2.4b[0]\n"
      "sdot v21.4s, v7.16b, v3.4b[0]\n"
      "sdot v25.4s, v7.16b, v4.4b[0]\n"
      "sdot v29.4s, v7.16b, v5.4b[0]\n"
      "sdot v10.4s, v6.16b, v0.4b[0]\n"
      "sdot v14.4s, v6.16b, v1.4b[0]\n"
      "ldr q7, [%[w], #48]\n"
      "sdot v18.4s, v6.16b, v2.4b[0]\n"
      "sdot v22.4s, v6.16b, v3.4b[0]\n"
      "sdot v26.4s, v6.16b, v4.4b[0]\n"
      "sdot v30.4s, v6.16b, v5.4b[0]\n"
      "sdot v11.4s, v7.16b, v0.4b[0]\n"
      "sdot v15.4s, v7.16b, v1.4b[0]\n"
      "ldr q6, [%[w], #64]\n"
      "sdot v19.4s, v7.16b, v2.4b[0]\n"
      "sdot v23.4s, v7.16b, v3.4b[0]\n"
      "sdot v27.4s, v7.16b, v4.4b[0]\n"
      "sdot v31.4s, v7.16b, v5.4b[0]\n"
      "sdot v8.4s, v6.16b, v0.4b[1]\n"
      "sdot v12.4s, v6.16b, v1.4b[1]\n"
      "ldr q7, [%[w], #80]\n"
      "sdot v16.4s, v6.16b, v2.4b[1]\n"
      "sdot v20.4s, v6.16b, v3.4b[1]\n"
      "sdot v24.4s, v6.16b, v4.4b[1]\n"
      "sdot v28.4s, v6.16b, v5.4b[1]\n"
      "sdot v9.4s, v7.16b, v0.4b[1]\n"
      "sdot v13.4s, v7.16b, v1.4b[1]\n"
      "ldr q6, [%[w], #96]\n"
      "sdot v17.4s, v7.16b, v2.4b[1]\n"
      "sdot v21.4s, v7.16b, v3.4b[1]\n"
      "sdot v25.4s, v7.16b, v4.4b[1]\n"
      "sdot v29.4s, v7.16b, v5.4b[1]\n"
      "sdot v10.4s, v6.16b, v0.4b[1]\n"
      "sdot v14.4s, v6.16b, v1.4b[1]\n"
      "ldr q7, [%[w], #112]\n"
      "sdot v18.4s, v6.16b, v2.4b[1]\n"
      "sdot v22.4s, v6.16b, v3.4b[1]\n"
      "sdot v26.4s, v6.16b, v4.4b[1]\n"
      "sdot v30.4s, v6.16b, v5.4b[1]\n"
      "sdot v11.4s, v7.16b, v0.4b[1]\n"
      "sdot v15.4s, v7.16b, v1.4b[1]\n"
      "ldr q6, [%[w], #128]\n"
      "sdot v19.4s, v7.16b, v2.4b[1]\n"
      "sdot v23.4s, v7.16b, v3.4b[1]\n"
      "sdot v27.4s, v7.16b, v4.4b[1]\n"
      "sdot v31.4s, v7.16b, v5.4b[1]\n"
      "sdot v8.4s, v6.16b, v0.4b[2]\n"
      "sdot v12.4s, v6.16b, v1.4b[2]\n"
      "ldr q7, [%[w], #144]\n"
      "sdot v16.4s, v6.16b, v2.4b[2]\n"
      "sdot v20.4s, v6.16b, v3.4b[2]\n"
      "sdot v24.4s, v6.16b, v4.4b[2]\n"
      "sdot v28.4s, v6.16b, v5.4b[2]\n"
      "sdot v9.4s, v7.16b, v0.4b[2]\n"
      "sdot v13.4s, v7.16b, v1.4b[2]\n"
      "ldr q6, [%[w], #160]\n"
      "sdot v17.4s, v7.16b, v2.4b[2]\n"
      "sdot v21.4s, v7.16b, v3.4b[2]\n"
      "sdot v25.4s, v7.16b, v4.4b[2]\n"
      "sdot v29.4s, v7.16b, v5.4b[2]\n"
      "sdot v10.4s, v6.16b, v0.4b[2]\n"
      "sdot v14.4s, v6.16b, v1.4b[2]\n"
      "ldr q7, [%[w], #176]\n"
      "sdot v18.4s, v6.16b, v2.4b[2]\n"
      "sdot v22.4s, v6.16b, v3.4b[2]\n"
      "sdot v26.4s, v6.16b, v4.4b[2]\n"
      "sdot v30.4s, v6.16b, v5.4b[2]\n"
      "sdot v11.4s, v7.16b, v0.4b[2]\n"
      "sdot v15.4s, v7.16b, v1.4b[2]\n"
      "ldr q6, [%[w], #192]\n"
      "sdot v19.4s, v7.16b, v2.4b[2]\n"
      "sdot v23.4s, v7.16b, v3.4b[2]\n"
      "sdot v27.4s, v7.16b, v4.4b[2]\n"
      "sdot v31.4s, v7.16b, v5.4b[2]\n"
      "sdot v8.4s, v6.16b, v0.4b[3]\n"
      "sdot v12.4s, v6.16b, v1.4b[3]\n"
      "ldr q7, [%[w], #208]\n"
      "sdot v16.4s, v6.16b, v2.4b[3]\n"
      "sdot v20.4s, v6.16b, v3.4b[3]\n"
      "sdot v24.4s, v6.16b, v4.4b[3]\n"
      "sdot v28.4s, v6.16b, v5.4b[3]\n"
      "sdot v9.4s, v7.16b, v0.4b[3]\n"
      "sdot v13.4s, v7.16b, v1.4b[3]\n"
      "ldr q6, [%[w], #224]\n"
      "sdot v17.4s, v7.16b, v2.4b[3]\n"
      "sdot v21.4s, v7.16b, v3.4b[3]\n"
      "sdot v25.4s, v7.16b, v4.4b[3]\n"
      "sdot v29.4s, v7.16b, v5.4b[3]\n"
      "sdot v10.4s, v6.16b, v0.4b[3]\n"
      "sdot v14.4s, v6.16b, v1.4b[3]\n"
      "ldr q7, [%[w], #240]\n"
      "sdot v18.4s, v6.16b, v2.4b[3]\n"
      "sdot v22.4s, v6.16b, v3.4b[3]\n"
      "sdot v26.4s, v6.16b, v4.4b[3]\n"
      "sdot v30.4s, v6.16b, v5.4b[3]\n"
      "sdot v11.4s, v7.16b, v0.4b[3]\n"
      "sdot v15.4s, v7.16b, v1.4b[3]\n"
      "sdot v19.4s, v7.16b, v2.4b[3]\n"
      "sdot v23.4s, v7.16b, v3.4b[3]\n"
      "sdot v27.4s, v7.16b, v4.4b[3]\n"
      "add %[w], %[w], #256\n"
      "sdot v31.4s, v7.16b, v5.4b[3]\n"
      KCSP_MCA_ASM_END("neon_dotprod_6x16")
      "b.ne 1b\n"
      "3:\n"
      "mov x5, %[krem]\n"
      "cbz x5, 5f\n"
      "4:\n"
      "ld1r {v0.4s}, [x9], #4\n"
      "ld1r {v1.4s}, [x10], #4\n"
      "ld1r {v2.4s}, [x11], #4\n"
      "ld1r {v3.4s}, [x12], #4\n"
      "ld1r {v4.4s}, [x13], #4\n"
      "ld1r {v5.4s}, [x14], #4\n"
      "ldp q6, q7, [%[w]]\n"
      "sdot v8.4s, v6.16b, v0.16b\n"
      "sdot v12.4s, v6.16b, v1.16b\n"
      "sdot v16.4s, v6.16b, v2.16b\n"
      "sdot v20.4s, v6.16b, v3.16b\n"
      "sdot v24.4s, v6.16b, v4.16b\n"
      "sdot v28.4s, v6.16b, v5.16b\n"
      "sdot v9.4s, v7.16b, v0.16b\n"
      "sdot v13.4s, v7.16b, v1.16b\n"
      "sdot v17.4s, v7.16b, v2.16b\n"
      "sdot v21.4s, v7.16b, v3.16b\n"
      "sdot v25.4s, v7.16b, v4.16b\n"
      "sdot v29.4s, v7.16b, v5.16b\n"
      "ldp q6, q7, [%[w], #32]\n"
      "sdot v10.4s, v6.16b, v0.16b\n"
      "sdot v14.4s, v6.16b, v1.16b\n"
      "sdot v18.4s, v6.16b, v2.16b\n"
      "sdot v22.4s, v6.16b, v3.16b\n"
      "sdot v26.4s, v6.16b, v4.16b\n"
      "sdot v30.4s, v6.16b, v5.16b\n"
      "sdot v11.4s, v7.16b, v0.16b\n"
      "sdot v15.4s, v7.16b, v1.16b\n"
      "sdot v19.4s, v7.16b, v2.16b\n"
      "sdot v23.4s, v7.16b, v3.16b\n"
      "sdot v27.4s, v7.16b, v4.16b\n"
      "sdot v31.4s, v7.16b, v5.16b\n"
      "add %[w], %[w], #64\n"
      "subs x5, x5, #1\n"
      "b.ne 4b\n"
      "5:\n"
      "subs x15, x15, #1\n"
      "b.ne 2b\n"
      "cbz %[fast], 6f\n"
      KCSP_MCA_ASM_BEGIN("neon_dotprod_requant_6x16")
      "ldp q0, q1, [%[prm], #64]\n"  // the fp32 scales of the 16 channels
      "ldp q2, q3, [%[prm], #96]\n"
      "ldr q4, [%[zp]]\n"
      "ldr q5, [%[mn]]\n"
      "ldr q6, [%[mx]]\n"
      "ldp x9, x10, [%[o]]\n"
      "ldp x11, x12, [%[o], #16]\n"
      "ldp x13, x14, [%[o], #32]\n"
      KCSP_FP32_REQUANT_6X16
      KCSP_MCA_ASM_END("neon_dotprod_requant_6x16")
      "b 7f\n"
      "6:\n"
      "mov x9, %[acc]\n"
      "st1 {v8.4s, v9.4s, v10.4s, v11.4s}, [x9], #64\n"
      "st1 {v12.4s, v13.4s, v14.4s, v15.4s}, [x9], #64\n"
      "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [x9], #64\n"
      "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [x9], #64\n"
      "st1 {v24.4s, v25.4s, v26.4s, v27.4s}, [x9], #64\n"
      "st1 {v28.4s, v29.4s, v30.4s, v31.4s}, [x9], #64\n"
      "7:\n"
      : [w] "+r"(w)
      : [a] "r"(a), [tap_off] "r"(tap_off), [taps] "r"(static_cast<int64_t>(taps)), [k16] "r"(k16),
        [krem] "r"(krem), [acc] "r"(acc), [prm] "r"(prm), [fast] "r"(fast), [o] "r"(o), [zp] "r"(&c.zp),
        [mn] "r"(&c.mn), [mx] "r"(&c.mx)
      : "x5", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "v0", "v1",
        "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15",
        "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27",
        "v28", "v29", "v30", "v31", "cc", "memory");
  if (fast) return;
  for (int i = 0; i < m; ++i) {
    const int32_t* r = acc + i * kNR;
    StoreRow<true>(vld1q_s32(r), vld1q_s32(r + 4), vld1q_s32(r + 8), vld1q_s32(r + 12), prm, c, o[i], n);
  }
}
#undef KCSP_FP32_REQUANT_6X16
#undef KCSP_EACH_PIXEL
#undef KCSP_SCVTF
#undef KCSP_FMUL
#undef KCSP_FCVTNS
#undef KCSP_SQXTN16
#undef KCSP_SQXTN16_HIGH
#undef KCSP_ADD_ZP
#undef KCSP_SQXTN8
#undef KCSP_SQXTN8_HIGH
#undef KCSP_MAX
#undef KCSP_MIN
#undef KCSP_STORE

// Tiles of R <= 3 pixels (an image's or a band's last pixels: a 7x7 image's 49th), which Kernel6x16
// would run as 6 (24 sdot per step of 4 input channels): R x 4 accumulators starting at the bias,
// one broadcast 4-byte load per pixel and step and the step's four weight registers, so a tail
// pixel costs 4 sdot per step. A single pixel splits K over two accumulator sets (8 chains of
// dependent sdot instead of 4). Intrinsics, not assembly: there is one tail tile per block and
// image (or band) at most.
template <int R>
__attribute__((noinline)) void KernelTail(const int8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                                          const int8_t* w, const int32_t* prm, const RequantConsts& c,
                                          int8_t* const* o, int n) {
  static_assert(R >= 1 && R <= 3, "Kernel6x16 takes 4 pixels and up");
  constexpr int kSets = R == 1 ? 2 : 1;
  int32x4_t acc[kSets][R][4];
#pragma GCC unroll 2
  for (int s = 0; s < kSets; ++s)
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[s][i][q] = s == 0 ? vld1q_s32(prm + 4 * q) : vdupq_n_s32(0);
  for (int t = 0; t < taps; ++t) {
    const int8_t* ap[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) ap[i] = a[i] + tap_off[t];
    auto step = [&](int64_t k, int s) __attribute__((always_inline)) {
      const int8_t* wk = w + 64 * k;
      const int8x16_t w0 = vld1q_s8(wk), w1 = vld1q_s8(wk + 16), w2 = vld1q_s8(wk + 32), w3 = vld1q_s8(wk + 48);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        int32_t v;
        std::memcpy(&v, ap[i] + 4 * k, sizeof(v));
        const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(v));
        acc[s][i][0] = vdotq_s32(acc[s][i][0], w0, x);
        acc[s][i][1] = vdotq_s32(acc[s][i][1], w1, x);
        acc[s][i][2] = vdotq_s32(acc[s][i][2], w2, x);
        acc[s][i][3] = vdotq_s32(acc[s][i][3], w3, x);
      }
    };
    int64_t k = 0;
    if constexpr (kSets > 1)
      for (; k + kSets <= kp4; k += kSets) {
        if constexpr (R == 1) KCSP_MCA_BEGIN("neon_dotprod_tail_1x16");
#pragma GCC unroll 2
        for (int s = 0; s < kSets; ++s) step(k + s, s);
        if constexpr (R == 1) KCSP_MCA_END("neon_dotprod_tail_1x16");
      }
    for (; k < kp4; ++k) step(k, 0);
    w += 64 * int64_t{kp4};
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {  // the tile is exactly R pixels (the sweep's m)
    int32x4_t r[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      r[q] = acc[0][i][q];
#pragma GCC unroll 2
      for (int s = 1; s < kSets; ++s) r[q] = vaddq_s32(r[q], acc[s][i][q]);
    }
    StoreRow<true>(r[0], r[1], r[2], r[3], prm, c, o[i], n);
  }
}

}  // namespace

// Raw int8 inputs: fold zp * sum(w). sdot multiplies signed by signed, so 1x1 convs read the
// input slice in place (no staging, no per-pixel correction; a partial last group meets zero
// weights).
Status PackInt8NeonDotprod(PackedConvInt8* w) {
  w->direct_1x1_ = DirectReadable1x1(w->geometry_);
  return PackInt8Groups(w, w->quant_.input_zero_point, 4, 4);
}

Status ConvInt8NeonDotprod(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                           int8_t* out) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const int kp4 = w.k_padded_ / 4;
  return SweepRawInt8<kMR>(w, p, in, out,
                           [&](int m, const int8_t* const* a, const int64_t* tap_off, int taps,
                               const int32_t* prm, const int8_t* wp, int8_t* const* o, int n) {
                             switch (m) {
                               case 1: return KernelTail<1>(a, tap_off, taps, kp4, wp, prm, c, o, n);
                               case 2: return KernelTail<2>(a, tap_off, taps, kp4, wp, prm, c, o, n);
                               case 3: return KernelTail<3>(a, tap_off, taps, kp4, wp, prm, c, o, n);
                               default: return Kernel6x16(m, a, tap_off, taps, kp4, wp, prm, c, o, n);
                             }
                           });
}

}  // namespace internal
}  // namespace keras_csp

#pragma GCC pop_options
#endif  // __aarch64__
