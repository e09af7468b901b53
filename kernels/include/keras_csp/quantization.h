// TFLite-compatible fixed-point requantization helpers (gemmlowp "double rounding" semantics,
// i.e. TFLite built without TFLITE_SINGLE_ROUNDING, which is the default build).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace keras_csp {

// Same as tflite::QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).
void QuantizeMultiplier(double real_multiplier, int32_t* quantized_multiplier, int* shift);

inline int32_t SaturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
  const bool overflow = a == b && a == std::numeric_limits<int32_t>::min();
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  const int32_t high = static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
  return overflow ? std::numeric_limits<int32_t>::max() : high;
}

inline int32_t RoundingDivideByPOT(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// Rounding right shift with ties rounded up (ruy / TFLite optimized kernels).
inline int32_t RoundingDivideByPOTHalfUp(int32_t x, int exponent) {
  if (exponent == 0) return x;
  return static_cast<int32_t>((static_cast<int64_t>(x) + (int64_t{1} << (exponent - 1))) >> exponent);
}

// As MultiplyByQuantizedMultiplier, but the final shift rounds ties up (TFLite optimized kernels).
inline int32_t MultiplyByQuantizedMultiplierHalfUp(int32_t x, int32_t multiplier, int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return RoundingDivideByPOTHalfUp(SaturatingRoundingDoublingHighMul(shifted, multiplier), right_shift);
}

// tflite::MultiplyByQuantizedMultiplier (int32 version). The left shift wraps like TFLite's int32 multiply.
inline int32_t MultiplyByQuantizedMultiplier(int32_t x, int32_t multiplier, int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(shifted, multiplier), right_shift);
}

// XNNPACK's fp32 requantization ("fp32" qs8 microkernels): scale in float, clamp to the output
// range (relative to the zero point), round to nearest with ties to even, add the zero point.
// Clamping before rounding equals clamping after, as the bounds are integers.
inline int8_t RequantizeFp32(int32_t acc, float scale, int32_t zero_point, int32_t act_min,
                             int32_t act_max) {
  float f = static_cast<float>(acc) * scale;
  f = std::fmax(f, static_cast<float>(act_min - zero_point));
  f = std::fmin(f, static_cast<float>(act_max - zero_point));
  return static_cast<int8_t>(static_cast<int32_t>(std::nearbyint(f)) + zero_point);
}

}  // namespace keras_csp
