// libFuzzer target: the keras_csp kernel entry points (kernels/include/keras_csp/conv.h).
//
// The fuzz bytes choose an entry point, a variant, the conv geometry (kernel, stride, padding,
// channels), the quantization (zero points, multipliers, shifts, activation range, rounding),
// the tensor layouts (shape, channel slice, strides, declared buffer size), channel splits /
// offsets / concat order, aliasing and pointer alignment -- inside and outside the valid ranges.
// Every buffer is heap-allocated with exactly the size the call declares (so ASan sees any
// access past it) and filled from the fuzz bytes. Contract checked:
//   * every call returns a Status (never aborts / throws / touches memory it was not given);
//   * int8: when the scalar reference and an ISA variant both accept a call, their outputs
//     (the whole output buffer) are bit-identical (differential check);
//   * a rejected call leaves its output buffer untouched.
// Calls whose (valid) work would exceed kMaxMacs are skipped to keep executions fast.
// The element-wise post ops (elementwise.h) ride on the helpers' inputs: fuzzed tables and ADD
// parameters (refused when out of range), strides and channel counts, every kernel against the
// scalar one on buffers of exactly the size the call reads.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <memory>
#include <vector>

#include "keras_csp/conv.h"
#include "keras_csp/elementwise.h"

using namespace keras_csp;

namespace {

constexpr int64_t kMaxElems = 1 << 15;   // largest activation buffer (elements)
constexpr int64_t kMaxWeights = 1 << 15; // largest weight tensor (elements)
constexpr int64_t kMaxMacs = 1 << 18;    // largest conv (multiply-accumulates) actually run

void Die(const char* what, const Status& s) {
  std::fprintf(stderr, "fuzz_kernels: %s (%s: %s)\n", what, StatusCodeName(s.code()),
               s.message().c_str());
  std::abort();
}

// Small values mostly, with edge cases.
int Dim(FuzzedDataProvider& f, int lo_valid = 1, int hi_common = 8) {
  switch (f.ConsumeIntegralInRange<int>(0, 19)) {
    case 0: return f.ConsumeIntegralInRange<int>(-3, lo_valid - 1);
    case 1: return f.ConsumeIntegral<int>();
    case 2: return f.ConsumeIntegralInRange<int>(hi_common, hi_common + 62);
    case 3: return f.PickValueInArray({INT32_MAX, INT32_MIN, 1 << 20, (1 << 20) + 1, 65, 64});
    default: return f.ConsumeIntegralInRange<int>(lo_valid, hi_common);
  }
}

int64_t Elems(int64_t a, int64_t b, int64_t c, int64_t d) {
  // product with saturation at 2^62 (all factors are int-sized here)
  int64_t r = 1;
  for (int64_t x : {a, b, c, d}) {
    if (x <= 0) return 0;
    if (r > (int64_t{1} << 62) / x) return int64_t{1} << 62;
    r *= x;
  }
  return r;
}

template <typename T>
struct Buffer {
  std::vector<T> storage;
  T* p = nullptr;
  int64_t n = 0;
  bool misaligned = false;
  // Exactly n elements (n clamped to [0, kMaxElems]); optionally a misaligned pointer.
  void Init(FuzzedDataProvider& f, int64_t want, bool misalign) {
    n = want < 0 ? 0 : (want > kMaxElems ? kMaxElems : want);
    storage.assign(static_cast<size_t>(n) + (misalign ? 1 : 0), T{});
    const uint8_t seed = f.ConsumeIntegral<uint8_t>();
    auto* bytes = reinterpret_cast<uint8_t*>(storage.data());
    for (size_t i = 0; i < storage.size() * sizeof(T); ++i)
      bytes[i] = static_cast<uint8_t>(seed * 31u + i * 131u + (i >> 7));
    if constexpr (sizeof(T) == 4) {  // keep floats finite-ish most of the time
      for (auto& v : storage) {
        float x;
        std::memcpy(&x, &v, 4);
        if (!(x == x) || x > 1e6f || x < -1e6f) x = static_cast<float>(seed % 7) - 3.0f;
        std::memcpy(&v, &x, 4);
      }
    }
    misaligned = misalign && sizeof(T) > 1;
    p = misaligned ? reinterpret_cast<T*>(reinterpret_cast<uint8_t*>(storage.data()) + 1)
                   : storage.data();
    if (n == 0 && !f.ConsumeBool()) p = nullptr;  // also exercise null pointers
  }
};

ConvGeometry Geometry(FuzzedDataProvider& f) {
  ConvGeometry g;
  const bool common = f.ConsumeIntegralInRange<int>(0, 3) != 0;
  if (common) {
    g.kernel_h = g.kernel_w = f.PickValueInArray({1, 1, 3, 3, 5});
    if (f.ConsumeIntegralInRange<int>(0, 3) == 0) g.kernel_w = f.ConsumeIntegralInRange<int>(1, 4);
    g.stride_h = g.stride_w = f.ConsumeIntegralInRange<int>(1, 2);
    if (f.ConsumeIntegralInRange<int>(0, 3) == 0) g.stride_w = f.ConsumeIntegralInRange<int>(1, 3);
  } else {
    g.kernel_h = Dim(f, 1, 7);
    g.kernel_w = Dim(f, 1, 7);
    g.stride_h = Dim(f, 1, 4);
    g.stride_w = Dim(f, 1, 4);
  }
  g.padding = f.ConsumeIntegralInRange<int>(0, 15) == 0
                  ? static_cast<Padding>(f.ConsumeIntegralInRange<int>(2, 5))
                  : (f.ConsumeBool() ? Padding::kSame : Padding::kValid);
  g.in_channels = Dim(f, 1, 24);
  g.out_channels = Dim(f, 1, 24);
  return g;
}

Int8QuantParams Quant(FuzzedDataProvider& f, int out_channels) {
  Int8QuantParams q;
  const bool bad = f.ConsumeIntegralInRange<int>(0, 7) == 0;
  q.input_zero_point = bad ? f.ConsumeIntegralInRange<int32_t>(-300, 300)
                           : f.ConsumeIntegralInRange<int32_t>(-128, 127);
  q.output_zero_point = bad ? f.ConsumeIntegralInRange<int32_t>(-300, 300)
                            : f.ConsumeIntegralInRange<int32_t>(-128, 127);
  int n = out_channels >= 0 && out_channels <= 4096 ? out_channels : 4;
  if (f.ConsumeIntegralInRange<int>(0, 15) == 0) n = f.ConsumeIntegralInRange<int>(0, 40);
  const int mode = f.ConsumeIntegralInRange<int>(0, 3);
  for (int c = 0; c < n; ++c) {
    int32_t m, s;
    if (mode == 0) {  // arbitrary
      m = f.ConsumeIntegral<int32_t>();
      s = f.ConsumeIntegralInRange<int32_t>(-40, 40);
    } else {  // realistic: m in [2^30, 2^31), small negative shift, with extremes
      m = f.ConsumeIntegralInRange<int32_t>(1 << 30, INT32_MAX);
      s = f.ConsumeIntegralInRange<int32_t>(-31, mode == 3 ? 30 : 2);
    }
    q.output_multiplier.push_back(m);
    q.output_shift.push_back(s);
  }
  if (f.ConsumeIntegralInRange<int>(0, 15) == 0 && !q.output_shift.empty())
    q.output_shift.pop_back();
  q.act_min = bad ? f.ConsumeIntegralInRange<int32_t>(-200, 200)
                  : f.ConsumeIntegralInRange<int32_t>(-128, 0);
  q.act_max = bad ? f.ConsumeIntegralInRange<int32_t>(-200, 200)
                  : f.ConsumeIntegralInRange<int32_t>(0, 127);
  const int r = f.ConsumeIntegralInRange<int>(0, 31);
  q.rounding = r == 0 ? static_cast<Rounding>(f.ConsumeIntegralInRange<int>(3, 4))  // invalid
               : r < 11 ? Rounding::kFp32
                        : (f.ConsumeBool() ? Rounding::kHalfUp : Rounding::kAwayFromZero);
  if (q.rounding == Rounding::kFp32) {
    // Realistic scales, sometimes out of range / NaN / a missing entry.
    int ns = f.ConsumeIntegralInRange<int>(0, 15) == 0 ? f.ConsumeIntegralInRange<int>(0, 40) : n;
    for (int c = 0; c < ns; ++c) {
      float v = std::ldexp(f.ConsumeFloatingPointInRange<float>(1.f, 2.f),
                           f.ConsumeIntegralInRange<int>(bad ? -40 : -32, bad ? 12 : 7));
      if (bad && f.ConsumeIntegralInRange<int>(0, 7) == 0) v = std::nanf("");
      q.requant_scale.push_back(v);
    }
  }
  return q;
}

// A layout for a tensor [batch, h, w, total] sliced at [offset, offset + channels), possibly
// perturbed; buffer_elements is what the harness really allocates.
TensorLayout Layout(FuzzedDataProvider& f, int batch, int h, int w, int total, int offset,
                    int channels) {
  TensorLayout l = NhwcSlice(batch, h, w, total, offset, channels);
  // NhwcSlice saturates: any stride out of range and the perturbations below would overflow.
  auto out_of_range = [](int64_t v) { return v < 0 || v > (int64_t{1} << 40); };
  const bool huge = out_of_range(l.buffer_elements) || out_of_range(l.batch_stride) ||
                    out_of_range(l.row_stride) || out_of_range(l.pixel_stride);
  switch (huge ? 9 : f.ConsumeIntegralInRange<int>(0, 9)) {
    case 0: l.pixel_stride += f.ConsumeIntegralInRange<int>(-3, 5); break;
    case 1: l.row_stride += f.ConsumeIntegralInRange<int>(-5, 9); break;
    case 2: l.batch_stride += f.ConsumeIntegralInRange<int>(-9, 17); break;
    case 3: l.buffer_elements += f.ConsumeIntegralInRange<int>(-8, 8); break;
    case 4: {  // padded strides (views into a larger buffer); left as they were if they overflow
      const int64_t px = l.pixel_stride + f.ConsumeIntegralInRange<int>(0, 4);
      int64_t row, img, all;
      if (__builtin_mul_overflow(px, int64_t{w}, &row) || __builtin_mul_overflow(row + 8, int64_t{h}, &img) ||
          __builtin_mul_overflow(img + 16, int64_t{batch}, &all))
        break;
      l.pixel_stride = px;
      l.row_stride = row + f.ConsumeIntegralInRange<int>(0, 8);
      l.batch_stride = l.row_stride * h + f.ConsumeIntegralInRange<int>(0, 16);
      l.buffer_elements = l.batch_stride * batch;
      break;
    }
    case 5: l.channel_offset = f.ConsumeIntegral<int>(); break;
    case 6: l.channels = f.ConsumeIntegralInRange<int>(-2, 40); break;
    case 7:
      l.pixel_stride = f.ConsumeIntegral<int64_t>();
      l.row_stride = f.ConsumeIntegral<int64_t>();
      break;
    default: break;
  }
  if (l.buffer_elements > kMaxElems) l.buffer_elements = kMaxElems;
  return l;
}

int64_t Macs(const ConvGeometry& g, int batch, int h, int w) {
  ConvOutputShape s;
  if (!ComputeOutputShape(g, h, w, &s).ok()) return 0;
  const int64_t a = Elems(batch, s.out_h, s.out_w, 1);
  const int64_t b = Elems(g.kernel_h, g.kernel_w, g.in_channels, g.out_channels);
  if (a == 0 || b == 0) return 0;
  return a > (int64_t{1} << 62) / b ? int64_t{1} << 62 : a * b;
}

struct Int8Pack {
  std::unique_ptr<PackedConvInt8> ref, var;  // scalar reference, variant under test
};

template <typename T>
bool Same(const Buffer<T>& a, const Buffer<T>& b) {
  if (a.storage.empty() || b.storage.empty()) return a.storage.size() == b.storage.size();
  return a.storage.size() == b.storage.size() &&
         std::memcmp(a.storage.data(), b.storage.data(), a.storage.size() * sizeof(T)) == 0;
}

void FuzzInt8(FuzzedDataProvider& f) {
  const ConvGeometry g = Geometry(f);
  const Int8QuantParams q = Quant(f, g.out_channels);
  const int64_t nw = Elems(g.out_channels, g.kernel_h, g.kernel_w, g.in_channels);
  Buffer<int8_t> weights;
  weights.Init(f, nw, false);
  if (nw > kMaxWeights) {
    // Too large to allocate: Create may only be called if it rejects before reading, which
    // it must do for out-of-range geometry. Pass a 0-byte buffer only then.
    if (g.kernel_h >= 1 && g.kernel_w >= 1 && g.kernel_h <= 64 && g.kernel_w <= 64 &&
        g.stride_h >= 1 && g.stride_w >= 1 && g.stride_h <= 64 && g.stride_w <= 64 &&
        g.in_channels >= 1 && g.out_channels >= 1 && g.in_channels <= (1 << 20) &&
        g.out_channels <= (1 << 20) && int64_t(g.kernel_h) * g.kernel_w * g.in_channels <= (1 << 22))
      return;  // valid but too large for the harness
    weights.storage.assign(1, 0);
    weights.p = weights.storage.data();
  }
  Buffer<int32_t> bias;
  const bool no_bias = f.ConsumeIntegralInRange<int>(0, 7) == 0;
  bias.Init(f, g.out_channels > 0 && g.out_channels <= 4096 ? g.out_channels : 0,
            f.ConsumeIntegralInRange<int>(0, 31) == 0);
  const int32_t* bias_p = no_bias ? nullptr : bias.p;
  if (!no_bias && bias.n < g.out_channels) {
    if (g.out_channels <= (1 << 20) && g.out_channels >= 1 && nw <= kMaxWeights) return;
  }
  Variant variant = f.PickValueInArray({Variant::kAuto, Variant::kScalar, Variant::kAvx2,
                                        Variant::kAvx512Vnni, Variant::kAmx, Variant::kAvxVnni,
                                        Variant::kNeonDotprod, Variant::kNeonI8mm, Variant::kNeon});
  if (f.ConsumeIntegralInRange<int>(0, 63) == 0) variant = static_cast<Variant>(17);
  Int8Pack pk;
  Status s_ref = PackedConvInt8::Create(g, weights.p, bias_p, q, Variant::kScalar, &pk.ref);
  Status s_var = PackedConvInt8::Create(g, weights.p, bias_p, q, variant, &pk.var);
  if (s_ref.ok() != s_var.ok() && s_var.code() != StatusCode::kUnsupported &&
      s_var.code() != StatusCode::kInvalidArgument)
    Die("scalar and variant Create disagree", s_ref.ok() ? s_var : s_ref);
  if (!s_ref.ok()) {
    if (pk.ref) Die("Create failed but produced a packing", s_ref);
    return;
  }
  if (!pk.var) pk.var = nullptr;
  if (f.ConsumeIntegralInRange<int>(0, 3) == 0) {  // an output table (PackedConvInt8::SetOutputTable) on both
    int8_t table[256];
    for (auto& e : table) e = f.ConsumeIntegral<int8_t>();
    pk.ref->SetOutputTable(table);
    if (pk.var) pk.var->SetOutputTable(table);
  }

  const int op = f.ConsumeIntegralInRange<int>(0, 2);
  const int batch = f.ConsumeIntegralInRange<int>(0, 7) == 0 ? Dim(f, 1, 3)
                                                             : f.ConsumeIntegralInRange<int>(1, 2);
  const int h = Dim(f, 1, 9), w = Dim(f, 1, 9);
  if (Macs(g, batch, h, w) > kMaxMacs) return;
  if (op == 0) {  // generic strided Conv2DInt8
    const int in_total = g.in_channels + f.ConsumeIntegralInRange<int>(0, 5);
    const int in_off = f.ConsumeIntegralInRange<int>(0, in_total - g.in_channels);
    TensorLayout li = Layout(f, batch, h, w, in_total, in_off, g.in_channels);
    ConvOutputShape os;
    if (!ComputeOutputShape(g, h > 0 ? h : 1, w > 0 ? w : 1, &os).ok()) os = {1, 1, 0, 0};
    int oh = os.out_h, ow = os.out_w;
    if (f.ConsumeIntegralInRange<int>(0, 7) == 0)
      oh = static_cast<int>(std::min<int64_t>(int64_t{oh} + f.ConsumeIntegralInRange<int>(-1, 1), INT32_MAX));
    const int out_total = g.out_channels + f.ConsumeIntegralInRange<int>(0, 5);
    const int out_off = f.ConsumeIntegralInRange<int>(0, out_total - g.out_channels);
    TensorLayout lo = Layout(f, batch, oh, ow, out_total, out_off, g.out_channels);
    const bool alias = f.ConsumeIntegralInRange<int>(0, 5) == 0;
    Buffer<int8_t> in, out_ref, out_var;
    in.Init(f, li.buffer_elements, false);
    if (alias) {  // in place: the output is a channel slice of the input buffer
      lo = li;
      lo.channel_offset = f.ConsumeIntegralInRange<int>(-1, in_total + 2);
      lo.channels = g.out_channels;
      lo.height = oh;
      lo.width = ow;
      Buffer<int8_t> in2 = in;
      in2.p = in2.p ? in2.storage.data() : nullptr;
      Status a = Conv2DInt8(*pk.ref, in.p, li, in.p, lo);
      if (pk.var) {
        Status b = Conv2DInt8(*pk.var, in2.p, li, in2.p, lo);
        if (a.ok() != b.ok()) Die("in-place: scalar/variant status differ", a.ok() ? b : a);
        if (a.ok() && !Same(in, in2)) Die("in-place: variant output differs from scalar", a);
      }
      return;
    }
    out_ref.Init(f, lo.buffer_elements, false);
    out_var = out_ref;
    out_var.p = out_var.p ? out_var.storage.data() : nullptr;
    const Buffer<int8_t> before = out_ref;
    // A quarter with output ops (ConvOutputOps): a table and / or an ADD, its residual in a buffer of
    // its own, in the output's buffer (each side its own copy) or missing, through a fuzzed layout.
    std::unique_ptr<Int8PostOps> post_ops;
    Buffer<int8_t> res;
    ConvOutputOps post_ref, post_var;
    if (f.ConsumeIntegralInRange<int>(0, 3) == 0) {
      int8_t table[256];
      for (auto& e : table) e = f.ConsumeIntegral<int8_t>();
      Int8AddParams add;
      add.y_multiplier = f.ConsumeIntegralInRange<int32_t>(-(1 << 22), 1 << 22);
      add.r_multiplier = f.ConsumeIntegralInRange<int32_t>(-(1 << 22), 1 << 22);
      add.bias = f.ConsumeIntegralInRange<int32_t>(-(1 << 24), 1 << 24);
      add.shift = f.ConsumeIntegralInRange<int32_t>(1, 31);
      add.output_zero_point = f.ConsumeIntegralInRange<int32_t>(-128, 127);
      add.output_min = f.ConsumeIntegralInRange<int32_t>(-128, 0);
      add.output_max = f.ConsumeIntegralInRange<int32_t>(0, 127);
      const int mode = f.ConsumeIntegralInRange<int>(0, 2);  // 0: table, 1: add, 2: both
      if (Int8PostOps::Create(mode != 1 ? table : nullptr, mode != 0 ? &add : nullptr, Variant::kAuto, &post_ops).ok()) {
        post_ref.ops = post_var.ops = post_ops.get();
        const int where = f.ConsumeIntegralInRange<int>(0, 7);
        const int r_total = g.out_channels + f.ConsumeIntegralInRange<int>(0, 5);
        const TensorLayout lr = where == 0 ? Layout(f, batch, oh, ow, out_total, f.ConsumeIntegralInRange<int>(-1, out_total),
                                                    g.out_channels)
                                           : Layout(f, batch, oh, ow, r_total,
                                                    f.ConsumeIntegralInRange<int>(0, r_total - g.out_channels), g.out_channels);
        post_ref.residual_layout = post_var.residual_layout = lr;
        if (where == 0) {  // a slice of the output's buffer: refused unless disjoint with the same strides
          post_ref.residual = out_ref.p;
          post_var.residual = out_var.p;
        } else if (where != 1) {
          res.Init(f, lr.buffer_elements, false);
          post_ref.residual = post_var.residual = res.p;
        }
      }
    }
    auto conv = [&](const PackedConvInt8& pc, int8_t* o, const ConvOutputOps& post) {
      return post.ops ? Conv2DInt8(pc, in.p, li, o, lo, post) : Conv2DInt8(pc, in.p, li, o, lo);
    };
    Status a = conv(*pk.ref, out_ref.p, post_ref);
    if (!a.ok() && !Same(out_ref, before)) Die("rejected call wrote its output", a);
    if (pk.var) {
      Status b = conv(*pk.var, out_var.p, post_var);
      if (a.ok() != b.ok()) Die("scalar/variant status differ", a.ok() ? b : a);
      if (a.ok() && !Same(out_ref, out_var)) Die("variant output differs from scalar", a);
    }
  } else if (op == 1) {  // CspPartialConvInt8
    int c_skip = f.ConsumeIntegralInRange<int>(0, 3) == 0 ? Dim(f, 0, 12)
                                                           : f.ConsumeIntegralInRange<int>(0, 12);
    int channels = static_cast<int>(std::min<int64_t>(int64_t{c_skip} + g.in_channels, INT32_MAX));
    if (f.ConsumeIntegralInRange<int>(0, 7) == 0) channels = Dim(f, 1, 30);
    const int64_t nx = Elems(batch, h, w, channels);
    if (nx > kMaxElems) return;  // the API has no x size: the harness must provide all of it
    Buffer<int8_t> x, out_ref, out_var;
    x.Init(f, nx, false);
    int64_t need = Elems(batch, h, w, int64_t(c_skip) + g.out_channels);
    int64_t out_elems = need + (f.ConsumeIntegralInRange<int>(0, 5) == 0
                                    ? f.ConsumeIntegralInRange<int>(-4, 4) : 0);
    out_ref.Init(f, out_elems, false);
    out_var = out_ref;
    out_var.p = out_var.p ? out_var.storage.data() : nullptr;
    const Buffer<int8_t> before = out_ref;
    const auto order = f.ConsumeIntegralInRange<int>(0, 31) == 0
                           ? static_cast<ConcatOrder>(2)
                           : (f.ConsumeBool() ? ConcatOrder::kSkipLast : ConcatOrder::kSkipFirst);
    Status a = CspPartialConvInt8(*pk.ref, x.p, batch, h, w, channels, c_skip, out_ref.p,
                                  out_ref.n, order);
    if (!a.ok() && !Same(out_ref, before)) Die("rejected CSP call wrote its output", a);
    if (pk.var) {
      Status b = CspPartialConvInt8(*pk.var, x.p, batch, h, w, channels, c_skip, out_var.p,
                                    out_var.n, order);
      if (a.ok() != b.ok()) Die("CSP: scalar/variant status differ", a.ok() ? b : a);
      if (a.ok() && !Same(out_ref, out_var)) Die("CSP: variant output differs from scalar", a);
    }
  } else {  // DenseAppendInt8
    int block_channels = g.in_channels + g.out_channels + f.ConsumeIntegralInRange<int>(0, 6);
    if (f.ConsumeIntegralInRange<int>(0, 7) == 0) block_channels = Dim(f, 1, 40);
    int in_off = f.ConsumeIntegralInRange<int>(0, 3) == 0 ? Dim(f, 0, 20)
                                                          : f.ConsumeIntegralInRange<int>(0, 8);
    int out_off = f.ConsumeIntegralInRange<int>(0, 3) == 0 ? Dim(f, 0, 40)
                      : static_cast<int>(std::min<int64_t>(int64_t{in_off} + g.in_channels, INT32_MAX));
    const int64_t nb = Elems(batch, h, w, block_channels);
    if (nb > kMaxElems) return;
    Buffer<int8_t> blk;
    blk.Init(f, nb, false);
    Buffer<int8_t> blk2 = blk;
    blk2.p = blk2.p ? blk2.storage.data() : nullptr;
    const Buffer<int8_t> before = blk;
    Status a = DenseAppendInt8(*pk.ref, blk.p, batch, h, w, block_channels, in_off, out_off);
    if (!a.ok() && !Same(blk, before)) Die("rejected dense append wrote its block", a);
    if (pk.var) {
      Status b = DenseAppendInt8(*pk.var, blk2.p, batch, h, w, block_channels, in_off, out_off);
      if (a.ok() != b.ok()) Die("dense: scalar/variant status differ", a.ok() ? b : a);
      if (a.ok() && !Same(blk, blk2)) Die("dense: variant output differs from scalar", a);
    }
  }
}

void FuzzF32(FuzzedDataProvider& f) {
  const ConvGeometry g = Geometry(f);
  const int64_t nw = Elems(g.out_channels, g.kernel_h, g.kernel_w, g.in_channels);
  if (nw > kMaxWeights) return;
  Buffer<float> weights, bias;
  weights.Init(f, nw, f.ConsumeIntegralInRange<int>(0, 31) == 0);
  bias.Init(f, g.out_channels > 0 ? g.out_channels : 0, f.ConsumeIntegralInRange<int>(0, 31) == 0);
  if (nw == 0 && weights.p) return;
  float lo = f.ConsumeFloatingPoint<float>(), hi = f.ConsumeFloatingPoint<float>();
  if (f.ConsumeBool()) { lo = -3.4e38f; hi = 3.4e38f; }
  const Variant variant = f.PickValueInArray({Variant::kAuto, Variant::kScalar, Variant::kAvx2,
                                              Variant::kAvx512Vnni, Variant::kAmx, Variant::kAvxVnni,
                                              Variant::kNeonDotprod, Variant::kNeonI8mm, Variant::kNeon});
  std::unique_ptr<PackedConvF32> p;
  Status s = PackedConvF32::Create(g, weights.p, f.ConsumeBool() ? nullptr : bias.p, lo, hi,
                                   variant, &p);
  if (!s.ok()) return;
  const int batch = f.ConsumeIntegralInRange<int>(1, 2);
  const int h = Dim(f, 1, 9), w = Dim(f, 1, 9);
  if (Macs(g, batch, h, w) > kMaxMacs) return;
  const int op = f.ConsumeIntegralInRange<int>(0, 2);
  if (op == 0) {
    const int in_total = g.in_channels + f.ConsumeIntegralInRange<int>(0, 3);
    TensorLayout li = Layout(f, batch, h, w, in_total, in_total - g.in_channels, g.in_channels);
    ConvOutputShape os;
    if (!ComputeOutputShape(g, h > 0 ? h : 1, w > 0 ? w : 1, &os).ok()) os = {1, 1, 0, 0};
    TensorLayout lo2 = Layout(f, batch, os.out_h, os.out_w, g.out_channels, 0, g.out_channels);
    Buffer<float> in, out;
    in.Init(f, li.buffer_elements, f.ConsumeIntegralInRange<int>(0, 31) == 0);
    out.Init(f, lo2.buffer_elements, f.ConsumeIntegralInRange<int>(0, 31) == 0);
    (void)Conv2DF32(*p, in.p, li, out.p, lo2);
  } else if (op == 1) {
    const int c_skip = f.ConsumeIntegralInRange<int>(-1, 8);
    const int channels = c_skip + g.in_channels;
    const int64_t nx = Elems(batch, h, w, channels);
    if (nx > kMaxElems) return;
    Buffer<float> x, out;
    x.Init(f, nx, false);
    out.Init(f, Elems(batch, h, w, int64_t(c_skip) + g.out_channels) +
                    f.ConsumeIntegralInRange<int>(-2, 2), false);
    (void)CspPartialConvF32(*p, x.p, batch, h, w, channels, c_skip, out.p, out.n,
                            f.ConsumeBool() ? ConcatOrder::kSkipLast : ConcatOrder::kSkipFirst);
  } else {
    const int block_channels = g.in_channels + g.out_channels + f.ConsumeIntegralInRange<int>(-2, 4);
    const int in_off = f.ConsumeIntegralInRange<int>(-1, 4);
    const int out_off = f.ConsumeBool() ? in_off + g.in_channels : f.ConsumeIntegralInRange<int>(-1, 30);
    const int64_t nb = Elems(batch, h, w, block_channels);
    if (nb > kMaxElems) return;
    Buffer<float> blk;
    blk.Init(f, nb, false);
    (void)DenseAppendF32(*p, blk.p, batch, h, w, block_channels, in_off, out_off);
  }
}

void FuzzPostOps(FuzzedDataProvider& f) {
  std::vector<int8_t> table(256);
  for (auto& t : table) t = f.ConsumeIntegral<int8_t>();
  Int8AddParams a;
  a.y_multiplier = f.ConsumeBool() ? f.ConsumeIntegralInRange<int32_t>(-(1 << 22), 1 << 22) : f.ConsumeIntegral<int32_t>();
  a.r_multiplier = f.ConsumeBool() ? f.ConsumeIntegralInRange<int32_t>(-(1 << 22), 1 << 22) : f.ConsumeIntegral<int32_t>();
  a.bias = f.ConsumeIntegral<int32_t>();
  a.shift = f.ConsumeIntegralInRange<int32_t>(-1, 33);
  a.output_zero_point = f.ConsumeIntegralInRange<int32_t>(-130, 130);
  a.output_min = f.ConsumeIntegralInRange<int32_t>(-130, 130);
  a.output_max = f.ConsumeIntegralInRange<int32_t>(-130, 130);
  const bool with_table = f.ConsumeBool(), with_add = f.ConsumeBool();
  const Variant v = f.PickValueInArray({Variant::kAuto, Variant::kAvx2, Variant::kAvx512Vnni, Variant::kAmx,
                                        Variant::kAvxVnni, Variant::kNeon, Variant::kNeonDotprod, Variant::kSme});
  std::unique_ptr<Int8PostOps> ops, ref;
  const Status s = Int8PostOps::Create(with_table ? table.data() : nullptr, with_add ? &a : nullptr, v, &ops);
  if (!s.ok()) {
    if (with_add && Int8AddParamsSupported(a) && s.code() != StatusCode::kUnsupported) Die("post ops refused", s);
    return;
  }
  if (!Int8PostOps::Create(with_table ? table.data() : nullptr, with_add ? &a : nullptr, Variant::kScalar, &ref).ok())
    Die("scalar post ops refused what another kernel took", s);
  const int64_t pixels = f.ConsumeIntegralInRange<int64_t>(-1, 300);
  const int channels = f.ConsumeIntegralInRange<int>(-1, 130);
  const int64_t ys = channels + f.ConsumeIntegralInRange<int64_t>(-2, 40), rs = channels + f.ConsumeIntegralInRange<int64_t>(-2, 40);
  // what an accepted call reads and writes: pixels - 1 strides and one pixel's channels
  const bool valid = pixels >= 0 && channels >= 0 && (pixels <= 1 || (ys >= channels && (!with_add || rs >= channels)));
  auto need = [&](int64_t stride) { return pixels > 0 && channels > 0 ? (pixels - 1) * stride + channels : 0; };
  if (!valid) {  // refused before any access
    int8_t one = 0;
    if (ApplyInt8PostOps(*ops, &one, pixels, ys, channels, &one, rs).ok() && pixels > 0 && channels > 0 &&
        (with_table || with_add))  // an empty op list touches nothing and accepts anything
      Die("invalid post-op call accepted", Status::Ok());
    return;
  }
  if (need(ys) > kMaxElems || need(rs) > kMaxElems) return;
  std::vector<int8_t> y(need(ys)), r(with_add ? need(rs) : 0);
  for (auto& b : y) b = f.ConsumeIntegral<int8_t>();
  for (auto& b : r) b = f.ConsumeIntegral<int8_t>();
  std::vector<int8_t> y2 = y;
  const Status a1 = ApplyInt8PostOps(*ops, y.empty() ? nullptr : y.data(), pixels, ys, channels, r.empty() ? nullptr : r.data(), rs);
  const Status a2 = ApplyInt8PostOps(*ref, y2.empty() ? nullptr : y2.data(), pixels, ys, channels, r.empty() ? nullptr : r.data(), rs);
  if (a1.ok() != a2.ok()) Die("post-op kernels disagree on validity", a1.ok() ? a2 : a1);
  if (y != y2) Die("post-op kernel differs from the scalar one", a1);
}

// Depthwise (PackedDepthwiseInt8 / DepthwiseConv2DInt8): the variant's kernel (AVX-512 VNNI, AVX2,
// NEON dotprod, plain NEON; multipliers above 2 the scalar one) against the scalar reference, on
// fuzzed geometry, quantization and (perturbed) layouts: the same status, the same bytes.
// The scalar reference and a fuzzed variant of one packed op (create(variant, &packed) -> Status): the
// two Creates must agree (the variant may be unsupported on this CPU). False: nothing to run.
template <typename P, typename Create>
bool CreatePair(FuzzedDataProvider& f, const char* what, Create create, std::unique_ptr<P>* ref,
                std::unique_ptr<P>* var) {
  const Variant variant = f.PickValueInArray({Variant::kAuto, Variant::kAvx2, Variant::kAvx512Vnni, Variant::kAmx,
                                              Variant::kAvxVnni, Variant::kNeonDotprod, Variant::kNeon});
  const Status s_ref = create(Variant::kScalar, ref), s_var = create(variant, var);
  if (s_ref.ok() != s_var.ok() && s_var.code() != StatusCode::kUnsupported)
    Die((std::string(what) + ": scalar and variant Create disagree").c_str(), s_ref.ok() ? s_var : s_ref);
  return s_ref.ok() && *var;
}

// A conv run on fuzzed batch, spatial size and slice layouts by the scalar reference and by the
// variant (on 1 or 2 threads): run(variant?, in, in_layout, out, out_layout, pool) must give the same
// status and bytes. `macs_per_output`: the MACs of one output element (the run is skipped past kMaxMacs).
struct LayoutRun {
  bool ran = false;
  int h = 0;
  ConvOutputShape os;
  TensorLayout li, lo;
  Buffer<int8_t> in, out_ref;
  Status status;
};

// (Filled in place: Buffer::p points into its own storage, so a LayoutRun is not copied.)
template <typename Run>
void RunOnLayouts(FuzzedDataProvider& f, const ConvGeometry& g, int64_t macs_per_output, const char* what, Run run,
                  LayoutRun* out) {
  LayoutRun& r = *out;
  const int batch = f.ConsumeIntegralInRange<int>(1, 2);
  const int h = Dim(f, 1, 9), w = Dim(f, 1, 9);
  if (Elems(Elems(batch, h, w, 1), g.out_channels, macs_per_output, 1) > kMaxMacs) return;
  const int in_total = g.in_channels + f.ConsumeIntegralInRange<int>(0, 5);
  r.li = Layout(f, batch, h, w, in_total, f.ConsumeIntegralInRange<int>(0, in_total - g.in_channels), g.in_channels);
  if (!ComputeOutputShape(g, h > 0 ? h : 1, w > 0 ? w : 1, &r.os).ok()) r.os = {1, 1, 0, 0};
  const int out_total = g.out_channels + f.ConsumeIntegralInRange<int>(0, 5);
  r.lo = Layout(f, batch, r.os.out_h, r.os.out_w, out_total,
                f.ConsumeIntegralInRange<int>(0, out_total - g.out_channels), g.out_channels);
  Buffer<int8_t> out_var;
  r.in.Init(f, r.li.buffer_elements, false);
  r.out_ref.Init(f, r.lo.buffer_elements, false);
  out_var = r.out_ref;
  out_var.p = r.out_ref.p ? out_var.storage.data() : nullptr;
  static ThreadPool pool(2);
  r.status = run(false, r.in.p, r.li, r.out_ref.p, r.lo, nullptr);
  const Status b = run(true, r.in.p, r.li, out_var.p, r.lo, f.ConsumeBool() ? &pool : nullptr);
  if (r.status.ok() != b.ok()) Die((std::string(what) + ": scalar/variant status differ").c_str(), r.status.ok() ? b : r.status);
  if (r.status.ok() && !Same(r.out_ref, out_var))
    Die((std::string(what) + ": variant output differs from scalar").c_str(), r.status);
  r.ran = true;
  r.h = h;
}

void FuzzDepthwise(FuzzedDataProvider& f) {
  ConvGeometry g = Geometry(f);
  const int mult = f.ConsumeIntegralInRange<int>(0, 7) == 0 ? Dim(f, 1, 4) : f.ConsumeIntegralInRange<int>(1, 2);
  if (f.ConsumeIntegralInRange<int>(0, 7) != 0 && g.in_channels > 0 && g.in_channels <= (1 << 16) && mult > 0 &&
      mult <= 64)
    g.out_channels = g.in_channels * mult;  // mostly consistent; otherwise Create must refuse
  const Int8QuantParams q = Quant(f, g.out_channels);
  const int64_t nw = Elems(g.kernel_h, g.kernel_w, g.out_channels, 1);
  if (nw > kMaxWeights) return;
  Buffer<int8_t> weights;
  weights.Init(f, nw, false);
  Buffer<int32_t> bias;
  bias.Init(f, g.out_channels > 0 && g.out_channels <= 4096 ? g.out_channels : 0, false);
  std::unique_ptr<PackedDepthwiseInt8> ref, var;
  const int32_t* b = bias.n >= g.out_channels ? bias.p : nullptr;
  if (!CreatePair(
          f, "depthwise",
          [&](Variant v, std::unique_ptr<PackedDepthwiseInt8>* p) {
            return PackedDepthwiseInt8::Create(g, mult, weights.p, b, q, v, p);
          },
          &ref, &var))
    return;
  LayoutRun r;
  RunOnLayouts(
      f, g, int64_t{g.kernel_h} * g.kernel_w, "depthwise",
      [&](bool v, const int8_t* x, const TensorLayout& li, int8_t* y, const TensorLayout& lo, ThreadPool* pool) {
        return DepthwiseConv2DInt8(v ? *var : *ref, x, li, y, lo, pool);
      },
      &r);
  const int h = r.h;
  const ConvOutputShape& os = r.os;
  const TensorLayout &li = r.li, &lo = r.lo;
  const Buffer<int8_t>& in = r.in;
  const Buffer<int8_t>& out_ref = r.out_ref;
  const Status& a = r.status;
  if (!r.ran || !a.ok() || !in.p || !out_ref.p) return;
  // A band of image 0's output rows from a band of its input rows (DepthwiseConv2DInt8Rows), fuzzed and
  // often invalid (then refused): where accepted, the same bytes as those rows of the whole conv.
  const int first = f.ConsumeIntegralInRange<int>(0, h), band_h = f.ConsumeIntegralInRange<int>(1, h - first + 1);
  const int r0 = f.ConsumeIntegralInRange<int>(0, os.out_h), rows = f.ConsumeIntegralInRange<int>(1, os.out_h - r0 + 1);
  TensorLayout bi = li, bo = lo;
  bi.batch = bo.batch = 1;
  bi.height = band_h;
  bi.buffer_elements = li.buffer_elements - first * li.row_stride;
  bo.height = rows;
  bo.buffer_elements = rows * lo.row_stride;
  if (bi.buffer_elements < 0 || bo.buffer_elements <= 0 || bo.buffer_elements > kMaxElems) return;
  std::vector<int8_t> band(bo.buffer_elements, 0x5a);
  const Status c = DepthwiseConv2DInt8Rows(*var, in.p + first * li.row_stride, bi, first, h, band.data(), bo, r0);
  if (!c.ok()) return;
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < os.out_w; ++x)
      for (int k = 0; k < g.out_channels; ++k) {
        const int64_t at = y * lo.row_stride + x * lo.pixel_stride + lo.channel_offset + k;
        if (band[at] != out_ref.p[r0 * lo.row_stride + at]) Die("depthwise: a band of rows differs from the whole conv", c);
      }
}

// Grouped convs: fuzzed geometry, groups and layouts; every variant against the scalar reference
// (mostly groups of 4 or 8 in and out, the AVX-512 kernel's; others run per group).
void FuzzGrouped(FuzzedDataProvider& f) {
  ConvGeometry g = Geometry(f);
  const int groups = f.ConsumeIntegralInRange<int>(0, 3) ? f.ConsumeIntegralInRange<int>(1, 12) : Dim(f, 0, 64);
  if (f.ConsumeIntegralInRange<int>(0, 7) != 0 && groups > 0 && groups <= 4096) {  // mostly consistent; else Create must refuse
    const int gc = f.ConsumeIntegralInRange<int>(0, 3) ? (f.ConsumeBool() ? 4 : 8) : f.ConsumeIntegralInRange<int>(1, 9);
    g.in_channels = gc * groups;
    g.out_channels = (f.ConsumeIntegralInRange<int>(0, 3) ? gc : f.ConsumeIntegralInRange<int>(1, 5)) * groups;
  }
  const Int8QuantParams q = Quant(f, g.out_channels);
  const int cin_g = groups > 0 && g.in_channels > 0 ? g.in_channels / groups : 1;
  const int64_t nw = Elems(Elems(g.kernel_h, g.kernel_w, g.out_channels, 1), cin_g, 1, 1);
  if (nw > kMaxWeights || nw < 0) return;
  Buffer<int8_t> weights;
  weights.Init(f, nw, false);
  Buffer<int32_t> bias;
  bias.Init(f, g.out_channels > 0 && g.out_channels <= 4096 ? g.out_channels : 0, false);
  std::unique_ptr<PackedGroupedConvInt8> ref, var;
  const int32_t* b = bias.n >= g.out_channels ? bias.p : nullptr;
  if (!CreatePair(
          f, "grouped",
          [&](Variant v, std::unique_ptr<PackedGroupedConvInt8>* p) {
            return PackedGroupedConvInt8::Create(g, groups, weights.p, b, q, v, p);
          },
          &ref, &var))
    return;
  LayoutRun r;
  RunOnLayouts(
      f, g, Elems(g.kernel_h, g.kernel_w, cin_g, 1), "grouped",
      [&](bool v, const int8_t* x, const TensorLayout& li, int8_t* y, const TensorLayout& lo, ThreadPool* pool) {
        return GroupedConv2DInt8(v ? *var : *ref, x, li, y, lo, pool);
      },
      &r);
}

void FuzzHelpers(FuzzedDataProvider& f) {
  const ConvGeometry g = Geometry(f);
  ConvOutputShape s;
  (void)ComputeOutputShape(g, Dim(f, 1, 100), Dim(f, 1, 100), &s);
  const int oc = f.ConsumeIntegralInRange<int>(-1, 40);
  std::vector<float> fs(oc > 0 ? oc : 0);
  for (auto& v : fs) v = f.ConsumeFloatingPoint<float>();
  Int8QuantParams q;
  (void)MakeInt8QuantParams(f.ConsumeFloatingPoint<float>(), f.ConsumeIntegral<int32_t>(),
                            fs.empty() ? nullptr : fs.data(), oc, f.ConsumeFloatingPoint<float>(),
                            f.ConsumeIntegral<int32_t>(), -128, 127, &q);
  int32_t amin = 0, amax = 0;
  const auto act = f.PickValueInArray({Activation::kNone, Activation::kRelu, Activation::kRelu6});
  Int8ActivationRange(act, f.ConsumeFloatingPoint<float>(), f.ConsumeIntegralInRange<int32_t>(-128, 127),
                      &amin, &amax);
  Variant v;
  (void)ParseVariant(f.ConsumeRandomLengthString(16), &v);
  FuzzPostOps(f);
  // Here rather than as a case of its own, so that the saved inputs keep reaching their paths.
  FuzzDepthwise(f);
  FuzzGrouped(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider f(data, size);
  switch (f.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: FuzzHelpers(f); break;
    case 1:
    case 2: FuzzF32(f); break;
    default: FuzzInt8(f); break;
  }
  return 0;
}
