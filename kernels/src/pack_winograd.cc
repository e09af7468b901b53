// Winograd F(2x2, 3x3) in exact integers (winograd_sweep.h): which convs qualify, from what image
// size they run so, and their packed weights U = G2 g G2^T. Plain C++, shared by the AVX2 and plain
// NEON variants.
#include <cstdlib>
#include <cstring>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {
namespace {

// KERAS_CSP_WINOGRAD: "0" none, "force" every image size, otherwise images of kMinPixels or more.
const char* WinogradEnv() {
  const char* e = std::getenv("KERAS_CSP_WINOGRAD");
  return e ? e : "";
}
// Output pixels from which a packed Winograd conv runs so: 10x10. CSPDenseNet-121 fused, Zen 3
// (AVX2), process A/B against the direct kernel: the 7x7 dense block (3x3 128->32 convs at 7x7,
// weights from L3) 0.99x at 1 thread and 0.955x at 2; the 14x14 block 1.18x / 1.09x, 28x28 1.32x /
// 1.30x. Plain NEON keeps it (not timed: no such CPU here).
constexpr int kMinPixels = 100;

}  // namespace

bool WinogradFits(const PackedConvInt8& w) {
  const ConvGeometry& g = w.geometry_;
  if (g.kernel_h != 3 || g.kernel_w != 3 || g.stride_h != 1 || g.stride_w != 1) return false;
  // Stems (1-3 channels) run on row taps; few channels leave too little K per product.
  if (g.in_channels < 8 || std::strcmp(WinogradEnv(), "0") == 0) return false;
  for (int oc = 0; oc < g.out_channels; ++oc)
    if (255 * WeightAbsSum(w, oc) >= (int64_t{1} << 29)) return false;  // 4 x |sum| must stay below 2^31
  return true;
}

Status PackWinograd(PackedConvInt8* w, size_t param_bytes, int group,
                    void (*pack_params)(int32_t* prm, const PackedConvInt8& w, int oc0)) {
  const ConvGeometry& g = w->geometry_;
  const int cin = g.in_channels;
  // After the variant's direct packing, whose k_padded_ and 16-channel blocks it shares: both
  // kernels read the same staging.
  w->winograd_ = true;
  w->winograd_min_pixels_ = std::strcmp(WinogradEnv(), "force") == 0 ? 0 : kMinPixels;
  constexpr int nr = kWinogradNR;
  const int cp = w->k_padded_, kg = cp / group;
  const int blocks = (g.out_channels + nr - 1) / nr;
  const size_t bb = WinogradBlockBytes(*w, param_bytes);
  auto* base = static_cast<uint8_t*>(AllocAligned64(&w->winograd_storage_, &w->winograd_offset_, bb * blocks));
  for (int bi = 0; bi < blocks; ++bi) {
    pack_params(reinterpret_cast<int32_t*>(base + bi * bb), *w, bi * nr);
    auto* u = reinterpret_cast<int16_t*>(base + bi * bb + param_bytes);
    for (int j = 0; j < nr; ++j) {
      const int oc = bi * nr + j;
      if (oc >= g.out_channels) continue;
      for (int k = 0; k < cin; ++k) {
        auto wt = [&](int ky, int kx) { return int{w->weights_[((static_cast<size_t>(oc) * 3 + ky) * 3 + kx) * cin + k]}; };
        // t = G2 g (rows of the kernel), then U = t G2^T; G2 = 2G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]].
        int t[4][3];
        for (int kx = 0; kx < 3; ++kx) {
          t[0][kx] = 2 * wt(0, kx);
          t[1][kx] = wt(0, kx) + wt(1, kx) + wt(2, kx);
          t[2][kx] = wt(0, kx) - wt(1, kx) + wt(2, kx);
          t[3][kx] = 2 * wt(2, kx);
        }
        for (int r = 0; r < 4; ++r) {
          const int uu[4] = {2 * t[r][0], t[r][0] + t[r][1] + t[r][2], t[r][0] - t[r][1] + t[r][2], 2 * t[r][2]};
          for (int col = 0; col < 4; ++col)
            u[((static_cast<size_t>(4 * r + col) * kg + k / group) * nr + j) * group + k % group] =
                static_cast<int16_t>(uu[col]);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp
