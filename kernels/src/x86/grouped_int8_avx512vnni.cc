// int8 grouped conv, x86-64 AVX-512 VNNI, for groups of G = 4, 8, 16 or 32 input and output channels
// (ResNeXt-50's 3x3 convs: 32 groups of 4 at 56x56, of 8 at 28x28, of 16 at 14x14, of 32 at 7x7).
// XNNPACK runs such a conv as one GEMM per group, its tiles padding every group to 8 inputs per tap
// and 16 outputs: 19 GMAC/s for ResNeXt-50's 56x56x128 on a Zen 4 core. Here vpdpbusd sums 4 input
// channels of a group per output channel: per tap and 64 output channels, one 64-byte load of the 64
// input channels (the same range, as cin_g == cout_g), in-lane dword broadcasts (vpshufd) that hand
// every output lane its group's input dwords, and per quarter of 16 outputs and per 4 inputs of
// their groups a vpdpbusd against the packed weights: every MAC of the vpdpbusd is a real one.
// Groups of 32 span two 128-bit lanes: each lane pair is first copied to both lanes (vshufi32x4).
// From 16 channels per group on, four output pixels share every weight load (G / 4 x 4 weight loads
// per tap and pixel otherwise: one zmm load per vpdpbusd), over chunks of 64 pixels per block.
//
// Lanes, parameters, the x + 128 inputs with (zp + 128) * sum(w) folded into the bias, the
// zero-point row that padded taps read, and the epilogue (StoreQuarters) are the AVX-512 depthwise
// kernel's (depthwise_int8_avx512vnni.cc).
//
// QEMU's TCG cannot emulate AVX-512: compiled everywhere, executed and tested on AVX-512 VNNI CPUs.
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12 false positive inside avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../conv_internal.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#endif

#include "avx512_requant.h"
#include "../grouped_sweep.h"  // after the clang target push: its walk inlines the kernels

namespace keras_csp {
namespace internal {
namespace {

constexpr int kBlock = 64;  // output (and input) channels per packed block: four zmm accumulators
// Per block: 4 quarters x 4 parameter rows x 16 int32 (as the depthwise kernel), then per tap and
// per 4 input channels of a group (G / 4 of them) 4 quarters x 64 weight bytes.
constexpr size_t kParamBytes = 4 * 4 * 16 * sizeof(int32_t);
inline int BlockChannel(int q, int j) { return 16 * (j / 4) + 4 * q + j % 4; }
inline size_t BlockBytes(const PackedGroupedConvInt8& w) {
  return kParamBytes + static_cast<size_t>(Taps(w)) * (GroupChannels(w) / 4) * 4 * 64;
}
inline int Blocks(const PackedGroupedConvInt8& w) { return (w.geometry_.out_channels + kBlock - 1) / kBlock; }
// The zero-point row after the blocks: a whole block's load from any block start stays inside.
inline size_t ZeroPointRowBytes(const PackedGroupedConvInt8& w) {
  return static_cast<size_t>(w.geometry_.in_channels + 64 + 63) / 64 * 64;
}

// Every lane's group inputs sit in its own 128-bit lane of the 64 input bytes (G <= 16): quarter q's
// lane j is channel 16 * (j / 4) + 4 * q + j % 4, whose group starts at dword 4 * (j / 4) + q (G = 4),
// 4 * (j / 4) + 2 * (q / 2) (G = 8) or 4 * (j / 4) (G = 16), so one in-lane dword broadcast (vpshufd)
// per dword of a lane serves every quarter that reads it: four per tap, whatever G. G = 32: lane L's
// group is lanes L & ~1 and (L & ~1) + 1, dword jj from the second for jj >= 4.
inline int LaneDword(int dwords, int q, int jj) { return dwords == 8 ? jj : dwords * (q / dwords) + jj; }

// The broadcasts of one pixel's x + 128 (`in`) that LaneDword indexes: 4 (G <= 16) or 8 (G = 32).
template <int kDwords>
__attribute__((always_inline)) inline void GroupDwords(__m512i in, __m512i* d) {
  const __m512i src[2] = {kDwords == 8 ? _mm512_shuffle_i32x4(in, in, _MM_SHUFFLE(2, 2, 0, 0)) : in,
                          kDwords == 8 ? _mm512_shuffle_i32x4(in, in, _MM_SHUFFLE(3, 3, 1, 1)) : in};
  for (int h = 0; h < (kDwords == 8 ? 2 : 1); ++h) {
    d[4 * h + 0] = _mm512_shuffle_epi32(src[h], _MM_PERM_AAAA);
    d[4 * h + 1] = _mm512_shuffle_epi32(src[h], _MM_PERM_BBBB);
    d[4 * h + 2] = _mm512_shuffle_epi32(src[h], _MM_PERM_CCCC);
    d[4 * h + 3] = _mm512_shuffle_epi32(src[h], _MM_PERM_DDDD);
  }
}

// One block of one output pixel: x[0][t] points at input channel 0 of tap t's pixel (or the
// zero-point row); P (1 here) keeps BlockRun's signature. Groups of 4 and 8 stay at one pixel:
// two per weight load measured slower there (56x56x128 in groups of 4: 158 -> 171 us), where the
// broadcasts, not the loads, bound the loop.
template <int kDwords, bool kFull, int P>
inline void Block(const int8_t* const* const* x, int taps, int oc0, int n, const int32_t* prm, const int8_t* wt,
                  const RequantConsts& c, int8_t* const* o) {
  static_assert(P == 1, "one pixel");
  __m512i acc[4];
  for (int q = 0; q < 4; ++q) acc[q] = _mm512_load_si512(prm + 64 * q);  // the folded bias
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __mmask64 mask = (~__mmask64{0}) >> (64 - n);
  for (int t = 0; t < taps; ++t) {
    const __m512i v = kFull ? _mm512_loadu_si512(x[0][t] + oc0) : _mm512_maskz_loadu_epi8(mask, x[0][t] + oc0);
    __m512i d[kDwords == 8 ? 8 : 4];
    GroupDwords<kDwords>(_mm512_xor_si512(v, flip), d);
    const int8_t* wtap = wt + static_cast<size_t>(t) * kDwords * 256;
#pragma GCC unroll 8
    for (int jj = 0; jj < kDwords; ++jj)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q)
        acc[q] = _mm512_dpbusd_epi32(acc[q], d[LaneDword(kDwords, q, jj)], _mm512_load_si512(wtap + jj * 256 + q * 64));
  }
  StoreQuarters<kFull>(acc, prm, c, o[0], oc0, n);
}

// P = 2 or 4 output pixels sharing every weight load (G = 16 or 32: every quarter of a lane reads
// the same dword of its group, so one broadcast per pixel and dword). Named accumulators (a, b, e,
// f: pixels 0-3; e and f unused at P = 2): with arrays GCC 12 copied every accumulator through one
// register around its vpdpbusd and spilled two (ResNeXt-50's 512 channels in groups of 16 at 14x14:
// 92 us).
template <int kDwords, bool kFull, int P>
inline void BlockRun(const int8_t* const* const* x, int taps, int oc0, int n, const int32_t* prm, const int8_t* wt,
                     const RequantConsts& c, int8_t* const* o) {
  static_assert(kDwords == 4 || kDwords == 8, "groups of 16 or 32");
  static_assert(P == 2 || P == 4, "runs of 2 or 4 pixels");
  __m512i a0 = _mm512_load_si512(prm), a1 = _mm512_load_si512(prm + 64), a2 = _mm512_load_si512(prm + 128),
          a3 = _mm512_load_si512(prm + 192);  // the folded bias
  __m512i b0 = a0, b1 = a1, b2 = a2, b3 = a3, e0 = a0, e1 = a1, e2 = a2, e3 = a3, f0 = a0, f1 = a1, f2 = a2,
          f3 = a3;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __mmask64 mask = (~__mmask64{0}) >> (64 - n);
  auto input = [&](int pixel, int t) __attribute__((always_inline)) {
    const int8_t* v = x[pixel][t] + oc0;
    return _mm512_xor_si512(kFull ? _mm512_loadu_si512(v) : _mm512_maskz_loadu_epi8(mask, v), flip);
  };
  for (int t = 0; t < taps; ++t) {
    const __m512i in0 = input(0, t), in1 = input(1, t);
    const __m512i in2 = P == 4 ? input(2, t) : in0, in3 = P == 4 ? input(3, t) : in0;
    const int8_t* wtap = wt + static_cast<size_t>(t) * kDwords * 256;
    // one dword broadcast per pixel (imm: vpshufd's), against the 4 quarters' weights
    auto step = [&](const __m512i& h0, const __m512i& h1, const __m512i& h2, const __m512i& h3, auto imm,
                    const int8_t* wj) __attribute__((always_inline)) {
      constexpr auto kImm = static_cast<_MM_PERM_ENUM>(decltype(imm)::value);
      const __m512i s0 = _mm512_shuffle_epi32(h0, kImm), s1 = _mm512_shuffle_epi32(h1, kImm);
      const __m512i s2 = P == 4 ? _mm512_shuffle_epi32(h2, kImm) : s0;
      const __m512i s3 = P == 4 ? _mm512_shuffle_epi32(h3, kImm) : s0;
      auto quarter = [&](__m512i& qa, __m512i& qb, __m512i& qe, __m512i& qf, const int8_t* wq)
          __attribute__((always_inline)) {
        const __m512i w = _mm512_load_si512(wq);
        qa = _mm512_dpbusd_epi32(qa, s0, w);
        qb = _mm512_dpbusd_epi32(qb, s1, w);
        if constexpr (P == 4) {
          qe = _mm512_dpbusd_epi32(qe, s2, w);
          qf = _mm512_dpbusd_epi32(qf, s3, w);
        }
      };
      quarter(a0, b0, e0, f0, wj);
      quarter(a1, b1, e1, f1, wj + 64);
      quarter(a2, b2, e2, f2, wj + 128);
      quarter(a3, b3, e3, f3, wj + 192);
    };
    auto half = [&](const __m512i& h0, const __m512i& h1, const __m512i& h2, const __m512i& h3, const int8_t* wh)
        __attribute__((always_inline)) {
      step(h0, h1, h2, h3, std::integral_constant<int, _MM_PERM_AAAA>{}, wh);
      step(h0, h1, h2, h3, std::integral_constant<int, _MM_PERM_BBBB>{}, wh + 256);
      step(h0, h1, h2, h3, std::integral_constant<int, _MM_PERM_CCCC>{}, wh + 512);
      step(h0, h1, h2, h3, std::integral_constant<int, _MM_PERM_DDDD>{}, wh + 768);
    };
    if constexpr (kDwords == 4) {
      half(in0, in1, in2, in3, wtap);
    } else {
      auto lanes = [](__m512i v, auto imm) __attribute__((always_inline)) {
        return _mm512_shuffle_i32x4(v, v, decltype(imm)::value);
      };
      using Even = std::integral_constant<int, _MM_SHUFFLE(2, 2, 0, 0)>;
      using Odd = std::integral_constant<int, _MM_SHUFFLE(3, 3, 1, 1)>;
      half(lanes(in0, Even{}), lanes(in1, Even{}), lanes(in2, Even{}), lanes(in3, Even{}), wtap);
      half(lanes(in0, Odd{}), lanes(in1, Odd{}), lanes(in2, Odd{}), lanes(in3, Odd{}), wtap + 1024);
    }
  }
  const __m512i acc0[4] = {a0, a1, a2, a3}, acc1[4] = {b0, b1, b2, b3};
  StoreQuarters<kFull>(acc0, prm, c, o[0], oc0, n);
  StoreQuarters<kFull>(acc1, prm, c, o[1], oc0, n);
  if constexpr (P == 4) {
    const __m512i acc2[4] = {e0, e1, e2, e3}, acc3[4] = {f0, f1, f2, f3};
    StoreQuarters<kFull>(acc2, prm, c, o[2], oc0, n);
    StoreQuarters<kFull>(acc3, prm, c, o[3], oc0, n);
  }
}

template <int kDwords>
void Rows(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out, int row_begin,
          int row_end, int block_begin, int block_end) {
  const ConvGeometry& g = w.geometry_;
  const RequantConsts c = MakeRequantConsts(w.quant_, false, true);
  const auto* base = static_cast<const uint8_t*>(w.packed());
  const size_t bb = BlockBytes(w);
  const int cout = g.out_channels, taps = Taps(w);
  const auto* zp_row = reinterpret_cast<const int8_t*>(base + Blocks(w) * bb);
  block_end = std::min(block_end, Blocks(w));
  auto block = [&](auto pixels, const int8_t* const* const* x, int8_t* const* o, int oc0, int bi)
      __attribute__((always_inline)) {
    constexpr int P = decltype(pixels)::value;
    const auto* prm = reinterpret_cast<const int32_t*>(base + bi * bb);
    const auto* wt = reinterpret_cast<const int8_t*>(base + bi * bb + kParamBytes);
    const int n = std::min(kBlock, cout - oc0);
    if constexpr (P > 1) {
      if (n == kBlock)
        BlockRun<kDwords, true, P>(x, taps, oc0, n, prm, wt, c, o);
      else
        BlockRun<kDwords, false, P>(x, taps, oc0, n, prm, wt, c, o);
    } else if (n == kBlock) {
      Block<kDwords, true, 1>(x, taps, oc0, n, prm, wt, c, o);
    } else {
      Block<kDwords, false, 1>(x, taps, oc0, n, prm, wt, c, o);
    }
  };
  using One = std::integral_constant<int, 1>;
  if constexpr (kDwords <= 2) {
    SweepGroupedPixels(w, p, in, out, row_begin, row_end, zp_row,
                       [&](const int8_t* const* x, int8_t* o) __attribute__((always_inline)) {
      for (int bi = block_begin; bi < block_end; ++bi) block(One{}, &x, &o, bi * kBlock, bi);
    });
  } else {
    constexpr int kRun = 4;  // pixels per weight load
    // Blocks outside, chunks of 64 pixels (in runs of 4, across row ends) inside: a block's weights
    // (9 KB for G = 16 at 3x3, 18 KB for G = 32) stay in L1 over the chunk. Zen 4, 1 thread (512 in
    // 16s @14, /2 @28, 1024 in 32s @7, /2 @14), us: whole rows 80.8 / 83.2 / 74.9 / 74.7 (7-pixel
    // rows: runs of 4 + 2 + 1), chunks of 16 78.4 / 84.2 / 72.1 / 72.9, of 64 77.3 / 78.9 / 70.6 / 70.6.
    SweepGroupedChunks<64>(w, p, in, out, row_begin, row_end, zp_row,
                           [&](const int8_t* const* x, int8_t* const* o, int count) {
      for (int bi = block_begin; bi < block_end; ++bi) {
        const int oc0 = bi * kBlock;
        auto run = [&](auto pixels, int i) __attribute__((always_inline)) {
          constexpr int P = decltype(pixels)::value;
          const int8_t* const* xs[P];
          for (int k = 0; k < P; ++k) xs[k] = x + (i + k) * taps;
          block(pixels, xs, o + i, oc0, bi);
        };
        int i = 0;
        for (; i + kRun <= count; i += kRun) run(std::integral_constant<int, kRun>{}, i);
        for (; i + 2 <= count; i += 2) run(std::integral_constant<int, 2>{}, i);
        if (i < count) run(One{}, i);
      }
    });
  }
}

}  // namespace

Status PackGroupedInt8Avx512Vnni(PackedGroupedConvInt8* w) {
  const int cout = w->geometry_.out_channels, taps = Taps(*w), G = GroupChannels(*w), dwords = G / 4;
  const size_t bb = BlockBytes(*w);
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * Blocks(*w) + ZeroPointRowBytes(*w)));
  const Int8QuantParams& quant = w->quant_;
  const int32_t offset = quant.input_zero_point + 128;  // inputs x + 128
  for (int bi = 0; bi < Blocks(*w); ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wt = reinterpret_cast<int8_t*>(base + bi * bb + kParamBytes);
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 16; ++j) {
        const int oc = bi * kBlock + BlockChannel(q, j);
        if (oc >= cout) continue;  // zero parameters and weights: the lane's output is not stored
        const int8_t* f = &w->weights_[static_cast<size_t>(oc) * taps * G];
        PackParamLane(prm + 64 * q + j, quant, GroupedFoldedBias(*w, oc, offset), w->left_shift_[oc],
                      w->right_shift_[oc], oc);
        for (int t = 0; t < taps; ++t)
          for (int jj = 0; jj < dwords; ++jj)
            std::memcpy(wt + (static_cast<size_t>(t) * dwords + jj) * 256 + q * 64 + 4 * j, f + t * G + 4 * jj, 4);
      }
  }
  std::memset(base + Blocks(*w) * bb, static_cast<uint8_t>(quant.input_zero_point), ZeroPointRowBytes(*w));
  return Status::Ok();
}

void GroupedInt8Avx512Vnni(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                           int row_begin, int row_end, int block_begin, int block_end) {
  switch (GroupChannels(w)) {
    case 4: return Rows<1>(w, p, in, out, row_begin, row_end, block_begin, block_end);
    case 8: return Rows<2>(w, p, in, out, row_begin, row_end, block_begin, block_end);
    case 16: return Rows<4>(w, p, in, out, row_begin, row_end, block_begin, block_end);
    default: return Rows<8>(w, p, in, out, row_begin, row_end, block_begin, block_end);
  }
}

int GroupedAvx512VnniBlocks(const PackedGroupedConvInt8& w) { return Blocks(w); }

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
