// int8 grouped conv, x86-64 AVX2 (what the avx2 variant runs), for groups of G = 4 or
// 8 input and output channels (ResNeXt's 3x3 convs). One conv per group on these CPUs used 4 or 8
// of the conv tile's 16 output lanes and 4 or 8 of its input channels per step: ResNeXt-50's
// 56x56x128 in 32 groups of 4 ran at 8.9 GMAC/s on a Zen 4 core (XNNPACK's AVX-512 per-group
// GEMMs: 19). AVX2 has no vpdpbusd (and vpmaddubsw saturates), so as XNNPACK's exact AVX2 paths
// the inputs are sign-extended to int16 and vpmaddwd sums two input channels per output lane.
//
// Per tap and 16 channels: one 16-byte load widened to int16 (lane 0: channels 0-7, lane 1: 8-15),
// four in-lane dword broadcasts (vpshufd) that hand each output lane its group's input pair, and
// per accumulator and pair a vpmaddwd against packed int16 weight pairs: G = 4 four, G = 8 eight,
// every MAC real. The two accumulators hold outputs (0-3 | 8-11) and (4-7 | 12-15), each half of
// a 128-bit lane fed from the same lane of the inputs; the epilogue puts them back in order.
// Inputs are taken as they are, with zp * sum(w) folded into the bias; padded taps read a row of
// zero points. Epilogue: avx2_requant.h.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../conv_internal.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif

#include "avx2_requant.h"
#include "../grouped_sweep.h"  // after the clang target push: its walk inlines the kernels

namespace keras_csp {
namespace internal {
namespace {

constexpr int kNR = kRequantNR;  // 16 output (and input) channels per block
// Per block: the parameter rows, then per tap, accumulator (2) and input pair of a group (G / 2)
// 8 int16 weight pairs (lane l, slot j: output channel 8l + 4a + j).
inline size_t BlockBytes(const PackedGroupedConvInt8& w) {
  return kParamBytes + static_cast<size_t>(Taps(w)) * 2 * (GroupChannels(w) / 2) * 32;
}
inline int Blocks(const PackedGroupedConvInt8& w) { return (w.geometry_.out_channels + kNR - 1) / kNR; }
// The zero-point row after the blocks: a block's 16-byte load from any block start stays inside.
inline size_t ZeroPointRowBytes(const PackedGroupedConvInt8& w) {
  return static_cast<size_t>(w.geometry_.in_channels + kNR + 31) / 32 * 32;
}

// Accumulator a's s-th input pair: dword 2a + s of each lane (G = 4: the group of outputs 4a .. 4a + 3
// of the lane), or dword s (G = 8: one group per lane).
constexpr int PairDword(int pairs, int a, int s) { return pairs == 2 ? 2 * a + s : s; }

template <int kPairs, bool kFull>
inline void Block(const int8_t* const* x, int taps, int oc0, int n, const int32_t* prm, const int16_t* wt,
                  const RequantConsts& c, int8_t* o) {
  __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int t = 0; t < taps; ++t) {
    __m128i v;
    if constexpr (kFull) {
      v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t] + oc0));
    } else {
      alignas(16) int8_t tmp[16] = {};
      std::memcpy(tmp, x[t] + oc0, static_cast<size_t>(n));
      v = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    const __m256i in = _mm256_cvtepi8_epi16(v);
    const __m256i d[4] = {_mm256_shuffle_epi32(in, 0x00), _mm256_shuffle_epi32(in, 0x55),
                          _mm256_shuffle_epi32(in, 0xAA), _mm256_shuffle_epi32(in, 0xFF)};
    const int16_t* wtap = wt + static_cast<size_t>(t) * 2 * kPairs * 16;
#pragma GCC unroll 2
    for (int a = 0; a < 2; ++a)
#pragma GCC unroll 4
      for (int s = 0; s < kPairs; ++s)
        acc[a] = _mm256_add_epi32(
            acc[a], _mm256_madd_epi16(d[PairDword(kPairs, a, s)],
                                      _mm256_load_si256(reinterpret_cast<const __m256i*>(wtap + (a * kPairs + s) * 16))));
  }
  StoreRow(_mm256_permute2x128_si256(acc[0], acc[1], 0x20), _mm256_permute2x128_si256(acc[0], acc[1], 0x31), prm,
           c, o + oc0, n);
}

template <int kPairs>
void Rows(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
          int row_end) {
  const ConvGeometry& g = w.geometry_;
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = g.out_channels, taps = Taps(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  SweepGroupedPixels(w, p, in, out, row_begin, row_end, zp_row,
                     [&](const int8_t* const* x, int8_t* o) __attribute__((always_inline)) {
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kNR, ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wt = reinterpret_cast<const int16_t*>(base + bi * bb + kParamBytes);
      const int n = std::min(kNR, cout - oc0);
      if (n == kNR)
        Block<kPairs, true>(x, taps, oc0, n, prm, wt, c, o);
      else
        Block<kPairs, false>(x, taps, oc0, n, prm, wt, c, o);
    }
  });
}

}  // namespace

Status PackGroupedInt8Avx2(PackedGroupedConvInt8* w) {
  const int cout = w->geometry_.out_channels, taps = Taps(*w), G = GroupChannels(*w), pairs = G / 2;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + ZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  std::vector<int32_t> bias(cout);
  for (int oc = 0; oc < cout; ++oc) bias[oc] = GroupedFoldedBias(*w, oc, quant.input_zero_point);
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    PackRequantParams(reinterpret_cast<int32_t*>(base + bi * bb), quant, bias, w->left_shift_, w->right_shift_,
                      bi * kNR);
    auto* wt = reinterpret_cast<int16_t*>(base + bi * bb + kParamBytes);
    for (int t = 0; t < taps; ++t)
      for (int a = 0; a < 2; ++a)
        for (int s = 0; s < pairs; ++s)
          for (int k = 0; k < 8; ++k) {  // lane k / 4, slot k % 4
            const int oc = bi * kNR + 8 * (k / 4) + 4 * a + k % 4;
            if (oc >= cout) continue;  // zero weights: the lane's output is not stored
            const int8_t* f = &w->weights_[(static_cast<size_t>(oc) * taps + t) * G + 2 * s];
            int16_t* dst = wt + ((static_cast<size_t>(t) * 2 + a) * pairs + s) * 16 + 2 * k;
            dst[0] = f[0];
            dst[1] = f[1];
          }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), ZeroPointRowBytes(*w));
  return Status::Ok();
}

void GroupedInt8Avx2(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                     int row_begin, int row_end) {
  if (GroupChannels(w) == 4)
    Rows<2>(w, p, in, out, row_begin, row_end);
  else
    Rows<4>(w, p, in, out, row_begin, row_end);
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
