// The x86 grouped kernels' walk over output pixels (AVX-512 VNNI, AVX-VNNI, AVX2): per output pixel
// the taps' input pointers (padded taps: the packed zero-point row), then pixel(x, o) with x[t] the
// tap's input channel 0 and o the pixel's output channel 0. Output rows [row_begin, row_end) of
// batch * out_h. Include it after the file's `#pragma GCC target`. Forced inline: left to GCC, the
// AVX-512 kernel read its constants through the closure and ran 6-10 % slower (ResNeXt-50's 3x3s in
// groups of 4 / 8 on Zen 4: 158 -> 167 us, 101 -> 111 us); inlined it is level (156-157, 104-107).
#pragma once

#include <vector>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {
namespace {

template <typename Pixel>
__attribute__((always_inline)) inline void SweepGroupedPixels(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                               int row_begin, int row_end, const int8_t* zp_row, Pixel pixel) {
  const ConvGeometry& g = w.geometry_;
  const int8_t* x[64 * 64];  // kernels are at most 64 x 64 (CheckGeometry); the first slots touched
  // (not forced inline: under clang the lambda has the file's target and ForEachOutputPixel not)
  ForEachOutputPixel(g, p, in, out, row_begin, row_end, [&](const int8_t* image, int iy0, int ix0, int8_t* o) {
    WindowPointers(g, p, image, iy0, ix0, zp_row, [&](int ky, int kx) { return ky * g.kernel_w + kx; }, x);
    pixel(static_cast<const int8_t* const*>(x), o);
  });
}

// Chunks of kChunk output pixels in row order (across row ends; the last one shorter): chunk(x, o, count) with
// x[i * taps + t] pixel i's tap pointers and o[i] its output channel 0, for kernels that keep one
// block's weights in L1 over many pixels and share weight loads between runs of them (their
// per-pixel walk streamed every block's weights from L2 per pixel: ResNeXt-50's groups of 32 at
// 7x7, 295 KB per pixel pair; whole 7-pixel rows left 3 of 7 to runs of 2 and 1).
template <int kChunk, typename Chunk>
void SweepGroupedChunks(const PackedGroupedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                        int row_begin, int row_end, const int8_t* zp_row, Chunk chunk) {
  const ConvGeometry& g = w.geometry_;
  const int taps = g.kernel_h * g.kernel_w;
  std::vector<const int8_t*> x(static_cast<size_t>(kChunk) * taps);
  int8_t* o[kChunk];
  int count = 0;
  ForEachOutputPixel(g, p, in, out, row_begin, row_end, [&](const int8_t* image, int iy0, int ix0, int8_t* op) {
    WindowPointers(g, p, image, iy0, ix0, zp_row, [&](int ky, int kx) { return ky * g.kernel_w + kx; },
                   x.data() + static_cast<size_t>(count) * taps);
    o[count++] = op;
    if (count == kChunk) {
      chunk(static_cast<const int8_t* const*>(x.data()), static_cast<int8_t* const*>(o), count);
      count = 0;
    }
  });
  if (count > 0) chunk(static_cast<const int8_t* const*>(x.data()), static_cast<int8_t* const*>(o), count);
}

}  // namespace
}  // namespace internal
}  // namespace keras_csp
