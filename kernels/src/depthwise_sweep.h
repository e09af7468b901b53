// The output sweep shared by the SIMD depthwise kernels: output rows [row_begin, row_end) of
// batch * out_h, every output pixel with the input pixels of its in-range taps (padded taps are
// skipped: they contribute 0, as in TFLite). Plain C++; each variant file includes it under its
// own target flags.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "conv_internal.h"

namespace keras_csp {
namespace internal {

constexpr int kDepthwiseNR = 16;  // output channels per packed block

// Packed layout of the SIMD depthwise kernels, per block of 16 output channels: the variant's
// parameter rows (param_bytes), then the weights [tap][16] as T, then `extra_bytes` of a variant's own.
template <typename T>
size_t DepthwiseBlockBytes(const PackedDepthwiseInt8& w, size_t param_bytes, size_t extra_bytes = 0) {
  return param_bytes + static_cast<size_t>(w.geometry_.kernel_h) * w.geometry_.kernel_w * kDepthwiseNR * sizeof(T) +
         extra_bytes;
}

// pack_params(int32_t* rows, int oc0) writes block oc0's parameter rows; pack_extra(uint8_t* extra,
// int oc0) its extra bytes.
// Returns the packed base; trailing_bytes (zeroed) follow the blocks.
template <typename T, typename PackParams, typename PackExtra>
uint8_t* PackDepthwiseBlocks(PackedDepthwiseInt8* w, size_t param_bytes, PackParams pack_params, size_t extra_bytes,
                             PackExtra pack_extra, size_t trailing_bytes = 0) {
  const int taps = w->geometry_.kernel_h * w->geometry_.kernel_w, cout = w->geometry_.out_channels;
  const size_t bb = DepthwiseBlockBytes<T>(*w, param_bytes, extra_bytes);
  const int blocks = (cout + kDepthwiseNR - 1) / kDepthwiseNR;
  auto* base = static_cast<uint8_t*>(AllocPacked(w, bb * blocks + trailing_bytes));
  for (int bi = 0; bi < blocks; ++bi) {
    const int oc0 = bi * kDepthwiseNR;
    pack_params(reinterpret_cast<int32_t*>(base + bi * bb), oc0);
    auto* wt = reinterpret_cast<T*>(base + bi * bb + param_bytes);
    for (int t = 0; t < taps; ++t)
      for (int j = 0; j < kDepthwiseNR && oc0 + j < cout; ++j)
        wt[t * kDepthwiseNR + j] = w->weights_[static_cast<size_t>(t) * cout + oc0 + j];
    pack_extra(base + bi * bb + bb - extra_bytes, oc0);
  }
  return base;
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

// ---- The dot-product depthwise kernels (AVX-512 VNNI, NEON dotprod): one instruction sums four
// taps of a channel, so taps come in groups of four slots. Kernels of up to 4 rows group them by
// column (group kx, slot ky), so that a column's interleaved inputs serve every output pixel whose
// window holds it (the 3-column kernels at stride 1 or 2 across: DotColumnPath); taller kernels take
// 4 taps at a time in row-major order. Unused slots have zero weights and read the zero-point row.
inline bool DotColumnGroups(const ConvGeometry& g) { return g.kernel_h <= 4; }
inline int DotTapGroups(const ConvGeometry& g) {
  return DotColumnGroups(g) ? g.kernel_w : (g.kernel_h * g.kernel_w + 3) / 4;
}
// The slot (4 * group + index in the group) of tap (ky, kx), and the tap (ky * kernel_w + kx) in
// slot k of group gi, or -1.
inline int DotSlot(const ConvGeometry& g, int ky, int kx) {
  return DotColumnGroups(g) ? 4 * kx + ky : ky * g.kernel_w + kx;
}
inline int DotSlotTap(const ConvGeometry& g, int gi, int k) {
  const int t = DotColumnGroups(g) ? (k < g.kernel_h ? k * g.kernel_w + gi : -1) : 4 * gi + k;
  return t < g.kernel_h * g.kernel_w ? t : -1;
}
inline bool DotColumnPath(const ConvGeometry& g) {
  return DotColumnGroups(g) && g.kernel_w == 3 && g.stride_w <= 2;
}
// The x86 dot-product kernels' dispatch: column(m) on the column path, else pixel(m, groups) with
// the tap-group count 3 (the group loop unrolled) or 0 (a run-time count); m is the multiplier (1 or
// 2), both as std::integral_constant.
template <typename Column, typename Pixel>
void DispatchDotDepthwise(const PackedDepthwiseInt8& w, Column column, Pixel pixel) {
  auto run = [&](auto m) {
    if (DotColumnPath(w.geometry_))
      column(m);
    else if (DotTapGroups(w.geometry_) == 3)
      pixel(m, std::integral_constant<int, 3>{});
    else
      pixel(m, std::integral_constant<int, 0>{});
  };
  if (w.multiplier_ == 1)
    run(std::integral_constant<int, 1>{});
  else
    run(std::integral_constant<int, 2>{});
}

// bias[oc] - offset * sum over taps of w[oc], wrapping like the reference's int32 accumulator.
inline int32_t DotFoldedBias(const PackedDepthwiseInt8& w, int oc, int32_t offset) {
  const int taps = w.geometry_.kernel_h * w.geometry_.kernel_w, cout = w.geometry_.out_channels;
  int64_t sum = 0;
  for (int t = 0; t < taps; ++t) sum += w.weights_[static_cast<size_t>(t) * cout + oc];
  return static_cast<int32_t>(static_cast<uint32_t>(w.bias_[oc]) - static_cast<uint32_t>(offset * sum));
}
// The zero-point row after the packed blocks (64 bytes past the input channels: a whole block's
// load from it stays inside).
inline size_t DotZeroPointRowBytes(const PackedDepthwiseInt8& w) {
  return static_cast<size_t>(w.geometry_.in_channels + 64 + 63) / 64 * 64;
}

// Output rows [row_begin, row_end): pixel(x, o) per output pixel, x[DotSlot(ky, kx)] pointing at
// channel 0 of tap (ky, kx)'s input pixel or at the zero-point row, o at the pixel's channel 0.
template <typename Pixel>
void SweepDotDepthwise(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end, const int8_t* zp_row, Pixel pixel) {
  const ConvGeometry& g = w.geometry_;
  // 32 KiB for the largest kernels (64 x 64; only the first slots are touched). Not thread_local:
  // see SweepDepthwise.
  const int8_t* x[64 * 64];
  for (int i = 0; i < 4 * DotTapGroups(g); ++i) x[i] = zp_row;  // the slots no tap fills keep it
  ForEachOutputPixel(g, p, in, out, row_begin, row_end, [&](const int8_t* image, int iy0, int ix0, int8_t* o) {
    WindowPointers(g, p, image, iy0, ix0, zp_row, [&](int ky, int kx) { return DotSlot(g, ky, kx); }, x);
    pixel(x, o);
  });
}

// The column path's rows: row(rows, orow) per output row, rows[ky] the input row under kernel row
// ky (null outside the image and past kernel_h), orow at channel 0 of the row's first pixel.
template <typename Row>
void SweepDotColumns(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                     int row_begin, int row_end, Row row) {
  const ConvGeometry& g = w.geometry_;
  for (int r = row_begin; r < row_end; ++r) {
    const int b = r / p.out_h, oy = r % p.out_h;
    const int iy0 = oy * g.stride_h - p.pad_top;
    const int8_t* image = in + b * p.in.batch_stride + p.in.channel_offset;
    const int8_t* rows[4];
    for (int ky = 0; ky < 4; ++ky) {
      const int iy = iy0 + ky;
      rows[ky] = ky < g.kernel_h && iy >= 0 && iy < p.in_h ? image + iy * p.in.row_stride : nullptr;
    }
    row(rows, out + b * p.out.batch_stride + oy * p.out.row_stride + p.out.channel_offset);
  }
}

// Input column ix's slot pointers (kFour: 4 kernel rows, else 3; the fourth slot then unused).
template <bool kFour>
inline void ColumnPointers(const int8_t* const* rows, const int8_t* zp_row, int in_w, int64_t pixel_stride, int ix,
                           const int8_t** x) {
  const bool in = ix >= 0 && ix < in_w;
  for (int ky = 0; ky < (kFour ? 4 : 3); ++ky) x[ky] = in && rows[ky] ? rows[ky] + ix * pixel_stride : zp_row;
}

// run(full, stride, four) with std::bool_constant / std::integral_constant arguments: the column
// path's template parameters (stride and row count as constants: GCC otherwise spilled the kept
// columns; AVX-512, 3x3/1 28x28x384: 69 -> 42 us).
template <typename Run>
void DispatchColumnBlockRow(const ConvGeometry& g, bool full, Run run) {
  auto with_full = [&](auto stride, auto four) {
    if (full)
      run(std::true_type{}, stride, four);
    else
      run(std::false_type{}, stride, four);
  };
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  if (g.stride_w == 1)
    g.kernel_h == 4 ? with_full(One{}, std::true_type{}) : with_full(One{}, std::false_type{});
  else
    g.kernel_h == 4 ? with_full(Two{}, std::true_type{}) : with_full(Two{}, std::false_type{});
}

// The column path's walk: per output row and block of kBlock output channels (n of them, the
// last block maybe fewer), run(rows, orow, oc0, bi, n, full, stride, four) with
// DispatchColumnBlockRow's tags.
template <int kBlock, typename Run>
void SweepColumnBlocks(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* in, int8_t* out,
                       int row_begin, int row_end, Run run) {
  const ConvGeometry& g = w.geometry_;
  SweepDotColumns(w, p, in, out, row_begin, row_end, [&](const int8_t* const* rows, int8_t* orow) {
    for (int oc0 = 0, bi = 0; oc0 < g.out_channels; oc0 += kBlock, ++bi) {
      const int n = std::min(kBlock, g.out_channels - oc0);
      DispatchColumnBlockRow(g, n == kBlock,
                             [&](auto full, auto stride, auto four) { run(rows, orow, oc0, bi, n, full, stride, four); });
    }
  });
}

}  // namespace internal
}  // namespace keras_csp
