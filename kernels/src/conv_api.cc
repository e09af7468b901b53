// Argument validation, variant selection and the fused CSP / dense-block entry points.
#include <algorithm>
#include <type_traits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

#include "conv_internal.h"
#include "keras_csp/conv.h"
#include "keras_csp/cpu_features.h"
#include "keras_csp/elementwise.h"
#include "keras_csp/quantization.h"

namespace keras_csp {

using internal::CheckAliasing;
using internal::CheckLayout;
using internal::ConvProblem;

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNullPointer: return "NULL_POINTER";
    case StatusCode::kMisaligned: return "MISALIGNED";
    case StatusCode::kOutOfRange: return "OUT_OF_RANGE";
    case StatusCode::kUnsupported: return "UNSUPPORTED";
    case StatusCode::kOutOfMemory: return "OUT_OF_MEMORY";
  }
  return "UNKNOWN";
}

namespace {
Status Invalid(const std::string& m) { return Status::Error(StatusCode::kInvalidArgument, m); }
}  // namespace

void QuantizeMultiplier(double real_multiplier, int32_t* quantized_multiplier, int* shift) {
  if (real_multiplier == 0.0) {
    *quantized_multiplier = 0;
    *shift = 0;
    return;
  }
  const double q = std::frexp(real_multiplier, shift);
  auto q_fixed = static_cast<int64_t>(std::round(q * (1LL << 31)));
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    ++*shift;
  }
  if (*shift < -31) {
    *shift = 0;
    q_fixed = 0;
  }
  *quantized_multiplier = static_cast<int32_t>(q_fixed);
}

const char* VariantName(Variant v) {
  switch (v) {
    case Variant::kAuto: return "auto";
    case Variant::kScalar: return "scalar";
    case Variant::kAvx2: return "avx2";
    case Variant::kAvxVnni: return "avxvnni";
    case Variant::kAvx512Vnni: return "avx512vnni";
    case Variant::kNeonDotprod: return "neon_dotprod";
    case Variant::kNeonI8mm: return "neon_i8mm";
    case Variant::kNeon: return "neon";
    case Variant::kSme: return "sme";
    case Variant::kAmx: return "amx";
  }
  return "unknown";
}

Status ParseVariant(const std::string& name, Variant* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (name == "auto") *out = Variant::kAuto;
  else if (name == "scalar") *out = Variant::kScalar;
  else if (name == "avx2") *out = Variant::kAvx2;
  else if (name == "avxvnni") *out = Variant::kAvxVnni;
  else if (name == "avx512vnni") *out = Variant::kAvx512Vnni;
  else if (name == "neon_dotprod") *out = Variant::kNeonDotprod;
  else if (name == "neon_i8mm") *out = Variant::kNeonI8mm;
  else if (name == "neon") *out = Variant::kNeon;
  else if (name == "sme") *out = Variant::kSme;
  else if (name == "amx") *out = Variant::kAmx;
  else
    return Invalid("unknown kernel variant '" + name +
                   "' (expected auto, scalar, avx2, avxvnni, avx512vnni, amx, neon_dotprod, neon_i8mm, neon, sme)");
  return Status::Ok();
}

bool VariantAvailable(Variant v, bool float32) {
  const CpuFeatures& f = cpu_features();
  switch (v) {
    case Variant::kAuto:
    case Variant::kScalar: return true;
#if defined(__x86_64__)
    case Variant::kAvx2: return f.avx2 && (!float32 || f.fma);
    case Variant::kAvx512Vnni: return !float32 && f.avx512f && f.avx512bw && f.avx512vnni;
    case Variant::kAvxVnni: return !float32 && f.avx2 && f.avxvnni;
    case Variant::kAmx: return !float32 && f.amx_int8 && f.avx512f && f.avx512bw && f.avx512vnni && f.avx512vbmi;
#endif
#if defined(__aarch64__)
    case Variant::kNeonDotprod: return float32 ? f.neon : f.neon_dotprod;
    case Variant::kNeonI8mm: return !float32 && f.neon_i8mm;
    case Variant::kNeon: return f.neon;
    case Variant::kSme: return !float32 && f.sme;
#endif
    default: return false;
  }
  (void)f;
}

Variant BestVariant(bool float32) {
  if (VariantAvailable(Variant::kAmx, float32)) return Variant::kAmx;
  if (VariantAvailable(Variant::kAvx512Vnni, float32)) return Variant::kAvx512Vnni;
  if (VariantAvailable(Variant::kAvxVnni, float32)) return Variant::kAvxVnni;
  if (VariantAvailable(Variant::kAvx2, float32)) return Variant::kAvx2;
  if (float32) return VariantAvailable(Variant::kNeon, true) ? Variant::kNeon : Variant::kScalar;
  // int8 on aarch64: SME's outer products (SVL/32 x SVL/32 x 4 MACs per smopa; speed unmeasured,
  // no SME hardware here) > smmla (2x the MACs of sdot per instruction) > sdot > widening NEON.
  if (VariantAvailable(Variant::kSme)) return Variant::kSme;
  if (VariantAvailable(Variant::kNeonI8mm)) return Variant::kNeonI8mm;
  if (VariantAvailable(Variant::kNeonDotprod)) return Variant::kNeonDotprod;
  if (VariantAvailable(Variant::kNeon)) return Variant::kNeon;
  return Variant::kScalar;
}

Status ComputeOutputShape(const ConvGeometry& g, int in_h, int in_w, ConvOutputShape* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (g.kernel_h < 1 || g.kernel_w < 1 || g.kernel_h > 64 || g.kernel_w > 64)
    return Invalid("kernel size must be in [1, 64]");
  if (g.stride_h < 1 || g.stride_w < 1 || g.stride_h > 64 || g.stride_w > 64)
    return Invalid("stride must be in [1, 64]");
  if (in_h < 1 || in_w < 1) return Invalid("input height/width must be >= 1");
  if (g.padding == Padding::kSame) {
    // int64: in_h/in_w may be up to INT_MAX (the sums below would overflow int).
    const int64_t oh = (int64_t{in_h} + g.stride_h - 1) / g.stride_h;
    const int64_t ow = (int64_t{in_w} + g.stride_w - 1) / g.stride_w;
    out->out_h = static_cast<int>(oh);
    out->out_w = static_cast<int>(ow);
    const int64_t th = std::max<int64_t>((oh - 1) * g.stride_h + g.kernel_h - in_h, 0);
    const int64_t tw = std::max<int64_t>((ow - 1) * g.stride_w + g.kernel_w - in_w, 0);
    out->pad_top = static_cast<int>(th / 2);
    out->pad_left = static_cast<int>(tw / 2);
  } else if (g.padding == Padding::kValid) {
    if (in_h < g.kernel_h || in_w < g.kernel_w)
      return Invalid("VALID padding: input smaller than the kernel");
    out->out_h = (in_h - g.kernel_h) / g.stride_h + 1;
    out->out_w = (in_w - g.kernel_w) / g.stride_w + 1;
    out->pad_top = out->pad_left = 0;
  } else {
    return Invalid("unknown padding");
  }
  return Status::Ok();
}

void Int8ActivationRange(Activation act, float output_scale, int32_t output_zero_point,
                         int32_t* act_min, int32_t* act_max) {
  const int32_t qmin = -128, qmax = 127;
  auto quantize = [&](float f) {
    // In double and clamped: a tiny / zero / NaN output_scale must not make the float->int
    // conversion undefined.
    double q = static_cast<double>(output_zero_point) +
               std::round(static_cast<double>(f) / static_cast<double>(output_scale));
    if (std::isnan(q)) q = output_zero_point;
    q = std::min(std::max(q, -2147483648.0), 2147483647.0);
    return static_cast<int32_t>(q);
  };
  if (act == Activation::kRelu) {
    *act_min = std::max(qmin, quantize(0.0f));
    *act_max = qmax;
  } else if (act == Activation::kRelu6) {
    *act_min = std::max(qmin, quantize(0.0f));
    *act_max = std::min(qmax, quantize(6.0f));
  } else {
    *act_min = qmin;
    *act_max = qmax;
  }
}

Int8QuantParams Int8QuantChannels(const Int8QuantParams& q, int c0, int c1) {
  Int8QuantParams part = q;
  auto range = [c0, c1](const auto& v) { return v.empty() ? v : std::decay_t<decltype(v)>(v.begin() + c0, v.begin() + c1); };
  part.output_multiplier = range(q.output_multiplier);
  part.output_shift = range(q.output_shift);
  part.requant_scale = range(q.requant_scale);
  return part;
}

Status MakeInt8QuantParams(float input_scale, int32_t input_zero_point, const float* filter_scales,
                           int out_channels, float output_scale, int32_t output_zero_point,
                           int32_t act_min, int32_t act_max, Int8QuantParams* out) {
  if (filter_scales == nullptr || out == nullptr)
    return Status::Error(StatusCode::kNullPointer, "filter_scales/out is null");
  if (out_channels < 1) return Invalid("out_channels must be >= 1");
  if (!(input_scale > 0) || !(output_scale > 0) || !std::isfinite(input_scale) ||
      !std::isfinite(output_scale))
    return Invalid("scales must be finite and > 0");
  out->input_zero_point = input_zero_point;
  out->output_zero_point = output_zero_point;
  out->act_min = act_min;
  out->act_max = act_max;
  out->output_multiplier.resize(out_channels);
  out->output_shift.resize(out_channels);
  for (int c = 0; c < out_channels; ++c) {
    if (!(filter_scales[c] >= 0) || !std::isfinite(filter_scales[c]))
      return Invalid("filter scales must be finite and >= 0");
    const double eff = static_cast<double>(input_scale) * static_cast<double>(filter_scales[c]) /
                       static_cast<double>(output_scale);
    int shift = 0;
    QuantizeMultiplier(eff, &out->output_multiplier[c], &shift);
    out->output_shift[c] = shift;
  }
  return Status::Ok();
}

TensorLayout NhwcSlice(int batch, int height, int width, int total_channels, int channel_offset,
                       int channels) {
  TensorLayout l;
  l.batch = batch;
  l.height = height;
  l.width = width;
  l.channels = channels;
  l.channel_offset = channel_offset;
  // Saturating products: absurd sizes give INT64_MAX strides, which the kernels reject.
  auto mul = [](int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
  };
  l.pixel_stride = total_channels;
  l.row_stride = mul(width, total_channels);
  l.batch_stride = mul(height, l.row_stride);
  l.buffer_elements = mul(batch, l.batch_stride);
  return l;
}

namespace internal {

void* Scratch(size_t bytes) {
  struct Buf {
    void* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (bytes == 0) bytes = 64;
  if (bytes > buf.n) {
    std::free(buf.p);
    buf.p = nullptr;
    buf.n = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    buf.p = std::aligned_alloc(64, rounded);
    if (buf.p == nullptr) return nullptr;
    buf.n = rounded;
  }
  return buf.p;
}

void FoldedBias(const PackedConvInt8& p, int32_t fold_zero_point, int32_t* out_bias) {
  const ConvGeometry& g = p.geometry_;
  const int64_t per_oc = static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  for (int oc = 0; oc < g.out_channels; ++oc) {
    int64_t sum = 0;
    for (int64_t i = 0; i < per_oc; ++i) sum += p.weights_[oc * per_oc + i];
    // Wraps like the int32 accumulators of the kernels (no UB for extreme biases).
    out_bias[oc] = static_cast<int32_t>(
        static_cast<uint32_t>(static_cast<int64_t>(p.bias_[oc]) - fold_zero_point * sum));
  }
}

template <typename T>
Status CheckLayout(const T* ptr, const TensorLayout& l, const char* name) {
  const std::string n(name);
  if (ptr == nullptr) return Status::Error(StatusCode::kNullPointer, n + " pointer is null");
  if (reinterpret_cast<uintptr_t>(ptr) % alignof(T) != 0)
    return Status::Error(StatusCode::kMisaligned, n + " pointer is not aligned to its element size");
  if (l.batch < 1 || l.height < 1 || l.width < 1 || l.channels < 1)
    return Invalid(n + ": batch/height/width/channels must be >= 1");
  if (l.channel_offset < 0) return Invalid(n + ": negative channel offset");
  const int64_t kMax = int64_t{1} << 40;
  if (l.pixel_stride > kMax || l.row_stride > kMax || l.batch_stride > kMax ||
      l.buffer_elements > kMax || l.height > (1 << 20) || l.width > (1 << 20) || l.batch > (1 << 20))
    return Invalid(n + ": sizes/strides too large");
  if (l.pixel_stride < static_cast<int64_t>(l.channel_offset) + l.channels)
    return Invalid(n + ": pixel_stride must be >= channel_offset + channels");
  if (l.row_stride < l.pixel_stride * l.width) return Invalid(n + ": row_stride too small");
  if (l.batch_stride < l.row_stride * l.height) return Invalid(n + ": batch_stride too small");
  const int64_t last = (l.batch - 1) * l.batch_stride + (l.height - 1) * l.row_stride +
                       (l.width - 1) * l.pixel_stride + l.channel_offset + l.channels;
  if (last > l.buffer_elements)
    return Status::Error(StatusCode::kOutOfRange,
                         n + ": channel slice extends past the end of the buffer (" +
                             std::to_string(last) + " > " + std::to_string(l.buffer_elements) +
                             " elements)");
  return Status::Ok();
}

template <typename T>
Status CheckAliasing(const T* in, const TensorLayout& li, const T* out, const TensorLayout& lo) {
  const T* in_end = in + li.buffer_elements;
  const T* out_end = out + lo.buffer_elements;
  const bool overlap = in < out_end && out < in_end;
  if (!overlap) return Status::Ok();
  if (in != out || li.pixel_stride != lo.pixel_stride || li.row_stride != lo.row_stride ||
      li.batch_stride != lo.batch_stride || li.buffer_elements != lo.buffer_elements)
    return Invalid("input and output buffers overlap (only disjoint channel slices of the same "
                   "buffer with the same strides are allowed)");
  const int a0 = li.channel_offset, a1 = li.channel_offset + li.channels;
  const int b0 = lo.channel_offset, b1 = lo.channel_offset + lo.channels;
  if (a0 < b1 && b0 < a1) return Invalid("input and output channel slices overlap");
  return Status::Ok();
}

template Status CheckLayout<int8_t>(const int8_t*, const TensorLayout&, const char*);
template Status CheckLayout<float>(const float*, const TensorLayout&, const char*);
template Status CheckAliasing<int8_t>(const int8_t*, const TensorLayout&, const int8_t*, const TensorLayout&);
template Status CheckAliasing<float>(const float*, const TensorLayout&, const float*, const TensorLayout&);

}  // namespace internal

namespace {

Status CheckGeometry(const ConvGeometry& g) {
  ConvOutputShape s;
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(g, g.kernel_h, g.kernel_w, &s));
  if (g.in_channels < 1 || g.out_channels < 1 || g.in_channels > (1 << 20) ||
      g.out_channels > (1 << 20))
    return Invalid("in_channels/out_channels must be in [1, 2^20]");
  if (static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels > (1 << 22))
    return Invalid("kernel_h * kernel_w * in_channels too large");
  return Status::Ok();
}

// KERAS_CSP_KERNEL_VARIANT: what kAuto resolves to in this process (read once), so that a whole
// model (runtime, delegate, app) can run on a variant other than this CPU's best, e.g. the avx2
// kernels of an AVX2-only CPU on an AVX-512 machine. Unset, empty or "auto": the best variant.
const std::pair<Variant, Status>& AutoOverride() {
  static const std::pair<Variant, Status> v = [] {
    const char* e = std::getenv("KERAS_CSP_KERNEL_VARIANT");
    Variant parsed = Variant::kAuto;
    if (e == nullptr || *e == '\0') return std::make_pair(parsed, Status::Ok());
    Status s = ParseVariant(e, &parsed);
    if (!s.ok()) return std::make_pair(Variant::kAuto, Invalid("KERAS_CSP_KERNEL_VARIANT: " + s.message()));
    return std::make_pair(parsed, Status::Ok());
  }();
  return v;
}

Status ResolveVariant(Variant requested, bool float32, Variant* out) {
  if (requested == Variant::kAuto) {
    const auto& [forced, status] = AutoOverride();
    KCSP_RETURN_IF_ERROR(status);
    // An int8-only variant forced for the whole process leaves float32 convs on their best.
    if (forced == Variant::kAuto || (float32 && !VariantAvailable(forced, true) && VariantAvailable(forced, false))) {
      *out = BestVariant(float32);
      return Status::Ok();
    }
    if (!VariantAvailable(forced, float32))
      return Status::Error(StatusCode::kUnsupported, std::string("KERAS_CSP_KERNEL_VARIANT='") +
                                                         VariantName(forced) +
                                                         "' is not available on this CPU/build");
    *out = forced;
    return Status::Ok();
  }
  switch (requested) {
    case Variant::kScalar:
    case Variant::kAvx2:
    case Variant::kAvx512Vnni:
    case Variant::kAvxVnni:
    case Variant::kNeonDotprod:
    case Variant::kNeonI8mm:
    case Variant::kNeon:
    case Variant::kSme:
    case Variant::kAmx:
      break;
    default:
      return Invalid("unknown variant");
  }
  if (!VariantAvailable(requested, float32))
    return Status::Error(StatusCode::kUnsupported,
                         std::string("kernel variant '") + VariantName(requested) +
                             "' is not available on this CPU/build" +
                             (float32 && (requested == Variant::kAvx512Vnni || requested == Variant::kAvxVnni ||
                                          requested == Variant::kNeonI8mm || requested == Variant::kSme ||
                                          requested == Variant::kAmx)
                                  ? " (int8 only)"
                                  : ""));
  *out = requested;
  return Status::Ok();
}

// Validates per-channel int8 quantization for `oc` output channels; fp32 requantization may leave
// the fixed-point multipliers empty, which are then zero-filled so the arrays stay well-formed.
Status CheckInt8Quant(int oc, Int8QuantParams* quant) {
  if (quant->rounding == Rounding::kFp32) {
    if (static_cast<int>(quant->requant_scale.size()) != oc)
      return Invalid("requant_scale must have out_channels (" + std::to_string(oc) + ") entries");
    for (float s : quant->requant_scale)
      if (!(s >= 0x1.0p-32f && s < 256.0f))  // also rejects NaN
        return Invalid("requant_scale entries must be finite and in [2^-32, 256)");
    // fp32 requantization needs no fixed-point multipliers: both may be left empty, and are
    // then zero-filled so the arrays stay well-formed.
    if (quant->output_multiplier.empty() && quant->output_shift.empty()) {
      quant->output_multiplier.assign(oc, 0);
      quant->output_shift.assign(oc, 0);
    }
  }
  if (static_cast<int>(quant->output_multiplier.size()) != oc ||
      static_cast<int>(quant->output_shift.size()) != oc)
    return Invalid("output_multiplier/output_shift must have out_channels (" + std::to_string(oc) +
                   ") entries");
  if (quant->input_zero_point < -128 || quant->input_zero_point > 127 ||
      quant->output_zero_point < -128 || quant->output_zero_point > 127)
    return Invalid("zero points must be in [-128, 127]");
  if (quant->rounding != Rounding::kAwayFromZero && quant->rounding != Rounding::kHalfUp &&
      quant->rounding != Rounding::kFp32)
    return Invalid("unknown rounding mode");
  if (quant->act_min < -128 || quant->act_max > 127 || quant->act_min > quant->act_max)
    return Invalid("activation range must satisfy -128 <= act_min <= act_max <= 127");
  for (int c = 0; c < oc; ++c) {
    if (quant->output_multiplier[c] < 0) return Invalid("output_multiplier must be >= 0");
    if (quant->output_shift[c] < -31 || quant->output_shift[c] > 30)
      return Invalid("output_shift must be in [-31, 30]");
  }
  return Status::Ok();
}

void SplitShifts(const Int8QuantParams& q, std::vector<int32_t>* left, std::vector<int32_t>* right) {
  left->resize(q.output_shift.size());
  right->resize(q.output_shift.size());
  for (size_t c = 0; c < q.output_shift.size(); ++c) {
    (*left)[c] = std::max(q.output_shift[c], 0);
    (*right)[c] = std::max(-q.output_shift[c], 0);
  }
}

// The pointer arguments every int8 Create takes.
Status CheckPackPointers(const void* out, const int8_t* weights, const int32_t* bias) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (weights == nullptr) return Status::Error(StatusCode::kNullPointer, "weights pointer is null");
  if (bias != nullptr && reinterpret_cast<uintptr_t>(bias) % alignof(int32_t) != 0)
    return Status::Error(StatusCode::kMisaligned, "bias pointer is not 4-byte aligned");
  return Status::Ok();
}

// The n weights, the bias (zeros when null) and the split shifts of an int8 packed object.
template <typename P>
void KeepWeights(P* p, const int8_t* weights, size_t n, const int32_t* bias, int oc, const Int8QuantParams& quant) {
  p->weights_.assign(weights, weights + n);
  p->bias_.assign(oc, 0);
  if (bias != nullptr) p->bias_.assign(bias, bias + oc);
  SplitShifts(quant, &p->left_shift_, &p->right_shift_);
}

// Rows and columns of the padded staging of an in_h x in_w input: every tap of every output pixel
// (shape s) in range.
void PaddedExtent(const ConvGeometry& g, const ConvOutputShape& s, int in_h, int in_w, int* padded_h, int* padded_w) {
  *padded_h = std::max(in_h + s.pad_top, (s.out_h - 1) * g.stride_h + g.kernel_h);
  *padded_w = std::max(in_w + s.pad_left, (s.out_w - 1) * g.stride_w + g.kernel_w);
}

template <typename T, typename P>
Status MakeProblem(const P& w, const T* in, const TensorLayout& li, const T* out,
                   const TensorLayout& lo, ConvProblem* p) {
  KCSP_RETURN_IF_ERROR(CheckLayout(in, li, "input"));
  KCSP_RETURN_IF_ERROR(CheckLayout(out, lo, "output"));
  const ConvGeometry& g = w.geometry_;
  if (li.channels != g.in_channels)
    return Invalid("input slice has " + std::to_string(li.channels) + " channels, conv expects " +
                   std::to_string(g.in_channels));
  if (lo.channels != g.out_channels)
    return Invalid("output slice has " + std::to_string(lo.channels) + " channels, conv writes " +
                   std::to_string(g.out_channels));
  if (li.batch != lo.batch) return Invalid("input/output batch mismatch");
  ConvOutputShape s;
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(g, li.height, li.width, &s));
  if (lo.height != s.out_h || lo.width != s.out_w)
    return Invalid("output spatial size " + std::to_string(lo.height) + "x" +
                   std::to_string(lo.width) + " does not match the conv output " +
                   std::to_string(s.out_h) + "x" + std::to_string(s.out_w));
  KCSP_RETURN_IF_ERROR(CheckAliasing(in, li, out, lo));
  p->batch = li.batch;
  p->in_h = li.height;
  p->in_w = li.width;
  p->out_h = s.out_h;
  p->out_w = s.out_w;
  p->pad_top = s.pad_top;
  p->pad_left = s.pad_left;
  p->in = li;
  p->out = lo;
  PaddedExtent(g, s, li.height, li.width, &p->padded_h, &p->padded_w);
  return Status::Ok();
}

}  // namespace

namespace internal {
Status ResolveInt8Variant(Variant requested, Variant* out) { return ResolveVariant(requested, false, out); }
}  // namespace internal

namespace {
template <typename F>
Status NoThrow(F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Status::Error(StatusCode::kOutOfMemory, "allocation failed");
  } catch (...) {
    return Status::Error(StatusCode::kInvalidArgument, "unexpected exception");
  }
}
}  // namespace

Status PackedConvInt8::Create(const ConvGeometry& geometry, const int8_t* weights,
                              const int32_t* bias, const Int8QuantParams& quant, Variant variant,
                              std::unique_ptr<PackedConvInt8>* out) {
  return NoThrow([&] { return CreateImpl(geometry, weights, bias, quant, variant, out); });
}

void PackedConvInt8::SetOutputTable(const int8_t* table) {
  has_output_table_ = table != nullptr;
  output_table_pass_.reset();
  if (!has_output_table_) return;
  std::memcpy(output_table_, table, sizeof(output_table_));
  if (output_table_in_epilogue()) return;
  std::unique_ptr<Int8PostOps> pass;
  // Cannot fail for a conv variant this CPU runs (the conv's packing checked it); the scalar
  // kernel if it somehow does.
  if (!Int8PostOps::Create(table, nullptr, variant_, &pass).ok())
    (void)Int8PostOps::Create(table, nullptr, Variant::kScalar, &pass);
  output_table_pass_ = std::move(pass);
}

bool PackedConvInt8::output_table_in_epilogue() const {
#if defined(__x86_64__)
  return has_output_table_ && (variant_ == Variant::kAvx512Vnni || variant_ == Variant::kAmx) &&
         cpu_features().avx512vbmi;
#else
  return false;
#endif
}

Status PackedConvF32::Create(const ConvGeometry& geometry, const float* weights, const float* bias,
                             float act_min, float act_max, Variant variant,
                             std::unique_ptr<PackedConvF32>* out) {
  return NoThrow([&] { return CreateImpl(geometry, weights, bias, act_min, act_max, variant, out); });
}

namespace {
// Largest |(acc + bias) * scale| over every input, against 2^30: |x - zero_point| <= 255 for int8
// x, and padding taps add 0.
bool Fp32ScaledMayOverflow(const PackedConvInt8& p) {
  for (int oc = 0; oc < p.geometry_.out_channels; ++oc) {
    const double bound = 255.0 * static_cast<double>(internal::WeightAbsSum(p, oc)) + std::abs(static_cast<double>(p.bias_[oc]));
    if (bound * static_cast<double>(p.quant_.requant_scale[oc]) >= 1073741824.0) return true;
  }
  return false;
}
}  // namespace

Status PackedConvInt8::CreateImpl(const ConvGeometry& geometry, const int8_t* weights,
                                  const int32_t* bias, const Int8QuantParams& quant_in,
                                  Variant variant, std::unique_ptr<PackedConvInt8>* out) {
  Int8QuantParams quant = quant_in;
  KCSP_RETURN_IF_ERROR(CheckPackPointers(out, weights, bias));
  KCSP_RETURN_IF_ERROR(CheckGeometry(geometry));
  const int oc = geometry.out_channels;
  KCSP_RETURN_IF_ERROR(CheckInt8Quant(oc, &quant));
  Variant v;
  KCSP_RETURN_IF_ERROR(ResolveVariant(variant, false, &v));
  std::unique_ptr<PackedConvInt8> p(new (std::nothrow) PackedConvInt8());
  if (!p) return Status::Error(StatusCode::kOutOfMemory, "allocation failed");
  p->geometry_ = geometry;
  p->quant_ = quant;
#if defined(__x86_64__)
  // amx chosen by kAuto (not asked for by name, nor by KERAS_CSP_KERNEL_VARIANT): convs with little
  // K per output run the AVX-512 VNNI kernels, and variant() reports those.
  if (v == Variant::kAmx && variant == Variant::kAuto && AutoOverride().first == Variant::kAuto &&
      !internal::AmxPays(geometry))
    v = Variant::kAvx512Vnni;
#endif
  p->variant_ = v;
  const size_t n = static_cast<size_t>(oc) * geometry.kernel_h * geometry.kernel_w *
                   geometry.in_channels;
  KeepWeights(p.get(), weights, n, bias, oc, quant);
  if (quant.rounding == Rounding::kFp32) p->fp32_clamp_before_convert_ = Fp32ScaledMayOverflow(*p);
  Status s = Status::Ok();
  switch (v) {
#if defined(__x86_64__)
    case Variant::kAvx2:
      s = internal::PackInt8Avx2(p.get());
      if (s.ok() && internal::WinogradFits(*p)) s = internal::PackInt8Avx2Winograd(p.get());
      break;
    case Variant::kAvx512Vnni:
      s = internal::PackInt8Vpdpbusd(p.get(), /*k_pairs=*/true, /*xor_max_in_channels=*/0);
      break;
    // The sign flip costs one vpxor per broadcast, which the 256-bit kernel's idle shuffle port
    // takes nearly for free (a tight loop of 12 ymm vpdpbusd: 6 vpxor +3-10 %, 6 vcvtdq2ps +50-90 %);
    // it saves the per-pixel sums and a subtraction per output. Xeon, paired processes: 1x1
    // 16->16 at 80x80 1.39x, 64->64 1.13x, 128->128 at 56x56 1.05x, 128->256 at 28x28 1.02x,
    // 512->512 at 14x14 0.97x.
    case Variant::kAvxVnni:
      s = internal::PackInt8Vpdpbusd(p.get(), /*k_pairs=*/false, /*xor_max_in_channels=*/128);
      break;
    case Variant::kAmx: s = internal::PackInt8Amx(p.get()); break;
#endif
#if defined(__aarch64__)
    case Variant::kNeonDotprod: s = internal::PackInt8NeonDotprod(p.get()); break;
    case Variant::kNeonI8mm: s = internal::PackInt8NeonI8mm(p.get()); break;
    case Variant::kNeon:
      s = internal::PackInt8Neon(p.get());
      if (s.ok() && internal::WinogradFits(*p)) s = internal::PackInt8NeonWinograd(p.get());
      break;
    case Variant::kSme: s = internal::PackInt8Sme(p.get()); break;
#endif
    default: break;
  }
  KCSP_RETURN_IF_ERROR(s);
  *out = std::move(p);
  return Status::Ok();
}

Status PackedConvF32::CreateImpl(const ConvGeometry& geometry, const float* weights,
                                 const float* bias, float act_min, float act_max, Variant variant,
                                 std::unique_ptr<PackedConvF32>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kNullPointer, "out is null");
  if (weights == nullptr) return Status::Error(StatusCode::kNullPointer, "weights pointer is null");
  if (reinterpret_cast<uintptr_t>(weights) % alignof(float) != 0 ||
      (bias != nullptr && reinterpret_cast<uintptr_t>(bias) % alignof(float) != 0))
    return Status::Error(StatusCode::kMisaligned, "weights/bias pointer is not 4-byte aligned");
  KCSP_RETURN_IF_ERROR(CheckGeometry(geometry));
  if (std::isnan(act_min) || std::isnan(act_max) || act_min > act_max)
    return Invalid("activation range must satisfy act_min <= act_max");
  Variant v;
  KCSP_RETURN_IF_ERROR(ResolveVariant(variant, true, &v));
  std::unique_ptr<PackedConvF32> p(new (std::nothrow) PackedConvF32());
  if (!p) return Status::Error(StatusCode::kOutOfMemory, "allocation failed");
  const int oc = geometry.out_channels;
  p->geometry_ = geometry;
  p->act_min_ = act_min;
  p->act_max_ = act_max;
  p->variant_ = v;
  const size_t n = static_cast<size_t>(oc) * geometry.kernel_h * geometry.kernel_w *
                   geometry.in_channels;
  p->weights_.assign(weights, weights + n);
  p->bias_.assign(oc, 0.0f);
  if (bias != nullptr) p->bias_.assign(bias, bias + oc);
  Status s = Status::Ok();
  switch (v) {
#if defined(__x86_64__)
    case Variant::kAvx2: s = internal::PackF32Avx2(p.get()); break;
#endif
#if defined(__aarch64__)
    case Variant::kNeonDotprod:
    case Variant::kNeon: s = internal::PackF32Neon(p.get()); break;
#endif
    default: break;
  }
  KCSP_RETURN_IF_ERROR(s);
  *out = std::move(p);
  return Status::Ok();
}

namespace {
Status RunConvInt8Variant(const PackedConvInt8& w, const ConvProblem& p, const int8_t* input, int8_t* output);
}  // namespace

namespace internal {
void ApplyTaskOutputOps(const ConvProblem& p, int8_t* out, int b, int first, int count, int c0, int c1) {
  const TensorLayout &o = p.out, &r = p.residual_layout;
  const int channels = c1 - c0;
  // Rows of a layout without gaps between them are one run of pixels (and so, for a dense slice, of bytes).
  const bool rows_joined = o.row_stride == p.out_w * o.pixel_stride &&
                           (p.residual == nullptr || r.row_stride == p.out_w * r.pixel_stride);
  int oy = first / p.out_w, ox = first % p.out_w;
  for (int left = count; left > 0;) {
    const int run = rows_joined ? left : std::min(left, p.out_w - ox);
    int8_t* y = out + b * o.batch_stride + oy * o.row_stride + ox * o.pixel_stride + o.channel_offset + c0;
    // Arguments valid by construction (the layouts were checked), so these cannot fail.
    if (p.table_ops != nullptr) (void)ApplyInt8PostOps(*p.table_ops, y, run, o.pixel_stride, channels);
    if (p.post_ops != nullptr) {
      const int8_t* res = p.residual == nullptr ? nullptr
                          : p.residual + b * r.batch_stride + oy * r.row_stride + ox * r.pixel_stride + r.channel_offset + c0;
      (void)ApplyInt8PostOps(*p.post_ops, y, run, o.pixel_stride, channels, res, r.pixel_stride);
    }
    left -= run;
    ox += run;
    oy += ox / p.out_w;
    ox %= p.out_w;
  }
}
}  // namespace internal

namespace {
// The conv on a validated problem, its output table and post ops included: the table in the epilogue
// where the variant can look it up there, the rest inside the sweep's tasks (the scalar variant:
// after it).
Status RunConvInt8(const PackedConvInt8& w, ConvProblem p, const int8_t* input, int8_t* output) {
  if (!w.has_output_table_ && p.post_ops == nullptr) return RunConvInt8Variant(w, p, input, output);
  if (p.out_u8 || p.out_i16) return Invalid("a conv with output ops cannot write a chain's staging");
#if defined(__x86_64__)
  if (w.output_table_in_epilogue())
    return w.variant_ == Variant::kAmx ? internal::ConvInt8Amx(w, p, input, output)
                                       : internal::ConvInt8Avx512VnniTable(w, p, input, output);
#endif
  if (w.has_output_table_) p.table_ops = w.output_table_pass_.get();
  if (w.variant_ != Variant::kScalar) return RunConvInt8Variant(w, p, input, output);
  ConvProblem conv_only = p;
  conv_only.table_ops = conv_only.post_ops = nullptr;
  internal::ConvInt8Scalar(w, conv_only, input, output);
  for (int b = 0; b < p.batch; ++b)
    internal::ApplyTaskOutputOps(p, output, b, 0, p.out_h * p.out_w, 0, w.geometry_.out_channels);
  return Status::Ok();
}

// The variant's sweep on a validated problem.
Status RunConvInt8Variant(const PackedConvInt8& w, const ConvProblem& p, const int8_t* input, int8_t* output) {
  switch (w.variant_) {
#if defined(__x86_64__)
    case Variant::kAvx2: return internal::ConvInt8Avx2(w, p, input, output);
    case Variant::kAvx512Vnni: return internal::ConvInt8Avx512Vnni(w, p, input, output);
    case Variant::kAvxVnni: return internal::ConvInt8AvxVnni(w, p, input, output);
    case Variant::kAmx: return internal::ConvInt8Amx(w, p, input, output);
#endif
#if defined(__aarch64__)
    case Variant::kNeonDotprod: return internal::ConvInt8NeonDotprod(w, p, input, output);
    case Variant::kNeonI8mm: return internal::ConvInt8NeonI8mm(w, p, input, output);
    case Variant::kNeon: return internal::ConvInt8Neon(w, p, input, output);
    case Variant::kSme: return internal::ConvInt8Sme(w, p, input, output);
#endif
    default: internal::ConvInt8Scalar(w, p, input, output); return Status::Ok();
  }
}

// How a variant stages a KxK conv's input, as Conv2DInt8Chain writes it from the previous
// conv's epilogue.
enum class ChainStaging {
  kNone,
  kUint8Plus128,      // AVX-512 VNNI, AVX-VNNI: uint8 x + 128, border zero point + 128 (ConvProblem::out_u8)
  kInt16MinusZp,      // AVX2, plain NEON: int16 x - zero point, border 0 (ConvProblem::out_i16)
  kRawInt8,           // sdot / smmla / SME / AMX: the int8 values themselves, border the zero point
};

ChainStaging StagingOf(Variant v) {
  switch (v) {
    case Variant::kAvx512Vnni:
    case Variant::kAvxVnni: return ChainStaging::kUint8Plus128;
    case Variant::kAvx2:
    case Variant::kNeon: return ChainStaging::kInt16MinusZp;
    case Variant::kNeonDotprod:
    case Variant::kNeonI8mm:
    case Variant::kSme:
    case Variant::kAmx: return ChainStaging::kRawInt8;
    default: return ChainStaging::kNone;
  }
}
}  // namespace

Status Conv2DInt8(const PackedConvInt8& w, const int8_t* input, const TensorLayout& in_layout,
                  int8_t* output, const TensorLayout& out_layout, ThreadPool* pool) {
  ConvProblem p;
  KCSP_RETURN_IF_ERROR(MakeProblem(w, input, in_layout, output, out_layout, &p));
  p.pool = pool;
  return RunConvInt8(w, p, input, output);
}

Status Conv2DInt8(const PackedConvInt8& w, const int8_t* input, const TensorLayout& in_layout, int8_t* output,
                  const TensorLayout& out_layout, const ConvOutputOps& post, ThreadPool* pool) {
  ConvProblem p;
  KCSP_RETURN_IF_ERROR(MakeProblem(w, input, in_layout, output, out_layout, &p));
  p.pool = pool;
  if (post.ops == nullptr || (!post.ops->has_table() && !post.ops->has_add())) return RunConvInt8(w, p, input, output);
  p.post_ops = post.ops;
  if (post.ops->has_add()) {
    const TensorLayout& r = post.residual_layout;
    KCSP_RETURN_IF_ERROR(CheckLayout(post.residual, r, "residual"));
    if (r.batch != out_layout.batch || r.height != out_layout.height || r.width != out_layout.width ||
        r.channels != out_layout.channels)
      return Invalid("residual slice is " + std::to_string(r.batch) + "x" + std::to_string(r.height) + "x" +
                     std::to_string(r.width) + "x" + std::to_string(r.channels) + ", the conv output " +
                     std::to_string(out_layout.batch) + "x" + std::to_string(out_layout.height) + "x" +
                     std::to_string(out_layout.width) + "x" + std::to_string(out_layout.channels));
    // Read while the output is written: only a disjoint slice of the output's buffer.
    if (!CheckAliasing(post.residual, r, static_cast<const int8_t*>(output), out_layout).ok())
      return Invalid("residual and output overlap (only disjoint channel slices of the same buffer with the "
                     "same strides are allowed)");
    p.residual = post.residual;
    p.residual_layout = r;
  }
  return RunConvInt8(w, p, input, output);
}

bool Conv2DInt8ChainSupported(const PackedConvInt8& first, const PackedConvInt8& second) {
  const ConvGeometry& g = second.geometry_;
  // The staged path of a conv with several taps (1x1 convs read their input in place or stage
  // it per chunk), both convs on one variant. Convs whose taps are kernel rows stage unpadded
  // pixels: only amx's (every KxK amx conv; not its stride-2 parity planes) read the chain's rows.
  const bool rows_ok = second.variant_ == Variant::kAmx ? !second.amx_phases_ : !second.row_taps_;
  return !first.has_output_table_ && first.variant_ == second.variant_ &&
         StagingOf(second.variant_) != ChainStaging::kNone && !second.direct_1x1_ && rows_ok && g.kernel_h * g.kernel_w > 1 &&
         first.geometry_.out_channels == g.in_channels &&
         first.quant_.output_zero_point == second.quant_.input_zero_point;
}

Status Conv2DInt8Chain(const PackedConvInt8& first, const PackedConvInt8& second, const int8_t* input,
                       const TensorLayout& in_layout, std::vector<uint8_t>* staged, int8_t* output,
                       const TensorLayout& out_layout, ThreadPool* pool) {
  return NoThrow([&]() -> Status {
    if (staged == nullptr) return Status::Error(StatusCode::kNullPointer, "staged is null");
    if (first.geometry_.out_channels != second.geometry_.in_channels)
      return Invalid("chained convs: first writes " + std::to_string(first.geometry_.out_channels) +
                     " channels, second reads " + std::to_string(second.geometry_.in_channels));
    if (first.quant_.output_zero_point != second.quant_.input_zero_point)
      return Invalid("chained convs: first's output zero point differs from second's input zero point");
    KCSP_RETURN_IF_ERROR(CheckLayout(input, in_layout, "input"));
    ConvOutputShape s1;
    KCSP_RETURN_IF_ERROR(ComputeOutputShape(first.geometry_, in_layout.height, in_layout.width, &s1));
    const int cmid = second.geometry_.in_channels, batch = in_layout.batch;
    const TensorLayout mid = NhwcSlice(batch, s1.out_h, s1.out_w, cmid, 0, cmid);
    if (!Conv2DInt8ChainSupported(first, second)) {
      staged->resize(static_cast<size_t>(batch) * s1.out_h * s1.out_w * cmid);
      auto* m = reinterpret_cast<int8_t*>(staged->data());
      KCSP_RETURN_IF_ERROR(Conv2DInt8(first, input, in_layout, m, mid, pool));
      return Conv2DInt8(second, m, mid, output, out_layout, pool);
    }
    // The second conv's padded staging, sized as MakeProblem below sizes it.
    const ChainStaging kind = StagingOf(second.variant_);
    const int elem = kind == ChainStaging::kInt16MinusZp ? 2 : 1;
    const int zp = second.quant_.input_zero_point;
    ConvOutputShape s2;
    KCSP_RETURN_IF_ERROR(ComputeOutputShape(second.geometry_, s1.out_h, s1.out_w, &s2));
    const int cp = internal::StagedPixelElems(second);
    int padded_h = 0, padded_w = 0;
    PaddedExtent(second.geometry_, s2, s1.out_h, s1.out_w, &padded_h, &padded_w);
    const int64_t row = static_cast<int64_t>(padded_w) * cp, image = row * padded_h;
    size_t slack = 0;
#if defined(__x86_64__)
    if (second.variant_ == Variant::kAmx) slack = internal::AmxStagingSlack(second);
#endif
    // 64-byte aligned: a vector's large allocations start 16 bytes into a page, and the amx A
    // tiles' 64-byte rows then each straddled two cache lines (the chain ran 2-4 % slower than
    // staging the dense output again).
    staged->resize(static_cast<size_t>(image * batch * elem) + slack + 63);
    uint8_t* buf = staged->data() + (-reinterpret_cast<uintptr_t>(staged->data()) & 63);
    ConvProblem p2;  // the staging stands in for the dense input (same or more elements)
    TensorLayout staged_in = mid;
    staged_in.buffer_elements = image * batch;
    KCSP_RETURN_IF_ERROR(MakeProblem(second, reinterpret_cast<const int8_t*>(buf), staged_in, output, out_layout, &p2));
    // Border pixels: what x = zero point stages to. Padding channels (k_padded_ > channels) meet
    // zero weights: left as they are.
    const auto fill = static_cast<uint8_t>(kind == ChainStaging::kUint8Plus128 ? zp + 128
                                           : kind == ChainStaging::kRawInt8    ? zp
                                                                               : 0);
    // Only the border pixels are visited (the loop had tested every padded pixel, 3,364 on a 56x56
    // image, on the calling thread between the two convs' parallel sweeps).
    const int64_t px_bytes = int64_t{cp} * elem;
    const int interior_end = p2.pad_left + s1.out_w;
    auto fill_pixels = [&](uint8_t* d, int c0, int c1) {
      for (int c = c0; c < c1; ++c) std::memset(d + c * px_bytes, fill, cmid * elem);
    };
    for (int b = 0; b < batch; ++b)
      for (int r = 0; r < p2.padded_h; ++r) {
        uint8_t* d = buf + (b * image + r * row) * elem;
        if (r < p2.pad_top || r >= p2.pad_top + s1.out_h) {
          fill_pixels(d, 0, p2.padded_w);
        } else {
          fill_pixels(d, 0, p2.pad_left);
          fill_pixels(d, interior_end, p2.padded_w);
        }
      }
    // The first conv writes the interior (strides in bytes for int16 staging).
    const int64_t interior = p2.pad_top * row + static_cast<int64_t>(p2.pad_left) * cp;
    TensorLayout dst;
    dst.batch = batch;
    dst.height = s1.out_h;
    dst.width = s1.out_w;
    dst.channels = cmid;
    dst.pixel_stride = cp * elem;
    dst.row_stride = row * elem;
    dst.batch_stride = image * elem;
    dst.buffer_elements = (image * batch - interior) * elem;
    auto* mid_ptr = reinterpret_cast<int8_t*>(buf + interior * elem);
    ConvProblem p1;
    KCSP_RETURN_IF_ERROR(MakeProblem(first, input, in_layout, mid_ptr, dst, &p1));
    p1.pool = pool;
    p1.out_u8 = kind == ChainStaging::kUint8Plus128;
    p1.out_i16 = kind == ChainStaging::kInt16MinusZp;
    KCSP_RETURN_IF_ERROR(RunConvInt8(first, p1, input, mid_ptr));
    p2.pool = pool;
    p2.prestaged = buf;
    return RunConvInt8(second, p2, reinterpret_cast<const int8_t*>(buf), output);
  });
}

Status Conv2DF32(const PackedConvF32& w, const float* input, const TensorLayout& in_layout,
                 float* output, const TensorLayout& out_layout, ThreadPool* pool) {
  ConvProblem p;
  KCSP_RETURN_IF_ERROR(MakeProblem(w, input, in_layout, output, out_layout, &p));
  p.pool = pool;
  switch (w.variant_) {
#if defined(__x86_64__)
    case Variant::kAvx2: return internal::ConvF32Avx2(w, p, input, output);
#endif
#if defined(__aarch64__)
    case Variant::kNeonDotprod:
    case Variant::kNeon: return internal::ConvF32Neon(w, p, input, output);
#endif
    default: internal::ConvF32Scalar(w, p, input, output); return Status::Ok();
  }
}

template <typename T>
void CopyChannels(T* dst, int64_t dst_stride, int dst_off, const T* src, int64_t src_stride, int src_off,
                  int channels, int64_t pixels, ThreadPool* pool) {
  // Serial before: at 2 threads the worker idled while the caller copied CSPResNet-50's 128-channel
  // skip part at 56x56 (400 KB; that op went from 168 to 144-155 us on Zen 4).
  constexpr int64_t kMinTaskBytes = 16 * 1024;
  const int64_t bytes = pixels * channels * static_cast<int64_t>(sizeof(T));
  const int threads = pool ? pool->threads() : 1;
  const int tasks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({pixels, int64_t{4} * threads, bytes / kMinTaskBytes})));
  ParallelFor(tasks > 1 ? pool : nullptr, tasks, [&](int task) {
    for (int64_t p = pixels * task / tasks; p < pixels * (task + 1) / tasks; ++p)
      std::memcpy(dst + p * dst_stride + dst_off, src + p * src_stride + src_off, sizeof(T) * channels);
  });
}
template void CopyChannels<int8_t>(int8_t*, int64_t, int, const int8_t*, int64_t, int, int, int64_t, ThreadPool*);
template void CopyChannels<float>(float*, int64_t, int, const float*, int64_t, int, int, int64_t, ThreadPool*);

namespace {

template <typename T, typename P, typename ConvFn>
Status CspPartial(const P& w, const T* x, int batch, int height, int width, int channels,
                  int c_skip, T* out, int64_t out_elements, ConcatOrder order, ThreadPool* pool,
                  ConvFn conv) {
  if (x == nullptr || out == nullptr)
    return Status::Error(StatusCode::kNullPointer, "x/out pointer is null");
  if (batch < 1 || height < 1 || width < 1 || channels < 1)
    return Invalid("batch/height/width/channels must be >= 1");
  if (c_skip < 0 || c_skip >= channels)
    return Invalid("c_skip must be in [0, channels), got " + std::to_string(c_skip));
  if (order != ConcatOrder::kSkipFirst && order != ConcatOrder::kSkipLast)
    return Invalid("unknown concat order");
  const ConvGeometry& g = w.geometry_;
  if (channels - c_skip != g.in_channels)
    return Invalid("channels - c_skip = " + std::to_string(channels - c_skip) +
                   " but the conv has " + std::to_string(g.in_channels) + " input channels");
  ConvOutputShape s;
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(g, height, width, &s));
  if (s.out_h != height || s.out_w != width)
    return Invalid("CSP partial conv must preserve the spatial size (use stride 1 with SAME)");
  if (static_cast<int64_t>(c_skip) + g.out_channels > (int64_t{1} << 30))
    return Invalid("c_skip + out_channels too large");
  const int out_c = c_skip + g.out_channels;
  TensorLayout li = NhwcSlice(batch, height, width, channels, c_skip, g.in_channels);
  TensorLayout lo = NhwcSlice(batch, height, width, out_c,
                              order == ConcatOrder::kSkipFirst ? c_skip : 0, g.out_channels);
  if (out_elements < lo.buffer_elements)
    return Status::Error(StatusCode::kOutOfRange, "output buffer too small: need " +
                                                      std::to_string(lo.buffer_elements) +
                                                      " elements");
  lo.buffer_elements = out_elements;
  const int skip_offset = order == ConcatOrder::kSkipFirst ? 0 : g.out_channels;
  // A 1x1 sweep may copy the skip part between its tiles, if x and out do not overlap (in place,
  // the copy could overwrite input pixels that later channel blocks read).
  internal::SkipCopy skip{c_skip, -int64_t{c_skip}, int64_t{skip_offset} - lo.channel_offset};
  const bool disjoint = x + li.buffer_elements <= out || out + out_elements <= x;
  // Run the conv first: it validates pointers, alignment and aliasing.
  KCSP_RETURN_IF_ERROR(conv(w, x, li, out, lo, pool, c_skip > 0 && disjoint ? &skip : nullptr));
  if (c_skip > 0 && !skip.copied)
    CopyChannels(out, out_c, skip_offset, x, channels, 0, c_skip, static_cast<int64_t>(batch) * height * width, pool);
  return Status::Ok();
}

template <typename T, typename P, typename ConvFn>
Status DenseAppend(const P& w, T* block, int batch, int height, int width, int block_channels,
                   int in_offset, int out_offset, ThreadPool* pool, ConvFn conv) {
  if (block == nullptr) return Status::Error(StatusCode::kNullPointer, "block pointer is null");
  if (batch < 1 || height < 1 || width < 1 || block_channels < 1)
    return Invalid("batch/height/width/block_channels must be >= 1");
  const ConvGeometry& g = w.geometry_;
  if (in_offset < 0 || static_cast<int64_t>(in_offset) + g.in_channels > block_channels)
    return Invalid("input channel range [" + std::to_string(in_offset) + ", " +
                   std::to_string(static_cast<int64_t>(in_offset) + g.in_channels) +
                   ") is outside the block's " + std::to_string(block_channels) + " channels");
  if (out_offset < 0 || static_cast<int64_t>(out_offset) + g.out_channels > block_channels)
    return Invalid("output channel range [" + std::to_string(out_offset) + ", " +
                   std::to_string(static_cast<int64_t>(out_offset) + g.out_channels) +
                   ") is outside the block's " + std::to_string(block_channels) + " channels");
  ConvOutputShape s;
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(g, height, width, &s));
  if (s.out_h != height || s.out_w != width)
    return Invalid("dense-block append must preserve the spatial size (use stride 1 with SAME)");
  TensorLayout li = NhwcSlice(batch, height, width, block_channels, in_offset, g.in_channels);
  TensorLayout lo = NhwcSlice(batch, height, width, block_channels, out_offset, g.out_channels);
  return conv(w, block, li, block, lo, pool);
}

// Conv2DInt8 without output ops (the overload these templates take).
constexpr Status (*kConv2DInt8)(const PackedConvInt8&, const int8_t*, const TensorLayout&, int8_t*, const TensorLayout&,
                                ThreadPool*) = Conv2DInt8;

// Conv2DInt8 whose sweep may copy a CSP skip part too (skip->copied says whether it did).
Status Conv2DInt8WithSkip(const PackedConvInt8& w, const int8_t* input, const TensorLayout& in_layout, int8_t* output,
                          const TensorLayout& out_layout, ThreadPool* pool, internal::SkipCopy* skip) {
  ConvProblem p;
  KCSP_RETURN_IF_ERROR(MakeProblem(w, input, in_layout, output, out_layout, &p));
  p.pool = pool;
  p.skip = skip;
  return RunConvInt8(w, p, input, output);
}

}  // namespace

Status CspPartialConvInt8(const PackedConvInt8& w, const int8_t* x, int batch, int height,
                          int width, int channels, int c_skip, int8_t* out, int64_t out_elements,
                          ConcatOrder order, ThreadPool* pool) {
  return CspPartial(w, x, batch, height, width, channels, c_skip, out, out_elements, order, pool,
                    Conv2DInt8WithSkip);
}
Status CspPartialConvF32(const PackedConvF32& w, const float* x, int batch, int height, int width,
                         int channels, int c_skip, float* out, int64_t out_elements,
                         ConcatOrder order, ThreadPool* pool) {
  return CspPartial(w, x, batch, height, width, channels, c_skip, out, out_elements, order, pool,
                    [](const PackedConvF32& pw, const float* in, const TensorLayout& l_in, float* o,
                       const TensorLayout& l_out, ThreadPool* tp, internal::SkipCopy*) { return Conv2DF32(pw, in, l_in, o, l_out, tp); });
}
Status DenseAppendInt8(const PackedConvInt8& w, int8_t* block, int batch, int height, int width,
                       int block_channels, int in_offset, int out_offset, ThreadPool* pool) {
  return DenseAppend(w, block, batch, height, width, block_channels, in_offset, out_offset, pool,
                     kConv2DInt8);
}
Status DenseAppendF32(const PackedConvF32& w, float* block, int batch, int height, int width,
                      int block_channels, int in_offset, int out_offset, ThreadPool* pool) {
  return DenseAppend(w, block, batch, height, width, block_channels, in_offset, out_offset, pool,
                     Conv2DF32);
}

Status PackedDepthwiseInt8::Create(const ConvGeometry& geometry, int depth_multiplier, const int8_t* weights,
                                   const int32_t* bias, const Int8QuantParams& quant, Variant variant,
                                   std::unique_ptr<PackedDepthwiseInt8>* out) {
  return NoThrow([&] { return CreateImpl(geometry, depth_multiplier, weights, bias, quant, variant, out); });
}

Status PackedDepthwiseInt8::CreateImpl(const ConvGeometry& geometry, int depth_multiplier,
                                       const int8_t* weights, const int32_t* bias,
                                       const Int8QuantParams& quant_in, Variant variant,
                                       std::unique_ptr<PackedDepthwiseInt8>* out) {
  Int8QuantParams quant = quant_in;
  KCSP_RETURN_IF_ERROR(CheckPackPointers(out, weights, bias));
  if (depth_multiplier < 1 || depth_multiplier > 64) return Invalid("depth_multiplier must be in [1, 64]");
  KCSP_RETURN_IF_ERROR(CheckGeometry(geometry));
  if (static_cast<int64_t>(geometry.in_channels) * depth_multiplier != geometry.out_channels)
    return Invalid("depthwise out_channels (" + std::to_string(geometry.out_channels) +
                   ") must be in_channels * depth_multiplier (" + std::to_string(geometry.in_channels) +
                   " * " + std::to_string(depth_multiplier) + ")");
  const int oc = geometry.out_channels;
  KCSP_RETURN_IF_ERROR(CheckInt8Quant(oc, &quant));
  Variant v;
  KCSP_RETURN_IF_ERROR(ResolveVariant(variant, false, &v));
  // The depthwise kernel behind each conv variant (multipliers 1 and 2 have SIMD kernels).
  Variant kernel = Variant::kScalar;
  if (depth_multiplier <= 2) {
#if defined(__x86_64__)
    if (v == Variant::kAvx2) kernel = Variant::kAvx2;
    if (v == Variant::kAvxVnni) kernel = Variant::kAvxVnni;
    if (v == Variant::kAvx512Vnni || v == Variant::kAmx) kernel = Variant::kAvx512Vnni;
#endif
#if defined(__aarch64__)
    if (v == Variant::kNeonDotprod || v == Variant::kNeonI8mm || v == Variant::kSme) kernel = Variant::kNeonDotprod;
    if (v == Variant::kNeon) kernel = Variant::kNeon;
#endif
  }
  std::unique_ptr<PackedDepthwiseInt8> p(new (std::nothrow) PackedDepthwiseInt8());
  if (!p) return Status::Error(StatusCode::kOutOfMemory, "allocation failed");
  p->geometry_ = geometry;
  p->multiplier_ = depth_multiplier;
  p->quant_ = quant;
  p->variant_ = kernel;
  KeepWeights(p.get(), weights, static_cast<size_t>(geometry.kernel_h) * geometry.kernel_w * oc, bias, oc, quant);
  Status s = Status::Ok();
  switch (kernel) {
#if defined(__x86_64__)
    case Variant::kAvx2: s = internal::PackDepthwiseInt8Avx2(p.get()); break;
    case Variant::kAvx512Vnni: s = internal::PackDepthwiseInt8Avx512Vnni(p.get()); break;
    case Variant::kAvxVnni: s = internal::PackDepthwiseInt8AvxVnni(p.get()); break;
#endif
#if defined(__aarch64__)
    case Variant::kNeon: s = internal::PackDepthwiseInt8Neon(p.get()); break;
    case Variant::kNeonDotprod: s = internal::PackDepthwiseInt8NeonDotprod(p.get()); break;
#endif
    default: break;
  }
  KCSP_RETURN_IF_ERROR(s);
  *out = std::move(p);
  return Status::Ok();
}

namespace {
// Output rows [r0, r1) (over batch * out_h) of problem p on the packed variant's kernel.
void DepthwiseRows(const PackedDepthwiseInt8& w, const ConvProblem& p, const int8_t* input, int8_t* output, int r0,
                   int r1) {
  switch (w.variant_) {
#if defined(__x86_64__)
    case Variant::kAvx2: internal::DepthwiseInt8Avx2(w, p, input, output, r0, r1); break;
    case Variant::kAvx512Vnni: internal::DepthwiseInt8Avx512Vnni(w, p, input, output, r0, r1); break;
    case Variant::kAvxVnni: internal::DepthwiseInt8AvxVnni(w, p, input, output, r0, r1); break;
#endif
#if defined(__aarch64__)
    case Variant::kNeon: internal::DepthwiseInt8Neon(w, p, input, output, r0, r1); break;
    case Variant::kNeonDotprod: internal::DepthwiseInt8NeonDotprod(w, p, input, output, r0, r1); break;
#endif
    default: internal::DepthwiseInt8Scalar(w, p, input, output, r0, r1); break;
  }
}
}  // namespace

Status DepthwiseConv2DInt8(const PackedDepthwiseInt8& w, const int8_t* input, const TensorLayout& in_layout,
                           int8_t* output, const TensorLayout& out_layout, ThreadPool* pool) {
  ConvProblem p;
  KCSP_RETURN_IF_ERROR(MakeProblem(w, input, in_layout, output, out_layout, &p));
  p.pool = pool;
  internal::ParallelRows(pool, p.batch * p.out_h, [&](int r0, int r1) { DepthwiseRows(w, p, input, output, r0, r1); });
  return Status::Ok();
}

Status DepthwiseConv2DInt8Rows(const PackedDepthwiseInt8& w, const int8_t* input, const TensorLayout& in_layout,
                               int first_row, int image_height, int8_t* output, const TensorLayout& out_layout,
                               int out_row) {
  KCSP_RETURN_IF_ERROR(CheckLayout(input, in_layout, "input"));
  KCSP_RETURN_IF_ERROR(CheckLayout(output, out_layout, "output"));
  const ConvGeometry& g = w.geometry_;
  if (in_layout.channels != g.in_channels || out_layout.channels != g.out_channels)
    return Invalid("input/output slices do not match the depthwise conv's channels");
  if (in_layout.batch != 1 || out_layout.batch != 1) return Invalid("a row band is one image (batch 1)");
  ConvOutputShape s;
  KCSP_RETURN_IF_ERROR(ComputeOutputShape(g, image_height, in_layout.width, &s));
  const int rows = out_layout.height;
  if (out_layout.width != s.out_w || out_row < 0 || rows < 1 || out_row + rows > s.out_h)
    return Invalid("output rows [" + std::to_string(out_row) + ", " + std::to_string(out_row + rows) +
                   ") x width " + std::to_string(out_layout.width) + " outside the conv output " +
                   std::to_string(s.out_h) + "x" + std::to_string(s.out_w));
  // Taps outside the band count as padding, so the band must hold every in-image row those outputs
  // read and nothing below the image.
  const int need0 = std::max(0, out_row * g.stride_h - s.pad_top);
  const int need1 = std::min(image_height, (out_row + rows - 1) * g.stride_h - s.pad_top + g.kernel_h);
  if (first_row < 0 || first_row > need0 || first_row + in_layout.height < need1 ||
      first_row + in_layout.height > image_height)
    return Invalid("input rows [" + std::to_string(first_row) + ", " + std::to_string(first_row + in_layout.height) +
                   ") do not hold rows [" + std::to_string(need0) + ", " + std::to_string(need1) + ") of the " +
                   std::to_string(image_height) + "-row image");
  KCSP_RETURN_IF_ERROR(CheckAliasing(input, in_layout, output, out_layout));
  ConvProblem p;
  p.batch = 1;
  p.in_h = in_layout.height;
  p.in_w = in_layout.width;
  p.out_h = rows;
  p.out_w = s.out_w;
  // output row j is row out_row + j of the image; band row i is image row first_row + i
  p.pad_top = s.pad_top + first_row - out_row * g.stride_h;
  p.pad_left = s.pad_left;
  p.in = in_layout;
  p.out = out_layout;
  PaddedExtent(g, s, image_height, in_layout.width, &p.padded_h, &p.padded_w);
  DepthwiseRows(w, p, input, output, 0, rows);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
#if defined(__aarch64__)
namespace {
// The variants whose CPUs have sdot: they run the NEON dotprod grouped kernel.
bool HasDotprodGrouped(Variant v) {
  return v == Variant::kNeonDotprod || v == Variant::kNeonI8mm || v == Variant::kSme;
}
}  // namespace
#endif

bool PackedGroupedConvInt8::HasKernel(const ConvGeometry& g, int groups, Variant variant) {
  if (groups < 1 || g.in_channels % groups || g.out_channels % groups) return false;
  const int cin_g = g.in_channels / groups, cout_g = g.out_channels / groups;
  if (cin_g != cout_g) return false;
#if defined(__x86_64__)
  if (variant == Variant::kAmx) variant = Variant::kAvx512Vnni;  // AMX CPUs run the AVX-512 VNNI kernels
  if (cin_g == 16 || cin_g == 32) return variant == Variant::kAvx512Vnni || variant == Variant::kAvx2;
  if (cin_g != 4 && cin_g != 8) return false;
  return variant == Variant::kAvx512Vnni || variant == Variant::kAvxVnni || variant == Variant::kAvx2;
#elif defined(__aarch64__)
  return (cin_g == 4 || cin_g == 8) && HasDotprodGrouped(variant);
#else
  (void)variant;
  return false;
#endif
}

Status PackedGroupedConvInt8::Create(const ConvGeometry& geometry, int groups, const int8_t* weights,
                                     const int32_t* bias, const Int8QuantParams& quant, Variant variant,
                                     std::unique_ptr<PackedGroupedConvInt8>* out) {
  return NoThrow([&] { return CreateImpl(geometry, groups, weights, bias, quant, variant, out); });
}

Status PackedGroupedConvInt8::CreateImpl(const ConvGeometry& geometry, int groups, const int8_t* weights,
                                         const int32_t* bias, const Int8QuantParams& quant_in, Variant variant,
                                         std::unique_ptr<PackedGroupedConvInt8>* out) {
  Int8QuantParams quant = quant_in;
  KCSP_RETURN_IF_ERROR(CheckPackPointers(out, weights, bias));
  KCSP_RETURN_IF_ERROR(CheckGeometry(geometry));
  if (groups < 1 || geometry.in_channels % groups != 0 || geometry.out_channels % groups != 0)
    return Invalid("groups (" + std::to_string(groups) + ") must divide in_channels (" +
                   std::to_string(geometry.in_channels) + ") and out_channels (" +
                   std::to_string(geometry.out_channels) + ")");
  const int oc = geometry.out_channels;
  KCSP_RETURN_IF_ERROR(CheckInt8Quant(oc, &quant));
  Variant v;
  KCSP_RETURN_IF_ERROR(ResolveVariant(variant, false, &v));
  // AMX CPUs run the AVX-512 VNNI grouped kernels (per-group convs, for other group shapes, run AMX).
  if (v == Variant::kAmx && HasKernel(geometry, groups, v)) v = Variant::kAvx512Vnni;
  std::unique_ptr<PackedGroupedConvInt8> p(new (std::nothrow) PackedGroupedConvInt8());
  if (!p) return Status::Error(StatusCode::kOutOfMemory, "allocation failed");
  p->geometry_ = geometry;
  p->groups_ = groups;
  p->quant_ = quant;
  p->variant_ = v;
  const int cin_g = geometry.in_channels / groups, cout_g = oc / groups;
  const size_t group_weights = static_cast<size_t>(cout_g) * geometry.kernel_h * geometry.kernel_w * cin_g;
  KeepWeights(p.get(), weights, group_weights * groups, bias, oc, quant);
  if (HasKernel(geometry, groups, v)) {
#if defined(__x86_64__)
    KCSP_RETURN_IF_ERROR(v == Variant::kAvx512Vnni ? internal::PackGroupedInt8Avx512Vnni(p.get())
                         : v == Variant::kAvxVnni  ? internal::PackGroupedInt8AvxVnni(p.get())
                                                   : internal::PackGroupedInt8Avx2(p.get()));
#elif defined(__aarch64__)
    KCSP_RETURN_IF_ERROR(internal::PackGroupedInt8NeonDotprod(p.get()));
#endif
  } else if (v != Variant::kScalar) {  // the variant's conv per group, on the group's channel slices
    ConvGeometry gg = geometry;
    gg.in_channels = cin_g;
    gg.out_channels = cout_g;
    for (int gi = 0; gi < groups; ++gi) {
      std::unique_ptr<PackedConvInt8> conv;
      KCSP_RETURN_IF_ERROR(PackedConvInt8::Create(gg, p->weights_.data() + gi * group_weights,
                                                  p->bias_.data() + gi * cout_g,
                                                  Int8QuantChannels(quant, gi * cout_g, (gi + 1) * cout_g), v, &conv));
      p->per_group_.push_back(std::move(conv));
    }
  }
  *out = std::move(p);
  return Status::Ok();
}

Status GroupedConv2DInt8(const PackedGroupedConvInt8& w, const int8_t* input, const TensorLayout& in_layout,
                         int8_t* output, const TensorLayout& out_layout, ThreadPool* pool) {
  ConvProblem p;
  KCSP_RETURN_IF_ERROR(MakeProblem(w, input, in_layout, output, out_layout, &p));
  p.pool = pool;
  if (w.per_group()) {
    const int cin_g = w.geometry_.in_channels / w.groups_, cout_g = w.geometry_.out_channels / w.groups_;
    auto group = [&](int gi, ThreadPool* inner) {
      TensorLayout li = in_layout, lo = out_layout;
      li.channel_offset += gi * cin_g;
      li.channels = cin_g;
      lo.channel_offset += gi * cout_g;
      lo.channels = cout_g;
      return Conv2DInt8(*w.per_group_[gi], input, li, output, lo, inner);
    };
    const int threads = pool ? pool->threads() : 1;
    if (threads > 1 && w.groups_ >= threads) {
      // The groups split over the pool, each group's conv on one thread (the same bits): a group's
      // small conv alone barely splits (ResNeXt-50's 32 groups of 16 at 14x14 ran no faster on 2
      // threads than on 1).
      std::vector<Status> status(threads, Status::Ok());
      ParallelFor(pool, threads, [&](int t) {
        for (int gi = w.groups_ * t / threads; gi < w.groups_ * (t + 1) / threads && status[t].ok(); ++gi)
          status[t] = group(gi, nullptr);
      });
      for (const Status& s : status) KCSP_RETURN_IF_ERROR(s);
      return Status::Ok();
    }
    for (int gi = 0; gi < w.groups_; ++gi) KCSP_RETURN_IF_ERROR(group(gi, pool));
    return Status::Ok();
  }
#if defined(__x86_64__)
  // The kernels taking groups of 16 or 32 (same signature) and their output-block count.
  decltype(&internal::GroupedInt8Avx2) wide_kernel = nullptr;
  int blocks = 0;
  if (internal::GroupChannels(w) >= 16 && w.variant_ == Variant::kAvx512Vnni) {
    wide_kernel = internal::GroupedInt8Avx512Vnni;
    blocks = internal::GroupedAvx512VnniBlocks(w);
  } else if (internal::GroupChannels(w) >= 16 && w.variant_ == Variant::kAvx2) {
    wide_kernel = internal::GroupedInt8Avx2;
    blocks = internal::GroupedAvx2Blocks(w);
  }
  const int tasks = pool ? pool->threads() : 1;
  if (wide_kernel != nullptr && tasks > 1 && blocks >= tasks) {
    // Groups of 16 or 32: the output blocks split over the threads, all rows each (split by rows,
    // every task streamed all blocks' weights for its few pixels: ResNeXt-50's 1024 in groups of 32
    // at 7x7, 2 threads, 0.83x XNNPACK on AVX-512; on AVX2 7 rows split 4 + 3, 0.82x the per-group
    // convs).
    ParallelFor(pool, tasks, [&](int t) {
      wide_kernel(w, p, input, output, 0, p.batch * p.out_h, blocks * t / tasks, blocks * (t + 1) / tasks);
    });
    return Status::Ok();
  }
#endif
  internal::ParallelRows(pool, p.batch * p.out_h, [&](int r0, int r1) {
#if defined(__x86_64__)
    if (w.variant_ == Variant::kAvx512Vnni) return internal::GroupedInt8Avx512Vnni(w, p, input, output, r0, r1);
    if (w.variant_ == Variant::kAvxVnni) return internal::GroupedInt8AvxVnni(w, p, input, output, r0, r1);
    if (w.variant_ == Variant::kAvx2) return internal::GroupedInt8Avx2(w, p, input, output, r0, r1);
#elif defined(__aarch64__)
    if (HasDotprodGrouped(w.variant_)) return internal::GroupedInt8NeonDotprod(w, p, input, output, r0, r1);
#endif
    internal::GroupedInt8Scalar(w, p, input, output, r0, r1);
  });
  return Status::Ok();
}

}  // namespace keras_csp
