// int8 conv, x86-64 AVX2. Activations are staged once per call as int16 (x - input_zero_point)
// in a spatially padded buffer (so padded taps contribute exactly 0, as in TFLite), weights are
// prepacked as int8 pairs and widened to int16 by their loads (vpmovsxbw, as XNNPACK's AVX2 kernels
// and our plain NEON one); the 5x16 micro-kernel (10 accumulators starting at the bias) uses
// vpmaddwd (exact, no int16 saturation). 6x16 fits the 16 registers once the kernel is inlined, but
// measured no faster on Zen 3 and slower on 7x7 images (49 pixels in tiles of 6).
// Requantization: a vectorized, bit-exact transcription of TFLite's MultiplyByQuantizedMultiplier,
// or XNNPACK's fp32 one two pixels at a time; chosen at compile time (Epilogue).
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "../sweep.h"
#include "avx2_requant.h"

// clang ignores `#pragma GCC target`: give every function below the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

// The kernel lambda inlined into its sweep (see CallTileKernel). Not under clang, where the sweep
// templates lack this file's target attribute and an always_inline AVX2 function cannot go into them.
#if defined(__clang__)
#define KCSP_GCC_ALWAYS_INLINE
#else
#define KCSP_GCC_ALWAYS_INLINE __attribute__((always_inline))
#endif

namespace keras_csp {
namespace internal {
namespace {

#ifndef KCSP_AVX2_MR
#define KCSP_AVX2_MR 5
#endif
constexpr int kMR = KCSP_AVX2_MR;
constexpr int kNR = 16;
static_assert(kNR == kRequantNR, "the packed parameter rows are 16 channels wide");
#ifndef KCSP_CHUNK_BYTES
#define KCSP_CHUNK_BYTES (96 * 1024)
#endif
constexpr int64_t kChunkBytes = KCSP_CHUNK_BYTES;
inline size_t BlockBytes(const PackedConvInt8& w) {
  return kParamBytes + static_cast<size_t>(SweepTaps(w)) * w.k_padded_ * kNR * sizeof(int8_t);
}

// MR output pixels x 16 output channels; the accumulators start at the bias. always_inline: as a
// call, the tile's pointers went through the stack and its accumulators were spilled for the
// epilogue's run-time row loop.
// kInt16: o[i] receive int16 x - zero point (Conv2DInt8Chain) instead of int8.
// kPrefetch: a block's first tile on a small image (PrefetchFirstTiles), where the weights come from
// L3 or DRAM and the block's later tiles find them in L1 / L2.
// w: the block's int8 weight pairs, [tap][k/2][16][2]; each step's 32 bytes become two int16 vectors
// in the load. The int16 packing before (2x the bytes) ran within 1-3 % of it on hot data (level
// with both builds' loops aligned) and 6-10 % slower where the weights come from L3 or DRAM (Zen 3,
// 7x7 convs after a 24 MB write).
template <int MR, Epilogue E, bool kPrefetch>
__attribute__((always_inline)) inline void KernelMx16(int m, const int16_t* const* a, const int64_t* tap_off,
                                                      int taps, int kp2, const int8_t* w, const int32_t* prm,
                                                      const RequantConsts& c, int8_t* const* o, int n) {
  __m256i acc[MR][2];
  const __m256i bias0 = Row(prm, kBias, 0), bias1 = Row(prm, kBias, 1);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = bias0, acc[i][1] = bias1;
  for (int t = 0; t < taps; ++t) {
    const int64_t off = tap_off[t];
    const int16_t* ap[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ap[i] = a[i] + off;
    // int64 indices: with an int k GCC sign-extended and rebuilt the pixel index every step.
    // Two steps per iteration: one step (with the int16 weight loads then) was 30 macro-ops per 10
    // vpmaddwd, at Zen 3's 6 per cycle (on its own this measured 0.97-1.03x there, within the
    // host's drift).
#pragma GCC unroll 2
    for (int64_t k = 0, kw = 0; k < 2 * int64_t{kp2}; k += 2, kw += 32) {
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w + kw)));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w + kw + 16)));
      // kPrefetch: each step asks for the weights 1 KB ahead (two steps per 64-byte line).
      if constexpr (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(w + kw + 1024), _MM_HINT_T0);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256i b = BroadcastPair(ap[i] + k);
        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b, w0));
        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b, w1));
      }
    }
    w += 32 * int64_t{kp2};
  }
  if constexpr (E == Epilogue::kFp32) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; i += 2) {
      if (i >= m) break;
      const int j = i + 1 < MR ? i + 1 : i;  // MR odd: the last pixel pairs with itself
      StorePixelPairFp32Sums(acc[i][0], acc[i][1], acc[j][0], acc[j][1], prm, c, o[i], i + 1 < m ? o[i + 1] : nullptr,
                             n);
    }
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      if (i >= m) break;
      if constexpr (E == Epilogue::kInt16)
        StoreRowInt16Sums(acc[i][0], acc[i][1], prm, c, o[i], n);
      else
        StoreRowSums(acc[i][0], acc[i][1], prm, c, o[i], n);
    }
  }
}

}  // namespace

Status PackInt8Avx2(PackedConvInt8* w) {
  const ConvGeometry& g = w->geometry_;
  // Row taps (stems, 1-3 input channels): a tap is a kernel row, kernel_w * in_channels int16 of
  // an unpadded staged row (7 x 22 instead of 49 x 4 for a 7x7 RGB stem).
  w->row_taps_ = RowTapsFit(g);
  const int taps = SweepTaps(*w), cin = TapElems(*w);
  w->nr_ = kNR;
  w->k_padded_ = RoundUp(cin, 2);
  const int kp2 = w->k_padded_ / 2;
  const int blocks = (g.out_channels + kNR - 1) / kNR;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wp = reinterpret_cast<int8_t*>(base + bi * bb + kParamBytes);
    PackRequantParams(prm, w->quant_, w->bias_, w->left_shift_, w->right_shift_, bi * kNR);
    for (int j = 0; j < kNR; ++j) {
      const int oc = bi * kNR + j;
      if (oc >= g.out_channels) continue;
      for (int t = 0; t < taps; ++t)
        for (int k = 0; k < cin; ++k)
          wp[((static_cast<size_t>(t) * kp2 + k / 2) * kNR + j) * 2 + (k % 2)] =
              w->weights_[(static_cast<size_t>(oc) * taps + t) * cin + k];
    }
  }
  return Status::Ok();
}

Status ConvInt8Avx2(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  if (w.RunsWinograd(int64_t{p.out_h} * p.out_w)) return ConvInt8Avx2Winograd(w, p, in, out);
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const size_t bb = BlockBytes(w);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const int kp2 = w.k_padded_ / 2;
  const int16_t zp = static_cast<int16_t>(w.quant_.input_zero_point);
  const Epilogue epilogue = EpilogueFor(p.out_i16, c);
  const bool small_image = PrefetchFirstTiles(p);
  // int16 (x - zp): padded taps contribute exactly 0, as in TFLite.
  auto sweep = [&](auto e) {
    return SweepInt8<kMR, kNR>(
        w, p, in, out, int16_t{0}, [zp](int8_t v) { return static_cast<int16_t>(v - zp); }, kChunkBytes,
        [&](int m, const int16_t* const* a, const int64_t* tap_off, int taps, int bi, int8_t* const* o, int n,
            bool first) KCSP_GCC_ALWAYS_INLINE {
          const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
          const auto* wp = reinterpret_cast<const int8_t*>(base + bi * bb + kParamBytes);
          if (first && small_image)
            KernelMx16<kMR, decltype(e)::value, true>(m, a, tap_off, taps, kp2, wp, prm, c, o, n);
          else
            KernelMx16<kMR, decltype(e)::value, false>(m, a, tap_off, taps, kp2, wp, prm, c, o, n);
        });
  };
  switch (epilogue) {
    case Epilogue::kFp32: return sweep(std::integral_constant<Epilogue, Epilogue::kFp32>{});
    case Epilogue::kFixed: return sweep(std::integral_constant<Epilogue, Epilogue::kFixed>{});
    default: return sweep(std::integral_constant<Epilogue, Epilogue::kInt16>{});
  }
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
