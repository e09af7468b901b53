// float32 conv, aarch64 NEON (fmla): 4x16 micro-kernel over prepacked [tap][k][16] weights.
// 1x1 convs read the (strided) input slice in place; other kernels stage a zero-padded copy.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "../sweep.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 16;

inline void StoreRow(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3,
                     const float* bias, float32x4_t mn, float32x4_t mx, float* o, int n) {
  float tmp[16];
  float32x4_t v[4] = {a0, a1, a2, a3};
  for (int q = 0; q < 4; ++q)
    vst1q_f32(tmp + 4 * q, vminq_f32(vmaxq_f32(vaddq_f32(v[q], vld1q_f32(bias + 4 * q)), mn), mx));
  std::memcpy(o, tmp, n * sizeof(float));
}

void Kernel4x16(int m, const float* const* a, const int64_t* tap_off, int taps, int kc,
                const float* w, const float* bias, float32x4_t mn, float32x4_t mx, float* const* o,
                int n) {
  float32x4_t c[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) c[i][j] = vdupq_n_f32(0.0f);
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const float* ap[4] = {a[0] + off, a[1] + off, a[2] + off, a[3] + off};
    for (int k = 0; k < kc; ++k) {
      const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8),
                        w3 = vld1q_f32(w + 12);
      w += 16;
      for (int i = 0; i < 4; ++i) {
        const float32x4_t b = vdupq_n_f32(ap[i][k]);
        c[i][0] = vfmaq_f32(c[i][0], b, w0);
        c[i][1] = vfmaq_f32(c[i][1], b, w1);
        c[i][2] = vfmaq_f32(c[i][2], b, w2);
        c[i][3] = vfmaq_f32(c[i][3], b, w3);
      }
    }
  }
  for (int i = 0; i < m; ++i) StoreRow(c[i][0], c[i][1], c[i][2], c[i][3], bias, mn, mx, o[i], n);
}

}  // namespace

Status PackF32Neon(PackedConvF32* w) { return PackF32Blocks(w, kNR); }

Status ConvF32Neon(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out) {
  const float32x4_t mn = vdupq_n_f32(w.act_min_), mx = vdupq_n_f32(w.act_max_);
  const size_t bf = PackedF32BlockFloats(w, kNR);
  const float* base = w.packed();
  const int cin = w.geometry_.in_channels;
  return SweepF32<kMR, kNR>(w, p, in, out,
                            [&](int m, const float* const* a, const int64_t* tap_off, int taps,
                                int bi, float* const* o, int n) {
                              const float* blk = base + bi * bf;
                              Kernel4x16(m, a, tap_off, taps, cin, blk + kNR, blk, mn, mx, o, n);
                            });
}

}  // namespace internal
}  // namespace keras_csp

#endif  // __aarch64__
