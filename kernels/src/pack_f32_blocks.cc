// Weight packing shared by the float32 variants (AVX2 + FMA, NEON); plain C++, no SIMD. See
// conv_internal.h for the layout.
#include "conv_internal.h"

namespace keras_csp {
namespace internal {

Status PackF32Blocks(PackedConvF32* w, int nr) {
  const ConvGeometry& g = w->geometry_;
  const int taps = g.kernel_h * g.kernel_w;
  const int blocks = (g.out_channels + nr - 1) / nr;
  const size_t bf = PackedF32BlockFloats(*w, nr);
  auto* base = static_cast<float*>(AllocPacked(w, bf * blocks * sizeof(float)));
  for (int bi = 0; bi < blocks; ++bi) {
    float* blk = base + bi * bf;
    for (int j = 0; j < nr; ++j) {
      const int oc = bi * nr + j;
      if (oc >= g.out_channels) continue;
      blk[j] = w->bias_[oc];
      for (int t = 0; t < taps; ++t)
        for (int k = 0; k < g.in_channels; ++k)
          blk[nr + (static_cast<size_t>(t) * g.in_channels + k) * nr + j] =
              w->weights_[(static_cast<size_t>(oc) * taps + t) * g.in_channels + k];
    }
  }
  w->nr_ = nr;
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp
