// int8 conv, aarch64 NEON with the ARMv8.2 dot-product extension (sdot).
// Raw int8 activations are staged in a padded buffer whose border holds input_zero_point, so
//   sum((x - zp) * w) = sum(x * w) - zp * sum(w)
// for every tap including padding; the correction is folded into the packed bias.
// 4x16 micro-kernel (16 channels of input per 16-byte load, lane-indexed sdot), weights packed
// [tap][k/4][16][4]; requantization with vqrdmulh +
// rounding shift, bit-exact with TFLite's reference MultiplyByQuantizedMultiplier.
#if defined(__aarch64__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#include <arm_neon.h>

#include <cstring>

#include "../sweep.h"

// llvm-mca region markers around the main loop (kernels/tools/mca_arm.py compiles this file with
// -DKCSP_MCA_MARKERS; normal builds have no markers).
#if defined(KCSP_MCA_MARKERS)
#define KCSP_MCA_BEGIN(name) asm volatile("// LLVM-MCA-BEGIN " name)
#define KCSP_MCA_END(name) asm volatile("// LLVM-MCA-END " name)
#else
#define KCSP_MCA_BEGIN(name) ((void)0)
#define KCSP_MCA_END(name) ((void)0)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 4;
constexpr int kNR = kDot4NR;
constexpr size_t kParamBytes = kDot4ParamBytes;

struct RequantConsts {
  int32x4_t zp, mn, mx;
  int32x4_t away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
  bool fp32;       // XNNPACK's fp32 requantization; the multiplier row holds the float scales
  float32x4_t fmin, fmax;  // fp32: output range relative to the zero point
};

inline int32x4_t Requant(int32x4_t acc, const int32_t* prm, int q, const RequantConsts& c) {
  const int32x4_t bias = vld1q_s32(prm + 4 * q);
  const int32x4_t mult = vld1q_s32(prm + 16 + 4 * q);
  if (c.fp32) {
    // As XNNPACK's fp32 neonv8 requantization: scale, clamp, vcvtn (nearest, ties to even).
    float32x4_t f = vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc, bias)), vreinterpretq_f32_s32(mult));
    f = vminq_f32(vmaxq_f32(f, c.fmin), c.fmax);
    return vaddq_s32(vcvtnq_s32_f32(f), c.zp);
  }
  const int32x4_t lsh = vld1q_s32(prm + 32 + 4 * q);
  const int32x4_t rsh = vld1q_s32(prm + 48 + 4 * q);
  int32x4_t x = vshlq_s32(vaddq_s32(acc, bias), lsh);
  x = vqrdmulhq_s32(x, mult);
  // RoundingDivideByPOT: round half away from zero.
  const int32x4_t neg = vnegq_s32(rsh);
  const int32x4_t fixup = vandq_s32(vshrq_n_s32(vandq_s32(x, neg), 31), c.away);
  x = vrshlq_s32(vqaddq_s32(x, fixup), neg);
  x = vaddq_s32(x, c.zp);
  return vminq_s32(vmaxq_s32(x, c.mn), c.mx);
}

inline void StoreRow(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, const int32_t* prm,
                     const RequantConsts& c, int8_t* o, int n) {
  const int16x8_t lo = vcombine_s16(vqmovn_s32(Requant(a0, prm, 0, c)), vqmovn_s32(Requant(a1, prm, 1, c)));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(Requant(a2, prm, 2, c)), vqmovn_s32(Requant(a3, prm, 3, c)));
  const int8x16_t v = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
  if (n == kNR) {
    vst1q_s8(o, v);
  } else {
    int8_t tmp[16];
    vst1q_s8(tmp, v);
    std::memcpy(o, tmp, n);
  }
}

inline int8x16_t Dup4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

void Kernel4x16(int m, const int8_t* const* a, const int64_t* tap_off, int taps, int kp4,
                const int8_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n) {
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00;
  int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  int32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  int32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const int8_t* a0 = a[0] + off;
    const int8_t* a1 = a[1] + off;
    const int8_t* a2 = a[2] + off;
    const int8_t* a3 = a[3] + off;
    int k = 0;
    // 4 groups of 4 channels at a time: one 16-byte load per pixel feeds 16 lane-indexed sdot.
    for (; k + 4 <= kp4; k += 4) {
      KCSP_MCA_BEGIN("neon_dotprod_4x16");
      const int8x16_t b0 = vld1q_s8(a0 + 4 * k);
      const int8x16_t b1 = vld1q_s8(a1 + 4 * k);
      const int8x16_t b2 = vld1q_s8(a2 + 4 * k);
      const int8x16_t b3 = vld1q_s8(a3 + 4 * k);
#define KCSP_SDOT_LANE(L)                                                                    \
  {                                                                                         \
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32),          \
                    w3 = vld1q_s8(w + 48);                                                  \
    w += 64;                                                                                \
    c00 = vdotq_laneq_s32(c00, w0, b0, L); c01 = vdotq_laneq_s32(c01, w1, b0, L);            \
    c02 = vdotq_laneq_s32(c02, w2, b0, L); c03 = vdotq_laneq_s32(c03, w3, b0, L);            \
    c10 = vdotq_laneq_s32(c10, w0, b1, L); c11 = vdotq_laneq_s32(c11, w1, b1, L);            \
    c12 = vdotq_laneq_s32(c12, w2, b1, L); c13 = vdotq_laneq_s32(c13, w3, b1, L);            \
    c20 = vdotq_laneq_s32(c20, w0, b2, L); c21 = vdotq_laneq_s32(c21, w1, b2, L);            \
    c22 = vdotq_laneq_s32(c22, w2, b2, L); c23 = vdotq_laneq_s32(c23, w3, b2, L);            \
    c30 = vdotq_laneq_s32(c30, w0, b3, L); c31 = vdotq_laneq_s32(c31, w1, b3, L);            \
    c32 = vdotq_laneq_s32(c32, w2, b3, L); c33 = vdotq_laneq_s32(c33, w3, b3, L);            \
  }
      KCSP_SDOT_LANE(0)
      KCSP_SDOT_LANE(1)
      KCSP_SDOT_LANE(2)
      KCSP_SDOT_LANE(3)
#undef KCSP_SDOT_LANE
      KCSP_MCA_END("neon_dotprod_4x16");
    }
    for (; k < kp4; ++k) {
      const int8x16_t w0 = vld1q_s8(w);
      const int8x16_t w1 = vld1q_s8(w + 16);
      const int8x16_t w2 = vld1q_s8(w + 32);
      const int8x16_t w3 = vld1q_s8(w + 48);
      w += 64;
      int8x16_t b = Dup4(a0 + 4 * k);
      c00 = vdotq_s32(c00, w0, b);
      c01 = vdotq_s32(c01, w1, b);
      c02 = vdotq_s32(c02, w2, b);
      c03 = vdotq_s32(c03, w3, b);
      b = Dup4(a1 + 4 * k);
      c10 = vdotq_s32(c10, w0, b);
      c11 = vdotq_s32(c11, w1, b);
      c12 = vdotq_s32(c12, w2, b);
      c13 = vdotq_s32(c13, w3, b);
      b = Dup4(a2 + 4 * k);
      c20 = vdotq_s32(c20, w0, b);
      c21 = vdotq_s32(c21, w1, b);
      c22 = vdotq_s32(c22, w2, b);
      c23 = vdotq_s32(c23, w3, b);
      b = Dup4(a3 + 4 * k);
      c30 = vdotq_s32(c30, w0, b);
      c31 = vdotq_s32(c31, w1, b);
      c32 = vdotq_s32(c32, w2, b);
      c33 = vdotq_s32(c33, w3, b);
    }
  }
  StoreRow(c00, c01, c02, c03, prm, c, o[0], n);
  if (m > 1) StoreRow(c10, c11, c12, c13, prm, c, o[1], n);
  if (m > 2) StoreRow(c20, c21, c22, c23, prm, c, o[2], n);
  if (m > 3) StoreRow(c30, c31, c32, c33, prm, c, o[3], n);
}

}  // namespace

// Raw int8 inputs: fold zp * sum(w).
Status PackInt8NeonDotprod(PackedConvInt8* w) { return PackInt8Dot4(w, w->quant_.input_zero_point); }

Status ConvInt8NeonDotprod(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                           int8_t* out) {
  RequantConsts c;
  c.zp = vdupq_n_s32(w.quant_.output_zero_point);
  c.mn = vdupq_n_s32(w.quant_.act_min);
  c.mx = vdupq_n_s32(w.quant_.act_max);
  c.away = vdupq_n_s32(w.quant_.rounding == Rounding::kAwayFromZero ? -1 : 0);
  c.fp32 = w.quant_.rounding == Rounding::kFp32;
  c.fmin = vdupq_n_f32(static_cast<float>(w.quant_.act_min - w.quant_.output_zero_point));
  c.fmax = vdupq_n_f32(static_cast<float>(w.quant_.act_max - w.quant_.output_zero_point));
  const size_t bb = Dot4BlockBytes(w);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const int kp4 = w.k_padded_ / 4;
  // Raw int8 with border zp: the zp * sum(w) correction is folded into the packed bias.
  return SweepInt8<kMR, kNR>(
      w, p, in, out, static_cast<int8_t>(w.quant_.input_zero_point), [](int8_t v) { return v; },
      int64_t{64 * 1024},
      [&](int m, const int8_t* const* a, const int64_t* tap_off, int taps, int bi,
          int8_t* const* o, int n) {
        const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
        const auto* wp = reinterpret_cast<const int8_t*>(base + bi * bb + kParamBytes);
        Kernel4x16(m, a, tap_off, taps, kp4, wp, prm, c, o, n);
      });
}

}  // namespace internal
}  // namespace keras_csp

#pragma GCC pop_options
#endif  // __aarch64__
