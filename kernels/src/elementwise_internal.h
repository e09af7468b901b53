// Internal interface between ApplyInt8PostOps (elementwise_api.cc) and the per-ISA kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "keras_csp/elementwise.h"

namespace keras_csp {
namespace internal {

// KERAS_CSP_KERNEL_VARIANT applied to an int8 conv variant request (conv_api.cc).
Status ResolveInt8Variant(Variant requested, Variant* out);

// The ADD of one element, the reference the vector kernels match (int32 is exact: the sum is
// bounded by Int8AddParamsSupported; v + zero point cannot overflow as shift >= 1).
inline int8_t AddInt8(const Int8AddParams& a, int32_t y, int32_t r) {
  const int32_t v = ((a.bias + y * a.y_multiplier + r * a.r_multiplier) >> a.shift) + a.output_zero_point;
  return static_cast<int8_t>(std::min(a.output_max, std::max(a.output_min, v)));
}

// f(table, add) with the ops' combination as std::bool_constant.
template <typename F>
void WithOpKinds(const Int8PostOps& ops, F f) {
  if (ops.has_table_ && ops.has_add_) f(std::true_type{}, std::true_type{});
  else if (ops.has_table_) f(std::true_type{}, std::false_type{});
  else if (ops.has_add_) f(std::false_type{}, std::true_type{});
}

// The per-ISA kernels' loop over runs: run(table, add, y_i, r_i, n) per run, with table / add as
// std::bool_constant (resolved once, so each ISA instantiates its three op combinations).
template <typename RunOne>
void ForEachRun(const Int8PostOps& ops, int8_t* y, int64_t runs, int64_t y_stride, int64_t n, const int8_t* r,
                int64_t r_stride, RunOne run) {
  WithOpKinds(ops, [&](auto table, auto add) {
    for (int64_t i = 0; i < runs; ++i) run(table, add, y + i * y_stride, decltype(add)::value ? r + i * r_stride : nullptr, n);
  });
}

// `runs` runs of `n` elements: run i at y + i * y_stride (and r + i * r_stride with an add).
using PostOpsKernelFn = void (*)(const Int8PostOps& ops, int8_t* y, int64_t runs, int64_t y_stride, int64_t n,
                                 const int8_t* r, int64_t r_stride);
void PostOpsScalar(const Int8PostOps&, int8_t*, int64_t, int64_t, int64_t, const int8_t*, int64_t);
#if defined(__x86_64__)
void PostOpsAvx2(const Int8PostOps&, int8_t*, int64_t, int64_t, int64_t, const int8_t*, int64_t);
void PostOpsAvx512Vbmi(const Int8PostOps&, int8_t*, int64_t, int64_t, int64_t, const int8_t*, int64_t);
#endif
#if defined(__aarch64__)
void PostOpsNeon(const Int8PostOps&, int8_t*, int64_t, int64_t, int64_t, const int8_t*, int64_t);
#endif

}  // namespace internal
}  // namespace keras_csp
