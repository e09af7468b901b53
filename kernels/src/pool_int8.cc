// int8 max pooling (see keras_csp/pool.h). Memory-bound: per output row, the vertical max of the
// window's input rows goes into a row buffer (one pass over each input row per output row, the
// channel loop contiguous so the compiler vectorizes it), then the horizontal max over the row
// buffer. Separable because max is associative; every element is the same max as TFLite's loop.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_internal.h"
#include "keras_csp/pool.h"

namespace keras_csp {
namespace {

// A pool window has a conv's output shape and padding (TFLite computes both the same way).
ConvGeometry WindowGeometry(const PoolGeometry& g) {
  ConvGeometry c;
  c.kernel_h = g.filter_h;
  c.kernel_w = g.filter_w;
  c.stride_h = g.stride_h;
  c.stride_w = g.stride_w;
  c.padding = g.padding;
  return c;
}

// Output rows [r0, r1) (over batch x out_h). Everything arrives by value: a byte store could alias
// a captured reference, which would keep the compiler from computing the loop counts (no SIMD).
void MaxPoolRows(const PoolGeometry g, const int8_t* input, const TensorLayout il, int8_t* output,
                 const TensorLayout ol, const int oh, const int ow, const int pad_t, const int pad_l,
                 const uint8_t lo, const uint8_t hi, const int r0, const int r1) {
  const int c = il.channels, width = il.width;
  std::vector<uint8_t> colmax(size_t(width) * c);  // the vertical max of one output row's window
  std::vector<uint8_t> acc(c);                     // one output pixel's max
  for (int r = r0; r < r1; ++r) {
    const int n = r / oh, oy = r % oh;
    const int y0 = std::max(0, oy * g.stride_h - pad_t), y1 = std::min(il.height, oy * g.stride_h - pad_t + g.filter_h);
    const int8_t* in_n = input + n * il.batch_stride + il.channel_offset;
    for (int x = 0; x < width; ++x) {
      uint8_t* __restrict m = colmax.data() + size_t(x) * c;
      const int8_t* __restrict p0 = in_n + y0 * il.row_stride + x * il.pixel_stride;
      for (int k = 0; k < c; ++k) m[k] = static_cast<uint8_t>(p0[k]) ^ 0x80;
      for (int y = y0 + 1; y < y1; ++y) {
        const int8_t* __restrict p = in_n + y * il.row_stride + x * il.pixel_stride;
        for (int k = 0; k < c; ++k) m[k] = std::max<uint8_t>(m[k], static_cast<uint8_t>(p[k]) ^ 0x80);
      }
    }
    int8_t* out_row = output + n * ol.batch_stride + oy * ol.row_stride + ol.channel_offset;
    for (int ox = 0; ox < ow; ++ox) {
      const int x0 = std::max(0, ox * g.stride_w - pad_l), x1 = std::min(width, ox * g.stride_w - pad_l + g.filter_w);
      uint8_t* __restrict a = acc.data();
      std::memcpy(a, colmax.data() + size_t(x0) * c, c);
      for (int x = x0 + 1; x < x1; ++x) {
        const uint8_t* __restrict m = colmax.data() + size_t(x) * c;
        for (int k = 0; k < c; ++k) a[k] = std::max(a[k], m[k]);
      }
      int8_t* __restrict o = out_row + ox * ol.pixel_stride;
      for (int k = 0; k < c; ++k) o[k] = static_cast<int8_t>(std::min(hi, std::max(lo, a[k])) ^ 0x80);
    }
  }
}

// Output rows [r0, r1) of an average pool: per output row the column sums of the window's input
// rows (int32), then per output pixel the sum over the window's columns and the rounded division.
// The division is a float division truncated toward zero, exact here: |t| < 2^20 and the quotient's
// distance to the next integer, >= 1 / count, is above half a float ulp. So it vectorizes where an
// integer division per element would not.
void AvgPoolRows(const PoolGeometry g, const int8_t* input, const TensorLayout il, int8_t* output,
                 const TensorLayout ol, const int oh, const int ow, const int pad_t, const int pad_l,
                 const int32_t lo, const int32_t hi, const int r0, const int r1) {
  const int c = il.channels, width = il.width;
  std::vector<int32_t> colsum(size_t(width) * c);
  std::vector<int32_t> acc(c);
  for (int r = r0; r < r1; ++r) {
    const int n = r / oh, oy = r % oh;
    const int y0 = std::max(0, oy * g.stride_h - pad_t), y1 = std::min(il.height, oy * g.stride_h - pad_t + g.filter_h);
    const int8_t* in_n = input + n * il.batch_stride + il.channel_offset;
    for (int x = 0; x < width; ++x) {
      int32_t* __restrict m = colsum.data() + size_t(x) * c;
      const int8_t* __restrict p0 = in_n + y0 * il.row_stride + x * il.pixel_stride;
      for (int k = 0; k < c; ++k) m[k] = p0[k];
      for (int y = y0 + 1; y < y1; ++y) {
        const int8_t* __restrict p = in_n + y * il.row_stride + x * il.pixel_stride;
        for (int k = 0; k < c; ++k) m[k] += p[k];
      }
    }
    int8_t* out_row = output + n * ol.batch_stride + oy * ol.row_stride + ol.channel_offset;
    for (int ox = 0; ox < ow; ++ox) {
      const int x0 = std::max(0, ox * g.stride_w - pad_l), x1 = std::min(width, ox * g.stride_w - pad_l + g.filter_w);
      int32_t* __restrict a = acc.data();
      std::memcpy(a, colsum.data() + size_t(x0) * c, c * sizeof(int32_t));
      for (int x = x0 + 1; x < x1; ++x) {
        const int32_t* __restrict m = colsum.data() + size_t(x) * c;
        for (int k = 0; k < c; ++k) a[k] += m[k];
      }
      const int32_t count = (y1 - y0) * (x1 - x0), half = count / 2;
      const float fcount = static_cast<float>(std::max(count, 1));  // a window always has a pixel
      int8_t* __restrict o = out_row + ox * ol.pixel_stride;
      for (int k = 0; k < c; ++k) {
        const int32_t t = a[k] > 0 ? a[k] + half : a[k] - half;  // TFLite: round half away from zero
        const int32_t q = static_cast<int32_t>(static_cast<float>(t) / fcount);
        o[k] = static_cast<int8_t>(std::min(hi, std::max(lo, q)));
      }
    }
  }
}

// 2x2 windows at stride 2 that never leave the input (CSPDenseNet's / DenseNet's transition
// pools): the four int8 pixels sum in int16 and the division by 4 with ties away from zero is
// q = (s + 2 - (s <= 0)) >> 2 (s > 0: (s + 2) / 4; s <= 0: (s - 2) / 4 toward zero = (s + 1) >> 2),
// so the channel loop vectorizes over 16-bit lanes; the generic path above took ~0.3 ns per input
// element on Zen 4.
void AvgPool2x2Rows(const int8_t* input, const TensorLayout il, int8_t* output, const TensorLayout ol,
                    const int oh, const int ow, const int16_t lo, const int16_t hi, const int r0, const int r1) {
  const int c = il.channels;
  for (int r = r0; r < r1; ++r) {
    const int n = r / oh, oy = r % oh;
    const int8_t* row0 = input + n * il.batch_stride + 2 * oy * il.row_stride + il.channel_offset;
    const int8_t* row1 = row0 + il.row_stride;
    int8_t* out_row = output + n * ol.batch_stride + oy * ol.row_stride + ol.channel_offset;
    for (int ox = 0; ox < ow; ++ox) {
      const int64_t x = int64_t(2 * ox) * il.pixel_stride;
      const int8_t* __restrict a = row0 + x;
      const int8_t* __restrict b = a + il.pixel_stride;
      const int8_t* __restrict d = row1 + x;
      const int8_t* __restrict e = d + il.pixel_stride;
      int8_t* __restrict o = out_row + ox * ol.pixel_stride;
      for (int k = 0; k < c; ++k) {
        const int16_t sum = int16_t(a[k] + b[k] + d[k] + e[k]);
        const int16_t q = int16_t((sum + 2 - (sum <= 0)) >> 2);
        o[k] = static_cast<int8_t>(std::min(hi, std::max(lo, q)));
      }
    }
  }
}

// Checks shared by the two pools; the output shape and pad offsets on success.
Status CheckPool(const PoolGeometry& g, const int8_t* input, const TensorLayout& il, const int8_t* output,
                 const TensorLayout& ol, int32_t act_min, int32_t act_max, ConvOutputShape* shape) {
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(WindowGeometry(g), il.height, il.width, shape));
  if (ol.height != shape->out_h || ol.width != shape->out_w || ol.batch != il.batch)
    return Status::Error(StatusCode::kInvalidArgument, "pool output layout does not match the pooled shape");
  if (ol.channels != il.channels) return Status::Error(StatusCode::kInvalidArgument, "pool input and output channel counts differ");
  KCSP_RETURN_IF_ERROR(internal::CheckLayout(input, il, "pool input"));
  KCSP_RETURN_IF_ERROR(internal::CheckLayout(output, ol, "pool output"));
  KCSP_RETURN_IF_ERROR(internal::CheckAliasing(input, il, output, ol));
  if (act_min < -128 || act_max > 127 || act_min > act_max) return Status::Error(StatusCode::kInvalidArgument, "pool activation range invalid");
  return Status::Ok();
}

// Checks the arguments, then runs rows(shape, r0, r1) over the output rows (batch x out_h) on the
// pool's threads: one task per thread, and more of about 64K window operations each for a large pool
// (a pool of under 32K operations runs on the calling thread). Before, a pool under 64K window
// operations ran on the calling thread: the SPPF's three 5x5 pools at 10x10x128 (YOLOv8-n / v5-n at
// 320) took 13.1 us there, 9.9 us split over two threads (Zen 4), and the worker, idle for that
// long, fell asleep before the next conv (~17 us to wake it on this VM).
template <typename Rows>
Status RunPool(const PoolGeometry& g, const int8_t* input, const TensorLayout& il, const int8_t* output,
               const TensorLayout& ol, int32_t act_min, int32_t act_max, ThreadPool* pool, Rows rows_fn) {
  ConvOutputShape shape;
  KCSP_RETURN_IF_ERROR(CheckPool(g, input, il, output, ol, act_min, act_max, &shape));
  const int rows = il.batch * shape.out_h;
  const int64_t work = int64_t(rows) * (int64_t(il.width) * g.filter_h + int64_t(shape.out_w) * g.filter_w) * il.channels;
  const int threads = pool ? pool->threads() : 1;
  const int64_t want = work < (int64_t{1} << 15) ? 1 : std::max<int64_t>(threads, work >> 16);
  const int tasks = int(std::max<int64_t>(1, std::min<int64_t>({rows, threads * 4, want})));
  ParallelFor(pool, tasks, [&](int t) {
    rows_fn(shape, int(int64_t(rows) * t / tasks), int(int64_t(rows) * (t + 1) / tasks));
  });
  return Status::Ok();
}

}  // namespace

Status ComputePoolOutputShape(const PoolGeometry& g, int in_h, int in_w, int* out_h, int* out_w) {
  ConvOutputShape shape;
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(WindowGeometry(g), in_h, in_w, &shape));
  *out_h = shape.out_h;
  *out_w = shape.out_w;
  return Status::Ok();
}

Status MaxPool2DInt8(const PoolGeometry& g, const int8_t* input, const TensorLayout& il, int8_t* output,
                     const TensorLayout& ol, int32_t act_min, int32_t act_max, ThreadPool* pool) {
  // Values are kept as uint8 (x ^ 0x80, order-preserving) so that baseline SSE2 (pmaxub) vectorizes
  // the max; NEON has both.
  const uint8_t lo = static_cast<uint8_t>(act_min ^ 0x80), hi = static_cast<uint8_t>(act_max ^ 0x80);
  return RunPool(g, input, il, output, ol, act_min, act_max, pool, [&](const ConvOutputShape& sh, int r0, int r1) {
    MaxPoolRows(g, input, il, output, ol, sh.out_h, sh.out_w, sh.pad_top, sh.pad_left, lo, hi, r0, r1);
  });
}

Status AvgPool2DInt8(const PoolGeometry& g, const int8_t* input, const TensorLayout& il, int8_t* output,
                     const TensorLayout& ol, int32_t act_min, int32_t act_max, ThreadPool* pool) {
  return RunPool(g, input, il, output, ol, act_min, act_max, pool, [&](const ConvOutputShape& sh, int r0, int r1) {
    // Every window inside the input: 2x2 / 2 whose last window ends by the last row and column.
    const bool inside = sh.pad_top == 0 && sh.pad_left == 0 && 2 * sh.out_h <= il.height && 2 * sh.out_w <= il.width;
    if (g.filter_h == 2 && g.filter_w == 2 && g.stride_h == 2 && g.stride_w == 2 && inside)
      AvgPool2x2Rows(input, il, output, ol, sh.out_h, sh.out_w, int16_t(act_min), int16_t(act_max), r0, r1);
    else
      AvgPoolRows(g, input, il, output, ol, sh.out_h, sh.out_w, sh.pad_top, sh.pad_left, act_min, act_max, r0, r1);
  });
}

}  // namespace keras_csp
