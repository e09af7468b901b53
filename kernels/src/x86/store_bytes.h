// Stores the first n <= 16 bytes of an xmm register: one unaligned store when n == 16, else
// through a stack copy (the int8 epilogues of the x86 conv and depthwise variants). SSE2 only, so
// it can be included by files of any x86-64 target.
#pragma once
#if defined(__x86_64__)
#include <emmintrin.h>

#include <cstdint>
#include <cstring>

namespace keras_csp {
namespace internal {

inline void StoreBytes16(__m128i v, int8_t* o, int n) {
  if (n == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
    std::memcpy(o, tmp, n);
  }
}

}  // namespace internal
}  // namespace keras_csp
#endif  // __x86_64__
