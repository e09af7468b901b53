// float32 conv, x86-64 AVX2 + FMA: 5x16 micro-kernel over prepacked [tap][k][16] weights.
// 1x1 convs read the (strided) input slice in place; other kernels stage a zero-padded copy.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <cstring>

#include "../sweep.h"

// clang ignores `#pragma GCC target`: give every function below the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 5;  // 10 accumulators: 6x16 makes GCC spill
constexpr int kNR = 16;

inline void StoreRow(__m256i /*unused*/, __m256 a0, __m256 a1, const float* bias, __m256 mn,
                     __m256 mx, float* o, int n) {
  // Operand order matters for NaN: max_ps/min_ps return the SECOND operand when either is NaN,
  // so the accumulator goes second to propagate NaN like the scalar reference / TFLite
  // (std::min(std::max(x, lo), hi)); the other order silently turned NaN into act_min/act_max.
  a0 = _mm256_min_ps(mx, _mm256_max_ps(mn, _mm256_add_ps(a0, _mm256_load_ps(bias))));
  a1 = _mm256_min_ps(mx, _mm256_max_ps(mn, _mm256_add_ps(a1, _mm256_load_ps(bias + 8))));
  if (n == kNR) {
    _mm256_storeu_ps(o, a0);
    _mm256_storeu_ps(o + 8, a1);
  } else {
    alignas(32) float tmp[16];
    _mm256_store_ps(tmp, a0);
    _mm256_store_ps(tmp + 8, a1);
    std::memcpy(o, tmp, n * sizeof(float));
  }
}

template <int MR>
void KernelMx16(int m, const float* const* a, const int64_t* tap_off, int taps, int kc,
                const float* w, const float* bias, __m256 mn, __m256 mx, float* const* o, int n) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const float* ap[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ap[i] = a[i] + off;
    for (int k = 0; k < kc; ++k) {
      const __m256 w0 = _mm256_load_ps(w);
      const __m256 w1 = _mm256_load_ps(w + 8);
      w += 16;
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 b = _mm256_broadcast_ss(ap[i] + k);
        acc[i][0] = _mm256_fmadd_ps(b, w0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(b, w1, acc[i][1]);
      }
    }
  }
  const __m256i z = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    if (i < m) StoreRow(z, acc[i][0], acc[i][1], bias, mn, mx, o[i], n);
}

}  // namespace

Status PackF32Avx2(PackedConvF32* w) { return PackF32Blocks(w, kNR); }

Status ConvF32Avx2(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out) {
  const __m256 mn = _mm256_set1_ps(w.act_min_), mx = _mm256_set1_ps(w.act_max_);
  const size_t bf = PackedF32BlockFloats(w, kNR);
  const float* base = w.packed();
  const int cin = w.geometry_.in_channels;
  return SweepF32<kMR, kNR>(w, p, in, out,
                            [&](int m, const float* const* a, const int64_t* tap_off, int taps,
                                int bi, float* const* o, int n) {
                              const float* blk = base + bi * bf;
                              KernelMx16<kMR>(m, a, tap_off, taps, cin, blk + kNR, blk, mn, mx, o, n);
                            });
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
