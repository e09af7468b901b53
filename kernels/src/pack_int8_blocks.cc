// Weight packing shared by the blocked int8 variants (AVX-512 VNNI vpdpbusd, NEON sdot / smmla /
// smlal); plain C++, no SIMD. See conv_internal.h for the layout.
#include <cstring>
#include <vector>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {

size_t PackedBlockBytes(const PackedConvInt8& w) {
  return kPackParamBytes + static_cast<size_t>(SweepTaps(w)) * w.k_padded_ * kPackNR;
}

void PackParamLane(int32_t* lane, const Int8QuantParams& q, int32_t bias, int32_t left_shift, int32_t right_shift,
                   int oc) {
  constexpr int nr = kPackNR;
  lane[0] = bias;
  if (q.rounding == Rounding::kFp32)  // the multiplier row holds the float scale's bits
    std::memcpy(&lane[nr], &q.requant_scale[oc], sizeof(float));
  else
    lane[nr] = q.output_multiplier[oc];
  lane[2 * nr] = left_shift;
  lane[3 * nr] = right_shift;
}

void PackParamRows(int32_t* prm, const Int8QuantParams& q, const int32_t* bias, const int32_t* left_shift,
                   const int32_t* right_shift, int oc0, int oc_total) {
  for (int j = 0; j < kPackNR && oc0 + j < oc_total; ++j) {
    const int oc = oc0 + j;
    PackParamLane(prm + j, q, bias[oc], left_shift[oc], right_shift[oc], oc);
  }
}

Status PackInt8Groups(PackedConvInt8* w, int32_t fold_zero_point, int group, int k_multiple,
                      uint8_t weight_xor, bool pair_order) {
  const ConvGeometry& g = w->geometry_;
  const int taps = SweepTaps(*w), cin = TapElems(*w);
  constexpr int nr = kPackNR;
  w->nr_ = nr;
  w->k_padded_ = RoundUp(cin, k_multiple);
  const int kg = w->k_padded_ / group;
  const int blocks = (g.out_channels + nr - 1) / nr;
  const size_t bb = PackedBlockBytes(*w);
  std::vector<int32_t> folded(g.out_channels);
  FoldedBias(*w, fold_zero_point, folded.data());
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    auto* prm = reinterpret_cast<int32_t*>(base + bi * bb);
    auto* wp = reinterpret_cast<int8_t*>(base + bi * bb + kPackParamBytes);
    PackParamRows(prm, w->quant_, folded.data(), w->left_shift_.data(), w->right_shift_.data(), bi * nr,
                  g.out_channels);
    for (int j = 0; j < nr; ++j) {
      const int oc = bi * nr + j;
      if (oc >= g.out_channels) continue;
      const int slot = pair_order ? (j % 2) * (nr / 2) + j / 2 : j;
      for (int t = 0; t < taps; ++t)
        for (int k = 0; k < cin; ++k)
          wp[((static_cast<size_t>(t) * kg + k / group) * nr + slot) * group + (k % group)] =
              static_cast<int8_t>(w->weights_[(static_cast<size_t>(oc) * taps + t) * cin + k] ^ weight_xor);
    }
  }
  return Status::Ok();
}

Status PackInt8Vpdpbusd(PackedConvInt8* w, bool k_pairs, int xor_max_in_channels) {
  const ConvGeometry& g = w->geometry_;
  w->direct_1x1_ = DirectReadable1x1(g);
  w->direct_1x1_xor_ = w->direct_1x1_ && (g.out_channels <= 2 * kPackNR || g.in_channels <= xor_max_in_channels);
  w->row_taps_ = !w->direct_1x1_ && RowTapsFit(g);
  // Up to 3 blocks (measured on an Intel Xeon with AVX-512 VNNI, 3x3 convs: 128->32 1.10-1.24x,
  // 128->48 1.31x, but 128->64 0.88x: 3 x 64 tiles). Taps of 8 elements or fewer would pad to twice
  // the MACs; the convs that may run transposed row tiles keep the 4-byte groups those read.
  const int tap = TapElems(*w);
  w->k_pairs_ = k_pairs && !w->row_taps_ && g.out_channels <= 3 * kPackNR && tap > 8 &&
                (w->direct_1x1_ || !RowTileGeometry(g, RoundUp(tap, 4)));
  const int group = w->k_pairs_ ? 8 : 4;
  // In place: the weights are vpdpbusd's unsigned operand (w + 128), the bias folds zp * sum(w)
  // and the kernel takes 128 * sum(x) off per pixel.
  if (w->direct_1x1_ && !w->direct_1x1_xor_)
    return PackInt8Groups(w, w->quant_.input_zero_point, group, group, 0x80, /*pair_order=*/w->k_pairs_);
  // Staged (and direct_1x1_xor_): uint8 x + 128 inputs with border zp + 128, the bias folds
  // (zp + 128) * sum(w).
  return PackInt8Groups(w, w->quant_.input_zero_point + 128, group, group, 0, /*pair_order=*/w->k_pairs_);
}

}  // namespace internal
}  // namespace keras_csp
