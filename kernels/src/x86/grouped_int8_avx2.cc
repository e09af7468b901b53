// int8 grouped conv, x86-64 AVX2 (what the avx2 variant runs), for groups of G = 4 or
// 8 input and output channels (ResNeXt's 3x3 convs). One conv per group on these CPUs used 4 or 8
// of the conv tile's 16 output lanes and 4 or 8 of its input channels per step: ResNeXt-50's
// 56x56x128 in 32 groups of 4 ran at 8.9 GMAC/s on a Zen 4 core (XNNPACK's AVX-512 per-group
// GEMMs: 19). AVX2 has no vpdpbusd (and vpmaddubsw saturates), so as XNNPACK's exact AVX2 paths
// the inputs are sign-extended to int16 and vpmaddwd sums two input channels per output lane.
//
// Per tap and 16 channels: one 16-byte load widened to int16 (dword k: channels 2k, 2k + 1), and
// per output j of a group (G of them) one vpmaddwd against packed weight pairs whose dword k holds
// the weights of output j of dword k's group for that pair of channels: every MAC real, and no
// shuffle per tap. Accumulator j then holds, per dword, part of output j of that dword's group; the
// epilogue sums each group's G / 2 dwords (vphaddd: once per pixel, not per tap as the in-lane
// broadcasts before it were: 4 vpshufd per tap and 16 channels). Two pixels share each weight load
// for G = 4 (8 accumulators); G = 8 takes one (8 accumulators already). Inputs are taken as they
// are, with zp * sum(w) folded into the bias; padded taps read a row of zero points. Epilogue:
// avx2_requant.h. Zen 4, 1 thread, same-run A/B against the broadcasts: ResNeXt-50's 56x56x128 in
// groups of 4 370 -> 352 us, 28x28x256 in groups of 8 336 -> 281 us (three pixels per weight load
// for groups of 4 spilled: 442 us; one: 378 us).
//
// Groups of G = 16 or 32 (ResNeXt-50's last two stages): a 16-channel block is one group or half
// of one. Per tap and 16 of the group's inputs, four in-lane dword broadcasts (vpshufd d: lane 0
// the pair 2d, 2d + 1, lane 1 the pair 8 + 2d, 9 + 2d) each feed one vpmaddwd per quarter of the
// outputs (4 shuffles per 16 vpmaddwd); accumulator q holds outputs 4q .. 4q + 3 in both lanes,
// from the lanes' halves of the inputs, added once per pixel. Two pixels per weight load; the blocks
// split over the threads as on AVX-512 (GroupedAvx2Blocks). Zen 4, same-run A/B against one AVX2
// conv per group, 1 / 2 threads: 512 in groups of 16 /2 at 28x28 250 -> 210 / 129 -> 107 us, at
// 14x14 205 -> 205 / 107 -> 106 us; 1024 in groups of 32 /2 at 14x14 198 -> 191 / 103 -> 97 us,
// at 7x7 183 -> 186 / 95 -> 95 us.
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
// Per block: the parameter rows, then per tap and output j of a group, 16 int16: dword k the pair of
// weights of output G * (2k / G) + j for input channels 2k, 2k + 1 (k = 0 .. 7).
inline size_t BlockBytes(const PackedGroupedConvInt8& w) {
  return kParamBytes + static_cast<size_t>(Taps(w)) * GroupChannels(w) * 32;
}
inline int Blocks(const PackedGroupedConvInt8& w) { return (w.geometry_.out_channels + kNR - 1) / kNR; }
// The zero-point row after the blocks: a block's 16-byte load from any block start stays inside.
inline size_t ZeroPointRowBytes(const PackedGroupedConvInt8& w) {
  return static_cast<size_t>(w.geometry_.in_channels + kNR + 31) / 32 * 32;
}

// The block's 16 input channels at one tap as int16 (kFull: all of them; else the n channels are
// copied first: a plain load could read past the slice).
template <bool kFull>
inline __m256i LoadInputs(const int8_t* x, int n) {
  __m128i v;
  if constexpr (kFull) {
    v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
  } else {
    alignas(16) int8_t tmp[16] = {};
    std::memcpy(tmp, x, static_cast<size_t>(n));
    v = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
  }
  return _mm256_cvtepi8_epi16(v);
}

// Accumulators a[j] (output j of each group, in parts per dword) to the 16 sums in channel order:
// lo = channels 0-7, hi = 8-15. G = 4: a group is 2 dwords, one vphaddd level gives lane l
// [8l, 8l+4, 8l+1, 8l+5] and [8l+2, 8l+6, 8l+3, 8l+7], interleaved back; G = 8: a group is a lane's
// 4 dwords, two levels give [8l .. 8l+3] and [8l+4 .. 8l+7].
template <int G>
inline void GroupSums(const __m256i* a, __m256i* lo, __m256i* hi) {
  __m256i q0, q1;
  if constexpr (G == 4) {
    const __m256i h01 = _mm256_hadd_epi32(a[0], a[1]), h23 = _mm256_hadd_epi32(a[2], a[3]);
    const __m256i even = _mm256_unpacklo_epi32(h01, h23), odd = _mm256_unpackhi_epi32(h01, h23);
    q0 = _mm256_unpacklo_epi32(even, odd);
    q1 = _mm256_unpackhi_epi32(even, odd);
  } else {
    q0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    q1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  }
  *lo = _mm256_permute2x128_si256(q0, q1, 0x20);
  *hi = _mm256_permute2x128_si256(q0, q1, 0x31);
}

// One block of P output pixels: x[p][t] points at input channel 0 of pixel p's tap t (or the
// zero-point row), o[p] at pixel p's output channel 0.
template <int G, int P, bool kFull>
inline void Block(const int8_t* const* const* x, int taps, int oc0, int n, const int32_t* prm, const int16_t* wt,
                  const RequantConsts& c, int8_t* const* o) {
  __m256i acc[P][G];
  for (int p = 0; p < P; ++p)
    for (int j = 0; j < G; ++j) acc[p][j] = _mm256_setzero_si256();
  for (int t = 0; t < taps; ++t) {
    __m256i in[P];
    for (int p = 0; p < P; ++p) in[p] = LoadInputs<kFull>(x[p][t] + oc0, n);
    const int16_t* wtap = wt + static_cast<size_t>(t) * G * 16;
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
      const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wtap + j * 16));
#pragma GCC unroll 2
      for (int p = 0; p < P; ++p) {
        acc[p][j] = _mm256_add_epi32(acc[p][j], _mm256_madd_epi16(in[p], wv));
        // Keeps the sum in its register: GCC otherwise kept one of the eight accumulators for
        // G = 8 on the stack, a load and a store per tap, which the code layout made cost 28 %
        // (28x28x256 in groups of 8: 281 us here, 372 us from the same code in another function).
        asm("" : "+x"(acc[p][j]));
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    __m256i lo, hi;
    GroupSums<G>(acc[p], &lo, &hi);
    StoreRow(lo, hi, prm, c, o[p] + oc0, n);
  }
}

// [lo.lane0 + lo.lane1 | hi.lane0 + hi.lane1]
inline __m256i LaneSums(__m256i lo, __m256i hi) {
  return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

// Groups of 16 (kVectors = 1) or 32 (2): one block of P output pixels, x and o as for Block, in0 the
// block's group's first input channel (blocks are whole: channels are a multiple of G). Weights
// per tap, vector v of 16 inputs, broadcast d and quarter q: 16 int16, lane l slot i the pair of
// output 4q + i for the group's inputs 16v + 8l + 2d, + 1.
template <int kVectors, int P>
inline void WideBlock(const int8_t* const* const* x, int taps, int in0, int oc0, int n, const int32_t* prm,
                      const int16_t* wt, const RequantConsts& c, int8_t* const* o) {
  static_assert(P == 1 || P == 2, "runs of 1 or 2 pixels");
  // Named accumulators (a: pixel 0, b: pixel 1, unused at P = 1), as in the AVX-512 kernel.
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (int t = 0; t < taps; ++t) {
#pragma GCC unroll 2
    for (int v = 0; v < kVectors; ++v) {
      const __m256i in_a = LoadInputs<true>(x[0][t] + in0 + 16 * v, 16);
      const __m256i in_b = P == 2 ? LoadInputs<true>(x[1][t] + in0 + 16 * v, 16) : in_a;
      const int16_t* wv = wt + (static_cast<size_t>(t) * kVectors + v) * 16 * 16;
      // one broadcast per pixel (imm: vpshufd's) against the 4 quarters' weights
      auto step = [&](auto imm, const int16_t* wd) __attribute__((always_inline)) {
        const __m256i sa = _mm256_shuffle_epi32(in_a, decltype(imm)::value);
        const __m256i sb = P == 2 ? _mm256_shuffle_epi32(in_b, decltype(imm)::value) : sa;
        // The empty asm keeps each sum in its accumulator: GCC otherwise reassociated the adds into
        // trees of products, computed ahead and spilled (512 in groups of 16 at 14x14: 287 us).
        auto quarter = [&](__m256i& qa, __m256i& qb, const int16_t* wq) __attribute__((always_inline)) {
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(wq));
          qa = _mm256_add_epi32(qa, _mm256_madd_epi16(sa, w));
          asm("" : "+x"(qa));
          if constexpr (P == 2) {
            qb = _mm256_add_epi32(qb, _mm256_madd_epi16(sb, w));
            asm("" : "+x"(qb));
          }
        };
        quarter(a0, b0, wd);
        quarter(a1, b1, wd + 16);
        quarter(a2, b2, wd + 32);
        quarter(a3, b3, wd + 48);
      };
      step(std::integral_constant<int, 0x00>{}, wv);
      step(std::integral_constant<int, 0x55>{}, wv + 64);
      step(std::integral_constant<int, 0xAA>{}, wv + 128);
      step(std::integral_constant<int, 0xFF>{}, wv + 192);
    }
  }
  StoreRow(LaneSums(a0, a1), LaneSums(a2, a3), prm, c, o[0] + oc0, n);
  if constexpr (P == 2) StoreRow(LaneSums(b0, b1), LaneSums(b2, b3), prm, c, o[1] + oc0, n);
}

// Output rows [row_begin, row_end), output blocks [block_begin, block_end) (groups of 16 or 32: the
// blocks split over the threads).
template <int G>
void Rows(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
          int row_end, int block_begin, int block_end) {
  constexpr int kRun = G == 8 ? 1 : 2;  // pixels sharing each weight load
  const ConvGeometry& g = w.geometry_;
  const RequantConsts c = MakeRequantConsts(w.quant_, w.left_shift_);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = g.out_channels, taps = Taps(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  block_end = std::min(block_end, Blocks(w));
  // Chunks of pixels, blocks outside: a block's weights (at 3x3 1.2 KB for G = 4, 2.3 KB for 8,
  // 4.6 KB for 16, 9.2 KB for 32) stay in L1 over the chunk.
  SweepGroupedChunks<64>(w, p, in, out, row_begin, row_end, zp_row,
                         [&](const int8_t* const* x, int8_t* const* o, int count) {
    for (int bi = block_begin; bi < block_end; ++bi) {
      const int oc0 = bi * kNR;
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wt = reinterpret_cast<const int16_t*>(base + bi * bb + kParamBytes);
      const int n = std::min(kNR, cout - oc0);  // G >= 16: cout is a multiple of G, whole blocks
      auto run = [&](auto pixels, int i) __attribute__((always_inline)) {
        constexpr int P = decltype(pixels)::value;
        const int8_t* const* xs[P];
        for (int k = 0; k < P; ++k) xs[k] = x + (i + k) * taps;
        if constexpr (G >= 16)
          WideBlock<G / 16, P>(xs, taps, oc0 - oc0 % G, oc0, n, prm, wt, c, o + i);
        else if (n == kNR)
          Block<G, P, true>(xs, taps, oc0, n, prm, wt, c, o + i);
        else
          Block<G, P, false>(xs, taps, oc0, n, prm, wt, c, o + i);
      };
      int i = 0;
      for (; i + kRun <= count; i += kRun) run(std::integral_constant<int, kRun>{}, i);
      if (i < count) run(std::integral_constant<int, 1>{}, i);
    }
  });
}

}  // namespace

Status PackGroupedInt8Avx2(PackedGroupedConvInt8* w) {
  const int cout = w->geometry_.out_channels, taps = Taps(*w), G = GroupChannels(*w);
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + ZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  const std::vector<int32_t> bias = GroupedFoldedBiases(*w, quant.input_zero_point);
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    PackRequantParams(reinterpret_cast<int32_t*>(base + bi * bb), quant, bias, w->left_shift_, w->right_shift_,
                      bi * kNR);
    auto* wt = reinterpret_cast<int16_t*>(base + bi * bb + kParamBytes);
    if (G >= 16) {  // WideBlock's layout: per tap, vector v, broadcast d, quarter q
      for (int t = 0; t < taps; ++t)
        for (int v = 0; v < G / 16; ++v)
          for (int d = 0; d < 4; ++d)
            for (int q = 0; q < 4; ++q)
              for (int k = 0; k < 8; ++k) {  // lane k / 4, slot k % 4
                const int oc = bi * kNR + 4 * q + k % 4;
                const int8_t* f = &w->weights_[(static_cast<size_t>(oc) * taps + t) * G + 16 * v + 8 * (k / 4) + 2 * d];
                int16_t* dst = wt + ((((static_cast<size_t>(t) * (G / 16) + v) * 4 + d) * 4 + q) * 16) + 2 * k;
                dst[0] = f[0];
                dst[1] = f[1];
              }
      continue;
    }
    for (int t = 0; t < taps; ++t)
      for (int j = 0; j < G; ++j)
        for (int k = 0; k < 8; ++k) {  // dword k: input channels 2k, 2k + 1 of the block
          const int group = 2 * k / G, channel = 2 * k % G;
          const int oc = bi * kNR + group * G + j;
          if (oc >= cout) continue;  // zero weights: the lane's output is not stored
          const int8_t* f = &w->weights_[(static_cast<size_t>(oc) * taps + t) * G + channel];
          int16_t* dst = wt + (static_cast<size_t>(t) * G + j) * 16 + 2 * k;
          dst[0] = f[0];
          dst[1] = f[1];
        }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), ZeroPointRowBytes(*w));
  return Status::Ok();
}

void GroupedInt8Avx2(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                     int row_begin, int row_end, int block_begin, int block_end) {
  switch (GroupChannels(w)) {
    case 4: Rows<4>(w, p, in, out, row_begin, row_end, block_begin, block_end); break;
    case 8: Rows<8>(w, p, in, out, row_begin, row_end, block_begin, block_end); break;
    case 16: Rows<16>(w, p, in, out, row_begin, row_end, block_begin, block_end); break;
    default: Rows<32>(w, p, in, out, row_begin, row_end, block_begin, block_end); break;
  }
}

int GroupedAvx2Blocks(const PackedGroupedConvInt8& w) { return Blocks(w); }

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
