// pybind11 bindings for the keras_csp native kernels: `keras_csp._kernels`.
// Thin layer: numpy arrays in/out, every error reported by the C++ layer becomes a Python
// exception (ValueError for bad arguments, RuntimeError for unsupported variants).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "keras_csp/conv.h"
#include "keras_csp/cpu_features.h"
#include "keras_csp/peak.h"
#include "keras_csp/quantization.h"
#include "numpy_checks.h"

namespace py = pybind11;
using namespace keras_csp;
using namespace keras_csp::python;

namespace {

void Throw(const Status& s) {
  if (s.ok()) return;
  const std::string msg = std::string(StatusCodeName(s.code())) + ": " + s.message();
  if (s.code() == StatusCode::kUnsupported || s.code() == StatusCode::kOutOfMemory)
    throw std::runtime_error(msg);
  throw py::value_error(msg);
}

// One persistent pool per thread count, for the life of the module (threads >= 2).
ThreadPool* PoolFor(int threads) {
  if (threads < 1 || threads > 256)
    throw py::value_error("threads must be in [1, 256], got " + std::to_string(threads));
  if (threads == 1) return nullptr;
  static std::mutex mu;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> l(mu);
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return pool.get();
}

Variant ToVariant(const std::string& name) {
  Variant v;
  Throw(ParseVariant(name, &v));
  return v;
}

Padding ToPadding(const std::string& p) {
  if (p == "same" || p == "SAME") return Padding::kSame;
  if (p == "valid" || p == "VALID") return Padding::kValid;
  throw py::value_error("padding must be 'same' or 'valid', got '" + p + "'");
}

ConvGeometry MakeGeometry(const py::array& weights, int stride_h, int stride_w,
                          const std::string& padding) {
  // weights OHWI
  ConvGeometry g;
  g.out_channels = static_cast<int>(weights.shape(0));
  g.kernel_h = static_cast<int>(weights.shape(1));
  g.kernel_w = static_cast<int>(weights.shape(2));
  g.in_channels = static_cast<int>(weights.shape(3));
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.padding = ToPadding(padding);
  return g;
}

// Shared driver for both element types.
template <typename T, typename Packed>
struct Ops {
  static py::array Conv(const Packed& p, const py::array& x, py::object out_obj, int threads) {
    ThreadPool* pool = PoolFor(threads);
    CheckArray<T>(x, "x", 4, false);
    const Dims d = DimsOf(x);
    ConvOutputShape s;
    Throw(ComputeOutputShape(p.geometry(), d.h, d.w, &s));
    py::array out = OutputArray<T>(out_obj, {d.n, s.out_h, s.out_w, p.geometry().out_channels});
    const Dims o = DimsOf(out);
    const TensorLayout li = NhwcSlice(d.n, d.h, d.w, d.c, 0, d.c);
    const TensorLayout lo = NhwcSlice(o.n, o.h, o.w, o.c, 0, o.c);
    Status st;
    {
      const T* xi = CPtr<T>(x);
      T* oo = MPtr<T>(out);
      py::gil_scoped_release nogil;
      st = Run(p, xi, li, oo, lo, pool);
    }
    Throw(st);
    return out;
  }

  static Status Run(const Packed& p, const T* in, const TensorLayout& li, T* out,
                    const TensorLayout& lo, ThreadPool* pool);

  // Conv reading channels [in_offset, in_offset + in_channels) of x and writing channels
  // [out_offset, out_offset + out_channels) of out (both dense NHWC; may be the same array).
  static void Slices(const Packed& p, const py::array& x, int in_offset, py::array out,
                     int out_offset, int threads) {
    ThreadPool* pool = PoolFor(threads);
    CheckArray<T>(x, "x", 4, false);
    CheckArray<T>(out, "out", 4, true);
    const Dims d = DimsOf(x), o = DimsOf(out);
    const TensorLayout li = NhwcSlice(d.n, d.h, d.w, d.c, in_offset, p.geometry().in_channels);
    const TensorLayout lo = NhwcSlice(o.n, o.h, o.w, o.c, out_offset, p.geometry().out_channels);
    Status st;
    {
      const T* xi = CPtr<T>(x);
      T* oo = MPtr<T>(out);
      py::gil_scoped_release nogil;
      st = Run(p, xi, li, oo, lo, pool);
    }
    Throw(st);
  }
};

template <>
Status Ops<int8_t, PackedConvInt8>::Run(const PackedConvInt8& p, const int8_t* in,
                                        const TensorLayout& li, int8_t* out,
                                        const TensorLayout& lo, ThreadPool* pool) {
  return Conv2DInt8(p, in, li, out, lo, pool);
}
template <>
Status Ops<int8_t, PackedDepthwiseInt8>::Run(const PackedDepthwiseInt8& p, const int8_t* in,
                                             const TensorLayout& li, int8_t* out, const TensorLayout& lo,
                                             ThreadPool* pool) {
  return DepthwiseConv2DInt8(p, in, li, out, lo, pool);
}
template <>
Status Ops<int8_t, PackedGroupedConvInt8>::Run(const PackedGroupedConvInt8& p, const int8_t* in,
                                               const TensorLayout& li, int8_t* out, const TensorLayout& lo,
                                               ThreadPool* pool) {
  return GroupedConv2DInt8(p, in, li, out, lo, pool);
}
template <>
Status Ops<float, PackedConvF32>::Run(const PackedConvF32& p, const float* in,
                                      const TensorLayout& li, float* out, const TensorLayout& lo,
                                      ThreadPool* pool) {
  return Conv2DF32(p, in, li, out, lo, pool);
}

ConcatOrder ToOrder(const std::string& s) {
  if (s == "skip_first") return ConcatOrder::kSkipFirst;
  if (s == "skip_last") return ConcatOrder::kSkipLast;
  throw py::value_error("order must be 'skip_first' or 'skip_last', got '" + s + "'");
}

template <typename T, typename Packed, typename Fn>
py::array Csp(const Packed& p, const py::array& x, int c_skip, py::object out_obj,
              const std::string& order, int threads, Fn fn) {
  ThreadPool* pool = PoolFor(threads);
  CheckArray<T>(x, "x", 4, false);
  const Dims d = DimsOf(x);
  if (c_skip < 0 || c_skip >= d.c)
    throw py::value_error("c_skip must be in [0, " + std::to_string(d.c) + "), got " +
                          std::to_string(c_skip));
  const ConcatOrder ord = ToOrder(order);
  const int out_c = c_skip + p.geometry().out_channels;
  py::array out = OutputArray<T>(out_obj, {d.n, d.h, d.w, out_c});
  Status st;
  {
    const T* xi = CPtr<T>(x);
    T* oo = MPtr<T>(out);
    const int64_t n = static_cast<int64_t>(out.size());
    py::gil_scoped_release nogil;
    st = fn(p, xi, d.n, d.h, d.w, d.c, c_skip, oo, n, ord, pool);
  }
  Throw(st);
  return out;
}

template <typename T, typename Packed, typename Fn>
void Dense(const Packed& p, py::array block, int in_offset, int out_offset, int threads, Fn fn) {
  ThreadPool* pool = PoolFor(threads);
  CheckArray<T>(block, "block", 4, true);
  const Dims d = DimsOf(block);
  Status st;
  {
    T* b = MPtr<T>(block);
    py::gil_scoped_release nogil;
    st = fn(p, b, d.n, d.h, d.w, d.c, in_offset, out_offset, pool);
  }
  Throw(st);
}

py::dict GeometryDict(const ConvGeometry& g) {
  py::dict d;
  d["kernel_h"] = g.kernel_h;
  d["kernel_w"] = g.kernel_w;
  d["stride_h"] = g.stride_h;
  d["stride_w"] = g.stride_w;
  d["padding"] = g.padding == Padding::kSame ? "same" : "valid";
  d["in_channels"] = g.in_channels;
  d["out_channels"] = g.out_channels;
  return d;
}

}  // namespace

// A per-output-channel vector argument that may be None (-> nullptr); `holder` keeps the array
// alive while the returned pointer is in use.
template <typename T>
const T* OptionalChannelVector(const py::object& v, const char* name, int out_channels,
                               py::array* holder) {
  if (v.is_none()) return nullptr;
  *holder = v.cast<py::array>();
  CheckArray<T>(*holder, name, 1, false);
  if (holder->shape(0) != out_channels)
    throw py::value_error(std::string(name) + " must have out_channels entries");
  return CPtr<T>(*holder);
}

// The int8 quantization the constructors take (TFLite's per-channel multiplier / shift; with
// rounding "fp32" XNNPACK's float scales too).
Int8QuantParams QuantFrom(int out_channels, int input_zero_point, int output_zero_point, const py::array& multiplier,
                          const py::array& shift, int act_min, int act_max, const std::string& rounding,
                          const py::object& requant_scale) {
  CheckArray<int32_t>(multiplier, "multiplier", 1, false);
  CheckArray<int32_t>(shift, "shift", 1, false);
  Int8QuantParams q;
  q.input_zero_point = input_zero_point;
  q.output_zero_point = output_zero_point;
  q.act_min = act_min;
  q.act_max = act_max;
  if (rounding == "away_from_zero") q.rounding = Rounding::kAwayFromZero;
  else if (rounding == "half_up") q.rounding = Rounding::kHalfUp;
  else if (rounding == "fp32") q.rounding = Rounding::kFp32;
  else throw py::value_error("rounding must be 'away_from_zero', 'half_up' or 'fp32', got '" + rounding + "'");
  if (q.rounding == Rounding::kFp32) {
    if (requant_scale.is_none())
      throw py::value_error("rounding 'fp32' needs requant_scale (float32, out_channels entries)");
    py::array rs;
    const float* r = OptionalChannelVector<float>(requant_scale, "requant_scale", out_channels, &rs);
    q.requant_scale.assign(r, r + out_channels);
  }
  q.output_multiplier.assign(CPtr<int32_t>(multiplier), CPtr<int32_t>(multiplier) + multiplier.size());
  q.output_shift.assign(CPtr<int32_t>(shift), CPtr<int32_t>(shift) + shift.size());
  return q;
}

// The methods both element types bind alike.
template <typename T, typename Packed, typename CspFn, typename DenseFn>
void BindCommon(py::class_<Packed>& cls, CspFn csp_fn, DenseFn dense_fn) {
  cls.def("csp_partial", [csp_fn](const Packed& p, const py::array& x, int c_skip, py::object out,
                                  const std::string& order, int threads) {
        return Csp<T>(p, x, c_skip, out, order, threads, csp_fn);
      }, py::arg("x"), py::arg("c_skip"), py::arg("out") = py::none(), py::arg("order") = "skip_first",
      py::arg("threads") = 1);
  cls.def("dense_append", [dense_fn](const Packed& p, py::array block, int in_offset, int out_offset,
                                     int threads) {
        Dense<T>(p, block, in_offset, out_offset, threads, dense_fn);
      }, py::arg("block"), py::arg("in_offset"), py::arg("out_offset"), py::arg("threads") = 1);
  cls.def_property_readonly("variant", [](const Packed& p) { return std::string(VariantName(p.variant())); })
      .def_property_readonly("geometry", [](const Packed& p) { return GeometryDict(p.geometry()); })
      .def("conv2d", &Ops<T, Packed>::Conv, py::arg("x"), py::arg("out") = py::none(), py::arg("threads") = 1)
      .def("conv2d_slices", &Ops<T, Packed>::Slices, py::arg("x"), py::arg("in_offset"), py::arg("out"),
           py::arg("out_offset"), py::arg("threads") = 1);
}

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "keras-csp native kernels";
  m.attr("__version__") = "0.1.0";
  m.def("compiled_arch", &keras_csp::compiled_arch);
  m.def("cpu_features", []() {
    const auto& f = keras_csp::cpu_features();
    py::dict d;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["avx512f"] = f.avx512f;
    d["avx512bw"] = f.avx512bw;
    d["avx512vnni"] = f.avx512vnni;
    d["avxvnni"] = f.avxvnni;
    d["amx_int8"] = f.amx_int8;
    d["amx_note"] = std::string(f.amx_note);
    d["neon"] = f.neon;
    d["neon_dotprod"] = f.neon_dotprod;
    d["neon_i8mm"] = f.neon_i8mm;
    d["sme"] = f.sme;
    return d;
  }, "CPU features detected at run time.");

  m.def("measure_int8_peak", [](const std::string& variant, double seconds) {
    std::vector<PeakResult> r;
    Status st;
    {
      const Variant v = ToVariant(variant);
      py::gil_scoped_release nogil;
      st = MeasureInt8Peak(v, seconds, &r);
    }
    Throw(st);
    py::list out;
    for (const auto& p : r) {
      py::dict d;
      d["method"] = p.method;
      d["gmacs"] = p.gmacs;
      d["exact"] = p.exact;
      out.append(d);
    }
    return out;
  }, py::arg("variant") = "auto", py::arg("seconds") = 0.3,
     "Measured single-thread int8 MAC peak loops (GMAC/s) available on this CPU.");
  m.def("measure_int8_tile_rate", [](const std::string& variant, int k, double seconds) {
    double gmacs = 0;
    Status st;
    {
      const Variant v = ToVariant(variant);
      py::gil_scoped_release nogil;
      st = MeasureInt8TileRate(v, k, seconds, &gmacs);
    }
    Throw(st);
    return gmacs;
  }, py::arg("variant"), py::arg("k"), py::arg("seconds") = 0.002,
     "GMAC/s of the variant's main 1x1 register tile alone on L1-resident data, K = k (avx512vnni).");
  m.def("variant_available", [](const std::string& name, bool float32) {
    return VariantAvailable(ToVariant(name), float32);
  }, py::arg("variant"), py::arg("float32") = false);
  m.def("best_variant", [](bool float32) { return std::string(VariantName(BestVariant(float32))); },
        py::arg("float32") = false);
  m.def("quantize_multiplier", [](double real) {
    int32_t q;
    int shift;
    QuantizeMultiplier(real, &q, &shift);
    return py::make_tuple(q, shift);
  }, py::arg("real_multiplier"));
  m.def("multiply_by_quantized_multiplier", [](int32_t x, int32_t mult, int shift) {
    return MultiplyByQuantizedMultiplier(x, mult, shift);
  });
  m.def("make_quant_params", [](float input_scale, int input_zp, py::array_t<float, py::array::forcecast> filter_scales,
                                float output_scale, int output_zp) {
    if (filter_scales.ndim() != 1) throw py::value_error("filter_scales must be 1-D");
    Int8QuantParams q;
    Throw(MakeInt8QuantParams(input_scale, input_zp, filter_scales.data(),
                              static_cast<int>(filter_scales.size()), output_scale, output_zp,
                              -128, 127, &q));
    return py::make_tuple(py::array_t<int32_t>(q.output_multiplier.size(), q.output_multiplier.data()),
                          py::array_t<int32_t>(q.output_shift.size(), q.output_shift.data()));
  }, py::arg("input_scale"), py::arg("input_zero_point"), py::arg("filter_scales"),
     py::arg("output_scale"), py::arg("output_zero_point"));
  m.def("int8_activation_range", [](const std::string& act, float scale, int zp) {
    Activation a;
    if (act == "none" || act == "linear") a = Activation::kNone;
    else if (act == "relu") a = Activation::kRelu;
    else if (act == "relu6") a = Activation::kRelu6;
    else throw py::value_error("activation must be none, relu or relu6");
    int32_t lo, hi;
    Int8ActivationRange(a, scale, zp, &lo, &hi);
    return py::make_tuple(lo, hi);
  });

  py::class_<PackedConvInt8> int8_conv(m, "PackedConvInt8", "int8 conv with weights prepacked for one variant");
  BindCommon<int8_t>(int8_conv, CspPartialConvInt8, DenseAppendInt8);
  int8_conv
      .def("runs_winograd", &PackedConvInt8::RunsWinograd, py::arg("out_pixels"),
           "whether a call on images of out_pixels output pixels runs Winograd F(2x2, 3x3) (AVX2 3x3 stride 1)")
      .def(py::init([](py::array weights, py::object bias, int stride_h, int stride_w,
                       const std::string& padding, int input_zero_point, int output_zero_point,
                       py::array multiplier, py::array shift, int act_min, int act_max,
                       const std::string& variant, const std::string& rounding,
                       py::object requant_scale) {
             CheckArray<int8_t>(weights, "weights", 4, false);
             ConvGeometry g = MakeGeometry(weights, stride_h, stride_w, padding);
             py::array barr;
             const int32_t* bptr = OptionalChannelVector<int32_t>(bias, "bias", g.out_channels, &barr);
             const Int8QuantParams q = QuantFrom(g.out_channels, input_zero_point, output_zero_point, multiplier,
                                                 shift, act_min, act_max, rounding, requant_scale);
             std::unique_ptr<PackedConvInt8> p;
             Throw(PackedConvInt8::Create(g, CPtr<int8_t>(weights), bptr, q, ToVariant(variant), &p));
             return p;
           }),
           py::arg("weights"), py::arg("bias"), py::arg("stride_h") = 1, py::arg("stride_w") = 1,
           py::arg("padding") = "same", py::arg("input_zero_point") = 0,
           py::arg("output_zero_point") = 0, py::arg("multiplier"), py::arg("shift"),
           py::arg("act_min") = -128, py::arg("act_max") = 127, py::arg("variant") = "auto",
           py::arg("rounding") = "away_from_zero", py::arg("requant_scale") = py::none());

  py::class_<PackedDepthwiseInt8>(m, "PackedDepthwiseInt8",
                                  "int8 depthwise conv (TFLite's DEPTHWISE_CONV_2D) prepacked for one variant")
      .def(py::init([](py::array weights, py::object bias, int depth_multiplier, int stride_h, int stride_w,
                       const std::string& padding, int input_zero_point, int output_zero_point,
                       py::array multiplier, py::array shift, int act_min, int act_max,
                       const std::string& variant, const std::string& rounding, py::object requant_scale) {
             // weights: [1, kh, kw, in_channels * depth_multiplier], TFLite's layout
             CheckArray<int8_t>(weights, "weights", 4, false);
             if (weights.shape(0) != 1) throw py::value_error("depthwise weights must be [1, kh, kw, out_channels]");
             if (depth_multiplier < 1 || weights.shape(3) % depth_multiplier != 0)
               throw py::value_error("out_channels must be a positive multiple of depth_multiplier");
             ConvGeometry g;
             g.kernel_h = static_cast<int>(weights.shape(1));
             g.kernel_w = static_cast<int>(weights.shape(2));
             g.out_channels = static_cast<int>(weights.shape(3));
             g.in_channels = g.out_channels / depth_multiplier;
             g.stride_h = stride_h;
             g.stride_w = stride_w;
             g.padding = ToPadding(padding);
             py::array barr;
             const int32_t* bptr = OptionalChannelVector<int32_t>(bias, "bias", g.out_channels, &barr);
             const Int8QuantParams q = QuantFrom(g.out_channels, input_zero_point, output_zero_point, multiplier,
                                                 shift, act_min, act_max, rounding, requant_scale);
             std::unique_ptr<PackedDepthwiseInt8> p;
             Throw(PackedDepthwiseInt8::Create(g, depth_multiplier, CPtr<int8_t>(weights), bptr, q,
                                               ToVariant(variant), &p));
             return p;
           }),
           py::arg("weights"), py::arg("bias"), py::arg("depth_multiplier") = 1, py::arg("stride_h") = 1,
           py::arg("stride_w") = 1, py::arg("padding") = "same", py::arg("input_zero_point") = 0,
           py::arg("output_zero_point") = 0, py::arg("multiplier"), py::arg("shift"), py::arg("act_min") = -128,
           py::arg("act_max") = 127, py::arg("variant") = "auto", py::arg("rounding") = "away_from_zero",
           py::arg("requant_scale") = py::none())
      .def_property_readonly("variant", [](const PackedDepthwiseInt8& p) { return std::string(VariantName(p.variant())); })
      .def_property_readonly("geometry", [](const PackedDepthwiseInt8& p) { return GeometryDict(p.geometry()); })
      .def("depthwise", &Ops<int8_t, PackedDepthwiseInt8>::Conv, py::arg("x"), py::arg("out") = py::none(),
           py::arg("threads") = 1);

  py::class_<PackedGroupedConvInt8>(m, "PackedGroupedConvInt8",
                                    "int8 grouped conv (TFLite's CONV_2D with in_channels / groups filter inputs)")
      .def(py::init([](py::array weights, py::object bias, int groups, int stride_h, int stride_w,
                       const std::string& padding, int input_zero_point, int output_zero_point,
                       py::array multiplier, py::array shift, int act_min, int act_max,
                       const std::string& variant, const std::string& rounding, py::object requant_scale) {
             // weights: OHWI [out_channels, kh, kw, in_channels / groups]
             CheckArray<int8_t>(weights, "weights", 4, false);
             if (groups < 1 || groups > (1 << 20)) throw py::value_error("groups must be in [1, 2^20]");
             ConvGeometry g = MakeGeometry(weights, stride_h, stride_w, padding);
             g.in_channels *= groups;
             py::array barr;
             const int32_t* bptr = OptionalChannelVector<int32_t>(bias, "bias", g.out_channels, &barr);
             const Int8QuantParams q = QuantFrom(g.out_channels, input_zero_point, output_zero_point, multiplier,
                                                 shift, act_min, act_max, rounding, requant_scale);
             std::unique_ptr<PackedGroupedConvInt8> p;
             Throw(PackedGroupedConvInt8::Create(g, groups, CPtr<int8_t>(weights), bptr, q, ToVariant(variant), &p));
             return p;
           }),
           py::arg("weights"), py::arg("bias"), py::arg("groups"), py::arg("stride_h") = 1, py::arg("stride_w") = 1,
           py::arg("padding") = "same", py::arg("input_zero_point") = 0, py::arg("output_zero_point") = 0,
           py::arg("multiplier"), py::arg("shift"), py::arg("act_min") = -128, py::arg("act_max") = 127,
           py::arg("variant") = "auto", py::arg("rounding") = "away_from_zero", py::arg("requant_scale") = py::none())
      .def_property_readonly("variant", [](const PackedGroupedConvInt8& p) { return std::string(VariantName(p.variant())); })
      .def_property_readonly("geometry", [](const PackedGroupedConvInt8& p) { return GeometryDict(p.geometry()); })
      .def_property_readonly("groups", &PackedGroupedConvInt8::groups)
      .def_property_readonly("per_group", &PackedGroupedConvInt8::per_group,
                             "whether it runs one of the variant's convs per group (no grouped kernel for it)")
      .def("conv2d", &Ops<int8_t, PackedGroupedConvInt8>::Conv, py::arg("x"), py::arg("out") = py::none(),
           py::arg("threads") = 1);

  py::class_<PackedConvF32> f32_conv(m, "PackedConvF32", "float32 conv with weights prepacked for one variant");
  BindCommon<float>(f32_conv, CspPartialConvF32, DenseAppendF32);
  f32_conv
      .def(py::init([](py::array weights, py::object bias, int stride_h, int stride_w,
                       const std::string& padding, float act_min, float act_max,
                       const std::string& variant) {
             CheckArray<float>(weights, "weights", 4, false);
             ConvGeometry g = MakeGeometry(weights, stride_h, stride_w, padding);
             py::array barr;
             const float* bptr = OptionalChannelVector<float>(bias, "bias", g.out_channels, &barr);
             std::unique_ptr<PackedConvF32> p;
             Throw(PackedConvF32::Create(g, CPtr<float>(weights), bptr, act_min, act_max, ToVariant(variant), &p));
             return p;
           }),
           py::arg("weights"), py::arg("bias"), py::arg("stride_h") = 1, py::arg("stride_w") = 1,
           py::arg("padding") = "same", py::arg("act_min") = -3.4e38f, py::arg("act_max") = 3.4e38f,
           py::arg("variant") = "auto");
}
