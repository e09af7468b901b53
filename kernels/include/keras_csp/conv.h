// keras-csp fused convolution kernels: public C++ API.
//
// Semantics follow TFLite's builtin CONV_2D (reference_integer_ops::ConvPerChannel for int8,
// reference_ops::Conv for float32): NHWC activations, OHWI weights, SAME/VALID padding,
// dilation 1, asymmetric int8 activations, symmetric per-output-channel int8 weights,
// int32 bias, fixed-point requantization with per-channel multiplier + shift, fused clamp.
//
// Every activation tensor is described by a TensorLayout: a (possibly strided) view of
// `channels` consecutive channels, starting at `channel_offset`, inside a buffer of
// `buffer_elements` elements. This lets a conv read a channel slice in place and write its
// output at a channel offset of a preallocated (concatenated) buffer, which removes the
// split/concat copies of CSP stages and dense blocks.
//
// Usage (e.g. from a TFLite custom op):
//   Prepare: PackedConvInt8::Create(geometry, weights, bias, quant, Variant::kAuto, &packed)
//   Invoke:  Conv2DInt8(*packed, input, in_layout, output, out_layout)
//            or CspPartialConvInt8 / DenseAppendInt8.
// All functions validate their arguments and return a Status; they never abort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keras_csp/status.h"
#include "keras_csp/threadpool.h"

namespace keras_csp {

enum class Padding { kValid = 0, kSame = 1 };

enum class Variant {
  kAuto = 0,        // best available on this CPU, or the KERAS_CSP_KERNEL_VARIANT environment
                    // variable's (read once per process; must be available here, int8-only
                    // variants leave float32 convs on their best)
  kScalar,          // portable reference (TFLite reference semantics)
  kAvx2,            // x86-64 AVX2 (+FMA for float)
  kAvx512Vnni,      // x86-64 AVX-512 VNNI (int8 only)
  kNeonDotprod,     // aarch64 NEON + dot product (int8: sdot); plain NEON for float32
  kNeonI8mm,        // aarch64 NEON + int8 matrix multiply (int8 only: smmla)
  kNeon,            // aarch64 plain NEON (int8: widening multiply-accumulate; float32)
  kAvxVnni,         // x86-64 AVX-VNNI, 256-bit VEX vpdpbusd without AVX-512 (int8 only)
  kSme,             // aarch64 SME: smopa outer products into ZA (int8 only; SVL 256 or >= 512 bits)
  kAmx,             // x86-64 AMX-INT8: tdpbssd tiles (int8 convs; depthwise and grouped convs and the
                    // element-wise ops run the AVX-512 VNNI kernels)
};

const char* VariantName(Variant v);
// Parses "auto", "scalar", "avx2", "avxvnni", "avx512vnni", "amx", "neon_dotprod", "neon_i8mm", "neon", "sme".
Status ParseVariant(const std::string& name, Variant* out);
// Whether the variant is compiled in and supported by this CPU (kAuto/kScalar: always true).
bool VariantAvailable(Variant v, bool float32 = false);
// The best variant on this CPU (what kAuto resolves to without KERAS_CSP_KERNEL_VARIANT).
Variant BestVariant(bool float32 = false);

struct ConvGeometry {
  int kernel_h = 1, kernel_w = 1;   // 1x1 and 3x3 are the tuned cases; any size >= 1 works
  int stride_h = 1, stride_w = 1;   // >= 1
  Padding padding = Padding::kSame;
  int in_channels = 0;              // channels the conv reads
  int out_channels = 0;             // channels the conv writes
};

// Output spatial size + padding exactly as TFLite computes them.
struct ConvOutputShape {
  int out_h = 0, out_w = 0;
  int pad_top = 0, pad_left = 0;
};
Status ComputeOutputShape(const ConvGeometry& g, int in_h, int in_w, ConvOutputShape* out);

// Rounding of the final right shift of the requantization.
//  kAwayFromZero: TFLite reference kernels (MultiplyByQuantizedMultiplier / RoundingDivideByPOT),
//                 the default; bit-exact with the interpreter's BUILTIN_REF op resolver.
//  kHalfUp:       TFLite's optimized builtin kernels (ruy: rounding shift rounds ties up);
//                 bit-exact with the interpreter's default builtin CONV_2D (no delegate).
//  kFp32:         XNNPACK's fp32 requantization (the default LiteRT CPU path):
//                 out = clamp(rint(float(acc) * requant_scale[c]) + zp), ties to even. Uses
//                 `requant_scale` instead of output_multiplier/output_shift.
enum class Rounding { kAwayFromZero = 0, kHalfUp = 1, kFp32 = 2 };

// Per-channel int8 quantization, as TFLite computes it in Prepare.
struct Int8QuantParams {
  int32_t input_zero_point = 0;            // in [-128, 127]
  int32_t output_zero_point = 0;           // in [-128, 127]
  std::vector<int32_t> output_multiplier;  // out_channels entries, in [0, 2^31)
  std::vector<int32_t> output_shift;       // out_channels entries, in [-31, 30] (>0: left shift)
  int32_t act_min = -128, act_max = 127;   // fused activation clamp (quantized)
  Rounding rounding = Rounding::kAwayFromZero;
  // kFp32 only: out_channels entries, f32(f32(input_scale * filter_scale[c]) / output_scale)
  // as XNNPACK computes them; finite, in [2^-32, 256).
  std::vector<float> requant_scale;
};

// Fills output_multiplier/output_shift from scales (double arithmetic as TFLite):
// effective_scale[c] = input_scale * filter_scale[c] / output_scale.
Status MakeInt8QuantParams(float input_scale, int32_t input_zero_point, const float* filter_scales,
                           int out_channels, float output_scale, int32_t output_zero_point,
                           int32_t act_min, int32_t act_max, Int8QuantParams* out);

// The parameters of output channels [c0, c1) alone (a conv over part of the channels: the grouped
// convs' per-group convs, the runtime's split depthwise convs).
Int8QuantParams Int8QuantChannels(const Int8QuantParams& q, int c0, int c1);

enum class Activation { kNone = 0, kRelu = 1, kRelu6 = 2 };
// TFLite CalculateActivationRangeQuantized for int8.
void Int8ActivationRange(Activation act, float output_scale, int32_t output_zero_point,
                         int32_t* act_min, int32_t* act_max);

// A strided channel slice of an NHWC buffer. Strides are in elements.
struct TensorLayout {
  int batch = 1, height = 0, width = 0;
  int channels = 0;              // channels of the slice (must match the conv)
  int channel_offset = 0;        // first channel of the slice within a pixel
  int64_t pixel_stride = 0;      // elements between horizontally adjacent pixels (>= offset+channels)
  int64_t row_stride = 0;        // elements between rows
  int64_t batch_stride = 0;      // elements between images
  int64_t buffer_elements = 0;   // size of the buffer the base pointer points to (bounds check)
};
// Dense NHWC tensor [batch, height, width, total_channels]; slice [offset, offset+channels).
TensorLayout NhwcSlice(int batch, int height, int width, int total_channels, int channel_offset,
                       int channels);

// Weights prepacked once for one variant. Immutable after Create (and SetOutputTable, which belongs
// to the setup); safe to share across threads.
class Int8PostOps;  // elementwise.h

class PackedConvInt8 {
 public:
  // weights: OHWI [out_channels][kernel_h][kernel_w][in_channels] int8 (symmetric, zero point 0).
  // bias: out_channels int32, may be null (= zeros).
  static Status Create(const ConvGeometry& geometry, const int8_t* weights, const int32_t* bias,
                       const Int8QuantParams& quant, Variant variant,
                       std::unique_ptr<PackedConvInt8>* out);
  const ConvGeometry& geometry() const { return geometry_; }
  const Int8QuantParams& quant() const { return quant_; }
  // Create() without the bad_alloc guard.
  static Status CreateImpl(const ConvGeometry&, const int8_t*, const int32_t*,
                           const Int8QuantParams&, Variant, std::unique_ptr<PackedConvInt8>*);
  Variant variant() const { return variant_; }
  // An int8 -> int8 map every output of Conv2DInt8 goes through (y = table[uint8(conv(x))]; a SiLU,
  // HARD_SWISH or LEAKY_RELU tabulated by the fuse pass), 256 entries; null: none (the default).
  // AVX-512 VNNI looks it up in its epilogue where the CPU has VBMI (output_table_in_epilogue());
  // elsewhere each sweep task applies it to the outputs it has just written (the scalar reference: one
  // pass after the conv). Same bits either way. Not
  // while a conv runs on this object.
  void SetOutputTable(const int8_t* table);
  bool has_output_table() const { return has_output_table_; }
  bool output_table_in_epilogue() const;

  // Implementation data (read by the variant kernels).
  bool has_output_table_ = false;
  alignas(64) int8_t output_table_[256] = {};
  std::shared_ptr<const Int8PostOps> output_table_pass_;  // the pass where the epilogue cannot
  ConvGeometry geometry_;
  Int8QuantParams quant_;
  Variant variant_ = Variant::kScalar;
  std::vector<int8_t> weights_;   // original OHWI weights (scalar reference)
  std::vector<int32_t> bias_;     // original bias
  std::vector<int32_t> left_shift_, right_shift_;  // derived from output_shift
  std::vector<uint8_t> packed_storage_;  // variant-specific packing, 64-byte aligned at packed()
  size_t packed_offset_ = 0;
  int nr_ = 0;                    // output-channel block of the packing
  int k_padded_ = 0;              // in_channels padded for the packing
  // 1x1 convs the variant runs straight from the int8 input slice (no staging copy). AVX-512
  // VNNI: the packing holds uint8 w + 128 and the kernel subtracts 128 * sum(x) per pixel; NEON
  // sdot / smmla multiply signed by signed and need no correction.
  bool direct_1x1_ = false;
  // AVX-512 VNNI direct 1x1 with one or two blocks of outputs (out_channels <= 32): the
  // activations' sign bit flipped in registers (x ^ 0x80 = uint8 x + 128: one vpxord per
  // broadcast, shared by the tile's 1-2 blocks) against signed weights with (zp + 128) * sum(w) in
  // the bias, instead of w + 128 and 128 * sum(x) taken off per pixel (Zen 4: 1x1 16->16 at 80x80
  // 31.7 -> 22.4 us, 32->32 54 -> 47 us; with 4 blocks the 6 x 64 tile ran out of registers, 2x slower).
  bool direct_1x1_xor_ = false;
  // AVX-512 VNNI convs with up to 48 output channels and more than 8 elements per tap (e.g. the
  // dense layers' 3x3 growth convs, 128 -> 32): packed in 8-byte groups ([tap][k/8][16][8], a
  // block's even channels in the first 64 bytes), so a zmm of weights holds 8 channels x two
  // dot-product steps and one 8-byte broadcast of a pixel feeds two vpdpbusd per block (24
  // accumulators: 12 x 16, 6 x 32, 4 x 48 tiles). The 4-byte packing's 8 x 32 tile needs a
  // broadcast per two vpdpbusd, and on an Intel Xeon its loads, not vpdpbusd, set its rate.
  bool k_pairs_ = false;
  // KxK convs with 1-3 input channels (stems) on AVX-512 VNNI and AVX2: a tap is a whole kernel
  // row, the kernel_w * in_channels consecutive elements of a staged input row (3-channel pixels
  // are staged unpadded), so k_padded_ = RoundUp(kernel_w * in_channels, 4): 24 instead of 7 x 4
  // for a 7x7 RGB stem (AVX2's int16 pairs: RoundUp(.., 2), 22 instead of 7 x 4).
  bool row_taps_ = false;
  // The amx variant's stride-2 KxK convs: the padded input staged as its four (row, column)
  // parity planes, so that a run of output pixels reads a run of plane pixels (without the planes
  // every other staged pixel, or a tile per output row, was computed and dropped); K runs per kernel
  // row: the even columns' taps, then the odd ones', each padded to 64 bytes.
  bool amx_phases_ = false;
  // fp32 requantization: whether float(acc + bias) * scale can reach 2^30 for some input, so the
  // kernels must clamp before converting to int32 (out of range, vcvtps2dq gives INT_MIN). When
  // it cannot, the int8 clamp after the saturating packs gives the same bits one op cheaper.
  bool fp32_clamp_before_convert_ = true;
  // AVX2 and plain NEON 3x3 stride-1 convs also packed for Winograd F(2x2, 3x3) in exact integers
  // (2.25x fewer vpmaddwd / smlal; winograd_sweep.h), where every output channel's weights keep 4 x its sum
  // inside int32: run so on images of winograd_min_pixels_ output pixels or more, where a weight
  // meets enough tiles (smaller images, e.g. 7x7, on the direct packing, whose int8 weights are
  // 3.6x fewer bytes from L3). Same bits either way. KERAS_CSP_WINOGRAD=0 when the conv is packed:
  // none; =force: on every image (tests).
  bool winograd_ = false;
  int winograd_min_pixels_ = 0;
  std::vector<uint8_t> winograd_storage_;
  size_t winograd_offset_ = 0;
  const void* winograd_packed() const { return winograd_storage_.data() + winograd_offset_; }
  // Whether a call on images of `out_pixels` output pixels (per batch image) runs Winograd.
  bool RunsWinograd(int64_t out_pixels) const { return winograd_ && out_pixels >= winograd_min_pixels_; }
  const void* packed() const { return packed_storage_.data() + packed_offset_; }
  void* packed() { return packed_storage_.data() + packed_offset_; }
};

class PackedConvF32 {
 public:
  // weights: OHWI float32; bias: out_channels float32 or null.
  static Status Create(const ConvGeometry& geometry, const float* weights, const float* bias,
                       float act_min, float act_max, Variant variant,
                       std::unique_ptr<PackedConvF32>* out);
  const ConvGeometry& geometry() const { return geometry_; }
  Variant variant() const { return variant_; }
  static Status CreateImpl(const ConvGeometry&, const float*, const float*, float, float, Variant,
                           std::unique_ptr<PackedConvF32>*);

  ConvGeometry geometry_;
  float act_min_ = -3.4e38f, act_max_ = 3.4e38f;
  Variant variant_ = Variant::kScalar;
  std::vector<float> weights_, bias_;
  std::vector<uint8_t> packed_storage_;
  size_t packed_offset_ = 0;
  int nr_ = 0;
  const float* packed() const {
    return reinterpret_cast<const float*>(packed_storage_.data() + packed_offset_);
  }
  float* packed() { return reinterpret_cast<float*>(packed_storage_.data() + packed_offset_); }
};

// ---- Generic strided conv: reads `input` through in_layout, writes `output` through out_layout.
// in_layout.channels == in_channels, out_layout.channels == out_channels, out spatial dims must
// equal ComputeOutputShape(). Only the out_layout channel slice is written. Input and output may
// share a buffer if the channel slices are disjoint (same strides required).
// pool: run on these threads (null: the calling thread). Results are the same at every count.
Status Conv2DInt8(const PackedConvInt8& packed, const int8_t* input, const TensorLayout& in_layout,
                  int8_t* output, const TensorLayout& out_layout, ThreadPool* pool = nullptr);
Status Conv2DF32(const PackedConvF32& packed, const float* input, const TensorLayout& in_layout,
                 float* output, const TensorLayout& out_layout, ThreadPool* pool = nullptr);

// Element-wise ops (elementwise.h) after a conv: y = ops(y, r) over every output y (after the output
// table), r the residual read through residual_layout (the output's batch and spatial size,
// out_channels channels; unused without an ADD). The residual may share a buffer with the input, and
// with the output in a disjoint channel slice of the same strides.
struct ConvOutputOps {
  const Int8PostOps* ops = nullptr;  // null: none
  const int8_t* residual = nullptr;
  TensorLayout residual_layout;
};
// Conv2DInt8, then `post`. The SIMD variants apply it inside the conv's tasks, each to the outputs it
// has just written (still in cache): no pass over the output and no barrier of its own (a residual
// ADD after every YOLO bottleneck). The same bits as Conv2DInt8 followed by ApplyInt8PostOps.
Status Conv2DInt8(const PackedConvInt8& packed, const int8_t* input, const TensorLayout& in_layout,
                  int8_t* output, const TensorLayout& out_layout, const ConvOutputOps& post,
                  ThreadPool* pool = nullptr);

// ---- Two int8 convs in a row, second(first(input)), with the same results as two Conv2DInt8
// calls. Where Conv2DInt8ChainSupported, the first conv's epilogue writes the second's padded
// staging into `staged` (caller-owned scratch, resized here): AVX-512 VNNI and AVX-VNNI uint8 x + 128
// (border zero point + 128), AVX2 and plain NEON int16 x - zero point (border 0), NEON dotprod / i8mm /
// SME the int8 values themselves (border the zero point). So the second, a KxK conv, stages nothing:
// a dense layer's 1x1 bottleneck into its 3x3 growth conv. Elsewhere (scalar) it runs the two convs
// through `staged` as an int8 intermediate.
// first's output zero point must equal second's input zero point (the tensor between them), and
// first has no output table (else the two convs run one after the other).
bool Conv2DInt8ChainSupported(const PackedConvInt8& first, const PackedConvInt8& second);
Status Conv2DInt8Chain(const PackedConvInt8& first, const PackedConvInt8& second, const int8_t* input,
                       const TensorLayout& in_layout, std::vector<uint8_t>* staged, int8_t* output,
                       const TensorLayout& out_layout, ThreadPool* pool = nullptr);

// ---- (a) CSP partial conv.
// x: dense NHWC [batch, h, w, channels]; the conv consumes x[..., c_skip:] (so
// in_channels == channels - c_skip) and must preserve h, w (stride 1, SAME, or 1x1).
// out: dense NHWC [batch, h, w, c_skip + out_channels]:
//   kSkipFirst: out = concat(x[..., :c_skip], conv(x[..., c_skip:]))
//   kSkipLast:  out = concat(conv(x[..., c_skip:]), x[..., :c_skip])   ("fusion last" layout)
// The skip part is copied bytewise (TFLite int8 CONCATENATION requires equal scales).
enum class ConcatOrder { kSkipFirst = 0, kSkipLast = 1 };
Status CspPartialConvInt8(const PackedConvInt8& packed, const int8_t* x, int batch, int height,
                          int width, int channels, int c_skip, int8_t* out, int64_t out_elements,
                          ConcatOrder order = ConcatOrder::kSkipFirst, ThreadPool* pool = nullptr);
Status CspPartialConvF32(const PackedConvF32& packed, const float* x, int batch, int height,
                         int width, int channels, int c_skip, float* out, int64_t out_elements,
                         ConcatOrder order = ConcatOrder::kSkipFirst, ThreadPool* pool = nullptr);

// Copies channels [src_off, src_off + channels) of `pixels` NHWC pixels (src_stride elements
// apart) to channels [dst_off, ...) of dst (dst_stride apart): a CSP skip part into its slice of
// the concat. Memory-bound, so split over `pool` by pixel ranges of at least ~16 KiB (smaller
// copies run on the calling thread). No validation: the callers check the layouts.
template <typename T>
void CopyChannels(T* dst, int64_t dst_stride, int dst_off, const T* src, int64_t src_stride, int src_off,
                  int channels, int64_t pixels, ThreadPool* pool);

// ---- (b) Dense-block layer append, in place.
// block: dense NHWC [batch, h, w, block_channels]. The conv reads channels
// [in_offset, in_offset + in_channels) and writes channels [out_offset, out_offset + out_channels)
// of the same buffer; the ranges must not overlap. Spatial size must be preserved.
Status DenseAppendInt8(const PackedConvInt8& packed, int8_t* block, int batch, int height, int width,
                       int block_channels, int in_offset, int out_offset, ThreadPool* pool = nullptr);
Status DenseAppendF32(const PackedConvF32& packed, float* block, int batch, int height, int width,
                      int block_channels, int in_offset, int out_offset, ThreadPool* pool = nullptr);

// ---- Depthwise conv: TFLite's DEPTHWISE_CONV_2D for int8 (reference_integer_ops::
// DepthwiseConvPerChannel): output channel c * depth_multiplier + j reads input channel c only.
// geometry.out_channels == geometry.in_channels * depth_multiplier. Same quantization, roundings,
// layouts (read a slice in place, write into a slice of a concat buffer) and threading as the convs.
class PackedDepthwiseInt8 {
 public:
  // weights: [1][kernel_h][kernel_w][out_channels] int8 (TFLite's layout, symmetric per channel);
  // bias: out_channels int32 or null. The SIMD variants cover multipliers 1 and 2; other
  // multipliers, and kScalar, run the scalar reference. kAvx512Vnni has its own kernel (vpdpbusd
  // summing four taps per channel), kAvxVnni runs the AVX2 one, kNeonI8mm and kSme the NEON
  // dotprod one (sdot over taps); variant() reports the kernel that runs.
  static Status Create(const ConvGeometry& geometry, int depth_multiplier, const int8_t* weights,
                       const int32_t* bias, const Int8QuantParams& quant, Variant variant,
                       std::unique_ptr<PackedDepthwiseInt8>* out);
  static Status CreateImpl(const ConvGeometry&, int, const int8_t*, const int32_t*, const Int8QuantParams&,
                           Variant, std::unique_ptr<PackedDepthwiseInt8>*);
  const ConvGeometry& geometry() const { return geometry_; }
  int depth_multiplier() const { return multiplier_; }
  Variant variant() const { return variant_; }

  ConvGeometry geometry_;
  int multiplier_ = 1;
  Int8QuantParams quant_;
  Variant variant_ = Variant::kScalar;
  std::vector<int8_t> weights_;   // [kernel_h * kernel_w][out_channels]
  std::vector<int32_t> bias_;
  std::vector<int32_t> left_shift_, right_shift_;
  std::vector<uint8_t> packed_storage_;
  size_t packed_offset_ = 0;
  const void* packed() const { return packed_storage_.data() + packed_offset_; }
  void* packed() { return packed_storage_.data() + packed_offset_; }
};

Status DepthwiseConv2DInt8(const PackedDepthwiseInt8& packed, const int8_t* input, const TensorLayout& in_layout,
                           int8_t* output, const TensorLayout& out_layout, ThreadPool* pool = nullptr);

// A band of output rows on the calling thread: rows [out_row, out_row + out_layout.height) of the
// depthwise conv of an image `image_height` rows tall (batch 1), of which `input` holds only rows
// [first_row, first_row + in_layout.height): every in-image row those outputs read, and no row past
// the image (taps outside the band are the image's padding). Same bits as the whole conv's rows. An
// inverted residual runs its expand conv, this and its project conv band by band, so the expanded
// rows stay in cache between them.
Status DepthwiseConv2DInt8Rows(const PackedDepthwiseInt8& packed, const int8_t* input, const TensorLayout& in_layout,
                               int first_row, int image_height, int8_t* output, const TensorLayout& out_layout,
                               int out_row);

// ---- Grouped conv: TFLite's CONV_2D whose weights have in_channels / groups input channels
// (ResNeXt's 3x3: 32 groups of 4 or 8). Output channel o reads input channels [gi * cin_g,
// (gi + 1) * cin_g), gi = o / cout_g (cin_g = in_channels / groups, cout_g = out_channels / groups).
// XNNPACK runs such convs as per-group GEMMs whose tiles pad each group to 8 inputs per tap and 16
// outputs (ResNeXt-50's 32 groups of 4 at 56x56: 19 GMAC/s on a Zen 4 core). Same quantization,
// roundings, slice layouts and threads as the convs; the same bytes as the dense conv with
// block-diagonal weights.
class PackedGroupedConvInt8 {
 public:
  // weights: OHWI [out_channels][kernel_h][kernel_w][in_channels / groups] int8; bias: out_channels
  // int32 or null. For cin_g == cout_g in {4, 8} every SIMD variant but kNeon has a kernel (each
  // group's inputs broadcast to its outputs' lanes: vpdpbusd on AVX-512 VNNI / AVX-VNNI, vpmaddwd
  // on AVX2, by-element sdot on the dotprod / i8mm / SME variants); other variants and group shapes
  // run one of the variant's convs per group on the channel slices (per_group(), as XNNPACK does),
  // kScalar the scalar reference.
  static Status Create(const ConvGeometry& geometry, int groups, const int8_t* weights, const int32_t* bias,
                       const Int8QuantParams& quant, Variant variant, std::unique_ptr<PackedGroupedConvInt8>* out);
  static Status CreateImpl(const ConvGeometry&, int, const int8_t*, const int32_t*, const Int8QuantParams&, Variant,
                           std::unique_ptr<PackedGroupedConvInt8>*);
  const ConvGeometry& geometry() const { return geometry_; }
  int groups() const { return groups_; }
  Variant variant() const { return variant_; }
  bool per_group() const { return !per_group_.empty(); }
  // Whether `variant` has a grouped kernel for these groups (else per-group convs run).
  static bool HasKernel(const ConvGeometry& geometry, int groups, Variant variant);

  ConvGeometry geometry_;
  int groups_ = 1;
  Int8QuantParams quant_;
  Variant variant_ = Variant::kScalar;
  std::vector<int8_t> weights_;  // OHWI [out_channels][kernel_h * kernel_w][in_channels / groups]
  std::vector<int32_t> bias_;
  std::vector<int32_t> left_shift_, right_shift_;
  std::vector<uint8_t> packed_storage_;
  size_t packed_offset_ = 0;
  std::vector<std::unique_ptr<PackedConvInt8>> per_group_;  // one conv per group, or empty
  const void* packed() const { return packed_storage_.data() + packed_offset_; }
  void* packed() { return packed_storage_.data() + packed_offset_; }
};

Status GroupedConv2DInt8(const PackedGroupedConvInt8& packed, const int8_t* input, const TensorLayout& in_layout,
                         int8_t* output, const TensorLayout& out_layout, ThreadPool* pool = nullptr);

}  // namespace keras_csp
