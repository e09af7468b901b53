// int8 max pooling (see keras_csp/pool.h). Memory-bound: per output row, the vertical max of the
// window's input rows goes into a row buffer (one pass over each input row per output row, the
// channel loop contiguous so the compiler vectorizes it), then the horizontal max over the row
// buffer. Separable because max is associative; every element is the same max as TFLite's loop.
#include <algorithm>
#include <cstring>
#include <vector>

#include "keras_csp/pool.h"

namespace keras_csp {
namespace {

int SamePadBefore(int in, int out, int filter, int stride) {
  return std::max((out - 1) * stride + filter - in, 0) / 2;  // TFLite ComputePaddingHeightWidth
}

bool LayoutFits(const TensorLayout& l) {
  if (l.batch < 1 || l.height < 1 || l.width < 1 || l.channels < 1 || l.channel_offset < 0) return false;
  const int64_t last = (l.batch - 1) * l.batch_stride + (l.height - 1) * l.row_stride +
                       (l.width - 1) * l.pixel_stride + l.channel_offset + l.channels;
  return l.pixel_stride >= l.channel_offset + l.channels && last <= l.buffer_elements;
}

}  // namespace

Status ComputePoolOutputShape(const PoolGeometry& g, int in_h, int in_w, int* out_h, int* out_w) {
  if (g.filter_h < 1 || g.filter_w < 1 || g.filter_h > 64 || g.filter_w > 64)
    return Status::Error(StatusCode::kInvalidArgument, "pool filter size out of range [1, 64]");
  if (g.stride_h < 1 || g.stride_w < 1 || g.stride_h > 64 || g.stride_w > 64)
    return Status::Error(StatusCode::kInvalidArgument, "pool stride out of range [1, 64]");
  if (in_h < 1 || in_w < 1) return Status::Error(StatusCode::kInvalidArgument, "pool input is empty");
  if (g.padding == Padding::kSame) {
    *out_h = (in_h + g.stride_h - 1) / g.stride_h;
    *out_w = (in_w + g.stride_w - 1) / g.stride_w;
  } else {
    if (in_h < g.filter_h || in_w < g.filter_w) return Status::Error(StatusCode::kInvalidArgument, "pool filter larger than its VALID input");
    *out_h = (in_h - g.filter_h) / g.stride_h + 1;
    *out_w = (in_w - g.filter_w) / g.stride_w + 1;
  }
  return Status::Ok();
}

Status MaxPool2DInt8(const PoolGeometry& g, const int8_t* input, const TensorLayout& il, int8_t* output,
                     const TensorLayout& ol, int32_t act_min, int32_t act_max, ThreadPool* pool) {
  int oh = 0, ow = 0;
  Status s = ComputePoolOutputShape(g, il.height, il.width, &oh, &ow);
  if (!s.ok()) return s;
  if (ol.height != oh || ol.width != ow || ol.batch != il.batch)
    return Status::Error(StatusCode::kInvalidArgument, "pool output layout does not match the pooled shape");
  if (ol.channels != il.channels) return Status::Error(StatusCode::kInvalidArgument, "pool input and output channel counts differ");
  if (!LayoutFits(il) || !LayoutFits(ol)) return Status::Error(StatusCode::kOutOfRange, "pool layout exceeds its buffer");
  if (act_min < -128 || act_max > 127 || act_min > act_max) return Status::Error(StatusCode::kInvalidArgument, "pool activation range invalid");
  if (!input || !output) return Status::Error(StatusCode::kNullPointer, "null pool buffer");
  const int pad_t = g.padding == Padding::kSame ? SamePadBefore(il.height, oh, g.filter_h, g.stride_h) : 0;
  const int pad_l = g.padding == Padding::kSame ? SamePadBefore(il.width, ow, g.filter_w, g.stride_w) : 0;
  const int c = il.channels;
  const int rows = il.batch * oh;
  const int tasks = std::min(rows, pool ? pool->threads() * 4 : 1);
  const int8_t lo = static_cast<int8_t>(act_min), hi = static_cast<int8_t>(act_max);
  ParallelFor(pool, tasks, [&](int t) {
    std::vector<int8_t> colmax(size_t(il.width) * c);  // the vertical max of one output row's window
    for (int r = int(int64_t(rows) * t / tasks); r < int(int64_t(rows) * (t + 1) / tasks); ++r) {
      const int n = r / oh, oy = r % oh;
      const int y0 = std::max(0, oy * g.stride_h - pad_t), y1 = std::min(il.height, oy * g.stride_h - pad_t + g.filter_h);
      const int8_t* in_n = input + n * il.batch_stride + il.channel_offset;
      for (int x = 0; x < il.width; ++x) {
        int8_t* m = colmax.data() + size_t(x) * c;
        std::memcpy(m, in_n + y0 * il.row_stride + x * il.pixel_stride, c);
        for (int y = y0 + 1; y < y1; ++y) {
          const int8_t* p = in_n + y * il.row_stride + x * il.pixel_stride;
          for (int k = 0; k < c; ++k) m[k] = std::max(m[k], p[k]);
        }
      }
      int8_t* out_row = output + n * ol.batch_stride + oy * ol.row_stride + ol.channel_offset;
      for (int ox = 0; ox < ow; ++ox) {
        const int x0 = std::max(0, ox * g.stride_w - pad_l), x1 = std::min(il.width, ox * g.stride_w - pad_l + g.filter_w);
        int8_t* o = out_row + ox * ol.pixel_stride;
        const int8_t* first = colmax.data() + size_t(x0) * c;
        for (int k = 0; k < c; ++k) o[k] = std::min(hi, std::max(lo, first[k]));
        for (int x = x0 + 1; x < x1; ++x) {
          const int8_t* m = colmax.data() + size_t(x) * c;
          for (int k = 0; k < c; ++k) o[k] = std::max(o[k], std::min(hi, m[k]));
        }
      }
    }
  });
  return Status::Ok();
}

}  // namespace keras_csp
