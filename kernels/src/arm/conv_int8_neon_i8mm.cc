// int8 conv, aarch64 NEON with the int8 matrix-multiply extension (smmla: Armv8.6-A, optional
// from 8.2; Cortex-A710 / X2 and later, Neoverse V1 / N2).
// smmla multiplies a 2x8 int8 matrix by the transpose of another into a 2x2 int32 tile: here two
// output pixels x two output channels over 8 input channels, 32 MACs per instruction (sdot: 16).
// Raw int8 activations, staged with border input_zero_point as in the dotprod variant (the
// zp * sum(w) correction is folded into the packed bias); 1x1 convs (any in_channels) read
// the input slice in place. Weights packed [tap][k/8][16][8]: channel pair j's two 8-byte rows are
// one 16-byte smmla operand.
// 4x16 micro-kernel: 2 pixel pairs x 8 channel pairs = 16 accumulator tiles. Per 16 input
// channels: 4 activation loads + 4 zips (pixel pairs side by side) and 16 weight loads feed 32
// smmla.
#if defined(__aarch64__)
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+i8mm")
#include <arm_neon.h>

#include "neon_int8_common.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 4;
constexpr int kNR = kPackNR;

// smmla through inline assembly: with the vmmlaq_s32 intrinsic gcc 12 copied 8 of the 16
// accumulators (mov) every iteration, which cost 18 % of the loop on the Cortex-A710 model.
inline int32x4_t Mmla(int32x4_t c, int8x16_t a, int8x16_t b) {
  __asm__("smmla %0.4s, %1.16b, %2.16b" : "+w"(c) : "w"(a), "w"(b));
  return c;
}

// Pixels x and y's 8-byte halves (low or high) side by side: one smmla left operand.
inline int8x16_t ZipLo(int8x16_t x, int8x16_t y) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y)));
}
inline int8x16_t ZipHi(int8x16_t x, int8x16_t y) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(x), vreinterpretq_s64_s8(y)));
}
inline int32x4_t RowLo(int32x4_t x, int32x4_t y) {  // first pixel of the pair, 4 channels
  return vreinterpretq_s32_s64(vzip1q_s64(vreinterpretq_s64_s32(x), vreinterpretq_s64_s32(y)));
}
inline int32x4_t RowHi(int32x4_t x, int32x4_t y) {  // second pixel of the pair
  return vreinterpretq_s32_s64(vzip2q_s64(vreinterpretq_s64_s32(x), vreinterpretq_s64_s32(y)));
}

void Kernel4x16(int m, const int8_t* const* a, const int64_t* tap_off, int taps, int kp8,
                const int8_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n) {
  // cPJ: pixels (2P, 2P+1) x channels (2J, 2J+1), lanes [p0c0, p0c1, p1c0, p1c1].
  int32x4_t c00 = vdupq_n_s32(0), c01 = c00, c02 = c00, c03 = c00, c04 = c00, c05 = c00,
            c06 = c00, c07 = c00;
  int32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00, c14 = c00, c15 = c00, c16 = c00,
            c17 = c00;
#define KCSP_SMMLA_STEP(A01, A23)                                                             \
  {                                                                                          \
    const int8x16_t b0 = vld1q_s8(w), b1 = vld1q_s8(w + 16), b2 = vld1q_s8(w + 32),          \
                    b3 = vld1q_s8(w + 48), b4 = vld1q_s8(w + 64), b5 = vld1q_s8(w + 80),     \
                    b6 = vld1q_s8(w + 96), b7 = vld1q_s8(w + 112);                           \
    w += 128;                                                                                \
    c00 = Mmla(c00, A01, b0); c01 = Mmla(c01, A01, b1);                          \
    c02 = Mmla(c02, A01, b2); c03 = Mmla(c03, A01, b3);                          \
    c04 = Mmla(c04, A01, b4); c05 = Mmla(c05, A01, b5);                          \
    c06 = Mmla(c06, A01, b6); c07 = Mmla(c07, A01, b7);                          \
    c10 = Mmla(c10, A23, b0); c11 = Mmla(c11, A23, b1);                          \
    c12 = Mmla(c12, A23, b2); c13 = Mmla(c13, A23, b3);                          \
    c14 = Mmla(c14, A23, b4); c15 = Mmla(c15, A23, b5);                          \
    c16 = Mmla(c16, A23, b6); c17 = Mmla(c17, A23, b7);                          \
  }
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const int8_t* a0 = a[0] + off;
    const int8_t* a1 = a[1] + off;
    const int8_t* a2 = a[2] + off;
    const int8_t* a3 = a[3] + off;
    int k = 0;  // in groups of 8 input channels
    for (; k + 2 <= kp8; k += 2) {
      KCSP_MCA_BEGIN("neon_i8mm_4x16");
      const int8x16_t x0 = vld1q_s8(a0 + 8 * k);
      const int8x16_t x1 = vld1q_s8(a1 + 8 * k);
      const int8x16_t x2 = vld1q_s8(a2 + 8 * k);
      const int8x16_t x3 = vld1q_s8(a3 + 8 * k);
      const int8x16_t lo01 = ZipLo(x0, x1), lo23 = ZipLo(x2, x3);
      const int8x16_t hi01 = ZipHi(x0, x1), hi23 = ZipHi(x2, x3);
      KCSP_SMMLA_STEP(lo01, lo23)
      KCSP_SMMLA_STEP(hi01, hi23)
      KCSP_MCA_END("neon_i8mm_4x16");
    }
    if (k < kp8) {
      const int8x16_t p01 = vcombine_s8(vld1_s8(a0 + 8 * k), vld1_s8(a1 + 8 * k));
      const int8x16_t p23 = vcombine_s8(vld1_s8(a2 + 8 * k), vld1_s8(a3 + 8 * k));
      KCSP_SMMLA_STEP(p01, p23)
    }
  }
#undef KCSP_SMMLA_STEP
  StoreRow(RowLo(c00, c01), RowLo(c02, c03), RowLo(c04, c05), RowLo(c06, c07), prm, c, o[0], n);
  if (m > 1)
    StoreRow(RowHi(c00, c01), RowHi(c02, c03), RowHi(c04, c05), RowHi(c06, c07), prm, c, o[1], n);
  if (m > 2)
    StoreRow(RowLo(c10, c11), RowLo(c12, c13), RowLo(c14, c15), RowLo(c16, c17), prm, c, o[2], n);
  if (m > 3)
    StoreRow(RowHi(c10, c11), RowHi(c12, c13), RowHi(c14, c15), RowHi(c16, c17), prm, c, o[3], n);
}

}  // namespace

Status PackInt8NeonI8mm(PackedConvInt8* w) {
  w->direct_1x1_ = DirectReadable1x1(w->geometry_);
  return PackInt8Groups(w, w->quant_.input_zero_point, 8, 8);
}

Status ConvInt8NeonI8mm(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in,
                        int8_t* out) {
  const RequantConsts c = MakeRequantConsts(w.quant_);
  const int kp8 = w.k_padded_ / 8;
  return SweepRawInt8<kMR>(w, p, in, out,
                           [&](int m, const int8_t* const* a, const int64_t* tap_off, int taps,
                               const int32_t* prm, const int8_t* wp, int8_t* const* o, int n) {
                             Kernel4x16(m, a, tap_off, taps, kp8, wp, prm, c, o, n);
                           });
}

}  // namespace internal
}  // namespace keras_csp

#pragma GCC pop_options
#endif  // __aarch64__
