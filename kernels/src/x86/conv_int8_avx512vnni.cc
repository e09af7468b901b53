// int8 conv, x86-64 AVX-512 VNNI (vpdpbusd). Activations are staged as uint8 (x + 128) in a
// padded buffer whose border holds (input_zero_point + 128), so that
//   sum((x - zp) * w) = sum(u * w) - (zp + 128) * sum(w)
// holds for every tap including padding; the correction is folded into the packed bias.
// 1x1 convs read the int8 input in place (see KernelTile). Weights packed by PackInt8Vpdpbusd,
// [tap][k/4][16][4] per 16-channel block; a register tile spans up to 4 blocks (6 x 64 or
// 8 x 48/32/16 accumulators), one 64-byte weight load per block and one broadcast per pixel feed
// MR x NB vpdpbusd. Convs of up to 48 output channels pack [tap][k/8][16][8] instead
// (PackedConvInt8::k_pairs_): one 8-byte broadcast per pixel feeds 2 * NB vpdpbusd, two input
// steps per accumulator lane, summed at the end (12 x 16, 6 x 32, 4 x 48). The epilogue packs
// four row-blocks per zmm (XNNPACK style). Stride-1 convs of 13-32 input channels and few output
// channels run transposed 16-pixel row tiles instead (KernelRowTile16). Bit-exact TFLite / XNNPACK requantization. The code is in
// conv_int8_avx512vnni_impl.h, shared with conv_int8_avx512vnni_table.cc (the same kernels with
// VBMI, looking PackedConvInt8's output table up in the epilogue); this file is the plain build.
//
// QEMU's TCG cannot emulate AVX-512, so this file is compiled everywhere but executed (and tested)
// only on AVX-512 VNNI CPUs (run and tested on AMD Zen 4, Zen 5 and Intel Xeon).
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12 false positive inside avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>

#include "../sweep.h"
#include "../peak_timer.h"
#include "store_bytes.h"

// clang ignores `#pragma GCC target`: give every function below the same target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#endif

#include "conv_int8_avx512vnni_impl.h"

namespace keras_csp {
namespace internal {

Status ConvInt8Avx512Vnni(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  return ConvAvx512Vnni<false>(w, p, in, out);
}

double TileRateAvx512Vnni(int k, double seconds) {
  constexpr int kTileMR = 6, kTileNB = 4;
  const size_t kb = static_cast<size_t>(k);  // bytes per pixel, and per weight column
  // One buffer, 64-byte aligned: parameter rows (bias, then the fp32 scales), weights, pixels.
  const size_t prm_bytes = kTileNB * size_t{kPackParamBytes}, w_bytes = kTileNB * 16 * kb;
  const size_t bytes = prm_bytes + w_bytes + kTileMR * kb;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes + 63]);
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.get()) + 63) & ~uintptr_t{63});
  std::memset(base, 0, bytes);
  TileBlocks<kTileNB> b;
  for (int j = 0; j < kTileNB; ++j) {
    auto* prm = reinterpret_cast<int32_t*>(base + j * size_t{kPackParamBytes});
    const float scale = 1.0f / 4096;
    for (int c = 0; c < 16; ++c) std::memcpy(prm + 16 + c, &scale, sizeof(scale));
    b.prm[j] = prm;
    b.w[j] = reinterpret_cast<int8_t*>(base + prm_bytes + j * 16 * kb);
  }
  auto* px = base + prm_bytes + w_bytes;
  for (size_t i = 0; i < w_bytes + kTileMR * kb; ++i) base[prm_bytes + i] = static_cast<uint8_t>(i * 37 + 11);
  const uint8_t* a[kTileMR];
  alignas(64) int8_t out[kTileMR][64];
  int8_t* o[kTileMR];
  const int32_t corr[kTileMR] = {};
  for (int i = 0; i < kTileMR; ++i) {
    a[i] = px + i * kb;
    o[i] = out[i];
  }
  Int8QuantParams q;
  q.rounding = Rounding::kFp32;
  const RequantConsts c = MakeRequantConsts(q, false, false);
  const int64_t no_offset = 0;
  return TimeLoop(
      [&](long iters) {
        for (long it = 0; it < iters; ++it) {
          KernelTile<kTileMR, kTileNB, true, false, false>(kTileMR, a, &no_offset, 1, k / 4, b, corr, c, o, 64);
          __asm__ volatile("" ::: "memory");  // the stores count: each call's outputs are "used"
        }
      },
      long{kTileMR} * 64 * k, seconds, /*first_iters=*/64);  // a call is ~0.1-1 us, not a peak loop's ns
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
