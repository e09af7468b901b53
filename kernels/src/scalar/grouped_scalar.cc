// Scalar reference grouped conv: TFLite's reference_integer_ops::ConvPerChannel with groups (output
// channel o reads the input channels of its group, gi = o / (out_channels / groups)), extended with
// strided channel-slice layouts. The SIMD grouped kernels are tested against it, and it against the
// dense conv with block-diagonal weights.
#include "../conv_internal.h"
#include "scalar_requant.h"

namespace keras_csp {
namespace internal {

void GroupedInt8Scalar(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end) {
  const ConvGeometry& g = w.geometry_;
  const Int8QuantParams& q = w.quant_;
  const int32_t input_offset = -q.input_zero_point;
  const int cout = g.out_channels, cin_g = g.in_channels / w.groups_, cout_g = cout / w.groups_;
  for (int r = row_begin; r < row_end; ++r) {
    const int b = r / p.out_h, oy = r % p.out_h;
    for (int ox = 0; ox < p.out_w; ++ox) {
      const int in_y0 = oy * g.stride_h - p.pad_top;
      const int in_x0 = ox * g.stride_w - p.pad_left;
      int8_t* o = out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride +
                  p.out.channel_offset;
      for (int oc = 0; oc < cout; ++oc) {
        const int c0 = oc / cout_g * cin_g;
        int32_t acc = 0;
        for (int ky = 0; ky < g.kernel_h; ++ky) {
          const int iy = in_y0 + ky;
          if (iy < 0 || iy >= p.in_h) continue;
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const int ix = in_x0 + kx;
            if (ix < 0 || ix >= p.in_w) continue;
            const int8_t* x = in + b * p.in.batch_stride + iy * p.in.row_stride + ix * p.in.pixel_stride +
                              p.in.channel_offset + c0;
            const int8_t* f = &w.weights_[((static_cast<size_t>(oc) * g.kernel_h + ky) * g.kernel_w + kx) * cin_g];
            for (int i = 0; i < cin_g; ++i) acc = WrapAdd(acc, f[i] * (static_cast<int32_t>(x[i]) + input_offset));
          }
        }
        o[oc] = RequantizeScalar(WrapAdd(acc, w.bias_[oc]), q, oc);
      }
    }
  }
}

}  // namespace internal
}  // namespace keras_csp
