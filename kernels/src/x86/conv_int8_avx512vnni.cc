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
#include <type_traits>

#include "../sweep.h"
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

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
