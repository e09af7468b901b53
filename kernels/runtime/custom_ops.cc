#include "custom_ops.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "flexbuffer_reader.h"
#include "keras_csp/conv.h"
#include "keras_csp/elementwise.h"
#include "keras_csp/pool.h"
#include "keras_csp/quantization.h"

namespace keras_csp::runtime {
namespace {

using flex::FlexError;
using flex::Ref;

constexpr int kOptionsVersion = 1;

int64_t ReqInt(const Ref& m, const char* key) {
  Ref r = m.Get(key);
  if (r.IsNull()) throw FlexError(std::string("missing option '") + key + "'");
  try {
    return r.AsInt();
  } catch (const FlexError& e) {
    throw FlexError(std::string("option '") + key + "': " + e.what());
  }
}
int64_t OptInt(const Ref& m, const char* key, int64_t dflt) {
  Ref r = m.Get(key);
  return r.IsNull() ? dflt : ReqInt(m, key);
}
std::vector<int64_t> ReqIntVec(const Ref& m, const char* key) {
  Ref r = m.Get(key);
  if (r.IsNull()) throw FlexError(std::string("missing option '") + key + "'");
  try {
    return r.AsIntVector();
  } catch (const FlexError& e) {
    throw FlexError(std::string("option '") + key + "': " + e.what());
  }
}
void Require(bool cond, const std::string& msg) {
  if (!cond) throw FlexError(msg);
}

void SetLayout(LiteRtLayout* l, std::initializer_list<int> dims) {
  std::memset(l, 0, sizeof(*l));
  l->rank = static_cast<unsigned>(dims.size());
  int i = 0;
  for (int d : dims) l->dimensions[i++] = d;
}

// The weights / bias layouts of a conv (`what` ""; OHWI) or depthwise conv ("depthwise "; [1,kh,kw,cout])
// against the options.
std::string CheckFilterLayouts(const LiteRtLayout& w, const LiteRtLayout& b, const int (&dims)[4], int cout,
                               const std::string& what) {
  if (w.rank != 4 || w.dimensions[0] != dims[0] || w.dimensions[1] != dims[1] || w.dimensions[2] != dims[2] ||
      w.dimensions[3] != dims[3]) {
    std::ostringstream os;
    os << what << "weights shape " << LayoutStr(w) << " inconsistent with options [" << dims[0] << "," << dims[1]
       << "," << dims[2] << "," << dims[3] << "]";
    return os.str();
  }
  if (b.rank != 1 || b.dimensions[0] != cout)
    return what + "bias shape " + LayoutStr(b) + " inconsistent with out_channels=" + std::to_string(cout);
  return "";
}

// The weights / bias buffers' types and sizes (`need_w` weights, `cout` biases).
std::string CheckFilterBuffers(const LiteRtRankedTensorType& wt, size_t w_bytes, const LiteRtRankedTensorType& bt,
                               size_t b_bytes, size_t need_w, int cout, const std::string& what) {
  if (wt.element_type != kLiteRtElementTypeInt8) return what + "weights must be int8";
  if (bt.element_type != kLiteRtElementTypeInt32) return what + "bias must be int32";
  if (w_bytes < need_w) return what + "weights buffer too small";
  if (b_bytes < size_t(cout) * 4) return what + "bias buffer too small";
  return "";
}

// ---- element-wise int8 op fused after a conv ----
// LEAKY_RELU as TFLite computes it (builtin and reference kernels agree: fixed-point multiplier
// per sign, MultiplyByQuantizedMultiplier) or as XNNPACK does (qs8 vlrelu: 8.8 fixed point,
// out = (((out_zp << 8) + 0x80 + x * m) >> 8), m = lrintf(256 * scale) per sign).
struct Epilogue {
  bool leaky = false;
  bool table = false;  // lut read from the options instead of computed
  bool on() const { return leaky || table; }
  bool xnnpack = false;
  int32_t in_zp = 0, out_zp = 0, m_id = 0, s_id = 0, m_alpha = 0, s_alpha = 0;
  int32_t xnn_pos = 0, xnn_neg = 0;

  void Parse(const Ref& m, Numerics numerics) {
    Ref post = m.Get("post");
    if (post.IsNull()) return;
    std::string kind = post.AsString();
    if (kind == "table") {  // an element-wise chain (SiLU, HARD_SWISH, ...) tabulated per kernel set
      const char* key = numerics == Numerics::kXnnpack          ? "post_table_xnnpack"
                        : numerics == Numerics::kTfliteBuiltin ? "post_table_builtin"
                                                               : "post_table_reference";
      auto v = ReqIntVec(m, key);
      Require(v.size() == 256, std::string(key) + " must have 256 entries");
      for (size_t i = 0; i < 256; ++i) {
        Require(v[i] >= -128 && v[i] <= 127, std::string(key) + " entries must be int8");
        lut[i ^ 0x80] = static_cast<int8_t>(v[i]);  // entry i is input i - 128; lut is indexed by uint8(x)
      }
      table = true;
      return;
    }
    Require(kind == "leaky_relu", "unsupported post op '" + kind + "'");
    leaky = true;
    // XNNPACK only takes a LEAKY_RELU whose scales it can represent; the fuse pass stores its
    // multipliers only then, else "post_xnn_unsupported" (TFLite's kernel runs the op even
    // under XNNPACK). Neither: a file from an older fuse pass, which cannot match XNNPACK.
    if (numerics == Numerics::kXnnpack && !m.Has("post_xnn_unsupported")) {
      Require(m.Has("post_xnn_positive_multiplier"),
              "missing option 'post_xnn_positive_multiplier' (XNNPACK's LEAKY_RELU parameters, "
              "needed to match XNNPACK; re-run `keras-csp fuse` on the original model, or run "
              "with cpu_kernel_mode 'builtin')");
      xnnpack = true;
      int64_t pm = ReqInt(m, "post_xnn_positive_multiplier");
      int64_t nm = ReqInt(m, "post_xnn_negative_multiplier");
      Require(pm >= -32768 && pm <= 32767 && nm >= -32768 && nm <= 32767,
              "post_xnn multipliers out of int16 range");
      xnn_pos = static_cast<int32_t>(pm);
      xnn_neg = static_cast<int32_t>(nm);
    }
    in_zp = static_cast<int32_t>(ReqInt(m, "post_input_zero_point"));
    out_zp = static_cast<int32_t>(ReqInt(m, "post_output_zero_point"));
    auto chk = [](int64_t mult, int64_t shift) {
      Require(mult >= 0 && mult <= 0x7fffffffLL && shift >= -31 && shift <= 30,
              "post multiplier/shift out of range");
    };
    int64_t a = ReqInt(m, "post_mult_identity"), b = ReqInt(m, "post_shift_identity");
    int64_t c = ReqInt(m, "post_mult_alpha"), d = ReqInt(m, "post_shift_alpha");
    chk(a, b);
    chk(c, d);
    Require(in_zp >= -128 && in_zp <= 127 && out_zp >= -128 && out_zp <= 127,
            "post zero points out of int8 range");
    m_id = static_cast<int32_t>(a);
    s_id = static_cast<int32_t>(b);
    m_alpha = static_cast<int32_t>(c);
    s_alpha = static_cast<int32_t>(d);
    for (int v = -128; v < 128; ++v) lut[static_cast<uint8_t>(v)] = Compute(v);
  }

  int8_t Compute(int32_t v) const {
    const int32_t x = v - in_zp;
    int32_t y;
    if (xnnpack) {
      // |x| <= 255 and |m| < 2^15: no overflow. >> of a negative int is arithmetic (C++20,
      // and what every supported compiler does); * 256, not << 8, as out_zp may be < 0.
      y = (out_zp * 256 + 0x80 + x * (x >= 0 ? xnn_pos : xnn_neg)) >> 8;
    } else {
      y = out_zp + (x >= 0 ? MultiplyByQuantizedMultiplier(x, m_id, s_id)
                           : MultiplyByQuantizedMultiplier(x, m_alpha, s_alpha));
    }
    return static_cast<int8_t>(std::min(127, std::max(-128, y)));
  }

  // In place over `channels` channels at `offset` of `pixels` pixels `stride` elements apart.
  // An int8 -> int8 map: one table lookup per element (built from Compute() in Parse).
  void Apply(int8_t* base, int64_t pixels, int64_t stride, int offset, int channels) const {
    if (!on()) return;
    for (int64_t p = 0; p < pixels; ++p) {
      int8_t* v = base + p * stride + offset;
      for (int c = 0; c < channels; ++c) v[c] = lut[static_cast<uint8_t>(v[c])];
    }
  }

  int8_t lut[256] = {};
};

// ---- a residual int8 ADD fused after a conv: out = ADD(a, b), the conv output being a or b ----
// A function of two int8 values, so it runs as a 64 KiB table built at Init from the formula of
// the kernels it replaces (see keras_csp.tflite.patterns.add_params): TFLite's (inputs shifted
// left 20, fixed-point multipliers, both rounding steps ties away from zero) or XNNPACK's qs8 vadd
// (acc = bias + a * a_mult + b * b_mult, arithmetic shift right, the rounding folded into bias).
struct ResidualAdd {
  bool on = false;
  bool conv_is_a = false;  // the conv output is the ADD's first input
  std::vector<int8_t> lut;  // [a][b] as uint8 indices
  // XNNPACK's qs8 vadd (numerics kXnnpack): its parameters, for the vector kernels where
  // Int8AddParamsSupported (the table stays the exact path for every other parameter set).
  bool xnn_formula = false;
  Int8AddParams xnn;

  void Parse(const Ref& m, Numerics numerics) {
    Ref a = m.Get("add");
    if (a.IsNull()) return;
    Require(a.IsMap(), "option 'add' must be a map");
    on = true;
    const int64_t conv_input = ReqInt(a, "conv_input");
    Require(conv_input == 0 || conv_input == 1, "add conv_input must be 0 or 1");
    conv_is_a = conv_input == 0;
    auto i8 = [&](const char* k) {
      const int64_t v = ReqInt(a, k);
      Require(v >= -128 && v <= 127, std::string("add ") + k + " out of int8 range");
      return static_cast<int32_t>(v);
    };
    const int32_t za = i8("a_zero_point"), zb = i8("b_zero_point"), zo = i8("output_zero_point");
    const int32_t lo = i8("act_min"), hi = i8("act_max");
    Require(lo <= hi, "add activation range invalid");
    lut.resize(1 << 16);
    if (numerics == Numerics::kXnnpack && !a.Has("xnn_unsupported")) {
      const int64_t am = ReqInt(a, "xnn_a_multiplier"), bm = ReqInt(a, "xnn_b_multiplier");
      const int64_t shift = ReqInt(a, "xnn_shift"), bias = ReqInt(a, "xnn_bias");
      Require(am >= -(1 << 22) && am <= (1 << 22) && bm >= -(1 << 22) && bm <= (1 << 22),
              "xnn add multipliers out of range");
      Require(shift >= 1 && shift <= 31, "xnn add shift out of range");
      Require(bias >= INT32_MIN && bias <= INT32_MAX, "xnn add bias out of int32 range");
      xnn.y_multiplier = static_cast<int32_t>(conv_is_a ? am : bm);
      xnn.r_multiplier = static_cast<int32_t>(conv_is_a ? bm : am);
      xnn.bias = static_cast<int32_t>(bias);
      xnn.shift = static_cast<int32_t>(shift);
      xnn.output_zero_point = zo;
      xnn.output_min = lo;
      xnn.output_max = hi;
      xnn_formula = true;
      for (int x = -128; x < 128; ++x)
        for (int y = -128; y < 128; ++y) {
          // |x * am| < 2^30: int64 keeps absurd (fuzzed) parameters defined
          const int64_t acc = bias + x * am + y * bm;
          int64_t v = acc >> shift;
          v = std::min<int64_t>(std::max<int64_t>(v, lo - zo), hi - zo) + zo;
          lut[Index(x, y)] = static_cast<int8_t>(v);
        }
      return;
    }
    auto mult = [&](const char* mk, const char* sk, int32_t* m, int* sh) {
      const int64_t mv = ReqInt(a, mk), sv = ReqInt(a, sk);
      Require(mv >= 0 && mv <= 0x7fffffffLL && sv >= -31 && sv <= 0, std::string("add ") + mk + "/shift out of range");
      *m = static_cast<int32_t>(mv);
      *sh = static_cast<int>(sv);
    };
    int32_t m1, m2, mo;
    int s1, s2, so;
    mult("a_multiplier", "a_shift", &m1, &s1);
    mult("b_multiplier", "b_shift", &m2, &s2);
    mult("output_multiplier", "output_shift", &mo, &so);
    for (int x = -128; x < 128; ++x)
      for (int y = -128; y < 128; ++y) {
        const int32_t sa = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul((x - za) * (1 << 20), m1), -s1);
        const int32_t sb = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul((y - zb) * (1 << 20), m2), -s2);
        int32_t v = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(sa + sb, mo), -so) + zo;
        lut[Index(x, y)] = static_cast<int8_t>(std::min(hi, std::max(lo, v)));
      }
  }

  static int Index(int a, int b) { return (static_cast<uint8_t>(a) << 8) | static_cast<uint8_t>(b); }

  // In place over the conv output y (`channels` channels at `offset`, pixels `stride` apart) with
  // the residual r (`r_stride` elements per pixel, from `r_offset`).
  void Apply(int8_t* base, int64_t pixels, int64_t stride, int offset, int channels, const int8_t* r,
             int64_t r_stride, int r_offset) const {
    if (!on) return;
    for (int64_t p = 0; p < pixels; ++p) {
      int8_t* y = base + p * stride + offset;
      const int8_t* q = r + p * r_stride + r_offset;
      for (int c = 0; c < channels; ++c) y[c] = lut[conv_is_a ? Index(y[c], q[c]) : Index(q[c], y[c])];
    }
  }
};

// ---- one int8 convolution described by custom options (shared by both CSP ops) ----
struct ConvSpec {
  Epilogue post;
  ResidualAdd add;  // CspPartialConv only
  ConvGeometry geometry;
  Int8QuantParams quant;
  std::unique_ptr<PackedConvInt8> packed;
  const void* packed_from = nullptr;  // weights pointer the packing was built from
  // The element-wise op (and the ADD where its parameters allow) on the vector kernels, for convs
  // with an ADD; null when there is none. vector_add: whether the ADD is in it (else the ADD's
  // table runs after it).
  std::unique_ptr<Int8PostOps> vector_post;
  bool vector_add = false;
  // The element-wise op without an ADD goes into the conv (PackedConvInt8::SetOutputTable: AVX-512
  // VNNI looks it up in its epilogue), not a pass of its own after it.
  bool PostInConv() const { return post.on() && !add.on; }

  void Parse(const Ref& m, const std::string& where, Numerics numerics) {
    try {
      geometry.kernel_h = static_cast<int>(ReqInt(m, "kernel_h"));
      geometry.kernel_w = static_cast<int>(ReqInt(m, "kernel_w"));
      geometry.stride_h = static_cast<int>(ReqInt(m, "stride_h"));
      geometry.stride_w = static_cast<int>(ReqInt(m, "stride_w"));
      int64_t pad = ReqInt(m, "padding");
      Require(pad == 0 || pad == 1, "padding must be 0 (VALID) or 1 (SAME)");
      geometry.padding = pad == 1 ? Padding::kSame : Padding::kValid;
      geometry.in_channels = static_cast<int>(ReqInt(m, "in_channels"));
      geometry.out_channels = static_cast<int>(ReqInt(m, "out_channels"));
      Require(geometry.kernel_h >= 1 && geometry.kernel_w >= 1 && geometry.kernel_h <= 64 &&
                  geometry.kernel_w <= 64,
              "kernel size out of range");
      Require(geometry.stride_h >= 1 && geometry.stride_w >= 1 && geometry.stride_h <= 64 &&
                  geometry.stride_w <= 64,
              "stride out of range");
      Require(geometry.in_channels >= 1 && geometry.out_channels >= 1 &&
                  geometry.in_channels <= (1 << 16) && geometry.out_channels <= (1 << 16),
              "channel counts out of range");
      Require(OptInt(m, "dilation_h", 1) == 1 && OptInt(m, "dilation_w", 1) == 1,
              "dilated convolutions are not supported");
      quant.input_zero_point = static_cast<int32_t>(ReqInt(m, "input_zero_point"));
      quant.output_zero_point = static_cast<int32_t>(ReqInt(m, "output_zero_point"));
      Require(quant.input_zero_point >= -128 && quant.input_zero_point <= 127,
              "input_zero_point out of int8 range");
      Require(quant.output_zero_point >= -128 && quant.output_zero_point <= 127,
              "output_zero_point out of int8 range");
      auto mult = ReqIntVec(m, "multipliers");
      auto shift = ReqIntVec(m, "shifts");
      Require(mult.size() == static_cast<size_t>(geometry.out_channels),
              "multipliers has " + std::to_string(mult.size()) + " entries, expected out_channels=" +
                  std::to_string(geometry.out_channels));
      Require(shift.size() == mult.size(), "shifts and multipliers differ in length");
      quant.output_multiplier.resize(mult.size());
      quant.output_shift.resize(shift.size());
      for (size_t i = 0; i < mult.size(); ++i) {
        Require(mult[i] >= 0 && mult[i] <= 0x7fffffffLL, "multiplier out of range");
        Require(shift[i] >= -31 && shift[i] <= 30, "shift out of range [-31, 30]");
        quant.output_multiplier[i] = static_cast<int32_t>(mult[i]);
        quant.output_shift[i] = static_cast<int32_t>(shift[i]);
      }
      quant.act_min = static_cast<int32_t>(ReqInt(m, "act_min"));
      quant.act_max = static_cast<int32_t>(ReqInt(m, "act_max"));
      Require(quant.act_min >= -128 && quant.act_max <= 127 && quant.act_min <= quant.act_max,
              "activation range [act_min, act_max] invalid");
      switch (numerics) {
        case Numerics::kXnnpack: {
          quant.rounding = Rounding::kFp32;
          Ref rs = m.Get("requant_scales");
          Require(!rs.IsNull(),
                  "missing option 'requant_scales' (XNNPACK's fp32 requantization scales, needed "
                  "to match XNNPACK; re-run `keras-csp fuse` on the original model, or run with "
                  "cpu_kernel_mode 'builtin'/'reference')");
          std::vector<double> v = rs.AsDoubleVector();
          Require(v.size() == static_cast<size_t>(geometry.out_channels),
                  "requant_scales has " + std::to_string(v.size()) +
                      " entries, expected out_channels=" + std::to_string(geometry.out_channels));
          for (double d : v) {
            Require(d >= 0x1.0p-32 && d < 256.0, "requant_scales entries must be in [2^-32, 256)");
            quant.requant_scale.push_back(static_cast<float>(d));
          }
          break;
        }
        case Numerics::kTfliteBuiltin: {
          // TFLite's builtin CONV_2D runs grouped convs on its reference kernel (ties away from
          // zero; measured: power-of-two scales, LiteRT 2.3): the fuse pass marks them.
          Ref br = m.Get("builtin_rounding");
          const std::string away = br.IsNull() ? "" : br.AsString();
          Require(br.IsNull() || away == "away", "builtin_rounding must be 'away'");
          quant.rounding = away == "away" ? Rounding::kAwayFromZero : Rounding::kHalfUp;
          break;
        }
        case Numerics::kTfliteReference: quant.rounding = Rounding::kAwayFromZero; break;
      }
      post.Parse(m, numerics);
      add.Parse(m, numerics);  // after the element-wise op when both are on (YOLO: ADD(r, SiLU(conv)))
      PrepareVectorPostOps();
    } catch (const FlexError& e) {
      throw FlexError(where + ": " + e.what());
    }
  }

  // Checks the weights/bias layouts against the options.
  std::string CheckLayouts(const LiteRtLayout& w, const LiteRtLayout& b) const {
    const auto& g = geometry;
    return CheckFilterLayouts(w, b, {g.out_channels, g.kernel_h, g.kernel_w, g.in_channels}, g.out_channels, "");
  }

  std::string EnsurePacked(const void* weights, size_t w_bytes, const LiteRtRankedTensorType& wt,
                           const void* bias, size_t b_bytes, const LiteRtRankedTensorType& bt) {
    if (packed && packed_from == weights) return "";
    const auto& g = geometry;
    const size_t need_w = size_t(g.out_channels) * g.kernel_h * g.kernel_w * g.in_channels;
    if (auto e = CheckFilterBuffers(wt, w_bytes, bt, b_bytes, need_w, g.out_channels, ""); !e.empty()) return e;
    Status s = PackedConvInt8::Create(g, static_cast<const int8_t*>(weights),
                                      static_cast<const int32_t*>(bias), quant, Variant::kAuto,
                                      &packed);
    if (!s.ok()) return std::string("packing weights failed: ") + s.message();
    if (PostInConv()) packed->SetOutputTable(post.lut);
    packed_from = weights;
    return "";
  }

  void PrepareVectorPostOps() {
    if ((!post.on() && !add.on) || PostInConv()) return;  // nothing after the conv
    vector_add = add.on && add.xnn_formula && Int8AddParamsSupported(add.xnn);
    if (!post.on() && !vector_add) return;  // only a table ADD: nothing for the vector kernels
    // Variant::kAuto: KERAS_CSP_KERNEL_VARIANT picks these kernels too (scalar: the reference).
    Status s = Int8PostOps::Create(post.on() ? post.lut : nullptr, vector_add ? &add.xnn : nullptr, Variant::kAuto,
                                   &vector_post);
    if (!s.ok()) {  // e.g. a forced variant this CPU lacks: the conv's packing reports it
      vector_post.reset();
      vector_add = false;
    }
  }

  // The element-wise op, then the residual ADD (r: `r_stride` elements per pixel, from `r_offset`), in
  // place over the conv's output (out_channels at `offset` of pixels `stride` apart), on the pool's
  // threads: every element is computed once, so the bits do not depend on the thread count.
  void ApplyPostOps(int8_t* base, int64_t pixels, int64_t stride, int offset, const int8_t* r, int64_t r_stride,
                    int r_offset, ThreadPool* pool) const {
    if (!add.on) return;  // nothing, or the element-wise op alone, which the conv applied (PostInConv)
    const int cout = geometry.out_channels;
    if (vector_post) {  // arguments valid by construction (stride >= channels), so it cannot fail
      (void)ApplyInt8PostOps(*vector_post, base + offset, pixels, stride, cout, vector_add ? r + r_offset : nullptr,
                             r_stride, pool);
    }
    ApplyTablePostOps(base, pixels, stride, offset, r, r_stride, r_offset, pool);
  }

  // The conv from `src` into `dst` (dense NHWC slices), then ApplyPostOps' ops with the residual r: those
  // on the vector kernels inside the conv's tasks, each task on the outputs it has just written (no pass
  // and no barrier of their own: a YOLO bottleneck's ADD), the table lookups after the conv.
  Status RunConv(const int8_t* src, const TensorLayout& sl, int8_t* dst, const TensorLayout& dl, const int8_t* r,
                 const TensorLayout& rl, ThreadPool* pool) const {
    ConvOutputOps ops;
    if (add.on && vector_post) {
      ops.ops = vector_post.get();
      if (vector_add) {
        ops.residual = r;
        ops.residual_layout = rl;
      }
    }
    Status s = Conv2DInt8(*packed, src, sl, dst, dl, ops, pool);
    if (s.ok())
      ApplyTablePostOps(dst, int64_t(dl.batch) * dl.height * dl.width, dl.pixel_stride, dl.channel_offset, r,
                        rl.pixel_stride, rl.channel_offset, pool);
    return s;
  }

  // The parts of the element-wise op and ADD the vector kernels do not take (table lookups), after them.
  void ApplyTablePostOps(int8_t* base, int64_t pixels, int64_t stride, int offset, const int8_t* r, int64_t r_stride,
                         int r_offset, ThreadPool* pool) const {
    if (!add.on) return;
    const int cout = geometry.out_channels;
    const bool table_post = post.on() && !vector_post, table_add = add.on && !vector_add;
    if (!table_post && !table_add) return;
    const int tasks = int(std::min<int64_t>(pixels, pool ? pool->threads() * 4 : 1));
    ParallelFor(pool, tasks, [&](int task) {
      const int64_t p0 = pixels * task / tasks, p1 = pixels * (task + 1) / tasks;
      if (table_post) post.Apply(base + p0 * stride, p1 - p0, stride, offset, cout);
      if (table_add) add.Apply(base + p0 * stride, p1 - p0, stride, offset, cout, r + p0 * r_stride, r_stride, r_offset);
    });
  }

  std::string Describe() const {
    std::ostringstream os;
    os << geometry.kernel_h << "x" << geometry.kernel_w << "/s" << geometry.stride_h << " "
       << geometry.in_channels << "->" << geometry.out_channels
       << (post.leaky ? " +leaky_relu" : post.table ? " +table" : "");
    return os.str();
  }
};

// ---- one int8 depthwise conv (TFLite DEPTHWISE_CONV_2D): the conv options plus depth_multiplier;
// weights [1, kernel_h, kernel_w, out_channels] ----
struct DepthwiseSpec {
  ConvSpec options;  // geometry + quantization (its packed conv is unused)
  int multiplier = 1;
  std::unique_ptr<PackedDepthwiseInt8> packed;
  // TFLite's builtin numerics (rounding half up): its optimized DEPTHWISE_CONV_2D (LiteRT 2.3,
  // measured on x86-64) rounds ties up in whole groups of 8 output channels and away from zero in
  // the out_channels % 8 left over. Those channels then run as a second op (`tail`, from output
  // channel `head`).
  std::unique_ptr<PackedDepthwiseInt8> tail;
  int head = 0;
  const void* packed_from = nullptr;

  void Parse(const Ref& m, const std::string& where, Numerics numerics) {
    options.Parse(m, where, numerics);
    try {
      const int64_t mult = ReqInt(m, "depth_multiplier");
      const auto& g = options.geometry;
      Require(mult >= 1 && mult <= 64, "depth_multiplier must be in [1, 64]");
      Require(int64_t(g.in_channels) * mult == g.out_channels,
              "out_channels must be in_channels * depth_multiplier");
      Require(!options.post.on() && !options.add.on, "a depthwise conv takes no post op");
      multiplier = static_cast<int>(mult);
    } catch (const FlexError& e) {
      throw FlexError(where + ": " + e.what());
    }
  }

  std::string CheckLayouts(const LiteRtLayout& w, const LiteRtLayout& b) const {
    const auto& g = options.geometry;
    return CheckFilterLayouts(w, b, {1, g.kernel_h, g.kernel_w, g.out_channels}, g.out_channels, "depthwise ");
  }

  std::string EnsurePacked(const void* weights, size_t w_bytes, const LiteRtRankedTensorType& wt,
                           const void* bias, size_t b_bytes, const LiteRtRankedTensorType& bt) {
    if (packed && packed_from == weights) return "";
    const auto& g = options.geometry;
    const size_t need_w = size_t(g.kernel_h) * g.kernel_w * g.out_channels;
    if (auto e = CheckFilterBuffers(wt, w_bytes, bt, b_bytes, need_w, g.out_channels, "depthwise "); !e.empty())
      return e;
    const auto* w = static_cast<const int8_t*>(weights);
    const auto* b = static_cast<const int32_t*>(bias);
    const int left = options.quant.rounding == Rounding::kHalfUp ? g.out_channels % 8 : 0;
    head = g.out_channels - left;
    tail.reset();
    if (left == 0 || head == 0) {  // one rounding for every channel
      Int8QuantParams q = options.quant;
      if (left > 0) q.rounding = Rounding::kAwayFromZero;
      Status s = PackedDepthwiseInt8::Create(g, multiplier, w, b, q, Variant::kAuto, &packed);
      if (!s.ok()) return std::string("packing depthwise weights failed: ") + s.message();
    } else {
      if (head % multiplier != 0)
        return "depthwise: under TFLite's builtin numerics the last out_channels % 8 channels round apart, "
               "which splits an input channel's outputs (depth_multiplier " + std::to_string(multiplier) + ")";
      if (auto e = PackPart(0, head, w, b, options.quant.rounding, &packed); !e.empty()) return e;
      if (auto e = PackPart(head, g.out_channels, w, b, Rounding::kAwayFromZero, &tail); !e.empty()) return e;
    }
    packed_from = weights;
    return "";
  }

  // Output channels [c0, c1) as a depthwise conv of their own (input channels [c0, c1) / multiplier).
  std::string PackPart(int c0, int c1, const int8_t* w, const int32_t* b, Rounding rounding,
                       std::unique_ptr<PackedDepthwiseInt8>* out) const {
    const auto& g = options.geometry;
    ConvGeometry pg = g;
    pg.out_channels = c1 - c0;
    pg.in_channels = pg.out_channels / multiplier;
    const int taps = g.kernel_h * g.kernel_w;
    std::vector<int8_t> pw(size_t(taps) * pg.out_channels);
    for (int t = 0; t < taps; ++t)
      std::copy(w + size_t(t) * g.out_channels + c0, w + size_t(t) * g.out_channels + c1, pw.begin() + size_t(t) * pg.out_channels);
    Int8QuantParams q = Int8QuantChannels(options.quant, c0, c1);
    q.rounding = rounding;
    Status s = PackedDepthwiseInt8::Create(pg, multiplier, pw.data(), b ? b + c0 : nullptr, q, Variant::kAuto, out);
    return s.ok() ? "" : std::string("packing depthwise weights failed: ") + s.message();
  }

  // The conv over `li` (input channels) into `lo` (output channels), in two parts when `tail` is.
  Status Run(const int8_t* in, const TensorLayout& li, int8_t* out, const TensorLayout& lo, ThreadPool* pool) const {
    return RunParts(li, lo, [&](const PackedDepthwiseInt8& part, const TensorLayout& pi, const TensorLayout& po) {
      return DepthwiseConv2DInt8(part, in, pi, out, po, pool);
    });
  }

  // Output rows [out_row, out_row + lo.height) from input rows [first_row, first_row + li.height) of
  // an image `image_h` rows tall, on the calling thread (DepthwiseConv2DInt8Rows).
  Status RunRows(const int8_t* in, const TensorLayout& li, int first_row, int image_h, int8_t* out,
                 const TensorLayout& lo, int out_row) const {
    return RunParts(li, lo, [&](const PackedDepthwiseInt8& part, const TensorLayout& pi, const TensorLayout& po) {
      return DepthwiseConv2DInt8Rows(part, in, pi, first_row, image_h, out, po, out_row);
    });
  }

  // run(packed part, its input slice, its output slice) for `packed` and, when there is one, `tail`.
  template <typename F>
  Status RunParts(const TensorLayout& li, const TensorLayout& lo, F run) const {
    if (!tail) return run(*packed, li, lo);
    TensorLayout hi = li, ho = lo, ti = li, to = lo;
    hi.channels = head / multiplier;
    ho.channels = head;
    ti.channel_offset += hi.channels;
    ti.channels = li.channels - hi.channels;
    to.channel_offset += head;
    to.channels = lo.channels - head;
    Status st = run(*packed, hi, ho);
    return st.ok() ? run(*tail, ti, to) : st;
  }

  std::string Describe() const {
    const auto& g = options.geometry;
    std::ostringstream os;
    os << "dw " << g.kernel_h << "x" << g.kernel_w << "/s" << g.stride_h << " " << g.in_channels << "x"
       << multiplier;
    return os.str();
  }
};

// ---- one int8 grouped conv (a CONV_2D with in_channels / groups inputs per output): the conv
// options plus `groups`; weights [out_channels, kh, kw, in_channels / groups] ----
struct GroupedSpec {
  ConvSpec options;  // geometry (the whole conv's channels) + quantization (its packed conv is unused)
  int groups = 1;
  std::unique_ptr<PackedGroupedConvInt8> packed;
  const void* packed_from = nullptr;

  void Parse(const Ref& m, const std::string& where, Numerics numerics) {
    options.Parse(m, where, numerics);
    try {
      const int64_t gr = ReqInt(m, "groups");
      const auto& g = options.geometry;
      Require(gr >= 2 && g.in_channels % gr == 0 && g.out_channels % gr == 0,
              "groups must be >= 2 and divide in_channels and out_channels");
      Require(!options.post.on() && !options.add.on, "a grouped conv takes no post op");
      groups = static_cast<int>(gr);
    } catch (const FlexError& e) {
      throw FlexError(where + ": " + e.what());
    }
  }

  std::string CheckLayouts(const LiteRtLayout& w, const LiteRtLayout& b) const {
    const auto& g = options.geometry;
    return CheckFilterLayouts(w, b, {g.out_channels, g.kernel_h, g.kernel_w, g.in_channels / groups}, g.out_channels,
                              "grouped ");
  }

  std::string EnsurePacked(const void* weights, size_t w_bytes, const LiteRtRankedTensorType& wt,
                           const void* bias, size_t b_bytes, const LiteRtRankedTensorType& bt) {
    if (packed && packed_from == weights) return "";
    const auto& g = options.geometry;
    const size_t need_w = size_t(g.out_channels) * g.kernel_h * g.kernel_w * (g.in_channels / groups);
    if (auto e = CheckFilterBuffers(wt, w_bytes, bt, b_bytes, need_w, g.out_channels, "grouped "); !e.empty())
      return e;
    Status s = PackedGroupedConvInt8::Create(g, groups, static_cast<const int8_t*>(weights),
                                             static_cast<const int32_t*>(bias), options.quant, Variant::kAuto, &packed);
    if (!s.ok()) return std::string("packing grouped weights failed: ") + s.message();
    packed_from = weights;
    return "";
  }

  std::string Describe() const {
    const auto& g = options.geometry;
    std::ostringstream os;
    os << g.kernel_h << "x" << g.kernel_w << "/s" << g.stride_h << " " << g.in_channels << "->" << g.out_channels
       << " in " << groups << " groups";
    return os.str();
  }
};

ConvOutputShape OutShape(const ConvGeometry& g, int h, int w, std::string* err) {
  ConvOutputShape s;
  Status st = ComputeOutputShape(g, h, w, &s);
  if (!st.ok()) *err = st.message();
  return s;
}

// The (weights, bias) input pairs of `convs`, in order from input `first`: their layouts, or packed.
std::string CheckConvLayouts(const std::vector<ConvSpec*>& convs, const LiteRtLayout* in, size_t first) {
  for (size_t i = 0; i < convs.size(); ++i)
    if (auto e = convs[i]->CheckLayouts(in[first + 2 * i], in[first + 2 * i + 1]); !e.empty()) return e;
  return "";
}

std::string PackConvs(const std::vector<ConvSpec*>& convs, const std::vector<void*>& in,
                      const std::vector<size_t>& in_bytes, const std::vector<LiteRtRankedTensorType>& t, size_t first) {
  for (size_t i = 0; i < convs.size(); ++i) {
    const size_t k = first + 2 * i;
    if (auto e = convs[i]->EnsurePacked(in[k], in_bytes[k], t[k], in[k + 1], in_bytes[k + 1], t[k + 1]); !e.empty())
      return e;
  }
  return "";
}

// ---------------------------------------------------------------------------------------
class CspPartialConvKernel : public NodeKernel {
 public:
  void Parse(const Ref& m, Numerics numerics) {
    c_skip_ = static_cast<int>(ReqInt(m, "c_skip"));
    skip_offset_ = static_cast<int>(OptInt(m, "skip_offset", 0));
    conv_offset_ = static_cast<int>(ReqInt(m, "conv_offset"));
    order_ = static_cast<int>(OptInt(m, "order", 0));
    Require(c_skip_ >= 1, "c_skip must be >= 1");
    Require(skip_offset_ >= 0 && conv_offset_ >= 0, "channel offsets must be >= 0");
    Require(order_ == 0 || order_ == 1, "order must be 0 (skip first) or 1 (conv first)");
    conv_.Parse(m, "conv", numerics);
    Ref dw = m.Get("skip_dw");
    if (!dw.IsNull()) {
      Require(dw.IsMap(), "skip_dw must be a map");
      skip_dw_ = std::make_unique<DepthwiseSpec>();
      skip_dw_->Parse(dw, "skip_dw", numerics);
      Require(skip_dw_->options.geometry.out_channels == c_skip_,
              "skip_dw out_channels must equal c_skip (" + std::to_string(c_skip_) + ")");
    }
  }

  // The skip part's input channels in skip_src: c_skip copied, or the depthwise conv's inputs.
  int SkipReads() const { return skip_dw_ ? skip_dw_->options.geometry.in_channels : c_skip_; }
  size_t Inputs() const { return 5 + (skip_dw_ ? 2 : 0) + (conv_.add.on ? 1 : 0); }
  size_t ResidualInput() const { return skip_dw_ ? 6 : 4; }  // the residual ADD's other input
  // The skip and conv slices against skip_src's and conv_src's channels.
  std::string SliceError(int skip_channels, int conv_channels) const {
    if (skip_offset_ + SkipReads() > skip_channels)
      return "skip slice [" + std::to_string(skip_offset_) + ", " + std::to_string(skip_offset_ + SkipReads()) +
             ") exceeds skip_src channels " + std::to_string(skip_channels);
    if (conv_offset_ + conv_.geometry.in_channels > conv_channels)
      return "conv input slice exceeds conv_src channels " + std::to_string(conv_channels);
    return "";
  }

  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no,
                            LiteRtLayout* out) override {
    if (ni != Inputs() || no != 1)
      return "expects " + std::to_string(Inputs()) + " inputs (skip_src, conv_src, weights, bias, " +
             (skip_dw_ ? "skip_dw weights, skip_dw bias, " : "") + (conv_.add.on ? "residual, " : "") +
             "key) and 1 output, got " + std::to_string(ni) +
             "/" + std::to_string(no);
    const LiteRtLayout& s = in[0];
    const LiteRtLayout& c = in[1];
    if (s.rank != 4 || c.rank != 4) return "skip_src and conv_src must be rank-4 NHWC";
    if (auto e = SliceError(s.dimensions[3], c.dimensions[3]); !e.empty()) return e;
    if (auto e = conv_.CheckLayouts(in[2], in[3]); !e.empty()) return e;
    std::string err;
    auto os = OutShape(conv_.geometry, c.dimensions[1], c.dimensions[2], &err);
    if (!err.empty()) return err;
    int skip_h = s.dimensions[1], skip_w = s.dimensions[2];
    if (skip_dw_) {
      if (auto e = skip_dw_->CheckLayouts(in[4], in[5]); !e.empty()) return e;
      auto ds = OutShape(skip_dw_->options.geometry, skip_h, skip_w, &err);
      if (!err.empty()) return "skip_dw: " + err;
      skip_h = ds.out_h;
      skip_w = ds.out_w;
    }
    if (os.out_h != skip_h || os.out_w != skip_w || s.dimensions[0] != c.dimensions[0])
      return "conv output " + std::to_string(os.out_h) + "x" + std::to_string(os.out_w) +
             " does not match the skip part " + std::to_string(skip_h) + "x" + std::to_string(skip_w);
    if (conv_.add.on) {
      const LiteRtLayout& r = in[ResidualInput()];
      if (r.rank != 4 || r.dimensions[0] != s.dimensions[0] || r.dimensions[1] != os.out_h ||
          r.dimensions[2] != os.out_w || r.dimensions[3] != conv_.geometry.out_channels)
        return "residual " + LayoutStr(r) + " must match the conv output [" + std::to_string(s.dimensions[0]) + "," +
               std::to_string(os.out_h) + "," + std::to_string(os.out_w) + "," +
               std::to_string(conv_.geometry.out_channels) + "]";
    }
    SetLayout(out, {s.dimensions[0], skip_h, skip_w, c_skip_ + conv_.geometry.out_channels});
    return "";
  }

  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (in.size() != Inputs() || out.size() != 1) return "bad input/output count";
    if (t[0].element_type != kLiteRtElementTypeInt8 || t[1].element_type != kLiteRtElementTypeInt8)
      return "activations must be int8";
    if (auto e = conv_.EnsurePacked(in[2], in_bytes[2], t[2], in[3], in_bytes[3], t[3]); !e.empty())
      return e;
    if (skip_dw_)
      if (auto e = skip_dw_->EnsurePacked(in[4], in_bytes[4], t[4], in[5], in_bytes[5], t[5]); !e.empty()) return e;
    const auto& s = t[0].layout;
    const auto& c = t[1].layout;
    const int n = s.dimensions[0], sh = s.dimensions[1], sw = s.dimensions[2], cs = s.dimensions[3];
    const int ch = c.dimensions[1], cw = c.dimensions[2], cc = c.dimensions[3];
    const int cout = conv_.geometry.out_channels;
    const int ctot = c_skip_ + cout;
    std::string err;
    const auto os = OutShape(conv_.geometry, ch, cw, &err);
    if (!err.empty()) return err;
    const int h = os.out_h, w = os.out_w;  // the output's (and the skip part's) spatial size
    const int64_t pixels = int64_t(n) * h * w;
    if (in_bytes[0] < size_t(n) * sh * sw * cs || in_bytes[1] < size_t(n) * ch * cw * cc ||
        out_bytes[0] < size_t(pixels) * ctot || (!skip_dw_ && (sh != h || sw != w)))
      return "buffer sizes inconsistent with shapes";
    // The slices again: Run may get other shapes than OutputLayouts checked (the skip copy reads
    // skip_offset + c_skip channels of every skip_src pixel; found by fuzz_custom_options).
    if (auto e = SliceError(cs, cc); !e.empty()) return e;
    const size_t ri = ResidualInput();
    if (conv_.add.on && (t[ri].element_type != kLiteRtElementTypeInt8 || in_bytes[ri] < size_t(pixels) * cout))
      return "residual must be int8 with the conv output's shape";
    auto* o = static_cast<int8_t*>(out[0]);
    const auto* xs = static_cast<const int8_t*>(in[0]);
    const auto* xc = static_cast<const int8_t*>(in[1]);
    const int conv_out_off = order_ == 0 ? c_skip_ : 0;
    const int skip_out_off = order_ == 0 ? 0 : cout;
    Status st;
    const bool in_place = !skip_dw_ && in[0] == in[1] && order_ == 0 && skip_offset_ == 0 &&
                          conv_offset_ == c_skip_ && conv_offset_ + conv_.geometry.in_channels == cc && ch == h && cw == w;
    if (in_place) {
      st = CspPartialConvInt8(*conv_.packed, xc, n, h, w, cc, c_skip_, o,
                              int64_t(out_bytes[0]), ConcatOrder::kSkipFirst, pool);
    } else {
      TensorLayout il = NhwcSlice(n, ch, cw, cc, conv_offset_, conv_.geometry.in_channels);
      TensorLayout ol = NhwcSlice(n, h, w, ctot, conv_out_off, cout);
      st = conv_.RunConv(xc, il, o, ol, conv_.add.on ? static_cast<const int8_t*>(in[ri]) : nullptr,
                         NhwcSlice(n, h, w, cout, 0, cout), pool);
      if (st.ok() && skip_dw_) {  // the skip part computed straight into its slice
        st = skip_dw_->Run(xs, NhwcSlice(n, sh, sw, cs, skip_offset_, SkipReads()), o,
                           NhwcSlice(n, h, w, ctot, skip_out_off, c_skip_), pool);
      } else if (st.ok()) {
        CopyChannels(o, ctot, skip_out_off, xs, cs, skip_offset_, c_skip_, pixels, pool);
      }
    }
    if (!st.ok()) return std::string("kernel failed: ") + st.message();
    if (in_place)  // CspPartialConvInt8 ran the conv alone
      conv_.ApplyPostOps(o, pixels, ctot, conv_out_off, conv_.add.on ? static_cast<const int8_t*>(in[ri]) : nullptr,
                         cout, 0, pool);
    return "";
  }

  std::string Describe() const override {
    return "skip " + std::to_string(c_skip_) + (skip_dw_ ? " (" + skip_dw_->Describe() + ")" : "") + " + conv " +
           conv_.Describe() + (conv_.add.on ? " +residual add" : "") + (order_ == 0 ? "" : " (conv first)");
  }

 private:
  int c_skip_ = 0, skip_offset_ = 0, conv_offset_ = 0, order_ = 0;
  ConvSpec conv_;
  std::unique_ptr<DepthwiseSpec> skip_dw_;  // the skip part is a depthwise conv of skip_src
};

// ---------------------------------------------------------------------------------------
// A DEPTHWISE_CONV_2D on our kernels: inputs (x, weights, bias, key). The fuse pass uses it where
// the stock kernels are weak (depth multiplier > 1: XNNPACK runs those as many tiny group GEMMs).
// KcspDepthwiseConv2D (TFLite's DEPTHWISE_CONV_2D) and KcspConv2D (one CONV_2D alone: a stem conv,
// few input channels, where our per-tap channel padding beats the stock kernels'): inputs x (its
// channels [in_offset, in_offset + in_channels) are read), weights, bias, key.
class SingleConvKernel : public NodeKernel {
 public:
  explicit SingleConvKernel(bool depthwise) : depthwise_(depthwise) {}

  void Parse(const Ref& m, Numerics numerics) {
    in_offset_ = static_cast<int>(OptInt(m, "in_offset", 0));
    Require(in_offset_ >= 0, "in_offset must be >= 0");
    if (depthwise_) {
      dw_.Parse(m, "depthwise", numerics);
    } else if (m.Has("groups")) {  // a grouped conv on the grouped kernels
      grouped_ = std::make_unique<GroupedSpec>();
      grouped_->Parse(m, "grouped conv", numerics);
    } else {
      conv_.Parse(m, "conv", numerics);
      Require(!conv_.add.on, "KcspConv2D takes no residual add");  // an element-wise post op it takes
    }
  }

  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no, LiteRtLayout* out) override {
    if (ni != 4 || no != 1)
      return "expects 4 inputs (x, weights, bias, key) and 1 output, got " + std::to_string(ni) + "/" +
             std::to_string(no);
    const LiteRtLayout& x = in[0];
    const auto& g = geometry();
    if (x.rank != 4 || x.dimensions[3] < in_offset_ + g.in_channels)
      return "input " + LayoutStr(x) + " must be NHWC with at least in_offset + in_channels = " +
             std::to_string(in_offset_ + g.in_channels) + " channels";
    if (auto e = depthwise_  ? dw_.CheckLayouts(in[1], in[2])
                 : grouped_ ? grouped_->CheckLayouts(in[1], in[2])
                            : conv_.CheckLayouts(in[1], in[2]);
        !e.empty())
      return e;
    std::string err;
    auto os = OutShape(g, x.dimensions[1], x.dimensions[2], &err);
    if (!err.empty()) return err;
    SetLayout(out, {x.dimensions[0], os.out_h, os.out_w, g.out_channels});
    return "";
  }

  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (in.size() != 4 || out.size() != 1) return "bad input/output count";
    if (t[0].element_type != kLiteRtElementTypeInt8) return "activations must be int8";
    if (auto e = depthwise_  ? dw_.EnsurePacked(in[1], in_bytes[1], t[1], in[2], in_bytes[2], t[2])
                 : grouped_ ? grouped_->EnsurePacked(in[1], in_bytes[1], t[1], in[2], in_bytes[2], t[2])
                            : conv_.EnsurePacked(in[1], in_bytes[1], t[1], in[2], in_bytes[2], t[2]);
        !e.empty())
      return e;
    const auto& x = t[0].layout;
    const auto& g = geometry();
    std::string err;
    auto os = OutShape(g, x.dimensions[1], x.dimensions[2], &err);
    if (!err.empty()) return err;
    const int n = x.dimensions[0];
    const TensorLayout li = NhwcSlice(n, x.dimensions[1], x.dimensions[2], x.dimensions[3], in_offset_, g.in_channels);
    const TensorLayout lo = NhwcSlice(n, os.out_h, os.out_w, g.out_channels, 0, g.out_channels);
    if (in_bytes[0] < size_t(li.buffer_elements) || out_bytes[0] < size_t(lo.buffer_elements))
      return "buffer sizes inconsistent with shapes";
    const auto* src = static_cast<const int8_t*>(in[0]);
    auto* dst = static_cast<int8_t*>(out[0]);
    Status st = depthwise_  ? dw_.Run(src, li, dst, lo, pool)
                : grouped_ ? GroupedConv2DInt8(*grouped_->packed, src, li, dst, lo, pool)
                           : Conv2DInt8(*conv_.packed, src, li, dst, lo, pool);
    if (!st.ok()) return std::string("kernel failed: ") + st.message();
    if (!depthwise_ && !grouped_)
      conv_.ApplyPostOps(dst, int64_t(n) * os.out_h * os.out_w, g.out_channels, 0, nullptr, 0, 0, pool);
    return "";
  }

  std::string Describe() const override {
    return depthwise_ ? dw_.Describe() : grouped_ ? "conv " + grouped_->Describe() : "conv " + conv_.Describe();
  }

 private:
  const ConvGeometry& geometry() const {
    return depthwise_ ? dw_.options.geometry : grouped_ ? grouped_->options.geometry : conv_.geometry;
  }

  bool depthwise_;
  int in_offset_ = 0;
  DepthwiseSpec dw_;                      // KcspDepthwiseConv2D
  ConvSpec conv_;                         // KcspConv2D
  std::unique_ptr<GroupedSpec> grouped_;  // KcspConv2D with `groups`
};

// KcspInvertedResidual: MobileNet-v2's inverted residual block in one op,
// [expand 1x1 conv ->] depthwise conv -> project 1x1 conv [+ residual ADD of x], band by band of
// output rows (the expanded rows stay in cache; no whole expanded tensor). Inside a model every op
// between two of ours hands the cores from our pool to LiteRT's and back; a lone depthwise op
// between XNNPACK's 1x1 convs paid that twice per block (MobileNet-v2 at 2 threads on Zen 4: its
// depthwise ops 1.6-5.4x alone, the whole model at best level with builtin).
//   options: "expand" (optional conv map, 1x1 / stride 1), "depthwise" (the depthwise map),
//            "project" (conv map, 1x1 / stride 1; an "add" map makes x the residual ADD's other input).
//   inputs: x, [expand weights, bias], depthwise weights, bias, project weights, bias, node key.
class InvertedResidualKernel : public NodeKernel {
 public:
  void Parse(const Ref& m, Numerics numerics) {
    Ref e = m.Get("expand");
    if (!e.IsNull()) {
      Require(e.IsMap(), "expand must be a map");
      expand_ = std::make_unique<ConvSpec>();
      expand_->Parse(e, "expand", numerics);
      RequirePointwise(*expand_, "expand");
      Require(!expand_->add.on, "expand: takes no residual add");
    }
    Ref d = m.Get("depthwise"), p = m.Get("project");
    Require(!d.IsNull() && d.IsMap(), "missing option 'depthwise' (a map)");
    Require(!p.IsNull() && p.IsMap(), "missing option 'project' (a map)");
    dw_.Parse(d, "depthwise", numerics);
    project_.Parse(p, "project", numerics);
    RequirePointwise(project_, "project");
    const auto& dg = dw_.options.geometry;
    Require(!expand_ || expand_->geometry.out_channels == dg.in_channels,
            "expand out_channels must equal depthwise in_channels");
    Require(project_.geometry.in_channels == dg.out_channels, "project in_channels must equal depthwise out_channels");
  }

  size_t Inputs() const { return 6 + (expand_ ? 2 : 0); }
  size_t DepthwiseInput() const { return expand_ ? 3 : 1; }

  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no, LiteRtLayout* out) override {
    if (ni != Inputs() || no != 1)
      return "expects " + std::to_string(Inputs()) + " inputs (x, " + (expand_ ? "expand weights, bias, " : "") +
             "depthwise weights, bias, project weights, bias, key) and 1 output, got " + std::to_string(ni) + "/" +
             std::to_string(no);
    const LiteRtLayout& x = in[0];
    if (x.rank != 4 || x.dimensions[3] != InChannels())
      return "input " + LayoutStr(x) + " must be NHWC with " + std::to_string(InChannels()) + " channels";
    if (expand_)
      if (auto e = expand_->CheckLayouts(in[1], in[2]); !e.empty()) return "expand " + e;
    const size_t di = DepthwiseInput();
    if (auto e = dw_.CheckLayouts(in[di], in[di + 1]); !e.empty()) return e;
    if (auto e = project_.CheckLayouts(in[di + 2], in[di + 3]); !e.empty()) return "project " + e;
    std::string err;
    const auto os = OutShape(dw_.options.geometry, x.dimensions[1], x.dimensions[2], &err);
    if (!err.empty()) return err;
    if (auto e = ResidualError(x.dimensions[1], x.dimensions[2], x.dimensions[3], os); !e.empty()) return e;
    SetLayout(out, {x.dimensions[0], os.out_h, os.out_w, project_.geometry.out_channels});
    return "";
  }

  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (in.size() != Inputs() || out.size() != 1) return "bad input/output count";
    if (t[0].element_type != kLiteRtElementTypeInt8) return "activations must be int8";
    const size_t di = DepthwiseInput();
    if (expand_)
      if (auto e = expand_->EnsurePacked(in[1], in_bytes[1], t[1], in[2], in_bytes[2], t[2]); !e.empty()) return e;
    if (auto e = dw_.EnsurePacked(in[di], in_bytes[di], t[di], in[di + 1], in_bytes[di + 1], t[di + 1]); !e.empty())
      return e;
    if (auto e = project_.EnsurePacked(in[di + 2], in_bytes[di + 2], t[di + 2], in[di + 3], in_bytes[di + 3], t[di + 3]);
        !e.empty())
      return e;
    const auto& xl = t[0].layout;
    const int n = xl.dimensions[0], h = xl.dimensions[1], w = xl.dimensions[2], c = xl.dimensions[3];
    std::string err;
    const auto os = OutShape(dw_.options.geometry, h, w, &err);
    if (!err.empty()) return err;
    if (c != InChannels()) return "input channels changed since the layouts were checked";
    if (auto e = ResidualError(h, w, c, os); !e.empty()) return e;
    const int cout = project_.geometry.out_channels;
    const TensorLayout lx = NhwcSlice(n, h, w, c, 0, c);
    const TensorLayout lo = NhwcSlice(n, os.out_h, os.out_w, cout, 0, cout);
    if (in_bytes[0] < size_t(lx.buffer_elements) || out_bytes[0] < size_t(lo.buffer_elements))
      return "buffer sizes inconsistent with shapes";
    const auto* x = static_cast<const int8_t*>(in[0]);
    auto* o = static_cast<int8_t*>(out[0]);
    // Each task takes a run of output rows of one image and goes through it band by band: the expand
    // conv's rows for the band (the rows the previous band also read are kept), the depthwise rows,
    // the project conv's rows (+ the residual), so the expanded rows are still in cache when read.
    const int threads = pool ? pool->threads() : 1;
    const int runs = std::min(os.out_h, threads), band = BandRows(w, os.out_w);
    std::vector<Status> status(size_t(n) * runs);
    ParallelFor(pool, n * runs, [&](int task) {
      const int b = task / runs, k = task % runs;
      status[task] = RunRows(x + int64_t(b) * h * w * c, h, w, c, o + int64_t(b) * os.out_h * os.out_w * cout, os,
                             os.out_h * k / runs, os.out_h * (k + 1) / runs, band);
    });
    for (const Status& st : status)
      if (!st.ok()) return std::string("kernel failed: ") + st.message();
    return "";
  }

  std::string Describe() const override {
    return (expand_ ? "expand " + expand_->Describe() + ", " : std::string()) + dw_.Describe() + ", project " +
           project_.Describe() + (project_.add.on ? " +residual add" : "");
  }

 private:
  static void RequirePointwise(const ConvSpec& c, const std::string& what) {
    const auto& g = c.geometry;
    Require(g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1,
            what + ": must be a 1x1 conv with stride 1");
  }
  int InChannels() const { return expand_ ? expand_->geometry.in_channels : dw_.options.geometry.in_channels; }

  // Output rows per band: the expanded and depthwise rows of a band in about kBandBytes (L2-sized on
  // phones and desktops alike), at least one row. KCSP_IR_BAND_KB overrides it (experiments).
  int BandRows(int w, int out_w) const {
    static const int64_t budget = [] {
      const char* e = std::getenv("KCSP_IR_BAND_KB");
      return e != nullptr && std::atoi(e) > 0 ? int64_t(std::atoi(e)) << 10 : kBandBytes;
    }();
    const auto& g = dw_.options.geometry;
    const int64_t per_row = int64_t(g.stride_h) * w * g.in_channels + int64_t(out_w) * g.out_channels;
    return int(std::max<int64_t>(1, std::min<int64_t>(1 << 16, budget / per_row)));
  }

  // Output rows [r0, r1) of one image x (h x w x c) into its output o, `band` rows at a time, on the
  // calling thread.
  Status RunRows(const int8_t* x, int h, int w, int c, int8_t* o, const ConvOutputShape& os, int r0, int r1,
                 int band) const {
    const auto& g = dw_.options.geometry;
    const int ce = g.in_channels, cd = g.out_channels, cout = project_.geometry.out_channels;
    const int64_t x_row = int64_t(w) * c, e_row = int64_t(w) * ce;
    int8_t* expanded = expand_ ? Scratch(0, size_t((band - 1) * g.stride_h + g.kernel_h) * e_row) : nullptr;
    int8_t* filtered = Scratch(1, size_t(band) * os.out_w * cd);
    int e0 = 0, e1 = 0;  // the image rows `expanded` holds
    for (int r = r0; r < r1; r += band) {
      const int rows = std::min(band, r1 - r);
      const int need0 = std::max(0, r * g.stride_h - os.pad_top);
      const int need1 = std::min(h, (r + rows - 1) * g.stride_h - os.pad_top + g.kernel_h);
      const int8_t* dw_in = x + need0 * x_row;
      int first = need0;
      if (expand_) {
        if (r == r0 || need0 >= e1) {
          e0 = e1 = need0;
        } else {  // rows the previous band expanded too
          std::memmove(expanded, expanded + (need0 - e0) * e_row, size_t(e1 - need0) * e_row);
          e0 = need0;
        }
        if (need1 > e1) {
          Status st = expand_->RunConv(x + e1 * x_row, NhwcSlice(1, need1 - e1, w, c, 0, c),
                                       expanded + (e1 - e0) * e_row, NhwcSlice(1, need1 - e1, w, ce, 0, ce), nullptr,
                                       TensorLayout(), nullptr);
          if (!st.ok()) return st;
          e1 = need1;
        }
        dw_in = expanded;
        first = e0;
      }
      const TensorLayout ld = NhwcSlice(1, rows, os.out_w, cd, 0, cd);
      Status st = dw_.RunRows(dw_in, NhwcSlice(1, need1 - first, w, ce, 0, ce), first, h, filtered, ld, r);
      if (!st.ok()) return st;
      const bool add = project_.add.on;
      st = project_.RunConv(filtered, ld, o + int64_t(r) * os.out_w * cout, NhwcSlice(1, rows, os.out_w, cout, 0, cout),
                            add ? x + r * x_row : nullptr, add ? NhwcSlice(1, rows, w, c, 0, c) : TensorLayout(),
                            nullptr);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }
  // The residual ADD reads x in the output's shape.
  std::string ResidualError(int h, int w, int c, const ConvOutputShape& os) const {
    if (!project_.add.on || (os.out_h == h && os.out_w == w && c == project_.geometry.out_channels)) return "";
    return "residual add: input " + std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c) +
           " does not match the output " + std::to_string(os.out_h) + "x" + std::to_string(os.out_w) + "x" +
           std::to_string(project_.geometry.out_channels);
  }

  static constexpr int64_t kBandBytes = 96 << 10;

  // A band's expanded (0) and depthwise (1) rows, at least `bytes` long: this thread's, shared by
  // every block it runs (a model runs its nodes one after another), so they stay in cache. Buffers
  // per node, whole tensors, left each block writing memory last touched an inference ago
  // (MobileNet-v2 at 1 thread on Zen 4: 1.38x builtin timed alone, 1.21x between other models).
  static int8_t* Scratch(int which, size_t bytes) {
    thread_local std::vector<int8_t> buffers[2];
    if (buffers[which].size() < bytes) buffers[which].resize(bytes);
    return buffers[which].data();
  }

  std::unique_ptr<ConvSpec> expand_;
  DepthwiseSpec dw_;
  ConvSpec project_;
};

// A pool's options (filter_h/w, stride_h/w, padding, act_min/act_max), read by KcspAvgPool2D and by
// CspBlock's max_pool steps; `where` prefixes the messages.
struct PoolOptions {
  PoolGeometry geometry;
  int32_t act_min = -128, act_max = 127;

  void Parse(const Ref& m, const std::string& where) {
    geometry.filter_h = static_cast<int>(ReqInt(m, "filter_h"));
    geometry.filter_w = static_cast<int>(ReqInt(m, "filter_w"));
    geometry.stride_h = static_cast<int>(ReqInt(m, "stride_h"));
    geometry.stride_w = static_cast<int>(ReqInt(m, "stride_w"));
    const int64_t pad = ReqInt(m, "padding");
    Require(pad == 0 || pad == 1, where + "padding must be 0 (VALID) or 1 (SAME)");
    geometry.padding = pad == 1 ? Padding::kSame : Padding::kValid;
    Require(geometry.filter_h >= 1 && geometry.filter_w >= 1 && geometry.filter_h <= 64 && geometry.filter_w <= 64,
            where + "pool filter out of range [1, 64]");
    Require(geometry.stride_h >= 1 && geometry.stride_w >= 1 && geometry.stride_h <= 64 && geometry.stride_w <= 64,
            where + "pool stride out of range [1, 64]");
    const int64_t lo = ReqInt(m, "act_min"), hi = ReqInt(m, "act_max");
    Require(lo >= -128 && hi <= 127 && lo <= hi, where + "activation range invalid");
    act_min = static_cast<int32_t>(lo);
    act_max = static_cast<int32_t>(hi);
  }
};

// KcspAvgPool2D: TFLite's int8 AVERAGE_POOL_2D (input and output share one quantization). The stock
// int8 average pool runs outside XNNPACK in TFLite's kernels, ~0.9 ns per input element (CSPDenseNet-121's
// three transition pools: ~0.75 ms of a ~15 ms model on Zen 4). Inputs x, key.
class AvgPoolKernel : public NodeKernel {
 public:
  void Parse(const Ref& m) {
    opt_.Parse(m, "");
    channels_ = static_cast<int>(ReqInt(m, "channels"));
    Require(channels_ >= 1 && channels_ <= (1 << 16), "channels out of range");
  }

  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no, LiteRtLayout* out) override {
    if (ni != 2 || no != 1)
      return "expects 2 inputs (x, key) and 1 output, got " + std::to_string(ni) + "/" + std::to_string(no);
    const LiteRtLayout& x = in[0];
    if (x.rank != 4 || x.dimensions[3] != channels_)
      return "input " + LayoutStr(x) + " must be NHWC with " + std::to_string(channels_) + " channels";
    int oh = 0, ow = 0;
    Status st = ComputePoolOutputShape(opt_.geometry, x.dimensions[1], x.dimensions[2], &oh, &ow);
    if (!st.ok()) return st.message();
    SetLayout(out, {x.dimensions[0], oh, ow, channels_});
    return "";
  }

  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (in.size() != 2 || out.size() != 1) return "bad input/output count";
    if (t[0].element_type != kLiteRtElementTypeInt8) return "activations must be int8";
    const auto& x = t[0].layout;
    if (x.rank != 4 || x.dimensions[3] != channels_) return "input shape changed: " + LayoutStr(x);
    int oh = 0, ow = 0;
    Status st = ComputePoolOutputShape(opt_.geometry, x.dimensions[1], x.dimensions[2], &oh, &ow);
    if (!st.ok()) return st.message();
    const int n = x.dimensions[0];
    const TensorLayout li = NhwcSlice(n, x.dimensions[1], x.dimensions[2], channels_, 0, channels_);
    const TensorLayout lo = NhwcSlice(n, oh, ow, channels_, 0, channels_);
    if (in_bytes[0] < size_t(li.buffer_elements) || out_bytes[0] < size_t(lo.buffer_elements))
      return "buffer sizes inconsistent with shapes";
    st = AvgPool2DInt8(opt_.geometry, static_cast<const int8_t*>(in[0]), li, static_cast<int8_t*>(out[0]), lo,
                       opt_.act_min, opt_.act_max, pool);
    return st.ok() ? "" : std::string("kernel failed: ") + st.message();
  }

  std::string Describe() const override {
    std::ostringstream os;
    const PoolGeometry& g = opt_.geometry;
    os << "avg pool " << g.filter_h << "x" << g.filter_w << "/s" << g.stride_h << " x" << channels_;
    return os.str();
  }

 private:
  PoolOptions opt_;
  int channels_ = 0;
};

// ---------------------------------------------------------------------------------------
class CspDenseBlockKernel : public NodeKernel {
 public:
  // "layers": [layer, ...]; a layer is either one chain [conv, conv, ...] (conv = map) or
  // several parallel branches [[conv, ...], [conv, ...]] (PeleeNet's two-way dense layer):
  // every branch reads the layer input x_i and appends its output, in order.
  void Parse(const Ref& m, Numerics numerics) {
    in_channels_ = static_cast<int>(ReqInt(m, "in_channels"));
    in_offset_ = static_cast<int>(OptInt(m, "in_offset", 0));
    Require(in_channels_ >= 1, "in_channels must be >= 1");
    Require(in_offset_ >= 0, "in_offset must be >= 0");
    Ref layers = m.Get("layers");
    Require(!layers.IsNull() && layers.IsVectorLike(), "missing option 'layers' (a vector)");
    Require(layers.Size() >= 1 && layers.Size() <= 4096, "layers must have 1..4096 entries");
    int c = in_channels_;
    for (size_t i = 0; i < layers.Size(); ++i) {
      const std::string li = "layer " + std::to_string(i);
      Ref layer = layers.At(i);
      Require(layer.IsVectorLike() && layer.Size() >= 1 && layer.Size() <= 16,
              li + " must be a vector of 1..16 convs or branches");
      std::vector<Ref> branch_refs;
      if (layer.At(0).IsMap()) {
        branch_refs.push_back(layer);
      } else {
        for (size_t k = 0; k < layer.Size(); ++k) branch_refs.push_back(layer.At(k));
      }
      std::vector<std::vector<ConvSpec>> branches;
      int growth = 0;
      for (size_t k = 0; k < branch_refs.size(); ++k) {
        const std::string lb = li + " branch " + std::to_string(k);
        Ref br = branch_refs[k];
        Require(br.IsVectorLike() && br.Size() >= 1 && br.Size() <= 16,
                lb + " must be a vector of 1..16 convs");
        std::vector<ConvSpec> chain(br.Size());
        int cin = c;
        for (size_t j = 0; j < chain.size(); ++j) {
          const std::string lc = lb + " conv " + std::to_string(j);
          Ref cm = br.At(j);
          Require(cm.IsMap(), lc + " must be a map");
          chain[j].Parse(cm, lc, numerics);
          Require(!chain[j].add.on, lc + ": dense-block convs take no residual add");
          auto& g = chain[j].geometry;
          Require(g.stride_h == 1 && g.stride_w == 1 &&
                      (g.padding == Padding::kSame || (g.kernel_h == 1 && g.kernel_w == 1)),
                  lc + ": dense-block convs must preserve the spatial size (stride 1, SAME or 1x1)");
          Require(g.in_channels == cin, lc + ": in_channels " + std::to_string(g.in_channels) +
                                            " != expected " + std::to_string(cin));
          cin = g.out_channels;
        }
        growth += chain.back().geometry.out_channels;
        branches.push_back(std::move(chain));
      }
      c += growth;
      layers_.push_back(std::move(branches));
    }
    out_channels_ = c;
    for (auto& layer : layers_)
      for (auto& chain : layer)
        for (auto& cv : chain) convs_.push_back(&cv);
    int64_t declared = OptInt(m, "out_channels", out_channels_);
    Require(declared == out_channels_, "out_channels " + std::to_string(declared) +
                                           " != in_channels + growth = " +
                                           std::to_string(out_channels_));
  }

  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no,
                            LiteRtLayout* out) override {
    if (ni != 2 + 2 * convs_.size() || no != 1)
      return "expects " + std::to_string(2 + 2 * convs_.size()) + " inputs and 1 output, got " +
             std::to_string(ni) + "/" + std::to_string(no);
    const LiteRtLayout& x = in[0];
    if (x.rank != 4 || x.dimensions[3] < in_offset_ + in_channels_)
      return "input " + LayoutStr(x) + " must be NHWC with at least in_offset + in_channels = " +
             std::to_string(in_offset_ + in_channels_) + " channels";
    if (auto e = CheckConvLayouts(convs_, in, 1); !e.empty()) return e;
    SetLayout(out, {x.dimensions[0], x.dimensions[1], x.dimensions[2], out_channels_});
    return "";
  }

  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (in.size() != 2 + 2 * convs_.size() || out.size() != 1) return "bad input count";
    if (t[0].element_type != kLiteRtElementTypeInt8) return "activations must be int8";
    if (auto e = PackConvs(convs_, in, in_bytes, t, 1); !e.empty()) return e;
    const auto& x = t[0].layout;
    const int n = x.dimensions[0], h = x.dimensions[1], w = x.dimensions[2], cx = x.dimensions[3];
    const int64_t pixels = int64_t(n) * h * w;
    if (in_bytes[0] < size_t(pixels) * cx || out_bytes[0] < size_t(pixels) * out_channels_)
      return "buffer sizes inconsistent with shapes";
    auto* block = static_cast<int8_t*>(out[0]);
    const auto* x0 = static_cast<const int8_t*>(in[0]);
    CopyChannels(block, out_channels_, 0, x0, cx, in_offset_, in_channels_, pixels, pool);
    int c = in_channels_;
    for (auto& layer : layers_) {
      int write = c;  // branches append after the layer input, in order
      for (auto& chain : layer) {
        const int8_t* src = block;
        TensorLayout src_layout = NhwcSlice(n, h, w, out_channels_, 0, c);
        // bottleneck -> growth conv: the 1x1 writes the 3x3's staging (every variant but scalar).
        if (chain.size() == 2 && !chain[0].post.on() && !chain[0].add.on &&
            Conv2DInt8ChainSupported(*chain[0].packed, *chain[1].packed)) {
          const int cout = chain[1].geometry.out_channels;
          const TensorLayout dst = NhwcSlice(n, h, w, out_channels_, write, cout);
          Status st = Conv2DInt8Chain(*chain[0].packed, *chain[1].packed, src, src_layout, &staged_, block, dst, pool);
          if (!st.ok()) return std::string("kernel failed: ") + st.message();
          chain[1].ApplyPostOps(block, pixels, out_channels_, write, nullptr, 0, 0, pool);
          write += cout;
          continue;
        }
        for (size_t j = 0; j < chain.size(); ++j) {
          auto& g = chain[j].geometry;
          const bool last = j + 1 == chain.size();
          Status st;
          if (last) {
            TensorLayout dst = NhwcSlice(n, h, w, out_channels_, write, g.out_channels);
            st = Conv2DInt8(*chain[j].packed, src, src_layout, block, dst, pool);
            if (st.ok()) chain[j].ApplyPostOps(block, pixels, out_channels_, write, nullptr, 0, 0, pool);
          } else {
            auto& buf = scratch_[(j & 1)];
            buf.resize(size_t(pixels) * g.out_channels);
            TensorLayout dst = NhwcSlice(n, h, w, g.out_channels, 0, g.out_channels);
            st = Conv2DInt8(*chain[j].packed, src, src_layout, buf.data(), dst, pool);
            if (st.ok()) chain[j].ApplyPostOps(buf.data(), pixels, g.out_channels, 0, nullptr, 0, 0, pool);
            src = buf.data();
            src_layout = dst;
          }
          if (!st.ok()) return std::string("kernel failed: ") + st.message();
        }
        write += chain.back().geometry.out_channels;
      }
      c = write;
    }
    return "";
  }

  std::string Describe() const override {
    std::ostringstream os;
    os << layers_.size() << " layers";
    if (!layers_.empty() && layers_[0].size() > 1) os << " x " << layers_[0].size() << " branches";
    os << ", " << in_channels_ << "->" << out_channels_ << " channels";
    return os.str();
  }

 private:
  int in_channels_ = 0, in_offset_ = 0, out_channels_ = 0;
  std::vector<std::vector<std::vector<ConvSpec>>> layers_;  // layer -> branch -> chain
  std::vector<ConvSpec*> convs_;                            // all of them, in input order
  std::vector<int8_t> scratch_[2];
  std::vector<uint8_t> staged_;                             // Conv2DInt8Chain's staging
};

// ---------------------------------------------------------------------------------------
// A whole block ending in a channel concat (YOLO's C2f / C3 / ELAN / SPPF, any multi-input CSP
// concat), run from a static plan: every concat input is produced straight into its slice of the
// output, intermediates live in scratch buffers, splits and slices are read in place.
//   "inputs": k activation inputs (the op's first k inputs), "out_channels": C of the output,
//   "scratch": channels of each scratch buffer, "steps": executed in order, each a map with
//   "op" ("conv" | "max_pool" | "copy") and "src" / "dst" (and for a conv with a residual ADD,
//   "residual") = [buffer kind (0 input, 1 output, 2 scratch), index, channel offset, channels].
//   A conv carries the conv options (with its post table / leaky relu / add); a max pool
//   filter_h/w, stride_h/w, padding, act_min/act_max. Every buffer has the output's N x H x W, so
//   convs and pools keep the spatial size (stride 1, SAME or 1x1).
// Op inputs: the k activations, (weights, bias) per conv step in order, node key.
struct BlockSlot {
  int kind = 0, index = 0, offset = 0, channels = 0;
  bool on() const { return channels > 0; }
};

struct BlockStep {
  enum Kind { kConv, kPool, kCopy } kind = kCopy;
  BlockSlot src, dst, residual;
  ConvSpec conv;
  PoolOptions pool;
};

class CspBlockKernel : public NodeKernel {
 public:
  enum { kInput = 0, kOutput = 1, kScratch = 2 };

  void Parse(const Ref& m, Numerics numerics) {
    num_inputs_ = static_cast<int>(ReqInt(m, "inputs"));
    out_channels_ = static_cast<int>(ReqInt(m, "out_channels"));
    Require(num_inputs_ >= 1 && num_inputs_ <= 64, "inputs must be in [1, 64]");
    Require(out_channels_ >= 1 && out_channels_ <= (1 << 16), "out_channels out of range");
    for (int64_t c : ReqIntVec(m, "scratch")) {
      Require(c >= 1 && c <= (1 << 16), "scratch channel counts out of range");
      scratch_channels_.push_back(static_cast<int>(c));
    }
    Require(scratch_channels_.size() <= 256, "at most 256 scratch buffers");
    Ref steps = m.Get("steps");
    Require(!steps.IsNull() && steps.IsVectorLike() && steps.Size() >= 1 && steps.Size() <= 4096,
            "missing option 'steps' (a vector of 1..4096 maps)");
    // written[kind][index]: channels produced so far (a step may only read what an earlier one wrote)
    std::vector<std::vector<bool>> written_out(1, std::vector<bool>(out_channels_, false));
    std::vector<std::vector<bool>> written_scratch;
    for (int c : scratch_channels_) written_scratch.emplace_back(c, false);
    auto covered = [&](const BlockSlot& s) {
      if (s.kind == kInput) return true;
      auto& w = s.kind == kOutput ? written_out[0] : written_scratch[s.index];
      return std::all_of(w.begin() + s.offset, w.begin() + s.offset + s.channels, [](bool b) { return b; });
    };
    for (size_t i = 0; i < steps.Size(); ++i) {
      const std::string where = "step " + std::to_string(i);
      Ref sm = steps.At(i);
      Require(sm.IsMap(), where + " must be a map");
      BlockStep st;
      const std::string op = sm.Get("op").IsNull() ? "" : sm.Get("op").AsString();
      st.src = Slot(sm, "src", where, true);
      st.dst = Slot(sm, "dst", where, true);
      Require(st.dst.kind != kInput, where + ": dst must be the output or a scratch buffer");
      Require(!Overlap(st.src, st.dst), where + ": src and dst overlap");
      Require(covered(st.src), where + ": reads channels no earlier step wrote");
      if (op == "conv") {
        st.kind = BlockStep::kConv;
        st.conv.Parse(sm, where, numerics);
        const auto& g = st.conv.geometry;
        Require(g.stride_h == 1 && g.stride_w == 1 &&
                    (g.padding == Padding::kSame || (g.kernel_h == 1 && g.kernel_w == 1)),
                where + ": block convs keep the spatial size (stride 1, SAME or 1x1)");
        Require(st.src.channels == g.in_channels && st.dst.channels == g.out_channels,
                where + ": src/dst channels must equal the conv's in/out_channels");
        st.residual = Slot(sm, "residual", where, false);
        Require(st.residual.on() == st.conv.add.on, where + ": a residual slot goes with the 'add' option");
        if (st.residual.on()) {
          Require(st.residual.channels == g.out_channels, where + ": residual channels != out_channels");
          Require(!Overlap(st.residual, st.dst), where + ": residual and dst overlap");
          Require(covered(st.residual), where + ": residual reads channels no earlier step wrote");
        }
      } else if (op == "max_pool") {
        st.kind = BlockStep::kPool;
        st.pool.Parse(sm, where + ": ");
        Require(st.pool.geometry.stride_h == 1 && st.pool.geometry.stride_w == 1 &&
                    (st.pool.geometry.padding == Padding::kSame ||
                     (st.pool.geometry.filter_h == 1 && st.pool.geometry.filter_w == 1)),
                where + ": block pools keep the spatial size (stride 1, SAME)");
        Require(st.src.channels == st.dst.channels, where + ": pool src/dst channels differ");
      } else if (op == "copy") {
        Require(st.src.channels == st.dst.channels, where + ": copy src/dst channels differ");
      } else {
        Require(false, where + ": unknown op '" + op + "' (conv, max_pool or copy)");
      }
      auto& w = st.dst.kind == kOutput ? written_out[0] : written_scratch[st.dst.index];
      std::fill(w.begin() + st.dst.offset, w.begin() + st.dst.offset + st.dst.channels, true);
      steps_.push_back(std::move(st));
    }
    Require(std::all_of(written_out[0].begin(), written_out[0].end(), [](bool b) { return b; }),
            "the steps leave output channels unwritten");
    for (auto& st : steps_)
      if (st.kind == BlockStep::kConv) convs_.push_back(&st.conv);
  }

  size_t Inputs() const { return size_t(num_inputs_) + 2 * convs_.size() + 1; }

  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no, LiteRtLayout* out) override {
    if (ni != Inputs() || no != 1)
      return "expects " + std::to_string(Inputs()) + " inputs (" + std::to_string(num_inputs_) +
             " activations, weights and bias per conv, key) and 1 output, got " + std::to_string(ni) + "/" +
             std::to_string(no);
    const LiteRtLayout& x = in[0];
    for (int k = 0; k < num_inputs_; ++k) {
      const LiteRtLayout& l = in[k];
      if (l.rank != 4 || l.dimensions[0] != x.dimensions[0] || l.dimensions[1] != x.dimensions[1] ||
          l.dimensions[2] != x.dimensions[2])
        return "activation input " + std::to_string(k) + " " + LayoutStr(l) +
               " must be NHWC with the batch and spatial size of input 0 " + LayoutStr(x);
    }
    for (const auto& st : steps_)
      for (const BlockSlot* s : {&st.src, &st.residual})
        if (s->on() && s->kind == kInput && s->offset + s->channels > in[s->index].dimensions[3])
          return "a step reads channels [" + std::to_string(s->offset) + ", " + std::to_string(s->offset + s->channels) +
                 ") of input " + std::to_string(s->index) + " " + LayoutStr(in[s->index]);
    if (auto e = CheckConvLayouts(convs_, in, num_inputs_); !e.empty()) return e;
    SetLayout(out, {x.dimensions[0], x.dimensions[1], x.dimensions[2], out_channels_});
    return "";
  }

  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (in.size() != Inputs() || out.size() != 1) return "bad input/output count";
    const auto& x = t[0].layout;
    const int n = x.dimensions[0], h = x.dimensions[1], w = x.dimensions[2];
    const int64_t pixels = int64_t(n) * h * w;
    for (int k = 0; k < num_inputs_; ++k) {
      if (t[k].element_type != kLiteRtElementTypeInt8) return "activations must be int8";
      const auto& l = t[k].layout;
      if (l.dimensions[0] != n || l.dimensions[1] != h || l.dimensions[2] != w ||
          in_bytes[k] < size_t(pixels) * l.dimensions[3])
        return "activation input " + std::to_string(k) + " inconsistent with input 0";
    }
    if (out_bytes[0] < size_t(pixels) * out_channels_) return "output buffer too small";
    if (auto e = PackConvs(convs_, in, in_bytes, t, num_inputs_); !e.empty()) return e;
    scratch_.resize(scratch_channels_.size());
    for (size_t i = 0; i < scratch_.size(); ++i) scratch_[i].resize(size_t(pixels) * scratch_channels_[i]);
    auto* o = static_cast<int8_t*>(out[0]);
    // base pointer and channels per pixel of a slot's buffer
    using Buffer = std::pair<int8_t*, int>;
    auto buffer = [&](const BlockSlot& s) -> Buffer {
      if (s.kind == kInput) return {static_cast<int8_t*>(in[s.index]), t[s.index].layout.dimensions[3]};
      if (s.kind == kOutput) return {o, out_channels_};
      return {scratch_[s.index].data(), scratch_channels_[s.index]};
    };
    auto layout = [&](const BlockSlot& s) { return NhwcSlice(n, h, w, buffer(s).second, s.offset, s.channels); };
    for (auto& st : steps_) {
      const Buffer sb = buffer(st.src), db = buffer(st.dst);
      int8_t* src = sb.first;
      int8_t* dst = db.first;
      const int src_c = sb.second, dst_c = db.second;
      Status status;
      if (st.kind == BlockStep::kConv) {
        const bool residual = st.residual.on();
        status = st.conv.RunConv(src, layout(st.src), dst, layout(st.dst), residual ? buffer(st.residual).first : nullptr,
                                 residual ? layout(st.residual) : TensorLayout(), pool);
      } else if (st.kind == BlockStep::kPool) {
        status = MaxPool2DInt8(st.pool.geometry, src, layout(st.src), dst, layout(st.dst), st.pool.act_min,
                                st.pool.act_max, pool);
      } else {
        CopyChannels(dst, dst_c, st.dst.offset, src, src_c, st.src.offset, st.src.channels, pixels, pool);
      }
      if (!status.ok()) return std::string("kernel failed: ") + status.message();
    }
    return "";
  }

  std::string Describe() const override {
    int pools = 0, copies = 0;
    for (const auto& st : steps_) {
      pools += st.kind == BlockStep::kPool;
      copies += st.kind == BlockStep::kCopy;
    }
    std::ostringstream os;
    os << convs_.size() << " convs";
    if (pools) os << ", " << pools << " max pools";
    if (copies) os << ", " << copies << " copies";
    os << " -> " << out_channels_ << " channels";
    return os.str();
  }

 private:
  BlockSlot Slot(const Ref& m, const char* key, const std::string& where, bool required) {
    Ref r = m.Get(key);
    if (r.IsNull()) {
      Require(!required, where + ": missing '" + key + "'");
      return {};
    }
    Require(r.IsVectorLike() && r.Size() == 4, where + ": '" + key + "' must be [kind, index, offset, channels]");
    BlockSlot s;
    int64_t v[4];
    for (size_t i = 0; i < 4; ++i) v[i] = r.At(i).AsInt();
    Require(v[0] >= kInput && v[0] <= kScratch, where + ": " + key + " buffer kind must be 0, 1 or 2");
    const int64_t count = v[0] == kInput ? num_inputs_ : v[0] == kOutput ? 1 : int64_t(scratch_channels_.size());
    Require(v[1] >= 0 && v[1] < count, where + ": " + key + " buffer index out of range");
    Require(v[2] >= 0 && v[3] >= 1 && v[2] + v[3] <= (1 << 16), where + ": " + key + " channel range invalid");
    if (v[0] != kInput) {
      const int64_t c = v[0] == kOutput ? out_channels_ : scratch_channels_[v[1]];
      Require(v[2] + v[3] <= c, where + ": " + key + " channels exceed its buffer's " + std::to_string(c));
    }
    s.kind = int(v[0]);
    s.index = int(v[1]);
    s.offset = int(v[2]);
    s.channels = int(v[3]);
    return s;
  }

  static bool Overlap(const BlockSlot& a, const BlockSlot& b) {
    return a.on() && b.on() && a.kind == b.kind && a.index == b.index && a.offset < b.offset + b.channels &&
           b.offset < a.offset + a.channels;
  }

  int num_inputs_ = 0, out_channels_ = 0;
  std::vector<int> scratch_channels_;
  std::vector<BlockStep> steps_;
  std::vector<ConvSpec*> convs_;  // the conv steps' specs, in input order
  std::vector<std::vector<int8_t>> scratch_;
};

// ---------------------------------------------------------------------------------------
class TestAffineKernel : public NodeKernel {
 public:
  void Parse(const Ref& m) {
    Ref s = m.Get("scale"), o = m.Get("offset");
    Require(!s.IsNull() && s.IsNumeric(), "missing numeric option 'scale'");
    Require(!o.IsNull() && o.IsNumeric(), "missing numeric option 'offset'");
    scale_ = static_cast<float>(s.AsDouble());
    offset_ = static_cast<float>(o.AsDouble());
  }
  std::string OutputLayouts(size_t ni, const LiteRtLayout* in, size_t no,
                            LiteRtLayout* out) override {
    if (ni != 2 || no != 1) return "expects 2 inputs (x, key) and 1 output";
    out[0] = in[0];
    out[0].has_strides = 0;
    return "";
  }
  std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                  const std::vector<LiteRtRankedTensorType>& t, const std::vector<void*>& out,
                  const std::vector<size_t>& out_bytes, ThreadPool* pool) override {
    if (t[0].element_type != kLiteRtElementTypeFloat32) return "x must be float32";
    size_t n = std::min(in_bytes[0], out_bytes[0]) / sizeof(float);
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    for (size_t i = 0; i < n; ++i) y[i] = x[i] * scale_ + offset_;
    return "";
  }
  std::string Describe() const override { return "affine"; }

 private:
  float scale_ = 1.f, offset_ = 0.f;
};

}  // namespace

std::string LayoutStr(const LiteRtLayout& l) {
  std::ostringstream os;
  os << "[";
  for (unsigned i = 0; i < l.rank; ++i) os << (i ? "," : "") << l.dimensions[i];
  os << "]";
  return os.str();
}

std::vector<std::string> CustomOpNames() {
  return {"CspPartialConv", "CspDenseBlock", "CspBlock", "KcspDepthwiseConv2D", "KcspConv2D", "KcspInvertedResidual", "KcspAvgPool2D",
          "KcspTestAffine"};
}

const char* NumericsName(Numerics n) {
  switch (n) {
    case Numerics::kXnnpack: return "xnnpack";
    case Numerics::kTfliteBuiltin: return "builtin";
    case Numerics::kTfliteReference: return "reference";
  }
  return "?";
}

bool ResolveNumerics(const std::string& name, const std::string& cpu_kernel_mode, Numerics* out) {
  if (name.empty() || name == "auto") {
    // LiteRT 2.3's "reference" CPU kernel mode still runs CONV_2D with the optimized kernels'
    // rounding (ties up; measured, see tests/test_fuse.py), so it maps to builtin numerics.
    if (cpu_kernel_mode.empty() || cpu_kernel_mode == "delegate") *out = Numerics::kXnnpack;
    else if (cpu_kernel_mode == "builtin" || cpu_kernel_mode == "reference")
      *out = Numerics::kTfliteBuiltin;
    else return false;
    return true;
  }
  if (name == "xnnpack") *out = Numerics::kXnnpack;
  else if (name == "builtin") *out = Numerics::kTfliteBuiltin;
  else if (name == "reference") *out = Numerics::kTfliteReference;
  else return false;
  return true;
}

std::unique_ptr<NodeKernel> CreateNodeKernel(const std::string& name, const uint8_t* options,
                                             size_t size, int* node, std::string* error,
                                             Numerics numerics) {
  try {
    Ref root = flex::GetRoot(options, size);
    Require(root.IsMap(), "custom options must be a flexbuffer map");
    int64_t version = ReqInt(root, "version");
    Require(version == kOptionsVersion, "options version " + std::to_string(version) +
                                            " not supported (this runtime reads version " +
                                            std::to_string(kOptionsVersion) + ")");
    int64_t nd = ReqInt(root, "node");
    Require(nd >= 0 && nd < (1 << 20), "node id out of range");
    *node = static_cast<int>(nd);
    if (name == "CspPartialConv") {
      auto k = std::make_unique<CspPartialConvKernel>();
      k->Parse(root, numerics);
      return k;
    }
    if (name == "CspDenseBlock") {
      auto k = std::make_unique<CspDenseBlockKernel>();
      k->Parse(root, numerics);
      return k;
    }
    if (name == "CspBlock") {
      auto k = std::make_unique<CspBlockKernel>();
      k->Parse(root, numerics);
      return k;
    }
    if (name == "KcspDepthwiseConv2D" || name == "KcspConv2D") {
      auto k = std::make_unique<SingleConvKernel>(name == "KcspDepthwiseConv2D");
      k->Parse(root, numerics);
      return k;
    }
    if (name == "KcspInvertedResidual") {
      auto k = std::make_unique<InvertedResidualKernel>();
      k->Parse(root, numerics);
      return k;
    }
    if (name == "KcspAvgPool2D") {
      auto k = std::make_unique<AvgPoolKernel>();
      k->Parse(root);
      return k;
    }
    if (name == "KcspTestAffine") {
      auto k = std::make_unique<TestAffineKernel>();
      k->Parse(root);
      return k;
    }
    *error = "unknown custom op '" + name + "'";
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------
CustomOpRegistration::CustomOpRegistration(std::string name, std::shared_ptr<const LiteRtLib> lib,
                                           ErrorSink* errors, Numerics numerics, ThreadPool* pool)
    : name_(std::move(name)), lib_(std::move(lib)), errors_(errors), numerics_(numerics), pool_(pool) {
  kernel_.Init = &InitCb;
  kernel_.GetOutputLayouts = &LayoutsCb;
  kernel_.Run = &RunCb;
  kernel_.Destroy = &DestroyCb;
}

LiteRtStatus CustomOpRegistration::Fail(const std::string& msg) {
  errors_->Add(name_ + ": " + msg);
  return kLiteRtStatusErrorInvalidArgument;
}

NodeKernel* CustomOpRegistration::FindNode(int node, std::string* err) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || !it->second.kernel) {
    *err = "no initialized node with id " + std::to_string(node) +
           " (its custom options were rejected or the key tensor is inconsistent)";
    return nullptr;
  }
  return it->second.kernel.get();
}

LiteRtStatus CustomOpRegistration::InitCb(void* user_data, const void* data, size_t size) {
  auto* self = static_cast<CustomOpRegistration*>(user_data);
  try {
    int node = -1;
    std::string err;
    auto k = CreateNodeKernel(self->name_, static_cast<const uint8_t*>(data), size, &node, &err,
                              self->numerics_);
    if (!k) return self->Fail("invalid custom options: " + err);
    std::lock_guard<std::mutex> l(self->mu_);
    if (self->nodes_.count(node))
      return self->Fail("invalid custom options: duplicate node id " + std::to_string(node));
    auto& e = self->nodes_[node];
    e.stat.op = self->name_;
    e.stat.node = node;
    e.stat.detail = k->Describe();
    e.kernel = std::move(k);
    return kLiteRtStatusOk;
  } catch (const std::exception& e) {
    return self->Fail(std::string("Init: ") + e.what());
  }
}

LiteRtStatus CustomOpRegistration::LayoutsCb(void* user_data, size_t ni, const LiteRtLayout* in,
                                             size_t no, LiteRtLayout* out) {
  auto* self = static_cast<CustomOpRegistration*>(user_data);
  for (size_t i = 0; i < no; ++i) SetLayout(&out[i], {1});  // safe default on failure
  try {
    if (ni < 1) return self->Fail("no inputs");
    const LiteRtLayout& key = in[ni - 1];
    if (key.rank != 1 || key.dimensions[0] < 1)
      return self->Fail("last input must be the node key tensor of shape [node + 1], got " +
                        LayoutStr(key));
    std::string err;
    NodeKernel* k = self->FindNode(key.dimensions[0] - 1, &err);
    if (!k) return self->Fail(err);
    std::string e = k->OutputLayouts(ni, in, no, out);
    if (!e.empty()) {
      for (size_t i = 0; i < no; ++i) SetLayout(&out[i], {1});
      return self->Fail("node " + std::to_string(key.dimensions[0] - 1) + ": " + e);
    }
    return kLiteRtStatusOk;
  } catch (const std::exception& e) {
    return self->Fail(std::string("GetOutputLayouts: ") + e.what());
  }
}

LiteRtStatus CustomOpRegistration::RunCb(void* user_data, size_t ni,
                                         const LiteRtTensorBuffer* inputs, size_t no,
                                         LiteRtTensorBuffer* outputs) {
  auto* self = static_cast<CustomOpRegistration*>(user_data);
  const LiteRtLib& lib = *self->lib_;
  try {
    if (ni < 1) return self->Fail("no inputs");
    std::vector<void*> in(ni), out(no);
    std::vector<size_t> in_bytes(ni), out_bytes(no);
    std::vector<LiteRtRankedTensorType> types(ni);
    for (size_t i = 0; i < ni; ++i) {
      if (lib.GetTensorBufferTensorType(inputs[i], &types[i]) != kLiteRtStatusOk ||
          lib.GetTensorBufferHostMemory(inputs[i], &in[i]) != kLiteRtStatusOk ||
          lib.GetTensorBufferSize(inputs[i], &in_bytes[i]) != kLiteRtStatusOk)
        return self->Fail("cannot access input buffer " + std::to_string(i));
    }
    for (size_t i = 0; i < no; ++i) {
      if (lib.GetTensorBufferHostMemory(outputs[i], &out[i]) != kLiteRtStatusOk ||
          lib.GetTensorBufferSize(outputs[i], &out_bytes[i]) != kLiteRtStatusOk)
        return self->Fail("cannot access output buffer " + std::to_string(i));
    }
    const LiteRtLayout& key = types[ni - 1].layout;
    if (key.rank != 1 || key.dimensions[0] < 1) return self->Fail("bad node key tensor");
    const int node = key.dimensions[0] - 1;
    std::string err;
    NodeKernel* k = self->FindNode(node, &err);
    if (!k) return self->Fail(err);
    auto t0 = std::chrono::steady_clock::now();
    std::string e = k->Run(in, in_bytes, types, out, out_bytes, self->pool_);
    auto t1 = std::chrono::steady_clock::now();
    if (!e.empty()) return self->Fail("node " + std::to_string(node) + ": " + e);
    std::lock_guard<std::mutex> l(self->mu_);
    auto& st = self->nodes_[node].stat;
    st.calls++;
    st.total_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
    return kLiteRtStatusOk;
  } catch (const std::exception& e) {
    return self->Fail(std::string("Run: ") + e.what());
  }
}

LiteRtStatus CustomOpRegistration::DestroyCb(void*) {
  // Called once per node; node state lives until the registration (owned by the runner,
  // destroyed after the compiled model) goes away.
  return kLiteRtStatusOk;
}

std::vector<CustomOpStat> CustomOpRegistration::Stats() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<CustomOpStat> out;
  for (auto& [id, e] : nodes_) out.push_back(e.stat);
  return out;
}

void CustomOpRegistration::ResetStats() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [id, e] : nodes_) {
    e.stat.calls = 0;
    e.stat.total_ms = 0;
  }
}

}  // namespace keras_csp::runtime
