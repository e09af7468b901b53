// int8 grouped conv, x86-64 AVX-VNNI (the 256-bit VEX vpdpbusd of Intel client cores without
// AVX-512), for groups of G = 4 or 8 input and output channels: the AVX-512 grouped kernel's
// design (grouped_int8_avx512vnni.cc) at half the width. Per tap and 32 output channels, one
// 32-byte input load (x + 128, with (zp + 128) * sum(w) folded into the bias), four in-lane dword
// broadcasts (vpshufd) that hand every output lane its group's input dword, and per quarter of 8
// outputs and 4 inputs of their groups a vpdpbusd: every MAC real. The AVX2 grouped kernel
// (vpmaddwd on int16 pairs) sums half as many MACs per instruction.
//
// Quarter q's lane j is channel 16 * (j / 4) + 4q + j % 4 of the 32; the epilogue (avx2_requant.h)
// takes the channels back in order. Padded taps read a row of zero points.
// KCSP_AVXVNNI_AS_EVEX: the EVEX-encoded vpdpbusd of AVX-512 VNNI + VL, the same semantics (a test
// build, as for conv_int8_avxvnni.cc), so that AVX-512 CPUs without AVX-VNNI run and test it.
#if defined(__x86_64__)
#pragma GCC push_options
#if defined(KCSP_AVXVNNI_AS_EVEX)
#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512vnni")
#define KCSP_DPBUSD256 _mm256_dpbusd_epi32
#else
#pragma GCC target("avx2,fma,avxvnni")
#define KCSP_DPBUSD256 _mm256_dpbusd_avx_epi32
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../conv_internal.h"

#if defined(__clang__) && defined(KCSP_AVXVNNI_AS_EVEX)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avxvnni"))), apply_to = function)
#endif

#include "avx2_requant.h"
#include "../grouped_sweep.h"  // after the clang target push: its walk inlines the kernels

namespace keras_csp {
namespace internal {
namespace {

constexpr int kBlock = 32;  // output (and input) channels per packed block: four ymm accumulators
// Per block: two 16-channel parameter blocks (avx2_requant.h), then per tap and per 4 input
// channels of a group (G / 4 of them) 4 quarters x 32 weight bytes.
inline size_t BlockBytes(const PackedGroupedConvInt8& w) {
  return 2 * kParamBytes + static_cast<size_t>(Taps(w)) * (GroupChannels(w) / 4) * 4 * 32;
}
inline int Blocks(const PackedGroupedConvInt8& w) { return (w.geometry_.out_channels + kBlock - 1) / kBlock; }
inline int BlockChannel(int q, int j) { return 16 * (j / 4) + 4 * q + j % 4; }
// The zero-point row after the blocks: a whole block's load from any block start stays inside.
inline size_t ZeroPointRowBytes(const PackedGroupedConvInt8& w) {
  return static_cast<size_t>(w.geometry_.in_channels + kBlock + 31) / 32 * 32;
}
// As the AVX-512 kernel: quarter q reads dword q of each lane (G = 4) or dwords 2 (q / 2) + jj (G = 8).
constexpr int LaneDword(int dwords, int q, int jj) { return dwords == 1 ? q : 2 * (q / 2) + jj; }

template <int kDwords, bool kFull>
inline void Block(const int8_t* const* x, int taps, int oc0, int n, const int32_t* prm, const int8_t* wt,
                  const RequantConsts& c, int8_t* o) {
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int t = 0; t < taps; ++t) {
    __m256i v;
    if constexpr (kFull) {
      v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t] + oc0));
    } else {
      alignas(32) int8_t tmp[32] = {};
      std::memcpy(tmp, x[t] + oc0, static_cast<size_t>(n));
      v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
    }
    const __m256i in = _mm256_xor_si256(v, flip);
    const __m256i d[4] = {_mm256_shuffle_epi32(in, 0x00), _mm256_shuffle_epi32(in, 0x55),
                          _mm256_shuffle_epi32(in, 0xAA), _mm256_shuffle_epi32(in, 0xFF)};
    const int8_t* wtap = wt + static_cast<size_t>(t) * kDwords * 128;
#pragma GCC unroll 2
    for (int jj = 0; jj < kDwords; ++jj)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q)
        acc[q] = KCSP_DPBUSD256(acc[q], d[LaneDword(kDwords, q, jj)],
                                _mm256_load_si256(reinterpret_cast<const __m256i*>(wtap + jj * 128 + q * 32)));
  }
  StoreQuarters32(acc, prm, c, o + oc0, n);
}

template <int kDwords>
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
    for (int oc0 = 0, bi = 0; oc0 < cout; oc0 += kBlock, ++bi) {
      const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
      const auto* wt = reinterpret_cast<const int8_t*>(base + bi * bb + 2 * kParamBytes);
      const int n = std::min(kBlock, cout - oc0);
      if (n == kBlock)
        Block<kDwords, true>(x, taps, oc0, n, prm, wt, c, o);
      else
        Block<kDwords, false>(x, taps, oc0, n, prm, wt, c, o);
    }
  });
}

}  // namespace

Status PackGroupedInt8AvxVnni(PackedGroupedConvInt8* w) {
  const int cout = w->geometry_.out_channels, taps = Taps(*w), G = GroupChannels(*w), dwords = G / 4;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + ZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  const std::vector<int32_t> bias = GroupedFoldedBiases(*w, quant.input_zero_point + 128);  // inputs x + 128
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    PackRequantParams(prm, quant, bias, w->left_shift_, w->right_shift_, bi * kBlock);
    if (bi * kBlock + 16 < cout)
      PackRequantParams(prm + kParamBytes / sizeof(int32_t), quant, bias, w->left_shift_, w->right_shift_,
                        bi * kBlock + 16);
    auto* wt = reinterpret_cast<int8_t*>(base + bi * bb + 2 * kParamBytes);
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 8; ++j) {
        const int oc = bi * kBlock + BlockChannel(q, j);
        if (oc >= cout) continue;  // zero weights: the lane's output is not stored
        const int8_t* f = &w->weights_[static_cast<size_t>(oc) * taps * G];
        for (int t = 0; t < taps; ++t)
          for (int jj = 0; jj < dwords; ++jj)
            std::memcpy(wt + (static_cast<size_t>(t) * dwords + jj) * 128 + q * 32 + 4 * j, f + t * G + 4 * jj, 4);
      }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), ZeroPointRowBytes(*w));
  return Status::Ok();
}

void GroupedInt8AvxVnni(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                        int row_begin, int row_end) {
  if (GroupChannels(w) == 4)
    Rows<1>(w, p, in, out, row_begin, row_end);
  else
    Rows<2>(w, p, in, out, row_begin, row_end);
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
