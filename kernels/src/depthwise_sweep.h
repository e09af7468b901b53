// The output sweep shared by the SIMD depthwise kernels: output rows [row_begin, row_end) of
// batch * out_h, every output pixel with the input pixels of its in-range taps (padded taps are
// skipped: they contribute 0, as in TFLite). Plain C++; each variant file includes it under its
// own target flags.
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {

constexpr int kDepthwiseNR = 16;  // output channels per packed block

// Packed layout of the SIMD depthwise kernels, per block of 16 output channels: the variant's
// parameter rows (param_bytes), then the weights [tap][16] as T.
// parameter rows (param_bytes), then the weights [tap][16] as T, then `extra_bytes` of a variant's own.
template <typename T>
size_t DepthwiseBlockBytes(const PackedDepthwiseInt8& w, size_t param_bytes, size_t extra_bytes = 0) {
  return param_bytes + static_cast<size_t>(w.geometry_.kernel_h) * w.geometry_.kernel_w * kDepthwiseNR * sizeof(T) +
         extra_bytes;
}

// pack_params(int32_t* rows, int oc0) writes block oc0's parameter rows; pack_extra(uint8_t* extra,
// int oc0) its extra bytes.
template <typename T, typename PackParams, typename PackExtra>
void PackDepthwiseBlocks(PackedDepthwiseInt8* w, size_t param_bytes, PackParams pack_params, size_t extra_bytes,
                         PackExtra pack_extra) {
  const int taps = w->geometry_.kernel_h * w->geometry_.kernel_w, cout = w->geometry_.out_channels;
  const size_t bb = DepthwiseBlockBytes<T>(*w, param_bytes, extra_bytes);
  const int blocks = (cout + kDepthwiseNR - 1) / kDepthwiseNR;
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    const int oc0 = bi * kDepthwiseNR;
    pack_params(reinterpret_cast<int32_t*>(base + bi * bb), oc0);
    auto* wt = reinterpret_cast<T*>(base + bi * bb + param_bytes);
    for (int t = 0; t < taps; ++t)
      for (int j = 0; j < kDepthwiseNR && oc0 + j < cout; ++j)
        wt[t * kDepthwiseNR + j] = w->weights_[static_cast<size_t>(t) * cout + oc0 + j];
    pack_extra(base + bi * bb + bb - extra_bytes, oc0);
  }
}

template <typename T, typename PackParams>
void PackDepthwiseBlocks(PackedDepthwiseInt8* w, size_t param_bytes, PackParams pack_params) {
  PackDepthwiseBlocks<T>(w, param_bytes, pack_params, 0, [](uint8_t*, int) {});
}

// -input_zero_point * sum over taps of w[tap][oc] (0 past the last channel): the accumulator start
// of the SIMD kernels' interior path, which multiplies the int8 inputs as they are instead of
// (x - zp). |zp * sum(w)| <= 128 * 128 * 64 * 64 fits int32.
inline int32_t DepthwiseZeroPointTerm(const PackedDepthwiseInt8& w, int oc) {
  const int taps = w.geometry_.kernel_h * w.geometry_.kernel_w, cout = w.geometry_.out_channels;
  if (oc >= cout) return 0;
  int32_t sum = 0;
  for (int t = 0; t < taps; ++t) sum += w.weights_[static_cast<size_t>(t) * cout + oc];
  return -w.quant_.input_zero_point * sum;
}

// kernel(x, tap, n_taps, o): x[i] points at channel 0 of the input slice at tap tap[i] (index
// ky * kernel_w + kx), o at channel 0 of the output pixel's slice.
template <typename Kernel>
void SweepDepthwise(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                    int row_begin, int row_end, Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  // The in-range taps' pointers (48 KiB of stack for the largest kernels; only the first taps
  // are touched). Not thread_local: in a shared library (the Python extension, the delegate)
  // every pixel then called __tls_get_addr, and the call made the kernel reload its vector
  // constants (x2 3x3 depthwise at 56x56: 3 % of the time in __tls_get_addr alone).
  constexpr int kMaxTaps = 64 * 64;  // kernel sizes are at most 64 x 64
  const int8_t* x[kMaxTaps];
  int tap[kMaxTaps];
  for (int r = row_begin; r < row_end; ++r) {
    const int b = r / p.out_h, oy = r % p.out_h;
    const int iy0 = oy * g.stride_h - p.pad_top;
    const int ky0 = std::max(0, -iy0), ky1 = std::min(g.kernel_h, p.in_h - iy0);
    const int8_t* image = in + b * p.in.batch_stride + p.in.channel_offset;
    for (int ox = 0; ox < p.out_w; ++ox) {
      const int ix0 = ox * g.stride_w - p.pad_left;
      const int kx0 = std::max(0, -ix0), kx1 = std::min(g.kernel_w, p.in_w - ix0);
      int n = 0;
      for (int ky = ky0; ky < ky1; ++ky)
        for (int kx = kx0; kx < kx1; ++kx, ++n) {
          x[n] = image + (iy0 + ky) * p.in.row_stride + (ix0 + kx) * p.in.pixel_stride;
          tap[n] = ky * g.kernel_w + kx;
        }
      kernel(x, tap, n, out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride +
                            p.out.channel_offset);
    }
  }
}

}  // namespace internal
}  // namespace keras_csp
