// Scalar reference kernels: a direct transcription of TFLite's reference CONV_2D
// (reference_integer_ops::ConvPerChannel for int8, reference_ops::Conv for float32),
// extended with strided channel-slice input/output layouts. Every optimized variant is tested
// against these.
#include <algorithm>

#include "../conv_internal.h"
#include "scalar_requant.h"

namespace keras_csp {
namespace internal {

void ConvInt8Scalar(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out) {
  const ConvGeometry& g = w.geometry_;
  const Int8QuantParams& q = w.quant_;
  const int32_t input_offset = -q.input_zero_point;
  const int cin = g.in_channels;
  for (int b = 0; b < p.batch; ++b) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      for (int ox = 0; ox < p.out_w; ++ox) {
        const int in_y0 = oy * g.stride_h - p.pad_top;
        const int in_x0 = ox * g.stride_w - p.pad_left;
        int8_t* o = out + b * p.out.batch_stride + oy * p.out.row_stride +
                    ox * p.out.pixel_stride + p.out.channel_offset;
        for (int oc = 0; oc < g.out_channels; ++oc) {
          int32_t acc = 0;
          for (int ky = 0; ky < g.kernel_h; ++ky) {
            const int iy = in_y0 + ky;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < g.kernel_w; ++kx) {
              const int ix = in_x0 + kx;
              if (ix < 0 || ix >= p.in_w) continue;
              const int8_t* x = in + b * p.in.batch_stride + iy * p.in.row_stride +
                                ix * p.in.pixel_stride + p.in.channel_offset;
              const int8_t* f =
                  w.weights_.data() + ((static_cast<size_t>(oc) * g.kernel_h + ky) * g.kernel_w + kx) * cin;
              for (int ic = 0; ic < cin; ++ic)
                acc = WrapAdd(acc, f[ic] * (static_cast<int32_t>(x[ic]) + input_offset));
            }
          }
          o[oc] = RequantizeScalar(WrapAdd(acc, w.bias_[oc]), q, oc);
        }
      }
    }
  }
}

void ConvF32Scalar(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out) {
  const ConvGeometry& g = w.geometry_;
  const int cin = g.in_channels;
  for (int b = 0; b < p.batch; ++b) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      for (int ox = 0; ox < p.out_w; ++ox) {
        const int in_y0 = oy * g.stride_h - p.pad_top;
        const int in_x0 = ox * g.stride_w - p.pad_left;
        float* o = out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride +
                   p.out.channel_offset;
        for (int oc = 0; oc < g.out_channels; ++oc) {
          float acc = 0.0f;
          for (int ky = 0; ky < g.kernel_h; ++ky) {
            const int iy = in_y0 + ky;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < g.kernel_w; ++kx) {
              const int ix = in_x0 + kx;
              if (ix < 0 || ix >= p.in_w) continue;
              const float* x = in + b * p.in.batch_stride + iy * p.in.row_stride +
                               ix * p.in.pixel_stride + p.in.channel_offset;
              const float* f =
                  w.weights_.data() + ((static_cast<size_t>(oc) * g.kernel_h + ky) * g.kernel_w + kx) * cin;
              for (int ic = 0; ic < cin; ++ic) acc += x[ic] * f[ic];
            }
          }
          acc += w.bias_[oc];
          o[oc] = std::min(std::max(acc, w.act_min_), w.act_max_);
        }
      }
    }
  }
}

}  // namespace internal
}  // namespace keras_csp
