// int8 3x3 stride-1 convs on AVX2 by Winograd F(2x2, 3x3), exact in integers: the AVX2 pieces of
// winograd_sweep.h's sweep.
//
// Why: AVX2 has no int8 dot product; its exact int8 rate is vpmaddwd + vpaddd on int16 pairs, and the
// direct kernel already runs within ~10 % of that mix's peak. F(2x2, 3x3) issues 2.25x fewer of them.
//
// Layout: per 16-channel block, the requantization rows (avx2_requant.h), then U as
// [xi = 4 r + c][k/2][16][2] int16. The products run on the direct kernel's 5x16 register tile (one
// vpbroadcastd per int16 pair of V, two weight vectors).
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <cstring>

#include "../sweep.h"
#include "avx2_requant.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif
// Under the target attribute (clang): the sweep's templates inline the AVX2 product tile. All of it
// is in an anonymous namespace, and its includes came in above, without the attribute.
#include "../winograd_sweep.h"

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kWinogradNR;
static_assert(kNR == kRequantNR, "the packed parameter rows are 16 channels wide");

// AVX2's int16 and int32 vectors for the shared transforms (winograd_sweep.h); Load: a full vector
// or a masked tail.
template <typename Load>
struct Int16Ops {
  Load load;
  __m256i add(__m256i a, __m256i b) const { return _mm256_add_epi16(a, b); }
  __m256i sub(__m256i a, __m256i b) const { return _mm256_sub_epi16(a, b); }
  void store(int16_t* p, __m256i x) const { _mm256_store_si256(reinterpret_cast<__m256i*>(p), x); }
};
template <typename Load>
Int16Ops<Load> MakeInt16Ops(Load load) {
  return {load};
}
struct Int32Ops {
  __m256i add(__m256i a, __m256i b) const { return _mm256_add_epi32(a, b); }
  __m256i sub(__m256i a, __m256i b) const { return _mm256_sub_epi32(a, b); }
};

// V of one tile over all n (even) channels: whole vectors, then a masked tail.
__attribute__((noinline)) void TransformTile(const int16_t* const (&px)[4][4], int n, int16_t* v, int64_t xi_stride) {
  int k = 0;
  const auto full = MakeInt16Ops([](const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); });
  for (; k + 16 <= n; k += 16) winograd::InputTransform(px, k, v, xi_stride, full);
  if (k < n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - k) / 2), lane);
    winograd::InputTransform(px, k, v, xi_stride, MakeInt16Ops([mask](const int16_t* p) {
                               return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
                             }));
  }
}

// M rows mrow[i] (16 int32) = sum over k < kp of a[i][k] * U[k] for MR tiles (V rows of one xi).
template <int MR>
__attribute__((always_inline)) inline void Products(const int16_t* const* a, int kp, const int16_t* w,
                                                    int32_t* const* mrow) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
#pragma GCC unroll 2
  for (int64_t k = 0; k < int64_t{kp}; k += 2) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * k));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * k + 16));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256i b = BroadcastPair(a[i] + k);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b, w0));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b, w1));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(mrow[i]), acc[i][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(mrow[i] + 8), acc[i][1]);
  }
}

// Y = A^T M A / 4 + bias for 8 channels (half h of the block). m: the tile's [xi][16] int32 sums.
inline void OutputTransform(const int32_t* m, int h, __m256i bias, __m256i (&y)[2][2]) {
  winograd::OutputTransform(
      [&](int xi) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(m + xi * kNR + 8 * h)); }, Int32Ops{}, y);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)  // exact: the sums are 4 x the direct conv's (WinogradFits)
      y[a][b] = _mm256_add_epi32(_mm256_srai_epi32(y[a][b], 2), bias);
}

// The tile's up to 4 outputs (o[a][b] null where outside the image) requantized and stored.
template <Epilogue E>
inline void StoreTile(const int32_t* m, const int32_t* prm, const RequantConsts& c, int8_t* const (&o)[2][2], int n) {
  __m256i lo[2][2], hi[2][2];
  OutputTransform(m, 0, Row(prm, kBias, 0), lo);
  OutputTransform(m, 1, Row(prm, kBias, 1), hi);
  for (int a = 0; a < 2; ++a) {
    if (o[a][0] == nullptr) continue;
    if constexpr (E == Epilogue::kFp32) {
      StorePixelPairFp32Sums(lo[a][0], hi[a][0], lo[a][1], hi[a][1], prm, c, o[a][0], o[a][1], n);
    } else {
      for (int b = 0; b < 2; ++b) {
        if (o[a][b] == nullptr) continue;
        if constexpr (E == Epilogue::kInt16)
          StoreRowInt16Sums(lo[a][b], hi[a][b], prm, c, o[a][b], n);
        else
          StoreRowSums(lo[a][b], hi[a][b], prm, c, o[a][b], n);
      }
    }
  }
}

// The AVX2 pieces of WinogradSweep.
struct Avx2Isa {
  static constexpr int kMR = 5;  // tiles per register tile (10 accumulators, as the direct kernel)
  static constexpr int kVecElems = 16;
  static void TransformTile(const int16_t* const (&px)[4][4], int n, int16_t* v, int64_t xi_stride) {
    internal::TransformTile(px, n, v, xi_stride);
  }
  template <int MR>
  __attribute__((always_inline)) static void Products(const int16_t* const* a, int kp, const int16_t* u,
                                                      int32_t* const* mrow) {
    internal::Products<MR>(a, kp, u, mrow);
  }
};

void PackParams(int32_t* prm, const PackedConvInt8& w, int oc0) {
  PackRequantParams(prm, w.quant_, w.bias_, w.left_shift_, w.right_shift_, oc0);
}

}  // namespace

Status PackInt8Avx2Winograd(PackedConvInt8* w) { return PackWinograd(w, kParamBytes, 2, PackParams); }

Status ConvInt8Avx2Winograd(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);  // once per call, for every task
  auto sweep = [&](auto e) {
    return WinogradSweep<Avx2Isa>(w, p, in, out, kParamBytes,
                                  [&c](const int32_t* m, const int32_t* prm, int8_t* const (&o)[2][2], int n) {
                                    StoreTile<decltype(e)::value>(m, prm, c, o, n);
                                  });
  };
  switch (EpilogueFor(p.out_i16, c)) {
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
