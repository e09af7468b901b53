// int8 3x3 stride-1 convs by Winograd F(2x2, 3x3), exact in integers, for aarch64 CPUs without the
// dot-product extension (Cortex-A53, A57, A72, A73): the plain NEON pieces of winograd_sweep.h's
// sweep.
//
// Why: the plain NEON kernel multiplies int16 x - zero point by widened int8 weights with smlal by
// lane; F(2x2, 3x3) does it with 2.25x fewer smlal, and its weights U are int16 already (no sxtl).
// dotprod / i8mm gain nothing so: sdot and smmla multiply int8 only, and V does not fit int8.
//
// Layout: per 16-channel block, the 4 parameter rows of PackParamRows, then U as
// [xi = 4 r + c][k][16] int16. The products run on the direct kernel's 4x16 register tile (16
// int32x4 accumulators, one smlal by lane each per channel).
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../winograd_sweep.h"
#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

// NEON's int16 (8 or 4 lanes) and int32 vectors for the shared transforms (winograd_sweep.h).
struct Int16x8Ops {
  int16x8_t load(const int16_t* p) const { return vld1q_s16(p); }
  int16x8_t add(int16x8_t a, int16x8_t b) const { return vaddq_s16(a, b); }
  int16x8_t sub(int16x8_t a, int16x8_t b) const { return vsubq_s16(a, b); }
  void store(int16_t* p, int16x8_t v) const { vst1q_s16(p, v); }
};
struct Int16x4Ops {
  int16x4_t load(const int16_t* p) const { return vld1_s16(p); }
  int16x4_t add(int16x4_t a, int16x4_t b) const { return vadd_s16(a, b); }
  int16x4_t sub(int16x4_t a, int16x4_t b) const { return vsub_s16(a, b); }
  void store(int16_t* p, int16x4_t v) const { vst1_s16(p, v); }
};
struct Int32x4Ops {
  int32x4_t add(int32x4_t a, int32x4_t b) const { return vaddq_s32(a, b); }
  int32x4_t sub(int32x4_t a, int32x4_t b) const { return vsubq_s32(a, b); }
};

struct NeonIsa {
  static constexpr int kMR = 4;
  static constexpr int kVecElems = 8;

  // n is a multiple of 4 (k_padded_).
  static void TransformTile(const int16_t* const (&px)[4][4], int n, int16_t* v, int64_t xi_stride) {
    int k = 0;
    for (; k + 8 <= n; k += 8) {
      KCSP_MCA_BEGIN("neon_winograd_input_8");
      winograd::InputTransform(px, k, v, xi_stride, Int16x8Ops{});
      KCSP_MCA_END("neon_winograd_input_8");
    }
    if (k < n) winograd::InputTransform(px, k, v, xi_stride, Int16x4Ops{});
  }

  // M rows mrow[i] = sum over k < kp (a multiple of 4) of a[i][k] * U[k] for MR <= 4 tiles (the
  // rest repeat the last: the same sums stored twice).
  template <int MR>
  static void Products(const int16_t* const* a, int kp, const int16_t* u, int32_t* const* mrow) {
    const int16_t* p[4];
    int32_t* m[4];
    for (int i = 0; i < 4; ++i) {
      p[i] = a[i < MR ? i : MR - 1] + kp;  // past the end: kk runs from -2 kp bytes up to 0
      m[i] = mrow[i < MR ? i : MR - 1];
    }
    int64_t kk = -2 * int64_t{kp};
    // The direct kernel's loop (conv_int8_neon.cc) with int16 weights: per step of 4 channels, the
    // 4 tiles' V in v0-v3 (smlal's by-element operand must be in v0-v15), U's 4 x 16 in v4-v11.
    asm volatile(
        KCSP_ZERO_V16_V31
        "1:\n" KCSP_MCA_ASM_BEGIN("neon_mlal_winograd_4x16")
        "ldr d0, [%[p0], %[kk]]\n"
        "ldp q4, q8, [%[w]]\n"
        "ldr d1, [%[p1], %[kk]]\n"
        "ldr d2, [%[p2], %[kk]]\n"
        "ldr d3, [%[p3], %[kk]]\n"
        "adds %[kk], %[kk], #8\n"  // the flags for b.ne (nothing after sets them)
        "ldp q5, q9, [%[w], #32]\n"
        "smlal v16.4s, v4.4h, v0.h[0]\n"
        "smlal2 v17.4s, v4.8h, v0.h[0]\n"
        "smlal v18.4s, v8.4h, v0.h[0]\n"
        "smlal2 v19.4s, v8.8h, v0.h[0]\n"
        "ldp q6, q10, [%[w], #64]\n"
        "smlal v20.4s, v4.4h, v1.h[0]\n"
        "smlal2 v21.4s, v4.8h, v1.h[0]\n"
        "smlal v22.4s, v8.4h, v1.h[0]\n"
        "smlal2 v23.4s, v8.8h, v1.h[0]\n"
        "ldp q7, q11, [%[w], #96]\n"
        "add %[w], %[w], #128\n"
        "smlal v24.4s, v4.4h, v2.h[0]\n"
        "smlal2 v25.4s, v4.8h, v2.h[0]\n"
        "smlal v26.4s, v8.4h, v2.h[0]\n"
        "smlal2 v27.4s, v8.8h, v2.h[0]\n"
        "smlal v28.4s, v4.4h, v3.h[0]\n"
        "smlal2 v29.4s, v4.8h, v3.h[0]\n"
        "smlal v30.4s, v8.4h, v3.h[0]\n"
        "smlal2 v31.4s, v8.8h, v3.h[0]\n"
        KCSP_MLAL_4X16_LANE(1, 5, 9)
        KCSP_MLAL_4X16_LANE(2, 6, 10)
        KCSP_MLAL_4X16_LANE(3, 7, 11)
        KCSP_MCA_ASM_END("neon_mlal_winograd_4x16")
        "b.ne 1b\n"
        "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[m0]]\n"
        "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[m1]]\n"
        "st1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[m2]]\n"
        "st1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[m3]]\n"
        : [kk] "+r"(kk), [w] "+r"(u)
        : [p0] "r"(p[0]), [p1] "r"(p[1]), [p2] "r"(p[2]), [p3] "r"(p[3]), [m0] "r"(m[0]), [m1] "r"(m[1]),
          [m2] "r"(m[2]), [m3] "r"(m[3])
        : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v16", "v17",
          "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
  }
};

// Y = A^T M A / 4 for the tile's sums m ([xi][16] int32), then the bias, requantization and stores
// of its up to 4 outputs (o[a][b] null outside the image).
template <bool kInt16>
void StoreTile(const int32_t* m, const int32_t* prm, const RequantConsts& c, int8_t* const (&o)[2][2], int n) {
  int32x4_t y[2][2][4];  // [a][b][quarter of the 16 channels]
  KCSP_MCA_BEGIN("neon_winograd_output_16");
  for (int q = 0; q < 4; ++q) {
    int32x4_t yq[2][2];
    winograd::OutputTransform([&](int xi) { return vld1q_s32(m + xi * kWinogradNR + 4 * q); }, Int32x4Ops{}, yq);
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) y[a][b][q] = vshrq_n_s32(yq[a][b], 2);  // exact: 4 x the direct sums
  }
  KCSP_MCA_END("neon_winograd_output_16");
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      if (o[a][b] == nullptr) continue;
      const int32x4_t* r = y[a][b];
      if constexpr (kInt16)
        StoreRowInt16(r[0], r[1], r[2], r[3], prm, c, o[a][b], n);
      else
        StoreRow(r[0], r[1], r[2], r[3], prm, c, o[a][b], n);
    }
}

void PackParams(int32_t* prm, const PackedConvInt8& w, int oc0) {
  PackParamRows(prm, w.quant_, w.bias_.data(), w.left_shift_.data(), w.right_shift_.data(), oc0,
                w.geometry_.out_channels);
}

}  // namespace

Status PackInt8NeonWinograd(PackedConvInt8* w) { return PackWinograd(w, kPackParamBytes, 1, PackParams); }

Status ConvInt8NeonWinograd(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  if (p.out_i16)
    return WinogradSweep<NeonIsa>(w, p, in, out, kPackParamBytes,
                                  [&c](const int32_t* m, const int32_t* prm, int8_t* const (&o)[2][2], int n) {
                                    StoreTile<true>(m, prm, c, o, n);
                                  });
  return WinogradSweep<NeonIsa>(w, p, in, out, kPackParamBytes,
                                [&c](const int32_t* m, const int32_t* prm, int8_t* const (&o)[2][2], int n) {
                                  StoreTile<false>(m, prm, c, o, n);
                                });
}

}  // namespace internal
}  // namespace keras_csp
#endif  // __aarch64__
