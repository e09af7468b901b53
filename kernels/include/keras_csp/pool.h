// int8 max pooling on strided NHWC channel slices (TFLite MAX_POOL_2D / XNNPACK max pooling: the
// max over the window's in-bounds pixels, then the activation clamp; input and output share one
// scale, so it is exact under every kernel set). The fused block op (CspBlock) runs SPPF's chained
// 5x5 pools with it, reading and writing slices of the block's concat buffer in place.
#pragma once

#include <cstdint>

#include "keras_csp/conv.h"
#include "keras_csp/status.h"
#include "keras_csp/threadpool.h"

namespace keras_csp {

struct PoolGeometry {
  int filter_h = 1, filter_w = 1;  // 1..64
  int stride_h = 1, stride_w = 1;  // 1..64
  Padding padding = Padding::kSame;
};

// Output size as TFLite computes it (SAME: ceil(in / stride); VALID: ceil((in - filter + 1) / stride)).
Status ComputePoolOutputShape(const PoolGeometry& g, int in_h, int in_w, int* out_h, int* out_w);

// out = clamp(max over the window, act_min, act_max). The layouts' spatial sizes must agree with
// ComputePoolOutputShape and their channel counts with each other. Input and output may share a
// buffer if their channel slices are disjoint. Bit-identical at every thread count.
Status MaxPool2DInt8(const PoolGeometry& g, const int8_t* input, const TensorLayout& in_layout, int8_t* output,
                     const TensorLayout& out_layout, int32_t act_min, int32_t act_max, ThreadPool* pool = nullptr);

// TFLite int8 AVERAGE_POOL_2D (input and output share one scale, as TFLite requires): the sum over
// the window's in-bounds pixels, divided by their count with ties away from zero, then the
// activation clamp; the same integers under TFLite's optimized and reference kernels. Same layout
// rules as MaxPool2DInt8.
Status AvgPool2DInt8(const PoolGeometry& g, const int8_t* input, const TensorLayout& in_layout, int8_t* output,
                     const TensorLayout& out_layout, int32_t act_min, int32_t act_max, ThreadPool* pool = nullptr);

}  // namespace keras_csp
