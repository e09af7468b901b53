// The scalar reference's int32 arithmetic and requantization, shared by the conv and depthwise
// reference kernels.
#pragma once

#include <algorithm>
#include <cstdint>

#include "keras_csp/conv.h"
#include "keras_csp/quantization.h"

namespace keras_csp {
namespace internal {

// int32 addition that wraps on overflow (two's complement) instead of being undefined: what
// TFLite's reference kernels do in practice and what the SIMD variants (vpaddd, add) do, so
// absurd biases / quantization parameters give the same bytes in every variant and no UB.
inline int32_t WrapAdd(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// acc (bias included) -> int8 for output channel oc, in q's rounding mode.
inline int8_t RequantizeScalar(int32_t acc, const Int8QuantParams& q, int oc) {
  if (q.rounding == Rounding::kFp32)
    return RequantizeFp32(acc, q.requant_scale[oc], q.output_zero_point, q.act_min, q.act_max);
  acc = q.rounding == Rounding::kHalfUp
            ? MultiplyByQuantizedMultiplierHalfUp(acc, q.output_multiplier[oc], q.output_shift[oc])
            : MultiplyByQuantizedMultiplier(acc, q.output_multiplier[oc], q.output_shift[oc]);
  acc = WrapAdd(acc, q.output_zero_point);
  acc = std::max(acc, q.act_min);
  acc = std::min(acc, q.act_max);
  return static_cast<int8_t>(acc);
}

}  // namespace internal
}  // namespace keras_csp
