// int8 conv, x86-64 AVX2. Activations are staged once per call as int16 (x - input_zero_point)
// in a spatially padded buffer (so padded taps contribute exactly 0, as in TFLite), weights are
// prepacked as int16 pairs; the 6x16 micro-kernel uses vpmaddwd (exact, no int16 saturation).
// Requantization is a vectorized, bit-exact transcription of TFLite's
// MultiplyByQuantizedMultiplier.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <cstring>

#include "../conv_internal.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;
// Per output-channel block: bias, multiplier, left shift, right shift (16 x int32 each).
constexpr size_t kParamBytes = 4 * kNR * sizeof(int32_t);

inline size_t BlockBytes(const PackedConvInt8& w) {
  const int taps = w.geometry_.kernel_h * w.geometry_.kernel_w;
  return kParamBytes + static_cast<size_t>(taps) * w.k_padded_ * kNR * sizeof(int16_t);
}

struct RequantConsts {
  __m256i zp, mn, mx;
  __m256i away;  // all ones: ties away from zero (reference); zero: ties up (optimized TFLite)
};

inline __m256i Requant(__m256i acc, const int32_t* prm, int half, const RequantConsts& c) {
  const __m256i bias = _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + half * 8));
  const __m256i mult = _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + 16 + half * 8));
  const __m256i lsh = _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + 32 + half * 8));
  const __m256i rsh = _mm256_load_si256(reinterpret_cast<const __m256i*>(prm + 48 + half * 8));
  __m256i x = _mm256_sllv_epi32(_mm256_add_epi32(acc, bias), lsh);
  // SaturatingRoundingDoublingHighMul: floor((x * m + 2^30) / 2^31) (m >= 0, no saturation case).
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, mult), nudge);
  __m256i odd = _mm256_add_epi64(
      _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mult, 32)), nudge);
  even = _mm256_srli_epi64(even, 31);
  odd = _mm256_slli_epi64(odd, 1);
  const __m256i h = _mm256_blend_epi32(even, odd, 0xAA);
  // RoundingDivideByPOT: round half away from zero.
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rsh), one);
  const __m256i rem = _mm256_and_si256(h, mask);
  const __m256i thr = _mm256_sub_epi32(
      _mm256_srli_epi32(mask, 1),
      _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), h), c.away));
  __m256i r = _mm256_sub_epi32(_mm256_srav_epi32(h, rsh), _mm256_cmpgt_epi32(rem, thr));
  r = _mm256_add_epi32(r, c.zp);
  r = _mm256_max_epi32(r, c.mn);
  return _mm256_min_epi32(r, c.mx);
}

inline void StoreRow(__m256i acc0, __m256i acc1, const int32_t* prm, const RequantConsts& c,
                     int8_t* o, int n) {
  const __m256i r0 = Requant(acc0, prm, 0, c);
  const __m256i r1 = Requant(acc1, prm, 1, c);
  __m256i p16 = _mm256_packs_epi32(r0, r1);
  p16 = _mm256_permute4x64_epi64(p16, 0xD8);
  const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
  if (n == kNR) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), p8);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), p8);
    std::memcpy(o, tmp, n);
  }
}

inline __m256i Bcast(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

// 6 output pixels x 16 output channels.
void Kernel6x16(int m, const int16_t* const* a, const int64_t* tap_off, int taps, int kp2,
                const int16_t* w, const int32_t* prm, const RequantConsts& c, int8_t* const* o,
                int n) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const int16_t* a0 = a[0] + off;
    const int16_t* a1 = a[1] + off;
    const int16_t* a2 = a[2] + off;
    const int16_t* a3 = a[3] + off;
    const int16_t* a4 = a[4] + off;
    const int16_t* a5 = a[5] + off;
    for (int k = 0; k < kp2; ++k) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16));
      w += 32;
      __m256i b = Bcast(a0 + 2 * k);
      c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(b, w0));
      c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(b, w1));
      b = Bcast(a1 + 2 * k);
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(b, w0));
      c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(b, w1));
      b = Bcast(a2 + 2 * k);
      c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(b, w0));
      c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(b, w1));
      b = Bcast(a3 + 2 * k);
      c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(b, w0));
      c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(b, w1));
      b = Bcast(a4 + 2 * k);
      c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(b, w0));
      c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(b, w1));
      b = Bcast(a5 + 2 * k);
      c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(b, w0));
      c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(b, w1));
    }
  }
  StoreRow(c00, c01, prm, c, o[0], n);
  if (m > 1) StoreRow(c10, c11, prm, c, o[1], n);
  if (m > 2) StoreRow(c20, c21, prm, c, o[2], n);
  if (m > 3) StoreRow(c30, c31, prm, c, o[3], n);
  if (m > 4) StoreRow(c40, c41, prm, c, o[4], n);
  if (m > 5) StoreRow(c50, c51, prm, c, o[5], n);
}

}  // namespace

Status PackInt8Avx2(PackedConvInt8* w) {
  const ConvGeometry& g = w->geometry_;
  const int taps = g.kernel_h * g.kernel_w;
  w->nr_ = kNR;
  w->k_padded_ = RoundUp(g.in_channels, 2);
  const int kp2 = w->k_padded_ / 2;
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wp = reinterpret_cast<int16_t*>(base + bi * bb + kParamBytes);
    for (int j = 0; j < kNR; ++j) {
      const int oc = bi * kNR + j;
      if (oc >= g.out_channels) continue;
      prm[j] = w->bias_[oc];
      prm[16 + j] = w->quant_.output_multiplier[oc];
      prm[32 + j] = w->left_shift_[oc];
      prm[48 + j] = w->right_shift_[oc];
      for (int t = 0; t < taps; ++t)
        for (int k = 0; k < g.in_channels; ++k)
          wp[((static_cast<size_t>(t) * kp2 + k / 2) * kNR + j) * 2 + (k % 2)] =
              w->weights_[(static_cast<size_t>(oc) * taps + t) * g.in_channels + k];
    }
  }
  return Status::Ok();
}

Status ConvInt8Avx2(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const ConvGeometry& g = w.geometry_;
  const int cp = w.k_padded_;
  const int kp2 = cp / 2;
  const int taps = g.kernel_h * g.kernel_w;
  const size_t elems = static_cast<size_t>(p.batch) * p.padded_h * p.padded_w * cp;
  auto* buf = static_cast<int16_t*>(Scratch(elems * sizeof(int16_t)));
  if (buf == nullptr) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  const int16_t zp = static_cast<int16_t>(w.quant_.input_zero_point);
  BuildPadded(p, in, buf, cp, int16_t{0}, int16_t{0},
              [zp](int8_t v) { return static_cast<int16_t>(v - zp); });
  int64_t tap_off[64 * 64];
  for (int ky = 0; ky < g.kernel_h; ++ky)
    for (int kx = 0; kx < g.kernel_w; ++kx)
      tap_off[ky * g.kernel_w + kx] = (static_cast<int64_t>(ky) * p.padded_w + kx) * cp;
  RequantConsts c;
  c.zp = _mm256_set1_epi32(w.quant_.output_zero_point);
  c.mn = _mm256_set1_epi32(w.quant_.act_min);
  c.mx = _mm256_set1_epi32(w.quant_.act_max);
  c.away = _mm256_set1_epi32(w.quant_.rounding == Rounding::kAwayFromZero ? -1 : 0);
  const size_t bb = BlockBytes(w);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const int pixels = p.out_h * p.out_w;
  for (int b = 0; b < p.batch; ++b) {
    const int16_t* img = buf + static_cast<size_t>(b) * p.padded_h * p.padded_w * cp;
    for (int p0 = 0; p0 < pixels; p0 += kMR) {
      const int m = std::min(kMR, pixels - p0);
      const int16_t* a[kMR];
      int8_t* o[kMR];
      for (int i = 0; i < kMR; ++i) {
        const int pix = p0 + std::min(i, m - 1);
        const int oy = pix / p.out_w, ox = pix % p.out_w;
        a[i] = img + (static_cast<int64_t>(oy) * g.stride_h * p.padded_w + ox * g.stride_w) * cp;
        o[i] = out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride +
               p.out.channel_offset;
      }
      for (int bi = 0; bi < blocks; ++bi) {
        const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
        const auto* wp = reinterpret_cast<const int16_t*>(base + bi * bb + kParamBytes);
        int8_t* ob[kMR];
        for (int i = 0; i < kMR; ++i) ob[i] = o[i] + bi * kNR;
        Kernel6x16(m, a, tap_off, taps, kp2, wp, prm, c, ob,
                   std::min(kNR, g.out_channels - bi * kNR));
      }
    }
  }
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp

#pragma GCC pop_options
#endif  // __x86_64__
