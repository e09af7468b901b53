// Pieces shared by the int8 NEON variants (dotprod, i8mm, mlal): the requantization epilogue,
// bit-exact with TFLite's reference / optimized kernels and XNNPACK's fp32 path, the sweep of the
// raw-int8 variants, and the llvm-mca region markers. Include it after `#pragma GCC target` (it only uses base NEON). Everything is
// in an anonymous namespace: each variant file gets its own copy, compiled with its own flags.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../sweep.h"

#include "mca_markers.h"

// The 16 smlal / smlal2 of one input channel (lane j of v0-v3: the 4 pixels' int16 x) against its
// 16 int16 weights (channels 0-7 in v<lo>, 8-15 in v<hi>) into the 4x16 accumulators v16-v31 (pixel p,
// channels 4q..4q+3 in v(16 + 4p + q)): an assembly string, the plain NEON tiles' step (direct and
// Winograd).
#define KCSP_MLAL_4X16_LANE(j, lo, hi)                                                                    \
  "smlal v16.4s, v" #lo ".4h, v0.h[" #j "]\n smlal2 v17.4s, v" #lo ".8h, v0.h[" #j "]\n"                   \
  "smlal v18.4s, v" #hi ".4h, v0.h[" #j "]\n smlal2 v19.4s, v" #hi ".8h, v0.h[" #j "]\n"                   \
  "smlal v20.4s, v" #lo ".4h, v1.h[" #j "]\n smlal2 v21.4s, v" #lo ".8h, v1.h[" #j "]\n"                   \
  "smlal v22.4s, v" #hi ".4h, v1.h[" #j "]\n smlal2 v23.4s, v" #hi ".8h, v1.h[" #j "]\n"                   \
  "smlal v24.4s, v" #lo ".4h, v2.h[" #j "]\n smlal2 v25.4s, v" #lo ".8h, v2.h[" #j "]\n"                   \
  "smlal v26.4s, v" #hi ".4h, v2.h[" #j "]\n smlal2 v27.4s, v" #hi ".8h, v2.h[" #j "]\n"                   \
  "smlal v28.4s, v" #lo ".4h, v3.h[" #j "]\n smlal2 v29.4s, v" #lo ".8h, v3.h[" #j "]\n"                   \
  "smlal v30.4s, v" #hi ".4h, v3.h[" #j "]\n smlal2 v31.4s, v" #hi ".8h, v3.h[" #j "]\n"

// v16-v31 (the 4x16 accumulators) zeroed: an assembly string.
#define KCSP_ZERO_V16_V31                                                                                 \
  "movi v16.16b, #0\n movi v17.16b, #0\n movi v18.16b, #0\n movi v19.16b, #0\n"                           \
  "movi v20.16b, #0\n movi v21.16b, #0\n movi v22.16b, #0\n movi v23.16b, #0\n"                           \
  "movi v24.16b, #0\n movi v25.16b, #0\n movi v26.16b, #0\n movi v27.16b, #0\n"                           \
  "movi v28.16b, #0\n movi v29.16b, #0\n movi v30.16b, #0\n movi v31.16b, #0\n"

namespace keras_csp {
namespace internal {
namespace {

struct RequantConsts {
  int32x4_t away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;       // XNNPACK's fp32 requantization; the multiplier row holds the float scales
  int32x4_t zp32;  // fixed point: output zero point, added in int32 (wrapping, as TFLite's reference)
  int16x8_t zp;    // fp32: output zero point, added after the first saturating narrow (as XNNPACK)
  int16x8_t mn16, mx16;  // the activation range: clamped after the narrows, 8 or 16 lanes per op
  int8x16_t mn, mx;
};

// acc (+ bias unless kBiasInAcc: kernels that start their accumulators at the bias skip 4 adds)
// scaled to the output's units, before the clamp; fixed point with the zero point (an int32 add
// that wraps at the int32 bounds, as TFLite's reference does), fp32 without it. Saturating narrows
// are monotone and the clamp range lies inside int8, so the fp32 zero point after the first narrow
// and the clamp after the last give what clamp(scaled + zp) gives, 8 / 16 lanes per instruction.
template <bool kBiasInAcc>
__attribute__((always_inline)) inline int32x4_t Scaled(int32x4_t acc, const int32_t* prm, int q, const RequantConsts& c) {
  if (!kBiasInAcc) acc = vaddq_s32(acc, vld1q_s32(prm + 4 * q));
  const int32x4_t mult = vld1q_s32(prm + 16 + 4 * q);
  if (KCSP_MCA_FP32_ONLY || c.fp32) {
    // As XNNPACK's fp32 neonv8 requantization: scale, vcvtn (nearest, ties to even).
    return vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(acc), vreinterpretq_f32_s32(mult)));
  }
  const int32x4_t lsh = vld1q_s32(prm + 32 + 4 * q);
  const int32x4_t rsh = vld1q_s32(prm + 48 + 4 * q);
  int32x4_t x = vqrdmulhq_s32(vshlq_s32(acc, lsh), mult);
  // RoundingDivideByPOT: round half away from zero.
  const int32x4_t neg = vnegq_s32(rsh);
  const int32x4_t fixup = vandq_s32(vshrq_n_s32(vandq_s32(x, neg), 31), c.away);
  return vaddq_s32(vrshlq_s32(vqaddq_s32(x, fixup), neg), c.zp32);
}

// Four quarters scaled, narrowed to int16 and offset by the zero point: 16 lanes as two int16x8.
template <bool kBiasInAcc>
__attribute__((always_inline)) inline int16x8x2_t ScaledRow(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3,
                                                            const int32_t* prm, const RequantConsts& c) {
  int16x8_t lo = vqmovn_high_s32(vqmovn_s32(Scaled<kBiasInAcc>(a0, prm, 0, c)), Scaled<kBiasInAcc>(a1, prm, 1, c));
  int16x8_t hi = vqmovn_high_s32(vqmovn_s32(Scaled<kBiasInAcc>(a2, prm, 2, c)), Scaled<kBiasInAcc>(a3, prm, 3, c));
  if (KCSP_MCA_FP32_ONLY || c.fp32) {
    lo = vqaddq_s16(lo, c.zp);
    hi = vqaddq_s16(hi, c.zp);
  }
  return {{lo, hi}};
}

inline RequantConsts MakeRequantConsts(const Int8QuantParams& q) {
  RequantConsts c;
  c.away = vdupq_n_s32(q.rounding == Rounding::kAwayFromZero ? -1 : 0);
  c.fp32 = q.rounding == Rounding::kFp32;
  c.zp32 = vdupq_n_s32(q.output_zero_point);
  c.zp = vdupq_n_s16(static_cast<int16_t>(q.output_zero_point));
  c.mn16 = vdupq_n_s16(static_cast<int16_t>(q.act_min));
  c.mx16 = vdupq_n_s16(static_cast<int16_t>(q.act_max));
  c.mn = vdupq_n_s8(static_cast<int8_t>(q.act_min));
  c.mx = vdupq_n_s8(static_cast<int8_t>(q.act_max));
  return c;
}

// One output pixel's 16 channels (4 x int32x4) requantized and stored (n <= 16 of them). Always
// inlined: called out of line (as GCC chose in the dotprod depthwise kernel's pixel loop), the
// caller saves its live vector registers around the call.
template <bool kBiasInAcc = false>
__attribute__((always_inline)) inline void StoreRow(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3,
                                                    const int32_t* prm, const RequantConsts& c, int8_t* o, int n) {
  const int16x8x2_t r = ScaledRow<kBiasInAcc>(a0, a1, a2, a3, prm, c);
  const int8x16_t v = vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(r.val[0]), r.val[1]), c.mn), c.mx);
  if (n == kPackNR) {
    vst1q_s8(o, v);
  } else {
    int8_t tmp[16];
    vst1q_s8(tmp, v);
    std::memcpy(o, tmp, n);
  }
}

// The same 16 channels as int16 x - zero point, the plain NEON variant's staging of the next conv
// (Conv2DInt8Chain): n <= 16 values, 2n bytes at o.
inline void StoreRowInt16(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, const int32_t* prm,
                          const RequantConsts& c, int8_t* o, int n) {
  const int16x8x2_t r = ScaledRow<false>(a0, a1, a2, a3, prm, c);
  // clamped in int16 (the range lies inside int8), then the zero point off again: |x| <= 255
  const int16x8_t lo = vsubq_s16(vminq_s16(vmaxq_s16(r.val[0], c.mn16), c.mx16), c.zp);
  const int16x8_t hi = vsubq_s16(vminq_s16(vmaxq_s16(r.val[1], c.mn16), c.mx16), c.zp);
  int16_t tmp[16];
  int16_t* d = n == kPackNR ? reinterpret_cast<int16_t*>(o) : tmp;  // o: int16 staging, 2-byte aligned
  vst1q_s16(d, lo);
  vst1q_s16(d + 8, hi);
  if (d == tmp) std::memcpy(o, tmp, static_cast<size_t>(n) * sizeof(int16_t));
}

// The sweep of the raw-int8 variants (sdot and smmla multiply signed by signed): 1x1 convs with
// direct_1x1_ read the input slice in place; others stage raw int8 with border input_zero_point
// (the zp * sum(w) correction is folded into the packed bias). kernel(m, a, tap_off, taps, params,
// weights, o, n) for one MR-pixel x kPackNR-channel tile.
template <int MR, typename Kernel>
Status SweepRawInt8(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                    Kernel kernel) {
  const PackedBlocks blocks(w);
  if (w.direct_1x1_) {
    static const int64_t kNoOffset[1] = {0};
    return SweepInt8Direct1x1<MR, kPackNR>(
        w, p, in, out, int64_t{64 * 1024}, nullptr,  // sdot / smmla: signed x signed, no correction
        [&](int m, const int8_t* const* a, const int32_t*, int bi, int8_t* const* o, int n) {
          kernel(m, a, kNoOffset, 1, blocks.params(bi), blocks.weights(bi), o, n);
        });
  }
  return SweepInt8<MR, kPackNR>(
      w, p, in, out, static_cast<int8_t>(w.quant_.input_zero_point), [](int8_t v) { return v; },
      int64_t{64 * 1024},
      [&](int m, const int8_t* const* a, const int64_t* tap_off, int taps, int bi, int8_t* const* o,
          int n) { kernel(m, a, tap_off, taps, blocks.params(bi), blocks.weights(bi), o, n); });
}

}  // namespace
}  // namespace internal
}  // namespace keras_csp
#endif  // __aarch64__
