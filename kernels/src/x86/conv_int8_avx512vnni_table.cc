// The AVX-512 VNNI int8 conv with PackedConvInt8's output table (a SiLU / HARD_SWISH / LEAKY_RELU
// tabulated by the fuse pass) looked up in the epilogue, on the 64 output bytes each register
// group stores: two vpermt2b and a blend (AVX-512 VBMI: Ice Lake, Zen 4 and later). A separate
// table pass read and wrote the conv's whole output again, and on several threads waited for the
// conv at one more barrier. The kernels are conv_int8_avx512vnni.cc's, compiled here with VBMI
// (the dispatch in conv_api.cc runs this file only on CPUs that have it).
#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")
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
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi"))), apply_to = function)
#endif

#define KCSP_VBMI_TABLE 1
#include "conv_int8_avx512vnni_impl.h"

namespace keras_csp {
namespace internal {

Status ConvInt8Avx512VnniTable(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  return ConvAvx512Vnni<true>(w, p, in, out);
}

}  // namespace internal
}  // namespace keras_csp

#if defined(__clang__)
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif  // __x86_64__
