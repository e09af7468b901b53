// Weight packing shared by the blocked int8 variants (AVX-512 VNNI vpdpbusd, NEON sdot / smmla /
// smlal); plain C++, no SIMD. See conv_internal.h for the layout.
#include <cstring>
#include <vector>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {

size_t PackedBlockBytes(const PackedConvInt8& w) {
  const int taps = w.geometry_.kernel_h * w.geometry_.kernel_w;
  return kPackParamBytes + static_cast<size_t>(taps) * w.k_padded_ * kPackNR;
}

Status PackInt8Groups(PackedConvInt8* w, int32_t fold_zero_point, int group, int k_multiple,
                      uint8_t weight_xor) {
  const ConvGeometry& g = w->geometry_;
  const int taps = g.kernel_h * g.kernel_w;
  constexpr int nr = kPackNR;
  w->nr_ = nr;
  w->k_padded_ = RoundUp(g.in_channels, k_multiple);
  const int kg = w->k_padded_ / group;
  const int blocks = (g.out_channels + nr - 1) / nr;
  const size_t bb = PackedBlockBytes(*w);
  std::vector<int32_t> folded(g.out_channels);
  FoldedBias(*w, fold_zero_point, folded.data());
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  const bool fp32 = w->quant_.rounding == Rounding::kFp32;
  for (int bi = 0; bi < blocks; ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wp = reinterpret_cast<int8_t*>(base + bi * bb + kPackParamBytes);
    for (int j = 0; j < nr; ++j) {
      const int oc = bi * nr + j;
      if (oc >= g.out_channels) continue;
      prm[j] = folded[oc];
      if (fp32)  // the multiplier row holds the float scale's bits
        std::memcpy(&prm[nr + j], &w->quant_.requant_scale[oc], sizeof(float));
      else
        prm[nr + j] = w->quant_.output_multiplier[oc];
      prm[2 * nr + j] = w->left_shift_[oc];
      prm[3 * nr + j] = w->right_shift_[oc];
      for (int t = 0; t < taps; ++t)
        for (int k = 0; k < g.in_channels; ++k)
          wp[((static_cast<size_t>(t) * kg + k / group) * nr + j) * group + (k % group)] =
              static_cast<int8_t>(w->weights_[(static_cast<size_t>(oc) * taps + t) * g.in_channels + k] ^
                                  weight_xor);
    }
  }
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp
