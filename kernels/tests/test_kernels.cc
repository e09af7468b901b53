// Self-contained C++ tests for the keras_csp kernels (no gtest): every available optimized
// variant against the scalar reference over a randomized sweep, the fused ops against an
// explicit split/conv/concat, requantization edge cases, and argument validation.
//
// Usage: test_kernels [--expect VARIANT]... [--expect-missing VARIANT]... [--trials N]
// Exit status is non-zero on any failure.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "keras_csp/conv.h"
#include "keras_csp/cpu_features.h"
#include "keras_csp/elementwise.h"
#include "keras_csp/peak.h"
#include "keras_csp/pool.h"
#include "keras_csp/quantization.h"
#include "keras_csp/threadpool.h"
#include "../src/task_grid.h"

using namespace keras_csp;

namespace {

int g_failures = 0;
int g_checks = 0;

#define CHECK(cond, ...)                                             \
  do {                                                               \
    ++g_checks;                                                      \
    if (!(cond)) {                                                   \
      ++g_failures;                                                  \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                             \
      std::fprintf(stderr, "\n");                                    \
    }                                                                \
  } while (0)

std::mt19937 rng(12345);
int RandInt(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
float RandF(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

// An environment variable set for a scope (KERAS_CSP_WINOGRAD is read when a conv is packed).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

const Variant kAllVariants[] = {Variant::kScalar,      Variant::kAvx2,     Variant::kAvxVnni, Variant::kAvx512Vnni,
                                Variant::kAmx,         Variant::kNeonDotprod, Variant::kNeonI8mm, Variant::kNeon,
                                Variant::kSme};

struct Case {
  ConvGeometry g;
  int n, h, w;
  int in_total, in_off, out_total, out_off;
};

// Input and output as channel slices of wider buffers half the time (offsets 0-9, 0-7 more channels).
void RandomSlices(Case* c) {
  c->in_off = RandInt(0, 1) ? RandInt(0, 9) : 0;
  c->in_total = c->in_off + c->g.in_channels + (RandInt(0, 1) ? RandInt(0, 7) : 0);
  c->out_off = RandInt(0, 1) ? RandInt(0, 9) : 0;
  c->out_total = c->out_off + c->g.out_channels + (RandInt(0, 1) ? RandInt(0, 7) : 0);
}

Case RandomCase() {
  Case c;
  const int k = RandInt(0, 3) == 0 ? 1 : (RandInt(0, 1) ? 3 : 1);
  c.g.kernel_h = c.g.kernel_w = k;
  c.g.stride_h = c.g.stride_w = RandInt(1, 2);
  if (RandInt(0, 5) == 0) c.g.stride_w = 3 - c.g.stride_h;
  c.g.padding = RandInt(0, 1) ? Padding::kSame : Padding::kValid;
  c.g.in_channels = RandInt(0, 3) == 0 ? RandInt(60, 140) : RandInt(1, 37);
  c.g.out_channels = RandInt(0, 3) == 0 ? RandInt(30, 80) : RandInt(1, 35);
  c.n = RandInt(1, 2);
  const int lo = c.g.padding == Padding::kValid ? k : 1;
  c.h = RandInt(lo, 11);
  c.w = RandInt(lo, 11);
  RandomSlices(&c);
  return c;
}

// A stem: a dense 1-3 channel image (no slice), a 3x3 / 5x5 / 7x7 kernel, mostly strided: the
// staging path that converts whole small pixels at once.
Case StemCase() {
  Case c;
  const int k = 3 + 2 * RandInt(0, 2);
  c.g.kernel_h = c.g.kernel_w = k;
  c.g.stride_h = c.g.stride_w = RandInt(0, 3) == 0 ? 1 : 2;
  c.g.padding = RandInt(0, 1) ? Padding::kSame : Padding::kValid;
  c.g.in_channels = RandInt(1, 3);
  c.g.out_channels = RandInt(0, 1) ? RandInt(1, 20) : RandInt(30, 70);
  c.n = RandInt(1, 2);
  c.h = RandInt(k, 29);
  c.w = RandInt(k, 29);
  c.in_off = 0;
  c.in_total = c.g.in_channels;
  c.out_off = 0;
  c.out_total = c.g.out_channels;
  return c;
}

// Stride-1 KxK convs of 13-32 input and up to 32 output channels on rows of 16+ pixels: the
// AVX-512 VNNI row tiles (16 pixels of a row; rows that are not a multiple of 16 mix them with the
// 8 x 16 tiles), slices in and out.
Case RowTileCase() {
  Case c;
  c.g.kernel_h = RandInt(0, 3) == 0 ? 1 + 2 * RandInt(0, 2) : 3;
  c.g.kernel_w = RandInt(0, 3) == 0 ? 1 + 2 * RandInt(0, 2) : 3;
  if (c.g.kernel_h == 1 && c.g.kernel_w == 1) c.g.kernel_w = 3;
  c.g.padding = RandInt(0, 3) == 0 ? Padding::kValid : Padding::kSame;
  c.g.in_channels = RandInt(0, 2) == 0 ? RandInt(17, 32) : RandInt(13, 16);
  c.g.out_channels = RandInt(0, 2) == 0 ? RandInt(1, 32) : 16;
  c.n = RandInt(1, 2);
  c.h = RandInt(c.g.kernel_h, 9);
  c.w = RandInt(0, 1) ? 16 * RandInt(1, 3) + c.g.kernel_w - 1 : RandInt(16 + c.g.kernel_w, 70);
  RandomSlices(&c);
  return c;
}

// Convs big enough to run on several threads (over 2^19 MACs, the sweeps' kMinParallelMacs): 1x1
// task chunks x block groups, KxK bands, each applying the output ops to its own outputs.
Case ThreadedCase() {
  Case c;
  c.g.kernel_h = c.g.kernel_w = RandInt(0, 1) ? 3 : 1;
  c.g.stride_h = c.g.stride_w = RandInt(0, 3) == 0 ? 2 : 1;
  c.g.padding = RandInt(0, 3) == 0 ? Padding::kValid : Padding::kSame;
  c.g.in_channels = RandInt(8, 96);
  c.g.out_channels = RandInt(0, 1) ? 16 * RandInt(1, 6) : RandInt(1, 100);
  c.n = RandInt(1, 2);
  c.h = RandInt(8, 40);
  c.w = RandInt(8, 40);
  auto macs = [&c] {
    return int64_t{c.g.kernel_h} * c.g.kernel_w * c.g.in_channels * c.g.out_channels * c.h * c.w /
           (c.g.stride_h * c.g.stride_w);
  };
  while (macs() < (int64_t{1} << 20)) c.h += 16;
  RandomSlices(&c);
  return c;
}

Int8QuantParams RandomQuant(int out_channels) {
  std::vector<float> fs(out_channels);
  for (auto& f : fs) f = RandF(0.0005f, 0.05f);
  Int8QuantParams q;
  const int zp_in = RandInt(-128, 127), zp_out = RandInt(-128, 127);
  int amin = -128, amax = 127;
  if (RandInt(0, 2) == 0) {
    amin = RandInt(-128, 0);
    amax = RandInt(amin, 127);
  }
  // Mostly realistic scales; sometimes > 1 effective scale (positive shift).
  const float out_scale = RandInt(0, 9) == 0 ? RandF(0.0001f, 0.001f) : RandF(0.01f, 0.5f);
  const float in_scale = RandF(0.005f, 0.1f);
  Status s = MakeInt8QuantParams(in_scale, zp_in, fs.data(), out_channels, out_scale,
                                 zp_out, amin, amax, &q);
  CHECK(s.ok(), "%s", s.message().c_str());
  const Rounding modes[] = {Rounding::kAwayFromZero, Rounding::kHalfUp, Rounding::kFp32};
  q.rounding = modes[RandInt(0, 2)];
  if (q.rounding == Rounding::kFp32)  // as XNNPACK: float products
    for (float f : fs) q.requant_scale.push_back(in_scale * f / out_scale);
  return q;
}

Int8AddParams RandomAddParams() {
  Int8AddParams a;
  const int big = RandInt(0, 2);  // 0: XNNPACK-like, 1: large multipliers, 2: at the int32 bound
  const int32_t m = big ? (1 << 22) : (1 << 16);
  a.y_multiplier = RandInt(-m, m);
  a.r_multiplier = RandInt(-m, m);
  const int64_t room = (int64_t{1} << 31) - 1 - 128 * (int64_t{std::abs(a.y_multiplier)} + std::abs(a.r_multiplier));
  const int64_t b = big == 2 ? room : std::min<int64_t>(room, 1 << 24);
  a.bias = static_cast<int32_t>(std::uniform_int_distribution<int64_t>(-b, b)(rng));
  a.shift = RandInt(1, 31);
  a.output_zero_point = RandInt(-128, 127);
  a.output_min = RandInt(-128, 0);
  a.output_max = RandInt(a.output_min, 127);
  return a;
}

int8_t AddReference(const Int8AddParams& a, int y, int r) {
  const int64_t acc = int64_t{a.bias} + int64_t{y} * a.y_multiplier + int64_t{r} * a.r_multiplier;
  const int64_t v = (acc >> a.shift) + a.output_zero_point;
  return static_cast<int8_t>(std::min<int64_t>(a.output_max, std::max<int64_t>(a.output_min, v)));
}

// pool: also run every variant on these threads (same bits expected).
void TestVariantsMatchScalarInt8(int trials, Case (*make_case)() = RandomCase, ThreadPool* pool = nullptr,
                                 const char* what = "int8") {
  int compared = 0, with_table = 0, in_epilogue = 0, with_post = 0, winograd = 0;
  for (int t = 0; t < trials; ++t) {
    const Case c = make_case();
    ConvOutputShape os;
    if (!ComputeOutputShape(c.g, c.h, c.w, &os).ok()) continue;
    const int taps = c.g.kernel_h * c.g.kernel_w;
    std::vector<int8_t> wts(static_cast<size_t>(c.g.out_channels) * taps * c.g.in_channels);
    for (auto& v : wts) v = static_cast<int8_t>(RandInt(-127, 127));
    std::vector<int32_t> bias(c.g.out_channels);
    for (auto& v : bias) v = RandInt(-20000, 20000);
    const Int8QuantParams q = RandomQuant(c.g.out_channels);
    std::vector<int8_t> in(static_cast<size_t>(c.n) * c.h * c.w * c.in_total);
    for (auto& v : in) v = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(c.n, c.h, c.w, c.in_total, c.in_off, c.g.in_channels);
    const TensorLayout lo = NhwcSlice(c.n, os.out_h, os.out_w, c.out_total, c.out_off, c.g.out_channels);
    std::vector<int8_t> ref(lo.buffer_elements, 77);
    std::unique_ptr<PackedConvInt8> pref;
    Status s = PackedConvInt8::Create(c.g, wts.data(), bias.data(), q, Variant::kScalar, &pref);
    CHECK(s.ok(), "%s", s.message().c_str());
    s = Conv2DInt8(*pref, in.data(), li, ref.data(), lo);
    CHECK(s.ok(), "%s", s.message().c_str());
    // A third of the cases with an output table (PackedConvInt8::SetOutputTable), the reference
    // looked up here over the output slice.
    std::vector<int8_t> table;
    if (RandInt(0, 2) == 0) {
      table.resize(256);
      for (auto& e : table) e = static_cast<int8_t>(RandInt(-128, 127));
      for (int b = 0; b < c.n; ++b)
        for (int y = 0; y < os.out_h; ++y)
          for (int x = 0; x < os.out_w; ++x)
            for (int k = 0; k < c.g.out_channels; ++k) {
              int8_t& e = ref[b * lo.batch_stride + y * lo.row_stride + x * lo.pixel_stride + lo.channel_offset + k];
              e = table[static_cast<uint8_t>(e)];
            }
    }
    // A third with post ops (Conv2DInt8's ConvOutputOps, applied inside the sweep's tasks): a table, an
    // ADD or both; the residual in a buffer of its own or in a slice of the input's buffer.
    ConvOutputOps post;
    std::unique_ptr<Int8PostOps> post_ops;
    std::vector<int8_t> own_residual;
    if (RandInt(0, 2) == 0) {
      const int mode = RandInt(0, 2);  // 0: table, 1: add, 2: both
      std::vector<int8_t> post_table(256);
      for (auto& e : post_table) e = static_cast<int8_t>(RandInt(-128, 127));
      const Int8AddParams add = RandomAddParams();
      s = Int8PostOps::Create(mode != 1 ? post_table.data() : nullptr, mode != 0 ? &add : nullptr, Variant::kAuto,
                              &post_ops);
      CHECK(s.ok(), "%s", s.message().c_str());
      post.ops = post_ops.get();
      const int cout = c.g.out_channels;
      if (mode != 0) {
        if (RandInt(0, 2) == 0 && c.in_total >= cout && os.out_h == c.h && os.out_w == c.w) {
          post.residual = in.data();
          post.residual_layout = NhwcSlice(c.n, c.h, c.w, c.in_total, RandInt(0, c.in_total - cout), cout);
        } else {
          const int r_total = cout + RandInt(0, 9), r_off = RandInt(0, r_total - cout);
          own_residual.resize(static_cast<size_t>(c.n) * os.out_h * os.out_w * r_total);
          for (auto& v : own_residual) v = static_cast<int8_t>(RandInt(-128, 127));
          post.residual = own_residual.data();
          post.residual_layout = NhwcSlice(c.n, os.out_h, os.out_w, r_total, r_off, cout);
        }
      }
      const TensorLayout& lr = post.residual_layout;
      for (int b = 0; b < c.n; ++b)
        for (int y = 0; y < os.out_h; ++y)
          for (int x = 0; x < os.out_w; ++x)
            for (int k = 0; k < cout; ++k) {
              int8_t& e = ref[b * lo.batch_stride + y * lo.row_stride + x * lo.pixel_stride + lo.channel_offset + k];
              if (mode != 1) e = post_table[static_cast<uint8_t>(e)];
              if (mode != 0)
                e = AddReference(add, e,
                                 post.residual[b * lr.batch_stride + y * lr.row_stride + x * lr.pixel_stride +
                                               lr.channel_offset + k]);
            }
    }
    for (Variant v : kAllVariants) {
      if (v == Variant::kScalar && table.empty() && !post.ops) continue;
      if (!VariantAvailable(v)) continue;
      std::unique_ptr<PackedConvInt8> p;
      s = PackedConvInt8::Create(c.g, wts.data(), bias.data(), q, v, &p);
      CHECK(s.ok(), "%s", s.message().c_str());
      if (!table.empty()) p->SetOutputTable(table.data());
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), pool}) {
        if (tp == nullptr && pool != nullptr) continue;  // with a pool: the pool run only
        std::vector<int8_t> out(lo.buffer_elements, 77);
        s = post.ops ? Conv2DInt8(*p, in.data(), li, out.data(), lo, post, tp)
                     : Conv2DInt8(*p, in.data(), li, out.data(), lo, tp);
        CHECK(s.ok(), "%s", s.message().c_str());
        size_t bad = 0;
        for (size_t i = 0; i < out.size(); ++i) bad += out[i] != ref[i];
        CHECK(bad == 0, "%s %s: %zu mismatches (k=%d s=%dx%d pad=%d cin=%d cout=%d h=%d w=%d n=%d threads=%d table=%d%s post=%d residual=%d)",
              what, VariantName(v), bad, c.g.kernel_h, c.g.stride_h, c.g.stride_w, (int)c.g.padding, c.g.in_channels,
              c.g.out_channels, c.h, c.w, c.n, tp ? tp->threads() : 1, !table.empty(),
              p->output_table_in_epilogue() ? " in the epilogue" : "", post.ops != nullptr, post.residual != nullptr);
        ++compared;
        with_table += !table.empty();
        with_post += post.ops != nullptr;
        in_epilogue += p->output_table_in_epilogue();
        winograd += p->RunsWinograd(os.out_h * os.out_w);
      }
    }
  }
  std::printf("%s variant-vs-scalar comparisons: %d (%d with an output table, %d of them in the epilogue; %d with post ops;"
              " %d run by winograd)\n", what, compared, with_table, in_epilogue, with_post, winograd);
}

// Grouped convs: the scalar reference against the dense conv with block-diagonal weights (the same
// int32 sums), then every variant against the scalar reference; groups of 4 and 8 (the AVX-512 VNNI
// kernel's) and others (the scalar kernel in every variant), slices, all three roundings, 1 vs 3 threads.
void TestGroupedMatchesScalar(int trials) {
  ThreadPool pool(3);
  int compared = 0, simd = 0;
  for (int t = 0; t < trials; ++t) {
    ConvGeometry g;
    g.kernel_h = RandInt(0, 3) == 0 ? RandInt(1, 4) : 3;
    g.kernel_w = RandInt(0, 3) == 0 ? RandInt(1, 4) : g.kernel_h;
    g.stride_h = g.stride_w = RandInt(1, 2);
    g.padding = RandInt(0, 3) ? Padding::kSame : Padding::kValid;
    const int kernel_group[] = {4, 8, 8, 16, 32};  // the grouped kernels' sizes (16, 32: AVX-512 VNNI)
    const int gc = RandInt(0, 3) ? kernel_group[RandInt(0, 4)] : RandInt(1, 6);  // input channels per group
    const int oc_g = RandInt(0, 3) ? gc : RandInt(1, 5);                       // output channels per group
    const int groups = RandInt(1, 24);
    g.in_channels = gc * groups;
    g.out_channels = oc_g * groups;
    const int n = RandInt(1, 2), h = RandInt(std::max(1, g.kernel_h), 9), w = RandInt(std::max(1, g.kernel_w), 9);
    ConvOutputShape os;
    if (!ComputeOutputShape(g, h, w, &os).ok()) continue;
    const int in_off = RandInt(0, 1) ? RandInt(0, 5) : 0, in_total = in_off + g.in_channels + RandInt(0, 3);
    const int out_off = RandInt(0, 1) ? RandInt(0, 5) : 0, out_total = out_off + g.out_channels + RandInt(0, 3);
    const bool extremes = RandInt(0, 3) == 0;
    auto value = [&](int lo) { return static_cast<int8_t>(extremes ? (RandInt(0, 1) ? lo : 127) : RandInt(lo, 127)); };
    std::vector<int8_t> wts(static_cast<size_t>(g.out_channels) * g.kernel_h * g.kernel_w * gc);
    for (auto& v : wts) v = value(-127);
    std::vector<int32_t> bias(g.out_channels);
    for (auto& v : bias) v = RandInt(-20000, 20000);
    const Int8QuantParams q = RandomQuant(g.out_channels);
    std::vector<int8_t> in(static_cast<size_t>(n) * h * w * in_total);
    for (auto& v : in) v = value(-128);
    const TensorLayout li = NhwcSlice(n, h, w, in_total, in_off, g.in_channels);
    const TensorLayout lo = NhwcSlice(n, os.out_h, os.out_w, out_total, out_off, g.out_channels);
    std::unique_ptr<PackedGroupedConvInt8> pref;
    Status s = PackedGroupedConvInt8::Create(g, groups, wts.data(), bias.data(), q, Variant::kScalar, &pref);
    CHECK(s.ok(), "%s", s.message().c_str());
    std::vector<int8_t> ref(lo.buffer_elements, 77);
    CHECK(GroupedConv2DInt8(*pref, in.data(), li, ref.data(), lo).ok(), "scalar grouped conv");
    // the dense conv with block-diagonal weights
    const int taps = g.kernel_h * g.kernel_w;
    std::vector<int8_t> dense(static_cast<size_t>(g.out_channels) * taps * g.in_channels, 0);
    for (int o = 0; o < g.out_channels; ++o)
      for (int k = 0; k < taps; ++k)
        for (int i = 0; i < gc; ++i)
          dense[(static_cast<size_t>(o) * taps + k) * g.in_channels + o / oc_g * gc + i] =
              wts[(static_cast<size_t>(o) * taps + k) * gc + i];
    std::unique_ptr<PackedConvInt8> pdense;
    s = PackedConvInt8::Create(g, dense.data(), bias.data(), q, Variant::kScalar, &pdense);
    CHECK(s.ok(), "%s", s.message().c_str());
    std::vector<int8_t> dref(lo.buffer_elements, 77);
    CHECK(Conv2DInt8(*pdense, in.data(), li, dref.data(), lo).ok(), "dense conv");
    CHECK(dref == ref, "grouped scalar differs from the dense conv (k=%dx%d s=%d groups=%d %d->%d)", g.kernel_h,
          g.kernel_w, g.stride_h, groups, gc, oc_g);
    for (Variant v : kAllVariants) {
      if (!VariantAvailable(v)) continue;
      std::unique_ptr<PackedGroupedConvInt8> p;
      s = PackedGroupedConvInt8::Create(g, groups, wts.data(), bias.data(), q, v, &p);
      CHECK(s.ok(), "%s", s.message().c_str());
      std::vector<int8_t> out(lo.buffer_elements, 77);
      s = GroupedConv2DInt8(*p, in.data(), li, out.data(), lo, t % 2 ? &pool : nullptr);
      CHECK(s.ok(), "%s", s.message().c_str());
      size_t bad = 0;
      for (size_t i = 0; i < out.size(); ++i) bad += out[i] != ref[i];
      CHECK(bad == 0, "grouped %s (kernel %s): %zu mismatches (k=%dx%d s=%d groups=%d %d->%d h=%d w=%d n=%d)",
            VariantName(v), VariantName(p->variant()), bad, g.kernel_h, g.kernel_w, g.stride_h, groups, gc, oc_g, h, w,
            n);
      CHECK(p->per_group() == (v != Variant::kScalar && !PackedGroupedConvInt8::HasKernel(g, groups, v)),
            "grouped kernel choice");
      simd += PackedGroupedConvInt8::HasKernel(g, groups, v);
      ++compared;
    }
  }
  ConvGeometry g;
  g.kernel_h = g.kernel_w = 3;
  g.in_channels = 12;
  g.out_channels = 12;
  std::vector<int8_t> wts(12 * 9 * 4, 1);
  std::unique_ptr<PackedGroupedConvInt8> p;
  CHECK(!PackedGroupedConvInt8::Create(g, 5, wts.data(), nullptr, RandomQuant(12), Variant::kAuto, &p).ok(),
        "5 groups do not divide 12 channels");
  std::printf("grouped variant-vs-scalar comparisons: %d (%d on a grouped kernel, the others per group)\n", compared,
              simd);
}

// Depthwise: every variant against the scalar reference (multipliers 1, 2 and 3: the last runs the
// scalar kernel in every variant), slices in and out, all three roundings, 1 vs 3 threads.
void TestDepthwiseMatchesScalar(int trials) {
  ThreadPool pool(3);
  int compared = 0;
  for (int t = 0; t < trials; ++t) {
    ConvGeometry g;
    const int k = RandInt(0, 4) == 0 ? RandInt(1, 5) : 3;
    g.kernel_h = k;
    g.kernel_w = RandInt(0, 5) == 0 ? RandInt(1, 5) : k;
    g.stride_h = g.stride_w = RandInt(1, 2);
    // A third of the trials: 3-column kernels of 1-5 rows (the AVX-512 kernel's column path takes
    // 1-4 rows at strides 1 and 2 across), some with stride 3 across (its per-pixel path).
    if (RandInt(0, 2) == 0) {
      g.kernel_w = 3;
      g.kernel_h = RandInt(1, 5);
      g.stride_w = RandInt(1, 3);
    }
    g.padding = RandInt(0, 3) ? Padding::kSame : Padding::kValid;
    const int mult = RandInt(0, 5) == 0 ? 3 : RandInt(1, 2);
    // a sixth: 16 + 32k channels (the AVX-VNNI kernel's 16-channel tail load)
    g.in_channels = RandInt(0, 5) == 0 ? 16 + 32 * RandInt(0, 2) : RandInt(0, 3) == 0 ? RandInt(40, 100) : RandInt(1, 37);
    g.out_channels = g.in_channels * mult;
    const int n = RandInt(1, 2);
    const int h = RandInt(std::max(1, g.kernel_h), 13), w = RandInt(std::max(1, g.kernel_w), 13);
    ConvOutputShape os;
    if (!ComputeOutputShape(g, h, w, &os).ok()) continue;
    const int in_off = RandInt(0, 1) ? RandInt(0, 9) : 0;
    const int in_total = in_off + g.in_channels + (RandInt(0, 1) ? RandInt(0, 7) : 0);
    const int out_off = RandInt(0, 1) ? RandInt(0, 9) : 0;
    const int out_total = out_off + g.out_channels + (RandInt(0, 1) ? RandInt(0, 7) : 0);
    // A quarter of the trials also allow weight -128 (outside TFLite's symmetric range, but int8) and
    // a quarter take inputs and weights from the extremes only: the NEON interior sums two taps'
    // products in int16, exact only without -128 weights.
    const bool wide_w = RandInt(0, 3) == 0, extremes = RandInt(0, 3) == 0;
    auto extreme = [](int a, int b) { return static_cast<int8_t>(RandInt(0, 1) ? a : b); };
    std::vector<int8_t> wts(static_cast<size_t>(g.kernel_h) * g.kernel_w * g.out_channels);
    for (auto& v : wts)
      v = extremes ? extreme(wide_w ? -128 : -127, 127) : static_cast<int8_t>(RandInt(wide_w ? -128 : -127, 127));
    std::vector<int32_t> bias(g.out_channels);
    for (auto& v : bias) v = RandInt(-20000, 20000);
    const Int8QuantParams q = RandomQuant(g.out_channels);
    std::vector<int8_t> in(static_cast<size_t>(n) * h * w * in_total);
    for (auto& v : in) v = extremes ? extreme(-128, 127) : static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(n, h, w, in_total, in_off, g.in_channels);
    const TensorLayout lo = NhwcSlice(n, os.out_h, os.out_w, out_total, out_off, g.out_channels);
    std::unique_ptr<PackedDepthwiseInt8> pref;
    Status s = PackedDepthwiseInt8::Create(g, mult, wts.data(), bias.data(), q, Variant::kScalar, &pref);
    CHECK(s.ok(), "%s", s.message().c_str());
    std::vector<int8_t> ref(lo.buffer_elements, 77);
    CHECK(DepthwiseConv2DInt8(*pref, in.data(), li, ref.data(), lo).ok(), "scalar depthwise");
    for (Variant v : kAllVariants) {
      if (!VariantAvailable(v)) continue;
      std::unique_ptr<PackedDepthwiseInt8> p;
      s = PackedDepthwiseInt8::Create(g, mult, wts.data(), bias.data(), q, v, &p);
      CHECK(s.ok(), "%s", s.message().c_str());
      std::vector<int8_t> out(lo.buffer_elements, 77);
      s = DepthwiseConv2DInt8(*p, in.data(), li, out.data(), lo, t % 2 ? &pool : nullptr);
      CHECK(s.ok(), "%s", s.message().c_str());
      size_t bad = 0;
      for (size_t i = 0; i < out.size(); ++i) bad += out[i] != ref[i];
      CHECK(bad == 0, "depthwise %s (kernel %s): %zu mismatches (k=%dx%d s=%d pad=%d m=%d c=%d h=%d w=%d n=%d)",
            VariantName(v), VariantName(p->variant()), bad, g.kernel_h, g.kernel_w, g.stride_h, (int)g.padding,
            mult, g.in_channels, h, w, n);
      CHECK(mult > 2 ? p->variant() == Variant::kScalar : true, "multiplier 3 must run the scalar kernel");
      ++compared;
      // A band of image 0's output rows from a band of its input rows (DepthwiseConv2DInt8Rows): the
      // same bytes as those rows of the whole conv. Extra in-image rows around the band are allowed.
      const int r0 = RandInt(0, os.out_h - 1), rows = RandInt(1, os.out_h - r0);
      const int need0 = std::max(0, r0 * g.stride_h - os.pad_top);
      const int need1 = std::min(h, (r0 + rows - 1) * g.stride_h - os.pad_top + g.kernel_h);
      const int first = need0 - RandInt(0, std::min(need0, 2));
      const int band_h = need1 - first + RandInt(0, h - need1);
      const int64_t in_row = int64_t(w) * in_total, out_row = int64_t(os.out_w) * out_total;
      const TensorLayout bi = NhwcSlice(1, band_h, w, in_total, in_off, g.in_channels);
      const TensorLayout bo = NhwcSlice(1, rows, os.out_w, out_total, out_off, g.out_channels);
      std::vector<int8_t> band(bo.buffer_elements, 77);
      s = DepthwiseConv2DInt8Rows(*p, in.data() + first * in_row, bi, first, h, band.data(), bo, r0);
      CHECK(s.ok(), "%s", s.message().c_str());
      CHECK(std::equal(band.begin(), band.end(), ref.begin() + r0 * out_row),
            "depthwise %s rows [%d, %d) from input rows [%d, %d) differ from the whole conv's", VariantName(v), r0,
            r0 + rows, first, first + band_h);
      if (need0 < need1) {  // a band missing a row the outputs read is refused
        const TensorLayout short_band = NhwcSlice(1, need1 - need0 - 1, w, in_total, in_off, g.in_channels);
        CHECK(need1 - need0 == 1 ||
                  !DepthwiseConv2DInt8Rows(*p, in.data() + (need0 + 1) * in_row, short_band, need0 + 1, h,
                                           band.data(), bo, r0).ok(),
              "a band without input row %d must be refused", need0);
      }
    }
  }
  // Arguments that do not describe a depthwise conv are refused.
  ConvGeometry g;
  g.kernel_h = g.kernel_w = 3;
  g.in_channels = 8;
  g.out_channels = 12;
  std::vector<int8_t> wts(9 * 16, 1);
  const Int8QuantParams q = RandomQuant(12);
  std::unique_ptr<PackedDepthwiseInt8> p;
  CHECK(!PackedDepthwiseInt8::Create(g, 2, wts.data(), nullptr, q, Variant::kAuto, &p).ok(), "8 * 2 != 12");
  CHECK(!PackedDepthwiseInt8::Create(g, 0, wts.data(), nullptr, q, Variant::kAuto, &p).ok(), "multiplier 0");
  std::printf("depthwise variant-vs-scalar comparisons: %d (auto kernel: %s)\n", compared, [] {
    ConvGeometry g1;
    g1.kernel_h = g1.kernel_w = 3;
    g1.in_channels = g1.out_channels = 16;
    std::vector<int8_t> w1(9 * 16, 1);
    Int8QuantParams q1 = RandomQuant(16);
    std::unique_ptr<PackedDepthwiseInt8> p1;
    return PackedDepthwiseInt8::Create(g1, 1, w1.data(), nullptr, q1, Variant::kAuto, &p1).ok()
               ? VariantName(p1->variant()) : "error";
  }());
}

// Shapes large enough for several pixel chunks per image in every variant (incl. strided 1x1).
void TestLargeShapesInt8() {
  struct L { int n, h, w, cin, cout, k, s; Padding pad; } cases[] = {
      {1, 40, 41, 64, 40, 1, 1, Padding::kSame}, {2, 33, 30, 37, 19, 1, 2, Padding::kValid},
      {1, 23, 21, 100, 33, 3, 1, Padding::kSame}, {1, 9, 9, 1030, 24, 1, 1, Padding::kSame},
      {1, 20, 19, 70, 48, 3, 2, Padding::kSame},
      // stride-2 KxK convs of 64+ channels: the amx variant's parity planes (also on 3 threads: bands)
      {2, 17, 23, 64, 40, 3, 2, Padding::kSame}, {1, 30, 31, 96, 70, 5, 2, Padding::kValid},
      {1, 41, 40, 72, 33, 3, 2, Padding::kSame}, {1, 44, 44, 128, 64, 3, 2, Padding::kSame},
      {1, 12, 13, 65, 20, 2, 2, Padding::kValid},
      // AVX-512 VNNI k_pairs_ tiles (6 x 32, 4 x 48, 12 x 16) over many pixels
      {1, 30, 29, 128, 32, 3, 1, Padding::kSame}, {1, 25, 27, 136, 48, 1, 1, Padding::kSame},
      {1, 19, 31, 40, 16, 3, 1, Padding::kSame},
      // KxK chunks are sized by the staged rows they read (StagedElemsPerOutputPixel): ~64 KB
      // (AMX 256 KB) of staging, at most ~1000 pixels, so these still take several per image
      {1, 48, 47, 16, 24, 3, 1, Padding::kSame}, {1, 36, 36, 96, 48, 3, 1, Padding::kSame}};
  ThreadPool pool(3);
  for (const L& l : cases) {
    ConvGeometry g;
    g.kernel_h = g.kernel_w = l.k;
    g.stride_h = g.stride_w = l.s;
    g.padding = l.pad;
    g.in_channels = l.cin;
    g.out_channels = l.cout;
    ConvOutputShape os;
    CHECK(ComputeOutputShape(g, l.h, l.w, &os).ok(), "shape");
    std::vector<int8_t> wts(static_cast<size_t>(l.cout) * l.k * l.k * l.cin);
    for (auto& v : wts) v = static_cast<int8_t>(RandInt(-127, 127));
    std::vector<int32_t> bias(l.cout);
    for (auto& v : bias) v = RandInt(-20000, 20000);
    const Int8QuantParams q = RandomQuant(l.cout);
    const int in_total = l.cin + 3, out_total = l.cout + 5;
    std::vector<int8_t> in(static_cast<size_t>(l.n) * l.h * l.w * in_total);
    for (auto& v : in) v = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(l.n, l.h, l.w, in_total, 2, l.cin);
    const TensorLayout lo = NhwcSlice(l.n, os.out_h, os.out_w, out_total, 4, l.cout);
    std::unique_ptr<PackedConvInt8> pr;
    CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &pr).ok(), "create");
    std::vector<int8_t> ref(lo.buffer_elements, 5);
    CHECK(Conv2DInt8(*pr, in.data(), li, ref.data(), lo).ok(), "ref");
    for (Variant v : kAllVariants) {
      if (v == Variant::kScalar || !VariantAvailable(v)) continue;
      std::unique_ptr<PackedConvInt8> p;
      CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, v, &p).ok(), "create");
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<int8_t> got(lo.buffer_elements, 5);
        CHECK(Conv2DInt8(*p, in.data(), li, got.data(), lo, tp).ok(), "run");
        CHECK(got == ref, "large shape mismatch for %s (%dx%dx%d -> %d, k%d s%d, %d threads)", VariantName(v), l.h,
              l.w, l.cin, l.cout, l.k, l.s, tp ? 3 : 1);
      }
    }
  }
}

void TestVariantsMatchScalarF32(int trials) {
  int compared = 0;
  for (int t = 0; t < trials; ++t) {
    const Case c = RandomCase();
    ConvOutputShape os;
    if (!ComputeOutputShape(c.g, c.h, c.w, &os).ok()) continue;
    const int taps = c.g.kernel_h * c.g.kernel_w;
    std::vector<float> wts(static_cast<size_t>(c.g.out_channels) * taps * c.g.in_channels);
    for (auto& v : wts) v = RandF(-1, 1);
    std::vector<float> bias(c.g.out_channels);
    for (auto& v : bias) v = RandF(-1, 1);
    std::vector<float> in(static_cast<size_t>(c.n) * c.h * c.w * c.in_total);
    for (auto& v : in) v = RandF(-1, 1);
    const float amin = RandInt(0, 1) ? 0.0f : -1e30f, amax = RandInt(0, 1) ? 6.0f : 1e30f;
    const TensorLayout li = NhwcSlice(c.n, c.h, c.w, c.in_total, c.in_off, c.g.in_channels);
    const TensorLayout lo = NhwcSlice(c.n, os.out_h, os.out_w, c.out_total, c.out_off, c.g.out_channels);
    std::vector<float> ref(lo.buffer_elements, 7.f);
    std::unique_ptr<PackedConvF32> pref;
    Status s = PackedConvF32::Create(c.g, wts.data(), bias.data(), amin, amax, Variant::kScalar, &pref);
    CHECK(s.ok(), "%s", s.message().c_str());
    CHECK(Conv2DF32(*pref, in.data(), li, ref.data(), lo).ok(), "scalar f32");
    for (Variant v : kAllVariants) {
      if (v == Variant::kScalar || !VariantAvailable(v, true)) continue;
      std::unique_ptr<PackedConvF32> p;
      s = PackedConvF32::Create(c.g, wts.data(), bias.data(), amin, amax, v, &p);
      CHECK(s.ok(), "%s", s.message().c_str());
      std::vector<float> out(lo.buffer_elements, 7.f);
      s = Conv2DF32(*p, in.data(), li, out.data(), lo);
      CHECK(s.ok(), "%s", s.message().c_str());
      size_t bad = 0;
      for (size_t i = 0; i < out.size(); ++i)
        bad += std::fabs(out[i] - ref[i]) > 1e-4f * (1.0f + std::fabs(ref[i]));
      CHECK(bad == 0, "f32 %s: %zu mismatches", VariantName(v), bad);
      ++compared;
    }
  }
  std::printf("f32 variant-vs-scalar comparisons: %d\n", compared);
}

// A conv of geometry g with random weights, bias and quantization, packed for variant v (*p) and
// for the scalar reference (*ref).
void PackRandomConv(const ConvGeometry& g, Variant v, std::unique_ptr<PackedConvInt8>* p,
                    std::unique_ptr<PackedConvInt8>* ref) {
  std::vector<int8_t> wts(static_cast<size_t>(g.out_channels) * g.kernel_h * g.kernel_w * g.in_channels);
  for (auto& e : wts) e = static_cast<int8_t>(RandInt(-127, 127));
  std::vector<int32_t> bias(g.out_channels);
  for (auto& e : bias) e = RandInt(-3000, 3000);
  const Int8QuantParams q = RandomQuant(g.out_channels);
  CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, v, p).ok(), "create");
  CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, ref).ok(), "create");
}

// Fused ops vs explicit split + conv + concat with the scalar reference.
void TestFusedOps() {
  for (Variant v : kAllVariants) {
    if (!VariantAvailable(v)) continue;
    for (int t = 0; t < 20; ++t) {
      const int n = RandInt(1, 2), h = RandInt(1, 9), w = RandInt(1, 9), c = RandInt(2, 70);
      const int c_skip = RandInt(0, c - 1);
      ConvGeometry g;
      g.kernel_h = g.kernel_w = RandInt(0, 1) ? 3 : 1;
      g.padding = Padding::kSame;
      g.in_channels = c - c_skip;
      g.out_channels = RandInt(1, 40);
      std::unique_ptr<PackedConvInt8> p, pref;
      PackRandomConv(g, v, &p, &pref);
      std::vector<int8_t> x(static_cast<size_t>(n) * h * w * c);
      for (auto& e : x) e = static_cast<int8_t>(RandInt(-128, 127));
      const int pixels = n * h * w;
      // reference: split, conv, concat
      std::vector<int8_t> part(static_cast<size_t>(pixels) * g.in_channels), y(static_cast<size_t>(pixels) * g.out_channels);
      for (int i = 0; i < pixels; ++i)
        std::memcpy(&part[i * g.in_channels], &x[i * c + c_skip], g.in_channels);
      CHECK(Conv2DInt8(*pref, part.data(), NhwcSlice(n, h, w, g.in_channels, 0, g.in_channels), y.data(),
                       NhwcSlice(n, h, w, g.out_channels, 0, g.out_channels)).ok(), "ref conv");
      const int oc = c_skip + g.out_channels;
      for (ConcatOrder order : {ConcatOrder::kSkipFirst, ConcatOrder::kSkipLast}) {
        std::vector<int8_t> expect(static_cast<size_t>(pixels) * oc), got(expect.size() + 5, 99);
        for (int i = 0; i < pixels; ++i) {
          const bool sf = order == ConcatOrder::kSkipFirst;
          std::memcpy(&expect[i * oc + (sf ? 0 : g.out_channels)], &x[i * c], c_skip);
          std::memcpy(&expect[i * oc + (sf ? c_skip : 0)], &y[i * g.out_channels], g.out_channels);
        }
        Status s = CspPartialConvInt8(*p, x.data(), n, h, w, c, c_skip, got.data(),
                                      static_cast<int64_t>(expect.size()), order);
        CHECK(s.ok(), "%s", s.message().c_str());
        CHECK(std::memcmp(expect.data(), got.data(), expect.size()) == 0, "csp %s order %d",
              VariantName(v), (int)order);
        CHECK(got[expect.size()] == 99, "csp wrote past the end");
      }
      // dense append: block = [x | y | spare], conv reads [c_skip, c), writes at c.
      const int bc = c + g.out_channels + 3;
      std::vector<int8_t> block(static_cast<size_t>(pixels) * bc, 55);
      for (int i = 0; i < pixels; ++i) std::memcpy(&block[i * bc], &x[i * c], c);
      Status s = DenseAppendInt8(*p, block.data(), n, h, w, bc, c_skip, c);
      CHECK(s.ok(), "%s", s.message().c_str());
      bool okd = true;
      for (int i = 0; i < pixels && okd; ++i) {
        okd = std::memcmp(&block[i * bc], &x[i * c], c) == 0 &&
              std::memcmp(&block[i * bc + c], &y[i * g.out_channels], g.out_channels) == 0 &&
              block[i * bc + bc - 1] == 55 && block[i * bc + bc - 3] == 55;
      }
      CHECK(okd, "dense append %s", VariantName(v));
    }
  }
}

// CSP partial 1x1 convs whose sweep copies the skip part between its register tiles
// (SweepInt8Direct1x1): several pixel chunks and channel blocks, 1 and 3 threads, both orders,
// input slices whose last pixels are read through a zero-padded copy (in_channels % 4 != 0).
void TestCspSkipCopy() {
  struct S { int n, h, w, skip, cin, cout; } cases[] = {
      {2, 20, 23, 37, 45, 150}, {1, 40, 40, 128, 128, 128}, {1, 7, 7, 256, 768, 96}, {1, 9, 11, 5, 3, 20}};
  ThreadPool pool(3);
  int compared = 0;
  for (Variant v : kAllVariants) {
    if (!VariantAvailable(v)) continue;
    for (const S& k : cases) {
      ConvGeometry g;
      g.in_channels = k.cin;
      g.out_channels = k.cout;
      std::unique_ptr<PackedConvInt8> p, pref;
      PackRandomConv(g, v, &p, &pref);
      const int c = k.skip + k.cin, oc = k.skip + k.cout, pixels = k.n * k.h * k.w;
      std::vector<int8_t> x(static_cast<size_t>(pixels) * c);
      for (auto& e : x) e = static_cast<int8_t>(RandInt(-128, 127));
      std::vector<int8_t> y(static_cast<size_t>(pixels) * k.cout);
      CHECK(Conv2DInt8(*pref, x.data(), NhwcSlice(k.n, k.h, k.w, c, k.skip, k.cin), y.data(),
                       NhwcSlice(k.n, k.h, k.w, k.cout, 0, k.cout)).ok(), "ref conv");
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool})
        for (ConcatOrder order : {ConcatOrder::kSkipFirst, ConcatOrder::kSkipLast}) {
          const bool sf = order == ConcatOrder::kSkipFirst;
          std::vector<int8_t> expect(static_cast<size_t>(pixels) * oc), got(expect.size() + 7, 99);
          for (int i = 0; i < pixels; ++i) {
            std::memcpy(&expect[static_cast<size_t>(i) * oc + (sf ? 0 : k.cout)], &x[static_cast<size_t>(i) * c], k.skip);
            std::memcpy(&expect[static_cast<size_t>(i) * oc + (sf ? k.skip : 0)], &y[static_cast<size_t>(i) * k.cout], k.cout);
          }
          const Status s = CspPartialConvInt8(*p, x.data(), k.n, k.h, k.w, c, k.skip, got.data(),
                                              static_cast<int64_t>(expect.size()), order, tp);
          CHECK(s.ok(), "%s", s.message().c_str());
          CHECK(std::memcmp(expect.data(), got.data(), expect.size()) == 0, "csp skip copy %s %dx%dx%d skip %d -> %d, order %d, %d threads",
                VariantName(v), k.h, k.w, k.cin, k.skip, k.cout, static_cast<int>(order), tp ? 3 : 1);
          CHECK(got[expect.size()] == 99 && got.back() == 99, "csp wrote past the end");
          ++compared;
        }
    }
  }
  std::printf("csp skip-copy comparisons: %d\n", compared);
}

void TestRequantEdgeCases() {
  // Hand-checked values of TFLite's MultiplyByQuantizedMultiplier (double rounding).
  CHECK(MultiplyByQuantizedMultiplier(100, 1 << 30, 0) == 50, "0.5*100");
  CHECK(MultiplyByQuantizedMultiplier(3, 1 << 30, -1) == 1, "0.25*3=0.75 -> 1");
  CHECK(MultiplyByQuantizedMultiplier(-3, 1 << 30, -1) == -1, "-0.75 -> -1");
  CHECK(MultiplyByQuantizedMultiplier(2, 1 << 30, -2) == 0, "0.125*2 = 0.25 -> 0");
  CHECK(MultiplyByQuantizedMultiplier(-4, 1 << 30, -2) == -1, "-0.5 -> -1 (away from zero)");
  CHECK(MultiplyByQuantizedMultiplier(4, 1 << 30, -2) == 1, "0.5 -> 1");
  CHECK(MultiplyByQuantizedMultiplier(5, 1 << 30, 1) == 5, "1.0*5");
  CHECK(MultiplyByQuantizedMultiplierHalfUp(-4, 1 << 30, -2) == 0, "-0.5 -> 0 (ties up)");
  CHECK(MultiplyByQuantizedMultiplierHalfUp(-6, 1 << 30, -2) == -1, "-0.75 -> -1");
  CHECK(MultiplyByQuantizedMultiplierHalfUp(4, 1 << 30, -2) == 1, "0.5 -> 1");
  // XNNPACK fp32 requantization: ties to even, clamp relative to the zero point.
  CHECK(RequantizeFp32(5, 0.5f, 0, -128, 127) == 2, "2.5 -> 2");
  CHECK(RequantizeFp32(7, 0.5f, 0, -128, 127) == 4, "3.5 -> 4");
  CHECK(RequantizeFp32(-5, 0.5f, 0, -128, 127) == -2, "-2.5 -> -2");
  CHECK(RequantizeFp32(-7, 0.5f, 10, -128, 127) == 6, "-3.5 + 10 -> 6");
  CHECK(RequantizeFp32(1000, 1.f, 100, -128, 127) == 127, "clamp high");
  CHECK(RequantizeFp32(-1000, 1.f, -100, -20, 127) == -20, "clamp to act_min");
  CHECK(RequantizeFp32(2147483647, 255.f, 0, -128, 127) == 127, "huge accumulator");
  int32_t m;
  int sh;
  QuantizeMultiplier(0.75, &m, &sh);
  CHECK(m == 1610612736 && sh == 0, "QuantizeMultiplier(0.75) = %d, %d", m, sh);
  QuantizeMultiplier(1.0 - 1e-12, &m, &sh);
  CHECK(m == 1073741824 && sh == 1, "QuantizeMultiplier(~1) = %d, %d", m, sh);
  // fp32: the clamp before vcvtps2dq is dropped only when no input can take |acc * scale| to
  // 2^30 (hand-computed bounds: 255 * sum|w| + |bias|, times the scale).
  {
    ConvGeometry g;
    g.in_channels = 4;
    g.out_channels = 2;
    const std::vector<int8_t> wts(8, -127);
    Int8QuantParams q;
    q.rounding = Rounding::kFp32;
    q.requant_scale = {0.5f, 128.f};
    std::unique_ptr<PackedConvInt8> p;
    std::vector<int32_t> bias = {0, 0};
    CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &p).ok(), "create");
    CHECK(!p->fp32_clamp_before_convert_, "4 * 127 * 255 * 128 = 16.6M < 2^30: no clamp");
    bias[1] = -(1 << 23);  // (129540 + 8388608) * 128 = 1.09e9 >= 2^30
    CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &p).ok(), "create");
    CHECK(p->fp32_clamp_before_convert_, "bias 2^23 at scale 128 needs the clamp");
  }
  // A 1x1 conv of 1 input and 16 output channels on a 7x3 image with per-channel weights, biases
  // and requantization from `channel(c, &w, &bias, &q)`, on variant v and on the scalar reference:
  // both outputs into a and b.
  auto one_channel_conv = [](Variant v, Int8QuantParams q, auto channel, std::vector<int8_t>* a,
                             std::vector<int8_t>* b) {
    ConvGeometry g;
    g.in_channels = 1;
    g.out_channels = 16;
    std::vector<int8_t> wts(16);
    std::vector<int32_t> bias(16);
    for (int c = 0; c < 16; ++c) channel(c, &wts[c], &bias[c], &q);
    std::unique_ptr<PackedConvInt8> p, pr;
    CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, v, &p).ok(), "create");
    CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &pr).ok(), "create");
    std::vector<int8_t> x(7 * 3);
    a->assign(7 * 3 * 16, 0);
    b->assign(7 * 3 * 16, 0);
    for (auto& e : x) e = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(1, 7, 3, 1, 0, 1), lo = NhwcSlice(1, 7, 3, 16, 0, 16);
    CHECK(Conv2DInt8(*p, x.data(), li, a->data(), lo).ok(), "run");
    CHECK(Conv2DInt8(*pr, x.data(), li, b->data(), lo).ok(), "run");
  };
  const Rounding modes[] = {Rounding::kAwayFromZero, Rounding::kHalfUp, Rounding::kFp32};
  std::vector<int8_t> a, b;
  // Extreme accumulators through every variant: large weights & bias (fp32: with and without the
  // clamp before the conversion, saturating either way).
  for (Variant v : kAllVariants) {
    if (!VariantAvailable(v)) continue;
    for (int trial = 0; trial < 200; ++trial) {
      Int8QuantParams q;
      q.input_zero_point = RandInt(-128, 127);
      q.output_zero_point = RandInt(-128, 127);
      q.rounding = modes[trial % 3];
      one_channel_conv(v, q, [](int, int8_t* w, int32_t* bias, Int8QuantParams* qc) {
        *w = static_cast<int8_t>(RandInt(-127, 127));
        *bias = RandInt(-(1 << 24), 1 << 24);
        qc->output_multiplier.push_back(RandInt(1 << 30, 0x7fffffff));
        qc->output_shift.push_back(RandInt(-31, 4));
        qc->requant_scale.push_back(std::ldexp(RandF(1.f, 2.f), RandInt(-32, 7)));
      }, &a, &b);
      CHECK(a == b, "extreme requant mismatch for %s", VariantName(v));
    }
  }
  // Scaled values at the int32 bounds: the fixed-point zero point add wraps there, as in TFLite's
  // reference (WrapAdd), so x + zp past INT32_MAX clamps to act_min, not act_max. Bias within 200
  // of a bound, multiplier ~1, no shift: the requantized value stays within ~33k of the bound.
  int wrapped = 0;
  for (Variant v : kAllVariants) {
    if (!VariantAvailable(v)) continue;
    for (int trial = 0; trial < 60; ++trial) {
      Int8QuantParams q;
      q.input_zero_point = RandInt(-128, 127);
      q.output_zero_point = trial % 2 ? RandInt(1, 127) : RandInt(-128, -1);
      q.rounding = modes[trial % 3];
      const bool high = q.output_zero_point > 0;
      one_channel_conv(v, q, [high](int, int8_t* w, int32_t* bias, Int8QuantParams* qc) {
        *w = static_cast<int8_t>(RandInt(-2, 2));
        *bias = high ? INT32_MAX - RandInt(0, 200) : INT32_MIN + RandInt(0, 200);
        qc->output_multiplier.push_back(RandInt(0x7fffff00, 0x7fffffff));
        qc->output_shift.push_back(0);
        qc->requant_scale.push_back(1.f);
      }, &a, &b);
      CHECK(a == b, "requant at the int32 bound mismatch for %s (%s)", VariantName(v),
            q.rounding == Rounding::kFp32 ? "fp32" : "fixed point");
      // the reference's wrapped lanes: zp > 0 near INT32_MAX gives act_min (-128)
      if (q.rounding != Rounding::kFp32)
        for (int8_t e : b) wrapped += high ? e == -128 : e == 127;
    }
  }
  CHECK(wrapped > 0, "no lane reached the int32 bound");
}

void TestValidation() {
  ConvGeometry g;
  g.kernel_h = g.kernel_w = 3;
  g.in_channels = 4;
  g.out_channels = 8;
  std::vector<int8_t> wts(8 * 9 * 4, 1);
  Int8QuantParams q;
  q.output_multiplier.assign(8, 1 << 30);
  q.output_shift.assign(8, -8);
  std::unique_ptr<PackedConvInt8> p;
  CHECK(PackedConvInt8::Create(g, nullptr, nullptr, q, Variant::kScalar, &p).code() == StatusCode::kNullPointer, "null weights");
  Int8QuantParams bad = q;
  bad.output_shift.pop_back();
  CHECK(!PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "short shift");
  bad = q;
  bad.input_zero_point = 300;
  CHECK(!PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "zp range");
  bad = q;
  bad.output_multiplier[0] = -5;
  CHECK(!PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "negative multiplier");
  bad = q;
  bad.rounding = Rounding::kFp32;
  CHECK(!PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "fp32 without scales");
  bad.requant_scale.assign(8, 0.01f);
  CHECK(PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "fp32 with scales");
  bad.output_multiplier.clear();
  bad.output_shift.clear();
  CHECK(PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kAuto, &p).ok(), "fp32 needs no multipliers");
  bad.requant_scale[3] = std::nanf("");
  CHECK(!PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "NaN scale");
  bad.requant_scale[3] = 300.f;
  CHECK(!PackedConvInt8::Create(g, wts.data(), nullptr, bad, Variant::kScalar, &p).ok(), "scale >= 256");
  ConvGeometry gb = g;
  gb.stride_h = 0;
  CHECK(!PackedConvInt8::Create(gb, wts.data(), nullptr, q, Variant::kScalar, &p).ok(), "stride 0");
  for (Variant v : kAllVariants)
    if (!VariantAvailable(v))
      CHECK(PackedConvInt8::Create(g, wts.data(), nullptr, q, v, &p).code() == StatusCode::kUnsupported,
            "unavailable variant %s must be refused", VariantName(v));
  CHECK(PackedConvInt8::Create(g, wts.data(), nullptr, q, Variant::kAuto, &p).ok(), "create auto");
  std::vector<int8_t> in(2 * 5 * 5 * 4), out(2 * 5 * 5 * 8);
  TensorLayout li = NhwcSlice(2, 5, 5, 4, 0, 4), lo = NhwcSlice(2, 5, 5, 8, 0, 8);
  CHECK(Conv2DInt8(*p, in.data(), li, out.data(), lo).ok(), "valid call");
  CHECK(Conv2DInt8(*p, nullptr, li, out.data(), lo).code() == StatusCode::kNullPointer, "null input");
  CHECK(Conv2DInt8(*p, in.data(), li, nullptr, lo).code() == StatusCode::kNullPointer, "null output");
  TensorLayout l2 = li;
  l2.buffer_elements -= 1;
  CHECK(Conv2DInt8(*p, in.data(), l2, out.data(), lo).code() == StatusCode::kOutOfRange, "input too small");
  l2 = lo;
  l2.channel_offset = 1;
  CHECK(!Conv2DInt8(*p, in.data(), li, out.data(), l2).ok(), "offset past pixel");
  l2 = NhwcSlice(2, 4, 5, 8, 0, 8);
  CHECK(!Conv2DInt8(*p, in.data(), li, out.data(), l2).ok(), "wrong output size");
  l2 = NhwcSlice(2, 5, 5, 3, 0, 3);
  CHECK(!Conv2DInt8(*p, in.data(), l2, out.data(), lo).ok(), "channel mismatch");
  // Output ops: the residual must match the output's shape, exist for an ADD, and not overlap what is written.
  std::unique_ptr<Int8PostOps> add_ops;
  const Int8AddParams add;
  CHECK(Int8PostOps::Create(nullptr, &add, Variant::kAuto, &add_ops).ok(), "add ops");
  std::vector<int8_t> res(2 * 5 * 5 * 8);
  ConvOutputOps post;
  post.ops = add_ops.get();
  post.residual = res.data();
  post.residual_layout = lo;
  CHECK(Conv2DInt8(*p, in.data(), li, out.data(), lo, post).ok(), "valid call with a residual add");
  post.residual_layout = NhwcSlice(2, 5, 4, 8, 0, 8);
  CHECK(!Conv2DInt8(*p, in.data(), li, out.data(), lo, post).ok(), "residual of the wrong shape");
  post.residual_layout = NhwcSlice(2, 5, 5, 9, 0, 9);
  CHECK(!Conv2DInt8(*p, in.data(), li, out.data(), lo, post).ok(), "residual of the wrong channel count");
  post.residual_layout = lo;
  post.residual_layout.buffer_elements -= 1;
  CHECK(Conv2DInt8(*p, in.data(), li, out.data(), lo, post).code() == StatusCode::kOutOfRange, "residual too small");
  post.residual_layout = lo;
  post.residual = nullptr;
  CHECK(Conv2DInt8(*p, in.data(), li, out.data(), lo, post).code() == StatusCode::kNullPointer, "add without a residual");
  post.residual = out.data();
  CHECK(!Conv2DInt8(*p, in.data(), li, out.data(), lo, post).ok(), "residual is the output");
  std::vector<int8_t> wide(2 * 5 * 5 * 16);
  post.residual = wide.data();
  post.residual_layout = NhwcSlice(2, 5, 5, 16, 8, 8);
  CHECK(Conv2DInt8(*p, in.data(), li, wide.data(), NhwcSlice(2, 5, 5, 16, 0, 8), post).ok(),
        "residual in a disjoint slice of the output's buffer");
  post.residual_layout = NhwcSlice(2, 5, 5, 16, 4, 8);
  CHECK(!Conv2DInt8(*p, in.data(), li, wide.data(), NhwcSlice(2, 5, 5, 16, 0, 8), post).ok(),
        "residual slice overlapping the output's");
  // overlapping slices of one buffer
  std::vector<int8_t> block(2 * 5 * 5 * 10);
  CHECK(!DenseAppendInt8(*p, block.data(), 2, 5, 5, 10, 0, 2).ok(), "overlapping channel ranges");
  std::vector<int8_t> block12(2 * 5 * 5 * 12);
  CHECK(DenseAppendInt8(*p, block12.data(), 2, 5, 5, 12, 0, 4).ok(), "dense append ok");
  CHECK(!DenseAppendInt8(*p, block12.data(), 2, 5, 5, 12, 0, 5).ok(), "out range past block");
  CHECK(!DenseAppendInt8(*p, block12.data(), 2, 5, 5, 12, 9, 0).ok(), "in range past block");
  CHECK(!CspPartialConvInt8(*p, in.data(), 2, 5, 5, 4, 4, out.data(), out.size()).ok(), "c_skip == channels");
  CHECK(!CspPartialConvInt8(*p, in.data(), 2, 5, 5, 4, -1, out.data(), out.size()).ok(), "c_skip < 0");
  std::vector<int8_t> x6(2 * 5 * 5 * 6), o10(2 * 5 * 5 * 10);
  CHECK(CspPartialConvInt8(*p, x6.data(), 2, 5, 5, 6, 2, o10.data(), o10.size()).ok(), "csp ok");
  CHECK(CspPartialConvInt8(*p, x6.data(), 2, 5, 5, 6, 2, o10.data(), o10.size() - 1).code() == StatusCode::kOutOfRange, "csp out too small");
  // misaligned float buffers
  ConvGeometry gf = g;
  std::vector<float> wf(8 * 9 * 4, 0.5f);
  std::unique_ptr<PackedConvF32> pf;
  CHECK(PackedConvF32::Create(gf, wf.data(), nullptr, -1e30f, 1e30f, Variant::kAuto, &pf).ok(), "f32 create");
  std::vector<float> fin(2 * 5 * 5 * 4 + 1), fout(2 * 5 * 5 * 8 + 1);
  const float* mis = reinterpret_cast<const float*>(reinterpret_cast<const char*>(fin.data()) + 1);
  CHECK(Conv2DF32(*pf, mis, li, fout.data(), lo).code() == StatusCode::kMisaligned, "misaligned input");
  CHECK(Conv2DF32(*pf, fin.data(), li, fout.data(), lo).ok(), "aligned f32 ok");
  CHECK(PackedConvF32::Create(gf, reinterpret_cast<const float*>(reinterpret_cast<const char*>(wf.data()) + 2),
                              nullptr, 0, 1, Variant::kScalar, &pf).code() == StatusCode::kMisaligned, "misaligned weights");
  Variant pv;
  CHECK(!ParseVariant("sse9", &pv).ok(), "parse bad variant");
}

}  // namespace

// Every variant gives the same bits on 1 and 3 threads (shapes above the parallel threshold:
// pixel chunks, output-channel block groups, strides, the direct 1x1 path).
// The task split of the int8 sweeps: every (image, output pixel, channel block) in exactly one
// task, chunks of whole split units (whole sweep tiles on one thread) no larger than the pointer
// tables, one group on one thread, the same answer from the cache, and balanced on two threads
// as the pool hands the tasks out (the split before this test gave one thread 61 % of a 28x28 1x1
// conv), and the bands of KxK convs likewise.
void TestTaskGrid() {
  using internal::TaskGrid;
  std::mt19937 rng(7);
  int grids = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int mrs[] = {1, 4, 6, 8, 24};
    const int mr = mrs[rng() % 5];
    const int pixels = 1 + static_cast<int>(rng() % 4000), batch = 1 + static_cast<int>(rng() % 3);
    const int blocks = 1 + static_cast<int>(rng() % 20), threads = 1 + static_cast<int>(rng() % 5);
    const int max_chunk = (1024 / mr) * mr;
    const int64_t chunk_pixels = 1 + static_cast<int64_t>(rng() % 2000);
    const int64_t unit = 64 * (1 + static_cast<int64_t>(rng() % 1024)), bytes = unit / 64;
    const TaskGrid g(pixels, batch, blocks, mr, max_chunk, chunk_pixels, threads, unit, bytes);
    const TaskGrid again(pixels, batch, blocks, mr, max_chunk, chunk_pixels, threads, unit, bytes);
    CHECK(threads > 1 || g.block_groups == 1, "one thread, %d groups", g.block_groups);
    CHECK(again.chunks == g.chunks && again.block_groups == g.block_groups, "cached grid differs");
    CHECK(g.tasks == batch * g.chunks * g.block_groups, "task count");
    std::vector<uint8_t> seen(static_cast<size_t>(batch) * pixels * blocks, 0);
    bool empty_task = false, bad_chunk = false;
    for (int t = 0; t < g.tasks; ++t) {
      const TaskGrid::Task k = g.At(t, pixels, blocks);
      empty_task |= k.pixels <= 0 || k.block_end <= k.block_begin;
      bad_chunk |= k.first_pixel % mr != 0 || k.pixels > max_chunk + g.tail ||
                   (k.first_pixel + k.pixels < pixels && k.pixels % mr != 0);
      for (int b = k.block_begin; b < k.block_end; ++b)
        for (int i = k.first_pixel; i < k.first_pixel + k.pixels; ++i)
          ++seen[(static_cast<size_t>(k.batch) * pixels + i) * blocks + b];
    }
    CHECK(!empty_task, "pixels %d blocks %d threads %d: an empty task", pixels, blocks, threads);
    CHECK(!bad_chunk, "pixels %d mr %d threads %d: a chunk not of whole tiles or over %d pixels", pixels, mr,
          threads, max_chunk);
    CHECK(g.tail == (pixels > mr && pixels % mr < mr / 4 ? pixels % mr : 0), "pixels %d mr %d: tail %d", pixels, mr,
          g.tail);
    CHECK(std::all_of(seen.begin(), seen.end(), [](uint8_t v) { return v == 1; }),
          "pixels %d batch %d blocks %d mr %d threads %d: not covered exactly once", pixels, batch, blocks, mr,
          threads);
    ++grids;
  }
  // The pool's hand-out (PoolMakespan) against hand-computed makespans: thread t runs its range
  // [ceil(n t / T), ceil(n (t + 1) / T)) from the front, then the last task left in the next ranges.
  using internal::PoolMakespan;
  const int64_t even[] = {1, 1, 1, 1}, heavy_first[] = {5, 1, 1, 1}, heavy_half[] = {3, 3, 3, 1, 1, 1}, two[] = {4, 7};
  const int64_t odd[] = {1, 1, 3};
  CHECK(PoolMakespan(odd, 3, 2) == 3, "1 + 1 | 3 (ranges [0, 2), [2, 3)): 3");
  CHECK(PoolMakespan(even, 4, 2) == 2, "4 equal tasks on 2 threads");
  CHECK(PoolMakespan(heavy_first, 4, 2) == 5, "5 | 1 (+ 1 + 1 stolen): 5");
  CHECK(PoolMakespan(heavy_half, 6, 2) == 6, "3 + 3 | 1 + 1 + 1 + 3 stolen: 6");
  CHECK(PoolMakespan(two, 2, 3) == 7, "2 tasks on 3 threads");
  CHECK(PoolMakespan(heavy_half, 6, 1) == 12, "one thread runs all");
  // The pixel-blocks of the busiest of 2 threads as the pool hands a grid's tasks out.
  auto grid_busiest = [](const TaskGrid& grid, int pixels, int blocks) {
    std::vector<int64_t> cost;
    for (int t = 0; t < grid.tasks; ++t) {
      const TaskGrid::Task k = grid.At(t, pixels, blocks);
      cost.push_back(int64_t{k.pixels} * (k.block_end - k.block_begin));
    }
    return static_cast<long long>(PoolMakespan(cost.data(), grid.tasks, 2));
  };
  // CSPDenseNet-121's 28x28 bottleneck (1x1 256->128, 24-pixel tiles, 64-channel blocks): the
  // busiest of 2 threads gets at most 53 % of the work.
  const TaskGrid g(784, 1, 2, 24, 1008, 64 * 1024 / 256, 2, 64 * 256, 256);
  const long long bottleneck = grid_busiest(g, 784, 2);
  CHECK(bottleneck <= 0.53 * (784 * 2), "busiest thread %lld of %d pixel-blocks", bottleneck, 784 * 2);
  ++grids;
  // A 7x7 1x1 768->768 conv (49 pixels: 24-pixel tiles split 24 | 25 by pixels, the 1-pixel tile
  // the costliest per pixel): the threads split the 12 blocks instead, group by group, each its half.
  const TaskGrid small(49, 1, 12, 24, 1008, 64 * 1024 / 768, 2, 64 * 768, 768);
  const long long small_busiest = grid_busiest(small, 49, 12);
  CHECK(small.group_major && small_busiest == 49 * 6, "7x7 grid: group-major %d, busiest thread %lld of %d pixel-blocks",
        small.group_major, small_busiest, 49 * 12);
  ++grids;
  // One thread, 24-pixel chunks (3x3 512->512 at 7x7): 24 | 25, the 49th pixel in the last chunk.
  const TaskGrid one(49, 1, 32, 24, 1008, 24, 1, 64 * 4608, 4608);
  CHECK(one.chunks == 2 && one.At(1, 49, 32).first_pixel == 24 && one.At(1, 49, 32).pixels == 25,
        "7x7 on one thread: %d chunks, the last %d pixels", one.chunks, one.At(one.tasks - 1, 49, 32).pixels);
  ++grids;
  // Bands: every pixel in exactly one band of whole tiles (the last may be partial, or hold a
  // tail of < MR / 4 pixels more), T to 8T of them, sizes at most one tile (and the tail) apart;
  // on 2 threads round-robin the busiest gets at most 52 % of
  // 40x40 (3x3/s2 at 80x80; equal bands plus a remainder gave it 53 %: 7 of 14 bands of 120
  // pixels against 6 and the last 40).
  for (int trial = 0; trial < 300; ++trial) {
    const int mrs[] = {1, 4, 6, 8, 24};
    const int mr = mrs[rng() % 5], pixels = 1 + static_cast<int>(rng() % 5000), threads = 1 + static_cast<int>(rng() % 6);
    const internal::BandPlan plan(pixels, threads, mr);
    bool ok = plan.bands >= std::min(threads, plan.tiles) && plan.bands <= 8 * threads && plan.First(0) == 0 &&
              std::min(pixels, plan.First(plan.bands)) == pixels;
    for (int i = 0; i < plan.bands; ++i) {
      const int n = std::min(pixels, plan.First(i + 1)) - plan.First(i);
      ok &= n > 0 && plan.First(i) % mr == 0 && n <= plan.MaxPixels() &&
            (i + 1 == plan.bands || n >= plan.MaxPixels() - mr - plan.tail);
    }
    ok &= plan.tail == 0 || (plan.tail < mr / 4 && plan.tail == pixels % mr && pixels > mr);
    CHECK(ok, "bands: pixels %d mr %d threads %d -> %d bands", pixels, mr, threads, plan.bands);
    ++grids;
  }
  // 7x7 on 2 threads: 24 | 25 (the 49th pixel after its band's tile on each weight block), not
  // 24 | 24 | 1.
  const internal::BandPlan small_bands(49, 2, 24);
  CHECK(small_bands.bands == 2 && small_bands.First(1) == 24 && small_bands.First(2) == 49 && small_bands.MaxPixels() == 25,
        "7x7 bands: %d, first of the second %d, end %d", small_bands.bands, small_bands.First(1),
        small_bands.First(2));
  const internal::BandPlan plan(1600, 2, 24);
  int busiest[2] = {0, 0};
  for (int i = 0; i < plan.bands; ++i) busiest[i % 2] += std::min(1600, plan.First(i + 1)) - plan.First(i);
  CHECK(std::max(busiest[0], busiest[1]) <= 0.52 * 1600, "40x40 bands: busiest thread %d of 1600 pixels",
        std::max(busiest[0], busiest[1]));
  std::printf("task grids checked: %d\n", grids);
}

// Conv2DInt8Chain (a 1x1 or 3x3 conv into a KxK conv: on AVX-512 VNNI the first writes the
// second's uint8 staging) against two scalar Conv2DInt8 calls: slices in and out, strides, batches,
// all three roundings, 1 and 3 threads.
void TestConvChain(int trials) {
  ThreadPool pool(3);
  int compared = 0, staged = 0, winograd_first = 0, winograd_staged = 0;
  auto weights = [](const ConvGeometry& g) {
    std::vector<int8_t> v(static_cast<size_t>(g.out_channels) * g.kernel_h * g.kernel_w * g.in_channels);
    for (auto& e : v) e = static_cast<int8_t>(RandInt(-127, 127));
    return v;
  };
  for (int t = 0; t < trials; ++t) {
    ConvGeometry g1, g2;
    g1.kernel_h = g1.kernel_w = RandInt(0, 3) == 0 ? 3 : 1;
    g1.padding = Padding::kSame;
    g1.in_channels = RandInt(0, 2) == 0 ? RandInt(60, 200) : RandInt(1, 40);
    g1.out_channels = RandInt(0, 2) == 0 ? RandInt(60, 140) : RandInt(1, 40);
    g2.kernel_h = g2.kernel_w = RandInt(0, 3) == 0 ? 5 : 3;
    g2.stride_h = g2.stride_w = RandInt(0, 3) == 0 ? 2 : 1;
    g2.padding = RandInt(0, 3) == 0 ? Padding::kValid : Padding::kSame;
    g2.in_channels = g1.out_channels;
    g2.out_channels = RandInt(0, 2) == 0 ? RandInt(30, 70) : RandInt(1, 35);
    int n = RandInt(1, 2), h = RandInt(5, 15), w = RandInt(5, 15);
    if (RandInt(0, 3) == 0) {  // into AVX-512 VNNI row tiles (RowTileCase)
      g1.out_channels = g2.in_channels = RandInt(0, 2) == 0 ? RandInt(17, 32) : RandInt(13, 16);
      g2.kernel_h = g2.kernel_w = 3;
      g2.stride_h = g2.stride_w = 1;
      g2.out_channels = RandInt(1, 32);
      w = RandInt(16, 40);
      h = RandInt(3, 6);
    }
    ConvOutputShape o2;
    if (!ComputeOutputShape(g2, h, w, &o2).ok()) continue;
    const int in_off = RandInt(0, 1) ? RandInt(0, 9) : 0, in_total = in_off + g1.in_channels + RandInt(0, 5);
    const int out_off = RandInt(0, 1) ? RandInt(0, 9) : 0, out_total = out_off + g2.out_channels + RandInt(0, 5);
    const std::vector<int8_t> w1 = weights(g1), w2 = weights(g2);
    std::vector<int32_t> b1(g1.out_channels), b2(g2.out_channels);
    for (auto& e : b1) e = RandInt(-20000, 20000);
    for (auto& e : b2) e = RandInt(-20000, 20000);
    Int8QuantParams q1 = RandomQuant(g1.out_channels), q2 = RandomQuant(g2.out_channels);
    q2.input_zero_point = q1.output_zero_point;  // the tensor between them
    std::vector<int8_t> in(static_cast<size_t>(n) * h * w * in_total);
    for (auto& e : in) e = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(n, h, w, in_total, in_off, g1.in_channels);
    const TensorLayout lm = NhwcSlice(n, h, w, g1.out_channels, 0, g1.out_channels);
    const TensorLayout lo = NhwcSlice(n, o2.out_h, o2.out_w, out_total, out_off, g2.out_channels);
    std::unique_ptr<PackedConvInt8> r1, r2;
    CHECK(PackedConvInt8::Create(g1, w1.data(), b1.data(), q1, Variant::kScalar, &r1).ok(), "create");
    CHECK(PackedConvInt8::Create(g2, w2.data(), b2.data(), q2, Variant::kScalar, &r2).ok(), "create");
    // Output tables on either conv (a first conv with one is not chained).
    std::vector<int8_t> table1, table2;
    for (auto* t : {&table1, &table2})
      if (RandInt(0, 3) == 0) {
        t->resize(256);
        for (auto& e : *t) e = static_cast<int8_t>(RandInt(-128, 127));
      }
    if (!table1.empty()) r1->SetOutputTable(table1.data());
    if (!table2.empty()) r2->SetOutputTable(table2.data());
    std::vector<int8_t> mid(lm.buffer_elements), ref(lo.buffer_elements, 77);
    CHECK(Conv2DInt8(*r1, in.data(), li, mid.data(), lm).ok() && Conv2DInt8(*r2, mid.data(), lm, ref.data(), lo).ok(),
          "reference convs");
    for (Variant v : kAllVariants) {
      if (!VariantAvailable(v)) continue;
      std::unique_ptr<PackedConvInt8> p1, p2;
      CHECK(PackedConvInt8::Create(g1, w1.data(), b1.data(), q1, v, &p1).ok(), "create");
      CHECK(PackedConvInt8::Create(g2, w2.data(), b2.data(), q2, v, &p2).ok(), "create");
      if (!table1.empty()) p1->SetOutputTable(table1.data());
      if (!table2.empty()) p2->SetOutputTable(table2.data());
      const bool supported = Conv2DInt8ChainSupported(*p1, *p2);
      // Not into a conv whose taps are kernel rows (1-3 input channels: its staging is unpadded) but
      // on amx (all its KxK convs, not its stride-2 parity planes), nor across kernels (amx runs
      // small-K convs on the AVX-512 VNNI kernels).
      const bool rows_ok = p2->variant() == Variant::kAmx ? !p2->amx_phases_ : !p2->row_taps_;
      const bool expected = v != Variant::kScalar && rows_ok && !p2->direct_1x1_ && table1.empty() &&
                            p1->variant() == p2->variant();
      CHECK(supported == expected, "%s: chain staging supported = %d", VariantName(v), supported);
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<uint8_t> scratch(RandInt(0, 1) ? 0 : 100000, 0xAB);  // reused scratch is refilled
        std::vector<int8_t> out(lo.buffer_elements, 77);
        const Status st = Conv2DInt8Chain(*p1, *p2, in.data(), li, &scratch, out.data(), lo, tp);
        CHECK(st.ok(), "%s", st.message().c_str());
        size_t bad = 0;
        for (size_t i = 0; i < out.size(); ++i) bad += out[i] != ref[i];
        CHECK(bad == 0, "chain %s: %zu mismatches (k %d->%d s=%d pad=%d c %d->%d->%d h=%d w=%d n=%d threads=%d)",
              VariantName(v), bad, g1.kernel_h, g2.kernel_h, g2.stride_h, (int)g2.padding, g1.in_channels,
              g1.out_channels, g2.out_channels, h, w, n, tp ? tp->threads() : 1);
        ++compared;
        staged += supported;
        winograd_first += p1->RunsWinograd(h * w) && supported;
        winograd_staged += p2->RunsWinograd(o2.out_h * o2.out_w) && supported;
      }
    }
  }
  // A chain large enough for the threads (amx: 2^23+ MACs, KxK in per-thread bands reading the
  // chain's staging), 1 and 3 threads, every variant.
  {
    ConvGeometry g1, g2;
    g1.in_channels = 96;
    g1.out_channels = g2.in_channels = 64;
    g2.kernel_h = g2.kernel_w = 3;
    g2.padding = Padding::kSame;
    g2.out_channels = 48;
    const int h = 48, w = 44;
    const std::vector<int8_t> w1 = weights(g1), w2 = weights(g2);
    std::vector<int32_t> b1(64), b2(48);
    for (auto& e : b1) e = RandInt(-20000, 20000);
    for (auto& e : b2) e = RandInt(-20000, 20000);
    Int8QuantParams q1 = RandomQuant(64), q2 = RandomQuant(48);
    q2.input_zero_point = q1.output_zero_point;
    std::vector<int8_t> in(static_cast<size_t>(h) * w * 100);
    for (auto& e : in) e = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(1, h, w, 100, 3, 96), lm = NhwcSlice(1, h, w, 64, 0, 64);
    const TensorLayout lo = NhwcSlice(1, h, w, 60, 5, 48);
    std::unique_ptr<PackedConvInt8> r1, r2;
    CHECK(PackedConvInt8::Create(g1, w1.data(), b1.data(), q1, Variant::kScalar, &r1).ok(), "create");
    CHECK(PackedConvInt8::Create(g2, w2.data(), b2.data(), q2, Variant::kScalar, &r2).ok(), "create");
    std::vector<int8_t> mid(lm.buffer_elements), ref(lo.buffer_elements, 77);
    CHECK(Conv2DInt8(*r1, in.data(), li, mid.data(), lm).ok() && Conv2DInt8(*r2, mid.data(), lm, ref.data(), lo).ok(),
          "reference convs");
    for (Variant v : kAllVariants) {
      if (!VariantAvailable(v) || v == Variant::kScalar) continue;
      std::unique_ptr<PackedConvInt8> p1, p2;
      CHECK(PackedConvInt8::Create(g1, w1.data(), b1.data(), q1, v, &p1).ok(), "create");
      CHECK(PackedConvInt8::Create(g2, w2.data(), b2.data(), q2, v, &p2).ok(), "create");
      CHECK(Conv2DInt8ChainSupported(*p1, *p2), "%s: large chain staged", VariantName(v));
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<uint8_t> scratch;
        std::vector<int8_t> out(lo.buffer_elements, 77);
        const Status st = Conv2DInt8Chain(*p1, *p2, in.data(), li, &scratch, out.data(), lo, tp);
        CHECK(st.ok(), "%s", st.message().c_str());
        size_t bad = 0;
        for (size_t i = 0; i < out.size(); ++i) bad += out[i] != ref[i];
        CHECK(bad == 0, "large chain %s: %zu mismatches (threads=%d)", VariantName(v), bad, tp ? tp->threads() : 1);
        ++compared;
        ++staged;
      }
    }
  }
  // Mismatched zero points are refused with a message, not run.
  ConvGeometry g;
  g.in_channels = g.out_channels = 4;
  const std::vector<int8_t> w(16, 1);
  Int8QuantParams q = RandomQuant(4), q2 = RandomQuant(4);
  q2.input_zero_point = q.output_zero_point + 1 > 127 ? -128 : q.output_zero_point + 1;
  std::unique_ptr<PackedConvInt8> a, b;
  CHECK(PackedConvInt8::Create(g, w.data(), nullptr, q, Variant::kAuto, &a).ok(), "create");
  CHECK(PackedConvInt8::Create(g, w.data(), nullptr, q2, Variant::kAuto, &b).ok(), "create");
  std::vector<int8_t> x(16), y(16);
  std::vector<uint8_t> scratch;
  const TensorLayout l = NhwcSlice(1, 2, 2, 4, 0, 4);
  const Status st = Conv2DInt8Chain(*a, *b, x.data(), l, &scratch, y.data(), l);
  CHECK(!st.ok() && st.message().find("zero point") != std::string::npos, "zero point mismatch refused");
  std::printf("conv chain comparisons: %d (%d through the staged path: %d written by a winograd run, %d read by one)\n",
              compared, staged, winograd_first, winograd_staged);
}

void TestThreadsBitIdentical() {
  ThreadPool pool(3);
  // h, w, in, out channels, kernel, stride, batch
  const int shapes[][7] = {{16, 16, 128, 128, 1, 1, 1}, {13, 11, 64, 33, 3, 1, 1}, {4, 4, 256, 256, 3, 1, 1},
                           {15, 15, 96, 80, 3, 2, 1},   {7, 7, 512, 512, 1, 1, 1},  {9, 7, 70, 40, 3, 1, 2},
                           {14, 14, 150, 32, 3, 1, 1},  {6, 5, 64, 48, 3, 2, 3},
#if defined(__x86_64__)  // 44 % of this test's MACs, for the amx variant only: not under qemu-aarch64
                           // above the amx variant's own parallel threshold (2^23 MACs): stride-2 3x3
                           // (row tiles), 1x1 over the whole image, strided 1x1 (row tiles in place)
                           {28, 28, 96, 64, 3, 2, 1},   {40, 40, 64, 128, 1, 1, 1}, {40, 42, 136, 160, 1, 2, 1},
                           {24, 20, 64, 96, 3, 1, 2},   // two images of amx row bands
#endif
                           // a tail (TailPixels) in the last band or chunk: 49 = 2 x 24 + 1, 50 = 2 x 24 + 2
                           {7, 7, 128, 32, 3, 1, 1},    {7, 7, 64, 512, 3, 1, 2},   {10, 5, 40, 24, 3, 1, 1},
                           // images of up to 256 pixels run prefetching first register tiles (AVX-512
                           // VNNI, AMX); the sign-flipped 1x1 into few channels too
                           {8, 8, 96, 24, 1, 1, 2}};
  int compared = 0;
  for (const auto& sh : shapes) {
    ConvGeometry g;
    g.kernel_h = g.kernel_w = sh[4];
    g.stride_h = g.stride_w = sh[5];
    g.in_channels = sh[2];
    g.out_channels = sh[3];
    ConvOutputShape os;
    CHECK(ComputeOutputShape(g, sh[0], sh[1], &os).ok(), "shape");
    std::vector<int8_t> wts(static_cast<size_t>(g.out_channels) * sh[4] * sh[4] * g.in_channels);
    for (auto& v : wts) v = static_cast<int8_t>(RandInt(-127, 127));
    std::vector<int32_t> bias(g.out_channels);
    for (auto& v : bias) v = RandInt(-20000, 20000);
    const int batch = sh[6];
    std::vector<int8_t> in(static_cast<size_t>(batch) * sh[0] * sh[1] * g.in_channels);
    for (auto& v : in) v = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(batch, sh[0], sh[1], g.in_channels, 0, g.in_channels);
    const TensorLayout lo = NhwcSlice(batch, os.out_h, os.out_w, g.out_channels, 0, g.out_channels);
    // One quantization (RandomQuant draws the rounding mode) and one scalar reference for every
    // variant: recomputing the reference per variant cost this test 34 -> 24 s under qemu -cpu max.
    for (int r = 0; r < 4; ++r) {
      const Int8QuantParams q = RandomQuant(g.out_channels);
      std::unique_ptr<PackedConvInt8> ref_p;
      CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &ref_p).ok(), "scalar");
      std::vector<int8_t> ref(lo.buffer_elements, 79);
      CHECK(Conv2DInt8(*ref_p, in.data(), li, ref.data(), lo).ok(), "scalar conv");
      for (Variant v : kAllVariants) {
        if (!VariantAvailable(v)) continue;
        std::unique_ptr<PackedConvInt8> p;
        Status st = PackedConvInt8::Create(g, wts.data(), bias.data(), q, v, &p);
        CHECK(st.ok(), "%s", st.message().c_str());
        std::vector<int8_t> one(lo.buffer_elements, 77), three(lo.buffer_elements, 78);
        CHECK(Conv2DInt8(*p, in.data(), li, one.data(), lo).ok(), "1 thread");
        CHECK(Conv2DInt8(*p, in.data(), li, three.data(), lo, &pool).ok(), "3 threads");
        CHECK(one == three, "%s: 3 threads differ from 1 (k=%d cin=%d cout=%d %dx%d)", VariantName(v), sh[4],
              sh[2], sh[3], sh[0], sh[1]);
        // and both are right (a pixel dropped on both sides would read alike)
        CHECK(one == ref, "%s: differs from the scalar reference (k=%d cin=%d cout=%d %dx%d)", VariantName(v), sh[4],
              sh[2], sh[3], sh[0], sh[1]);
        ++compared;
      }
    }
  }
  std::printf("thread-count comparisons (1 vs 3 threads, and the scalar reference): %d\n", compared);
}

// 1x1 convs read their input slice in place, and with in_channels not a multiple of the dot-product
// group a kernel reads past the slice. The input here ends right before a PROT_NONE page (the slice
// at the end of each pixel, the last pixel at the end of the buffer), so a read that leaves the
// buffer crashes the test instead of going unnoticed; results must equal the scalar reference
// (1 and 3 threads: several tasks end at the last pixel).
void TestDirect1x1StaysInBuffer() {
  const long page = sysconf(_SC_PAGESIZE);
  ThreadPool pool(3);
  int compared = 0;
  const int shapes[][4] = {{1, 1, 1, 5},   {2, 3, 1, 9},    {3, 4, 6, 17},  {5, 7, 2, 33},
                           {6, 7, 7, 64},  {7, 7, 0, 150},  {14, 14, 3, 150}, {9, 13, 5, 918},
                           {4, 5, 0, 13},  {3, 3, 1, 255}};  // h, w, extra channels before, in_channels
  for (const auto& sh : shapes) {
    ConvGeometry g;
    g.in_channels = sh[3];
    g.out_channels = RandInt(1, 70);
    const int n = RandInt(1, 2), h = sh[0], w = sh[1], in_total = sh[2] + sh[3];
    const size_t bytes = static_cast<size_t>(n) * h * w * in_total;
    const size_t mapped = (bytes + page - 1) / page * page + page;
    void* m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    if (m == MAP_FAILED) return;
    auto* base = static_cast<int8_t*>(m);
    CHECK(mprotect(base + mapped - page, page, PROT_NONE) == 0, "mprotect");
    int8_t* in = base + (mapped - page - bytes);
    for (size_t i = 0; i < bytes; ++i) in[i] = static_cast<int8_t>(RandInt(-128, 127));
    std::vector<int8_t> wts(static_cast<size_t>(g.out_channels) * g.in_channels);
    for (auto& v : wts) v = static_cast<int8_t>(RandInt(-127, 127));
    std::vector<int32_t> bias(g.out_channels);
    for (auto& v : bias) v = RandInt(-20000, 20000);
    const Int8QuantParams q = RandomQuant(g.out_channels);
    const TensorLayout li = NhwcSlice(n, h, w, in_total, sh[2], g.in_channels);
    const TensorLayout lo = NhwcSlice(n, h, w, g.out_channels, 0, g.out_channels);
    std::unique_ptr<PackedConvInt8> pref;
    CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &pref).ok(), "scalar");
    std::vector<int8_t> ref(lo.buffer_elements, 77);
    CHECK(Conv2DInt8(*pref, in, li, ref.data(), lo).ok(), "scalar conv");
    for (Variant v : kAllVariants) {
      if (v == Variant::kScalar || !VariantAvailable(v)) continue;
      std::unique_ptr<PackedConvInt8> p;
      Status st = PackedConvInt8::Create(g, wts.data(), bias.data(), q, v, &p);
      CHECK(st.ok(), "%s", st.message().c_str());
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<int8_t> out(lo.buffer_elements, 78);
        CHECK(Conv2DInt8(*p, in, li, out.data(), lo, tp).ok(), "conv");
        CHECK(out == ref, "%s: 1x1 at the buffer end differs from scalar (cin=%d %dx%d, %s)", VariantName(v),
              g.in_channels, h, w, tp ? "3 threads" : "1 thread");
        ++compared;
      }
    }
    munmap(m, mapped);
  }
  std::printf("1x1 at the end of a guarded buffer: %d comparisons\n", compared);
}

// Max pooling vs the plain loop TFLite's reference kernel runs (window clipped to the input,
// max, clamp), on strided channel slices, at 1 and 3 threads.
// average: TFLite's int8 AVERAGE_POOL_2D (in-bounds count, ties away from zero) instead of the max.
void TestPoolMatchesReference(int trials, bool average) {
  ThreadPool three(3);
  for (int t = 0; t < trials; ++t) {
    PoolGeometry g;
    const int fmax = RandInt(0, 9) == 0 ? 16 : 5;  // sometimes large windows (counts up to 256)
    g.filter_h = RandInt(1, fmax);
    g.filter_w = RandInt(1, fmax);
    g.stride_h = RandInt(1, 3);
    g.stride_w = RandInt(1, 3);
    if (t % 4 == 0) g.filter_h = g.filter_w = g.stride_h = g.stride_w = 2;  // the 2x2 / 2 fast path
    g.padding = RandInt(0, 1) ? Padding::kSame : Padding::kValid;
    const int n = RandInt(1, 2), h = RandInt(g.filter_h, g.filter_h + 8), w = RandInt(g.filter_w, g.filter_w + 8);
    const int c = RandInt(1, 40);
    const int in_total = c + RandInt(0, 5), in_off = RandInt(0, in_total - c);
    const int out_total = c + RandInt(0, 5), out_off = RandInt(0, out_total - c);
    int oh = 0, ow = 0;
    CHECK(ComputePoolOutputShape(g, h, w, &oh, &ow).ok(), "pool shape");
    const int lo = RandInt(-128, 0), hi = RandInt(lo, 127);
    std::vector<int8_t> in(size_t(n) * h * w * in_total);
    for (auto& v : in) v = static_cast<int8_t>(RandInt(-128, 127));
    const TensorLayout li = NhwcSlice(n, h, w, in_total, in_off, c), lo_ = NhwcSlice(n, oh, ow, out_total, out_off, c);
    std::vector<int8_t> ref(size_t(n) * oh * ow * out_total, 7);
    const int pad_t = g.padding == Padding::kSame ? std::max((oh - 1) * g.stride_h + g.filter_h - h, 0) / 2 : 0;
    const int pad_l = g.padding == Padding::kSame ? std::max((ow - 1) * g.stride_w + g.filter_w - w, 0) / 2 : 0;
    for (int b = 0; b < n; ++b)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox)
          for (int k = 0; k < c; ++k) {
            int m = -128, sum = 0, count = 0;
            for (int fy = 0; fy < g.filter_h; ++fy)
              for (int fx = 0; fx < g.filter_w; ++fx) {
                const int y = oy * g.stride_h - pad_t + fy, x = ox * g.stride_w - pad_l + fx;
                if (y >= 0 && y < h && x >= 0 && x < w) {
                  const int v = in[((size_t(b) * h + y) * w + x) * in_total + in_off + k];
                  m = std::max(m, v);
                  sum += v;
                  ++count;
                }
              }
            // TFLite's reference_integer_ops::AveragePool
            if (average) m = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
            ref[((size_t(b) * oh + oy) * ow + ox) * out_total + out_off + k] = static_cast<int8_t>(std::min(hi, std::max(lo, m)));
          }
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &three}) {
      std::vector<int8_t> got(ref.size(), 7);
      Status st = average ? AvgPool2DInt8(g, in.data(), li, got.data(), lo_, lo, hi, pool)
                          : MaxPool2DInt8(g, in.data(), li, got.data(), lo_, lo, hi, pool);
      CHECK(st.ok(), "%s", st.message().c_str());
      CHECK(got == ref, "%s pool mismatch (f=%dx%d s=%dx%d pad=%d c=%d h=%d w=%d n=%d threads=%d)",
            average ? "average" : "max", g.filter_h, g.filter_w, g.stride_h, g.stride_w, int(g.padding), c, h, w, n,
            pool ? 3 : 1);
    }
  }
  if (average) {  // every 2x2 sum -512..508 (channel k: sum k - 512), against TFLite's division
    PoolGeometry g;
    g.filter_h = g.filter_w = g.stride_h = g.stride_w = 2;
    g.padding = Padding::kValid;
    const int c = 1021;
    std::vector<int8_t> in(4 * c), out(c);
    for (int k = 0; k < c; ++k)
      for (int j = 0; j < 4; ++j)  // floor((s + j) / 4) over j = 0..3 sums to s
        in[size_t(j) * c + k] = static_cast<int8_t>(static_cast<int>(std::floor((k - 512 + j) / 4.0)));
    CHECK(AvgPool2DInt8(g, in.data(), NhwcSlice(1, 2, 2, c, 0, c), out.data(), NhwcSlice(1, 1, 1, c, 0, c), -128, 127).ok(),
          "2x2 average pool");
    int bad = 0;
    for (int k = 0; k < c; ++k) {
      const int sum = k - 512, want = sum > 0 ? (sum + 2) / 4 : (sum - 2) / 4;
      bad += out[k] != want;
    }
    CHECK(bad == 0, "2x2 average pool: %d of %d sums rounded wrongly", bad, c);
  }
  if (average) {  // a 64x64 window (count 4096): ties +-2048 go away from zero, 2047 rounds down
    PoolGeometry g;
    g.filter_h = g.filter_w = 64;
    g.stride_h = g.stride_w = 64;
    g.padding = Padding::kValid;
    std::vector<int8_t> in(64 * 64 * 3, 0), out(3, 7);
    for (int i = 0; i < 2048; ++i) {
      in[size_t(i) * 3] = 1;
      in[size_t(i) * 3 + 1] = -1;
      if (i < 2047) in[size_t(i) * 3 + 2] = 1;
    }
    CHECK(AvgPool2DInt8(g, in.data(), NhwcSlice(1, 64, 64, 3, 0, 3), out.data(), NhwcSlice(1, 1, 1, 3, 0, 3), -128, 127).ok(),
          "64x64 average pool");
    CHECK(out[0] == 1 && out[1] == -1 && out[2] == 0, "64x64 average pool rounding: %d %d %d", out[0], out[1], out[2]);
    std::fill(in.begin(), in.end(), int8_t{-128});
    CHECK(AvgPool2DInt8(g, in.data(), NhwcSlice(1, 64, 64, 3, 0, 3), out.data(), NhwcSlice(1, 1, 1, 3, 0, 3), -128, 127).ok() &&
              out[0] == -128,
          "64x64 average pool of -128");
    return;
  }
  PoolGeometry bad;
  bad.filter_h = 0;
  int oh, ow;
  CHECK(!ComputePoolOutputShape(bad, 4, 4, &oh, &ow).ok(), "filter 0 refused");
  std::vector<int8_t> in(16), out(32);
  PoolGeometry g;
  TensorLayout short_in = NhwcSlice(1, 4, 4, 1, 0, 1);
  short_in.buffer_elements = 15;
  CHECK(!MaxPool2DInt8(g, in.data(), short_in, out.data(), NhwcSlice(1, 4, 4, 2, 0, 1), -128, 127).ok(),
        "input layout past its buffer refused");
}

// The pool runs each index exactly once per call, in both task orders, also when a worker wakes
// after the call it was woken for has ended (the sleeps let workers fall asleep, so their wake-ups
// race with later calls) and when there are more indices than the pool's state word counts.
void TestThreadPool() {
  int calls = 0;
  for (int threads : {2, 3, 4}) {
    ThreadPool pool(threads);
    for (int it = 0; it < 1500; ++it) {
      const int n = RandInt(0, 70);
      std::vector<int> counts(n, 0);  // per call: a stale task of an ended call would write freed memory
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(
          n,
          [&](int i) {
            for (unsigned spin = (i * 2654435761u) >> 22; spin > 0; --spin) asm volatile("");  // uneven tasks
            hits[i].fetch_add(1, std::memory_order_relaxed);
            ++counts[i];
          },
          it % 3 == 0 ? TaskOrder::kFirstCome : TaskOrder::kContiguous);  // both hand-outs
      bool once = true;
      for (int i = 0; i < n; ++i) once = once && counts[i] == 1 && hits[i].load() == 1;
      CHECK(once, "threads %d, call %d: every index of %d exactly once\n", threads, it, n);
      if (it % 40 == 0) usleep(RandInt(50, 400));
      // Wake() (a model's invoke starting) between calls, sometimes twice or with a sleep after it.
      if (it % 7 == 0) {
        pool.Wake();
        if (it % 3 == 0) pool.Wake();
        if (it % 5 == 0) usleep(RandInt(10, 200));
      }
      ++calls;
    }
    pool.Wake();  // and right before the pool is destroyed
  }
  {
    ThreadPool one(1);
    one.Wake();  // no workers: nothing to do
    int ran = 0;
    one.ParallelFor(3, [&](int) { ++ran; });
    CHECK(ran == 3, "a 1-thread pool runs every index after Wake()\n");
  }
  {
    // Each thread runs a contiguous range first (the same rows on the same core from call to
    // call): the caller, thread 0, runs the first quarter of 64 equal tasks in order. A shared
    // counter handed them out in whatever order the threads came (this failed with it).
    ThreadPool two(2);
    int contiguous = 0;
    constexpr int kCalls = 50, kTasks = 64;
    for (int call = 0; call < kCalls; ++call) {
      const std::thread::id caller = std::this_thread::get_id();
      std::atomic<int> order{0};
      std::vector<int> by_caller_at(kTasks, -1);
      two.ParallelFor(kTasks, [&](int i) {
        const int at = order.fetch_add(1);
        if (std::this_thread::get_id() == caller) by_caller_at[i] = at;
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(5);
        while (std::chrono::steady_clock::now() < until) {
        }
      });
      bool ok = true;
      for (int i = 1; i < kTasks / 4; ++i) ok = ok && by_caller_at[i - 1] >= 0 && by_caller_at[i] > by_caller_at[i - 1];
      contiguous += ok;
    }
    // A fifth: a descheduled caller lets the worker steal into its range (24 of 50 under qemu on a
    // loaded host); a shared counter interleaves the two threads' tasks in nearly every call.
    CHECK(contiguous >= kCalls / 5, "the caller ran tasks 0-15 in order in %d of %d calls", contiguous, kCalls);
  }
  ThreadPool pool(3);
  const int n = (1 << 24) + 7;
  std::vector<uint8_t> seen(n, 0);
  pool.ParallelFor(n, [&](int i) { ++seen[i]; });
  CHECK(std::all_of(seen.begin(), seen.end(), [](uint8_t v) { return v == 1; }), "%d indices exactly once\n", n);
  std::printf("thread pool: %d calls\n", calls + 1);
}

// A conv of all-one weights packed for variant v: which packing and kernel a geometry gets.
std::unique_ptr<PackedConvInt8> PackOnes(int k, int stride, int cin, int cout, Variant v) {
  ConvGeometry g;
  g.kernel_h = g.kernel_w = k;
  g.stride_h = g.stride_w = stride;
  g.in_channels = cin;
  g.out_channels = cout;
  const std::vector<int8_t> w(static_cast<size_t>(cout) * k * k * cin, 1);
  std::unique_ptr<PackedConvInt8> p;
  CHECK(PackedConvInt8::Create(g, w.data(), nullptr, RandomQuant(cout), v, &p).ok(), "create");
  return p;
}

// Which AVX-512 VNNI convs take PackedConvInt8::k_pairs_'s 8-byte packing.
void TestAvx512PairPacking() {
  if (!VariantAvailable(Variant::kAvx512Vnni)) return;
  auto pairs = [](int k, int stride, int cin, int cout) {
    const std::unique_ptr<PackedConvInt8> p = PackOnes(k, stride, cin, cout, Variant::kAvx512Vnni);
    CHECK(!p->k_pairs_ || p->k_padded_ % 8 == 0, "k_pairs_ pads to 8 (%d)", p->k_padded_);
    return p->k_pairs_;
  };
  CHECK(pairs(3, 1, 128, 32), "3x3 128->32: pairs");
  CHECK(pairs(3, 1, 128, 48), "3x3 128->48: pairs");
  CHECK(pairs(3, 1, 40, 16), "3x3 40->16: pairs");
  CHECK(!pairs(3, 1, 128, 64), "3x3 128->64: 4-byte groups (6 x 64 tiles)");
  CHECK(!pairs(3, 1, 16, 32), "3x3 16->32, stride 1: 4-byte groups (row tiles)");
  CHECK(pairs(3, 2, 16, 32), "3x3/2 16->32: pairs");
  CHECK(!pairs(3, 1, 2, 16), "3x3 2->16: kernel-row taps");
  CHECK(pairs(1, 1, 48, 32), "1x1 48->32: pairs");
  CHECK(!pairs(1, 1, 8, 32), "1x1 8->32: 4-byte groups (8 elements)");
  std::printf("avx512vnni pair packing checked\n");
}

// AVX2 packs its weights as int8 pairs (widened to int16 by the kernel's loads): the packing holds
// one byte per weight (plus the per-block parameter rows), and the extreme weights -128 and 127
// against the extreme inputs give the scalar reference's bits.
void TestAvx2Int8Packing() {
  if (!VariantAvailable(Variant::kAvx2)) return;
  for (int k : {1, 3}) {
    const int cin = 130, cout = 40, blocks = (cout + 15) / 16;  // k_padded_ 130
    const std::unique_ptr<PackedConvInt8> p = PackOnes(k, 1, cin, cout, Variant::kAvx2);
    const size_t weight_bytes = static_cast<size_t>(blocks) * 16 * k * k * p->k_padded_;
    CHECK(p->packed_storage_.size() > weight_bytes && p->packed_storage_.size() < 2 * weight_bytes,
          "avx2 %dx%d: %zu packed bytes for %zu int8 weights (int16 pairs would take over twice)", k, k,
          p->packed_storage_.size(), weight_bytes);
  }
  ConvGeometry g;
  g.kernel_h = g.kernel_w = 3;
  g.padding = Padding::kSame;
  g.in_channels = 258;
  g.out_channels = 20;
  const int h = 6, w = 7;
  std::vector<int8_t> wts(static_cast<size_t>(g.out_channels) * 9 * g.in_channels);
  for (size_t i = 0; i < wts.size(); ++i) wts[i] = static_cast<int8_t>(i % 3 == 0 ? -128 : i % 3 == 1 ? 127 : -127);
  std::vector<int8_t> in(static_cast<size_t>(h) * w * g.in_channels);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int8_t>(i % 2 ? 127 : -128);
  for (int zp : {-128, 127}) {
    std::vector<float> fs(g.out_channels, 0.00002f);
    Int8QuantParams q;
    CHECK(MakeInt8QuantParams(0.05f, zp, fs.data(), g.out_channels, 0.5f, 3, -128, 127, &q).ok(), "quant");
    std::unique_ptr<PackedConvInt8> ref, avx2;
    CHECK(PackedConvInt8::Create(g, wts.data(), nullptr, q, Variant::kScalar, &ref).ok(), "create");
    CHECK(PackedConvInt8::Create(g, wts.data(), nullptr, q, Variant::kAvx2, &avx2).ok(), "create");
    const TensorLayout li = NhwcSlice(1, h, w, g.in_channels, 0, g.in_channels);
    const TensorLayout lo = NhwcSlice(1, h, w, g.out_channels, 0, g.out_channels);
    std::vector<int8_t> want(lo.buffer_elements), got(lo.buffer_elements);
    CHECK(Conv2DInt8(*ref, in.data(), li, want.data(), lo).ok(), "ref");
    CHECK(Conv2DInt8(*avx2, in.data(), li, got.data(), lo).ok(), "avx2");
    CHECK(got == want, "avx2 extreme weights / inputs, input zero point %d: not the reference's bits", zp);
    int distinct = 0;
    for (size_t i = 1; i < want.size(); ++i) distinct += want[i] != want[0];
    CHECK(distinct > 0, "extreme case saturates every output (a weak test)");
  }
  std::printf("avx2 int8 weight packing checked\n");
}

// AVX2 and plain NEON 3x3 stride-1 convs run by Winograd F(2x2, 3x3) where every output channel's
// weights keep 4 x its largest sum inside int32 (255 * sum |w| < 2^29), with the direct kernel's
// bits; the largest sum that qualifies is checked against the scalar reference, on both sides of
// the bound.
void TestWinograd(Variant v) {
  if (!VariantAvailable(v)) return;
  const char* name = VariantName(v);
  auto wino = [v](int k, int stride, int cin, int cout) { return PackOnes(k, stride, cin, cout, v)->winograd_; };
  CHECK(wino(3, 1, 128, 32), "3x3 128->32: winograd");
  CHECK(wino(3, 1, 8, 16), "3x3 8->16: winograd");
  CHECK(!wino(3, 1, 4, 16), "3x3 4->16: direct (too few channels)");
  CHECK(!wino(3, 2, 128, 32), "3x3/2: direct");
  CHECK(!wino(1, 1, 128, 32), "1x1: direct");
  CHECK(!wino(5, 1, 128, 32), "5x5: direct");
  {
    const ScopedEnv off("KERAS_CSP_WINOGRAD", "0");
    CHECK(!wino(3, 1, 128, 32), "KERAS_CSP_WINOGRAD=0: direct");
  }
  ConvGeometry g;
  g.kernel_h = g.kernel_w = 3;
  g.padding = Padding::kSame;
  g.out_channels = 3;
  const int h = 5, w = 6;
  const ScopedEnv force("KERAS_CSP_WINOGRAD", "force");  // a 5x6 image (Winograd from 10x10 by default)
  // 255 * 9 * 128 * cin < 2^29 up to cin = 1827. Weights -128 against x - zero point = -255: every
  // product +32640, an interior pixel's sum 536.7M (4 x: 2,146,861,440, just inside int32).
  for (int cin : {1827, 1828}) {
    g.in_channels = cin;
    const std::vector<int8_t> wts(static_cast<size_t>(g.out_channels) * 9 * cin, -128);
    const std::vector<int8_t> in(static_cast<size_t>(h) * w * cin, -128);
    std::vector<int32_t> bias = {0, -1000000, 7};
    for (Rounding r : {Rounding::kFp32, Rounding::kAwayFromZero}) {
      std::vector<float> fs = {1e-5f, 1.1e-5f, 0.9e-5f};
      Int8QuantParams q;
      CHECK(MakeInt8QuantParams(0.01f, 127, fs.data(), g.out_channels, 1.0f, -100, -128, 127, &q).ok(), "quant");
      q.rounding = r;
      if (r == Rounding::kFp32)
        for (float f : fs) q.requant_scale.push_back(0.01f * f);
      std::unique_ptr<PackedConvInt8> ref, var;
      CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, Variant::kScalar, &ref).ok(), "create");
      CHECK(PackedConvInt8::Create(g, wts.data(), bias.data(), q, v, &var).ok(), "create");
      CHECK(var->winograd_ == (cin == 1827), "%s cin %d: winograd %d", name, cin, static_cast<int>(var->winograd_));
      const TensorLayout li = NhwcSlice(1, h, w, cin, 0, cin);
      const TensorLayout lo = NhwcSlice(1, h, w, g.out_channels, 0, g.out_channels);
      std::vector<int8_t> want(lo.buffer_elements), got(lo.buffer_elements, 77);
      CHECK(Conv2DInt8(*ref, in.data(), li, want.data(), lo).ok(), "ref");
      CHECK(Conv2DInt8(*var, in.data(), li, got.data(), lo).ok(), "variant");
      CHECK(got == want, "%s 3x3 %d->3 at the sum bound (rounding %d): not the reference's bits", name, cin, static_cast<int>(r));
      // Interior (9 taps), edge (6) and corner (4) pixels: three sums, none saturated.
      CHECK(want[0] != want[w * g.out_channels + g.out_channels] && want[0] > -128 && want[0] < 127 &&
                want[(w + 1) * g.out_channels] < 127,
            "bound case: outputs %d %d %d saturate or coincide (a weak test)", want[0], want[w * g.out_channels + g.out_channels],
            want[(w + 1) * g.out_channels]);
    }
  }
  std::printf("%s winograd choice and sum bound checked\n", name);
}

// MeasureInt8TileRate: the AVX-512 VNNI tile runs (in the ASan build: inside its buffers) and
// gives a rate; bad k and variants without a tile loop are refused.
void TestTileRate() {
  double g = -1;
  CHECK(MeasureInt8TileRate(Variant::kAvx512Vnni, 130, 1e-4, &g).code() == StatusCode::kInvalidArgument,
        "tile rate: k = 130 refused");
  CHECK(MeasureInt8TileRate(Variant::kScalar, 64, 1e-4, &g).code() == StatusCode::kUnsupported,
        "tile rate: scalar has no tile loop");
  if (!VariantAvailable(Variant::kAvx512Vnni)) return;
  for (int k : {4, 64, 1024}) {
    g = -1;
    CHECK(MeasureInt8TileRate(Variant::kAvx512Vnni, k, 1e-4, &g).ok() && g > 0, "tile rate at K = %d: %g", k, g);
  }
  std::printf("avx512vnni tile rate checked\n");
}

// On an AMX CPU, kAuto runs small-K convs on the AVX-512 VNNI kernels (AmxPays) and the rest on
// tiles; amx asked for by name always runs tiles.
void TestAmxAutoChoice() {
  if (BestVariant(false) != Variant::kAmx || std::getenv("KERAS_CSP_KERNEL_VARIANT") != nullptr) return;
  auto packed = [](int k, int cin, Variant v) { return PackOnes(k, 1, cin, 32, v)->variant(); };
  CHECK(packed(1, 16, Variant::kAuto) == Variant::kAvx512Vnni, "auto: 1x1 16->32 on AVX-512 VNNI");
  CHECK(packed(1, 24, Variant::kAuto) == Variant::kAvx512Vnni, "auto: 1x1 24->32 on AVX-512 VNNI");
  CHECK(packed(3, 4, Variant::kAuto) == Variant::kAvx512Vnni, "auto: 3x3 4->32 on AVX-512 VNNI");
  CHECK(packed(1, 32, Variant::kAuto) == Variant::kAmx, "auto: 1x1 32->32 on AMX");
  CHECK(packed(3, 8, Variant::kAuto) == Variant::kAmx, "auto: 3x3 8->32 on AMX");
  CHECK(packed(3, 3, Variant::kAuto) == Variant::kAvx512Vnni, "auto: 3x3 3->32 on AVX-512 VNNI");
  CHECK(packed(1, 48, Variant::kAuto) == Variant::kAmx, "auto: 1x1 48->32 on AMX");
  CHECK(packed(3, 16, Variant::kAuto) == Variant::kAmx, "auto: 3x3 16->32 on AMX");
  CHECK(packed(7, 3, Variant::kAuto) == Variant::kAmx, "auto: 7x7 3->32 on AMX");
  CHECK(packed(1, 16, Variant::kAmx) == Variant::kAmx, "amx by name: 1x1 16->32 on AMX");
  std::printf("amx auto choice checked\n");
}

// CopyChannels (CSP skip parts) on 1 and 3 threads, copies above and below its per-task minimum:
// exactly the channel slice of every pixel, nothing else written.
template <typename T>
void TestCopyChannelsOf(ThreadPool* pool) {
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t pixels = trial % 2 ? RandInt(5000, 20000) : RandInt(1, 300);  // split / inline
    const int src_c = RandInt(1, 40), ch = RandInt(1, src_c), src_off = RandInt(0, src_c - ch);
    const int dst_c = ch + RandInt(0, 30), dst_off = RandInt(0, dst_c - ch);
    std::vector<T> src(pixels * src_c), dst(pixels * dst_c, T(7)), want(dst);
    for (auto& v : src) v = static_cast<T>(RandInt(-128, 127));
    for (int64_t p = 0; p < pixels; ++p)
      for (int k = 0; k < ch; ++k) want[p * dst_c + dst_off + k] = src[p * src_c + src_off + k];
    CopyChannels(dst.data(), dst_c, dst_off, src.data(), src_c, src_off, ch, pixels, pool);
    CHECK(dst == want, "copy %lld pixels x %d channels (%d threads)\n", (long long)pixels, ch,
          pool ? pool->threads() : 1);
  }
}

void TestCopyChannels() {
  ThreadPool three(3);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &three}) {
    TestCopyChannelsOf<int8_t>(pool);
    TestCopyChannelsOf<float>(pool);
  }
}

// Int8PostOps: every kernel this CPU runs against the scalar kernel and an int64 formula, on
// random tables, ADD parameters up to the int32 bound, strided and dense slices, 1 and 3 threads.
void TestPostOps(int trials) {
  const struct {
    Variant variant;
    Int8PostOps::Kernel kernel;
  } kernels[] = {{Variant::kScalar, Int8PostOps::Kernel::kScalar},
                 {Variant::kAvx2, Int8PostOps::Kernel::kAvx2},
                 {Variant::kAvx512Vnni, Int8PostOps::Kernel::kAvx512Vbmi},
                 {Variant::kNeon, Int8PostOps::Kernel::kNeon}};
  ThreadPool three(3);
  std::string ran;
  for (const auto& k : kernels) {
    if (!Int8PostOpsKernelAvailable(k.kernel) || !VariantAvailable(k.variant)) continue;
    for (int trial = 0; trial < trials; ++trial) {
      const int mode = trial % 3;  // 0: table, 1: add, 2: both
      std::vector<int8_t> table(256);
      for (auto& v : table) v = static_cast<int8_t>(RandInt(-128, 127));
      const Int8AddParams add = RandomAddParams();
      std::unique_ptr<Int8PostOps> ops;
      Status s = Int8PostOps::Create(mode != 1 ? table.data() : nullptr, mode != 0 ? &add : nullptr, k.variant, &ops);
      CHECK(s.ok(), "Create: %s", s.message().c_str());
      if (!s.ok()) continue;
      CHECK(ops->kernel() == k.kernel, "kernel %s for variant %s", ops->kernel_name(), VariantName(k.variant));
      const bool large = trial % 7 == 0;
      const int64_t pixels = large ? RandInt(2000, 9000) : RandInt(1, 200);
      const int channels = RandInt(0, 3) == 0 ? RandInt(1, 200) : 16 * RandInt(1, 4);
      const bool dense = RandInt(0, 1);
      const int64_t ys = dense ? channels : channels + RandInt(0, 70), rs = dense ? channels : channels + RandInt(0, 50);
      std::vector<int8_t> y(pixels * ys), r(pixels * rs), want;
      for (auto& v : y) v = static_cast<int8_t>(RandInt(-128, 127));
      for (auto& v : r) v = static_cast<int8_t>(RandInt(-128, 127));
      const int y_off = static_cast<int>(ys - channels) > 0 ? RandInt(0, static_cast<int>(ys - channels)) : 0;
      const int r_off = static_cast<int>(rs - channels) > 0 ? RandInt(0, static_cast<int>(rs - channels)) : 0;
      want = y;
      for (int64_t p = 0; p < pixels; ++p)
        for (int c = 0; c < channels; ++c) {
          int8_t& v = want[p * ys + y_off + c];
          if (mode != 1) v = table[static_cast<uint8_t>(v)];
          if (mode != 0) v = AddReference(add, v, r[p * rs + r_off + c]);
        }
      ThreadPool* pool = trial % 2 ? &three : nullptr;
      s = ApplyInt8PostOps(*ops, y.data() + y_off, pixels, ys, channels, r.data() + r_off, rs, pool);
      CHECK(s.ok() && y == want, "post ops %s mode %d: %lld pixels x %d channels, strides %lld/%lld (%s)",
            ops->kernel_name(), mode, (long long)pixels, channels, (long long)ys, (long long)rs, s.message().c_str());
    }
    ran += std::string(" ") + (k.kernel == Int8PostOps::Kernel::kScalar ? "scalar" : k.kernel == Int8PostOps::Kernel::kAvx2 ? "avx2" : k.kernel == Int8PostOps::Kernel::kAvx512Vbmi ? "avx512vbmi" : "neon");
  }
  std::printf("post-op kernels run:%s\n", ran.c_str());
  // Validation: out-of-range ADDs are refused (the runtime keeps its exact table for them), a
  // missing residual is an error, not a crash.
  Int8AddParams bad;
  bad.y_multiplier = 1 << 24;
  bad.r_multiplier = 1 << 24;
  std::unique_ptr<Int8PostOps> ops;
  CHECK(!Int8PostOps::Create(nullptr, &bad, Variant::kAuto, &ops).ok(), "int32-overflowing add accepted");
  bad = Int8AddParams();
  bad.shift = 0;
  CHECK(!Int8PostOps::Create(nullptr, &bad, Variant::kAuto, &ops).ok(), "shift 0 accepted");
  const Int8AddParams ok;
  CHECK(Int8PostOps::Create(nullptr, &ok, Variant::kAuto, &ops).ok(), "default add refused");
  int8_t y[4] = {};
  CHECK(!ApplyInt8PostOps(*ops, y, 1, 4, 4, nullptr, 4).ok(), "add without a residual accepted");
  CHECK(!ApplyInt8PostOps(*ops, y, 2, 2, 4, y, 4).ok(), "y_stride < channels accepted");
}

int main(int argc, char** argv) {
  int trials = 300;
  std::vector<std::string> expect, expect_missing;
  std::string expect_best;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) trials = std::atoi(argv[++i]);
    else if (a == "--expect" && i + 1 < argc) expect.push_back(argv[++i]);
    else if (a == "--expect-missing" && i + 1 < argc) expect_missing.push_back(argv[++i]);
    else if (a == "--expect-best" && i + 1 < argc) expect_best = argv[++i];
  }
  std::printf("arch=%s best_int8=%s best_f32=%s\n", compiled_arch().c_str(), VariantName(BestVariant(false)),
              VariantName(BestVariant(true)));
  for (Variant v : kAllVariants)
    std::printf("  %-13s int8:%s f32:%s\n", VariantName(v), VariantAvailable(v) ? "yes" : "no",
                VariantAvailable(v, true) ? "yes" : "no");
  for (const auto& e : expect) {
    Variant v;
    CHECK(ParseVariant(e, &v).ok() && VariantAvailable(v), "expected variant %s to be available", e.c_str());
  }
  for (const auto& e : expect_missing) {
    Variant v;
    CHECK(ParseVariant(e, &v).ok() && !VariantAvailable(v), "expected variant %s to be missing", e.c_str());
  }
  if (!expect_best.empty())
    CHECK(expect_best == VariantName(BestVariant(false)), "expected dispatch to pick %s for int8, got %s",
          expect_best.c_str(), VariantName(BestVariant(false)));
  TestRequantEdgeCases();
  TestValidation();
  TestFusedOps();
  TestCspSkipCopy();
  TestVariantsMatchScalarInt8(trials);
  TestVariantsMatchScalarInt8(trials / 4, StemCase, nullptr, "stem");
  {
    ThreadPool pool(3);
    TestVariantsMatchScalarInt8(trials / 4, StemCase, &pool, "stem (3 threads)");
  }
  {
    ThreadPool pool(3);
    TestVariantsMatchScalarInt8(trials / 10, ThreadedCase, &pool, "large (3 threads)");
  }
  TestVariantsMatchScalarInt8(trials / 4, RowTileCase, nullptr, "row tile");
  {
    ThreadPool pool(3);
    TestVariantsMatchScalarInt8(trials / 4, RowTileCase, &pool, "row tile (3 threads)");
  }
  TestLargeShapesInt8();
  TestTaskGrid();
  TestThreadPool();
  TestCopyChannels();
  TestPostOps(trials);
  TestThreadsBitIdentical();
  TestConvChain(trials / 3);
  TestDirect1x1StaysInBuffer();
  TestAvx512PairPacking();
  TestAvx2Int8Packing();
  TestWinograd(Variant::kAvx2);
  TestWinograd(Variant::kNeon);
  {
    // The Winograd path (AVX2, plain NEON) on every image size (by default only from 10x10 outputs: the random
    // cases' small images run the direct kernel).
    const ScopedEnv force("KERAS_CSP_WINOGRAD", "force");
    TestVariantsMatchScalarInt8(trials / 2, RandomCase, nullptr, "winograd forced");
    ThreadPool pool(3);
    TestVariantsMatchScalarInt8(trials / 10, ThreadedCase, &pool, "winograd forced, large (3 threads)");
    TestVariantsMatchScalarInt8(trials / 4, RowTileCase, &pool, "winograd forced, row tile (3 threads)");
    TestConvChain(trials / 6);
  }
  TestTileRate();
  TestAmxAutoChoice();
  TestDepthwiseMatchesScalar(trials);
  TestGroupedMatchesScalar(trials);
  TestPoolMatchesReference(trials / 3, false);
  TestPoolMatchesReference(trials / 3, true);
  TestVariantsMatchScalarF32(trials / 2);
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
