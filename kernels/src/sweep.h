// Outer loops shared by the SIMD variants (one micro-kernel per variant file, one driver here):
// stage the input, compute tap offsets, then sweep MR output pixels x NR output channels.
// Header-only templates, instantiated inside each variant's file (and so compiled with its
// target flags); the micro-kernel is passed in as a callable.
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {

// Offsets (elements) of every kernel tap from the top-left tap, for rows `row_stride` and
// pixels `pixel_stride` apart.
inline void TapOffsets(const ConvGeometry& g, int64_t row_stride, int64_t pixel_stride,
                       int64_t* tap_off) {
  for (int ky = 0; ky < g.kernel_h; ++ky)
    for (int kx = 0; kx < g.kernel_w; ++kx)
      tap_off[ky * g.kernel_w + kx] = ky * row_stride + kx * pixel_stride;
}

// float32: 1x1 convs read the (strided) input slice in place; other kernels stage a zero-padded
// copy. kernel(m, a, tap_off, taps, block_index, o, n) computes m <= MR pixels (a[i] input
// pixel, o[i] output at the block's first channel) x n <= NR channels; a/o are padded to MR by
// repeating the last pixel.
template <int MR, int NR, typename Kernel>
Status SweepF32(const PackedConvF32& w, const ConvProblem& p, const float* in, float* out,
                Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  const int cin = g.in_channels;
  const int taps = g.kernel_h * g.kernel_w;
  const bool direct = g.kernel_h == 1 && g.kernel_w == 1;  // 1x1 never pads
  const float* src = nullptr;
  int64_t pix_stride, row_stride, img_stride;
  if (direct) {
    src = in + p.in.channel_offset;
    pix_stride = p.in.pixel_stride;
    row_stride = p.in.row_stride;
    img_stride = p.in.batch_stride;
  } else {
    const size_t elems = static_cast<size_t>(p.batch) * p.padded_h * p.padded_w * cin;
    auto* buf = static_cast<float*>(Scratch(elems * sizeof(float)));
    if (buf == nullptr) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
    BuildPadded(p, in, buf, cin, 0.0f, 0.0f, [](float v) { return v; });
    src = buf;
    pix_stride = cin;
    row_stride = static_cast<int64_t>(p.padded_w) * cin;
    img_stride = row_stride * p.padded_h;
  }
  int64_t tap_off[64 * 64];
  TapOffsets(g, row_stride, pix_stride, tap_off);
  const int blocks = (g.out_channels + NR - 1) / NR;
  const int pixels = p.out_h * p.out_w;
  for (int b = 0; b < p.batch; ++b) {
    for (int p0 = 0; p0 < pixels; p0 += MR) {
      const int m = std::min(MR, pixels - p0);
      const float* a[MR];
      float* o[MR];
      for (int i = 0; i < MR; ++i) {
        const int pix = p0 + std::min(i, m - 1);
        const int oy = pix / p.out_w, ox = pix % p.out_w;
        a[i] = src + b * img_stride + oy * g.stride_h * row_stride + ox * g.stride_w * pix_stride;
        o[i] = out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride +
               p.out.channel_offset;
      }
      for (int bi = 0; bi < blocks; ++bi) {
        float* ob[MR];
        for (int i = 0; i < MR; ++i) ob[i] = o[i] + bi * NR;
        kernel(m, a, tap_off, taps, bi, ob, std::min(NR, g.out_channels - bi * NR));
      }
    }
  }
  return Status::Ok();
}

// int8: the input is staged as element type A (convert(x) per element; border pixels `fill`,
// channels >= in_channels 0, matching zero weights) in rows of k_padded_ elements. 1x1 convs
// (never padded) stage each pixel chunk just before it is swept, so the copy stays in L2 and
// strided convs convert only the pixels they read; other kernels stage the padded image once
// (every input pixel is read by several taps). Pixel chunks of ~chunk_bytes of staged input are
// swept by every NR-channel weight block (weights in L1).
// kernel(m, a, tap_off, taps, block_index, o, n) as for SweepF32.
template <int MR, int NR, typename A, typename Convert, typename Kernel>
Status SweepInt8(const PackedConvInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                 A fill, Convert convert, int64_t chunk_bytes, Kernel kernel) {
  const ConvGeometry& g = w.geometry_;
  const int cp = w.k_padded_;
  const int taps = g.kernel_h * g.kernel_w;
  const bool per_chunk = taps == 1;
  constexpr int kMaxChunk = (1024 / MR) * MR;  // bounds the pointer tables below
  const size_t elems = per_chunk ? static_cast<size_t>(kMaxChunk + MR) * cp
                                 : static_cast<size_t>(p.batch) * p.padded_h * p.padded_w * cp;
  auto* buf = static_cast<A*>(Scratch(elems * sizeof(A)));
  if (buf == nullptr) return Status::Error(StatusCode::kOutOfMemory, "scratch allocation failed");
  if (!per_chunk) BuildPadded(p, in, buf, cp, fill, A{0}, convert);
  int64_t tap_off[64 * 64];
  TapOffsets(g, static_cast<int64_t>(p.padded_w) * cp, cp, tap_off);
  const int blocks = (g.out_channels + NR - 1) / NR;
  const int pixels = p.out_h * p.out_w;
  const int64_t per_pixel = static_cast<int64_t>(taps) * cp * static_cast<int64_t>(sizeof(A));
  const int chunk = std::min<int>(
      kMaxChunk, std::max<int>(MR, static_cast<int>(std::min<int64_t>(
                                       pixels, (chunk_bytes / per_pixel) / MR * MR))));
  const A* a_ptr[kMaxChunk + MR];
  int8_t* o_ptr[kMaxChunk + MR];
  const int cin = g.in_channels;
  for (int b = 0; b < p.batch; ++b) {
    const A* img = per_chunk ? buf : buf + static_cast<size_t>(b) * p.padded_h * p.padded_w * cp;
    for (int c0 = 0; c0 < pixels; c0 += chunk) {
      const int cn = std::min(pixels, c0 + chunk) - c0;
      // Input / output pixel addresses of the chunk, computed once (no divisions in the sweep),
      // padded to a multiple of MR by repeating the last pixel (its results are not stored).
      for (int i = 0; i < RoundUp(cn, MR); ++i) {
        const int pix = c0 + std::min(i, cn - 1);
        const int oy = pix / p.out_w, ox = pix % p.out_w;
        if (per_chunk) {
          A* d = buf + static_cast<size_t>(i) * cp;
          if (i < cn) {
            const int8_t* s = in + b * p.in.batch_stride + oy * g.stride_h * p.in.row_stride +
                              ox * g.stride_w * p.in.pixel_stride + p.in.channel_offset;
            for (int k = 0; k < cin; ++k) d[k] = convert(s[k]);
            std::fill(d + cin, d + cp, A{0});
          }
          a_ptr[i] = buf + static_cast<size_t>(std::min(i, cn - 1)) * cp;
        } else {
          a_ptr[i] = img + (static_cast<int64_t>(oy) * g.stride_h * p.padded_w + ox * g.stride_w) * cp;
        }
        o_ptr[i] = out + b * p.out.batch_stride + oy * p.out.row_stride + ox * p.out.pixel_stride +
                   p.out.channel_offset;
      }
      for (int bi = 0; bi < blocks; ++bi) {
        const int n = std::min(NR, g.out_channels - bi * NR);
        for (int i0 = 0; i0 < cn; i0 += MR) {
          int8_t* o[MR];
          for (int i = 0; i < MR; ++i) o[i] = o_ptr[i0 + i] + bi * NR;
          kernel(std::min(MR, cn - i0), a_ptr + i0, tap_off, taps, bi, o, n);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace internal
}  // namespace keras_csp
