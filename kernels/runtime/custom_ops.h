// keras-csp custom ops for LiteRT (registered with LiteRtAddCustomOpKernelOption):
//
//   CspPartialConv  out = concat(skip_src[..., s0:s0+c_skip], conv(conv_src[..., c0:c0+cin]))
//                   (or the conv part first), computed by the keras_csp fused kernels: the conv
//                   reads its channel slice in place and writes straight into its place in `out`.
//                   inputs: skip_src, conv_src (may be the same tensor), weights OHWI int8,
//                           bias int32, node key.   outputs: out.
//                   With the `skip_dw` option map the skip part is depthwise(skip_src slice),
//                   computed straight into its place (CSPMobileNet-v2 stage heads); its weights
//                   [1,kh,kw,c_skip] int8 and bias int32 come before the node key.
//   KcspDepthwiseConv2D  TFLite's DEPTHWISE_CONV_2D (options: the conv fields + depth_multiplier)
//                   on our kernels, where the stock ones are weak (multiplier > 1).
//                   inputs: x, weights [1,kh,kw,cout] int8, bias int32, node key.
//   KcspConv2D      one CONV_2D alone: a stem conv (at most 4 input channels), where the stock
//                   kernels pad every tap's channels to 8 (options: the conv fields, no post op).
//                   inputs: x, weights [cout,kh,kw,cin] int8, bias int32, node key. With a
//                   `groups` option a grouped conv on the grouped kernels (weights
//                   [cout,kh,kw,cin/groups]); `builtin_rounding: "away"` marks a conv that TFLite's
//                   builtin kernels run on their reference path (grouped convs: ties away from zero).
//   KcspInvertedResidual  [expand 1x1 conv ->] depthwise conv -> project 1x1 conv [+ ADD of x]
//                   (MobileNet-v2's block) in one op, band by band of output rows.
//                   inputs: x, [expand weights, bias], depthwise weights, bias, project weights,
//                           bias, node key.
//   KcspAvgPool2D   TFLite's int8 AVERAGE_POOL_2D (options: filter_h/w, stride_h/w, padding,
//                   act_min/act_max, channels). inputs: x, node key.
//   CspDenseBlock   a chain of dense layers x_{i+1} = concat(x_i, f_i(x_i)), f_i a chain of
//                   convs, computed in one preallocated block buffer (no concat copies).
//                   inputs: x (x0 = x[..., in_offset:in_offset+in_channels]), (weights, bias)
//                           per conv in order, node key.  outputs: x_n.
//
// Options (flexbuffer map, "version": 1): per conv kernel_h/w, stride_h/w, padding (0 VALID,
// 1 SAME), in/out_channels, input/output_zero_point, per-channel `multipliers` + `shifts`
// (TFLite fixed point), `requant_scales` (XNNPACK's fp32 scales), act_min/act_max (quantized
// clamp); a fused LEAKY_RELU adds post_* fields (TFLite's multipliers and XNNPACK's).
//
// Numerics. A fused op replaces builtin ops, so it must round exactly like the kernels that
// would have run them, and those differ: XNNPACK (LiteRT's default CPU path) requantizes convs
// in float32 and uses its own LEAKY_RELU; TFLite's optimized builtin convs round ties up;
// TFLite's reference kernels round ties away from zero. The options carry the parameters of
// all three, and the runner picks the matching Numerics for its CPU kernel mode.
//   KcspTestAffine  float32 y = x * scale + offset (tests the registration path end to end).
//                   inputs: x, node key.  outputs: y.
//
// Node identity. LiteRT 2.3 hands every node of one custom op the same user_data, and its
// GetOutputLayouts/Run callbacks carry no node handle. Each fused op therefore gets a unique
// `node` id in its custom options and, as its LAST input, a constant int8 "key" tensor of shape
// [node + 1]: GetOutputLayouts sees the key's layout and Run sees the key buffer's tensor type,
// so both find the node's state without reading any data.
//
// Errors. LiteRT 2.3 ignores the statuses returned by Init/GetOutputLayouts/Run, so every
// failure is also recorded in an ErrorSink that the runner checks after compiling / running.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "keras_csp/threadpool.h"
#include "litert_c_api.h"
#include "litert_lib.h"

namespace keras_csp::runtime {

enum class Numerics { kXnnpack = 0, kTfliteBuiltin = 1, kTfliteReference = 2 };
const char* NumericsName(Numerics n);
// "xnnpack", "builtin", "reference"; "auto"/"" resolve from the CPU kernel mode: "" or
// "delegate" -> xnnpack; "builtin" and "reference" -> builtin (LiteRT's reference mode keeps the
// optimized CONV_2D). "reference" numerics match the interpreter's BUILTIN_REF op resolver.
// Returns false on unknown names.
bool ResolveNumerics(const std::string& name, const std::string& cpu_kernel_mode, Numerics* out);

class ErrorSink {
 public:
  void Add(const std::string& msg) {
    std::lock_guard<std::mutex> l(mu_);
    errors_.push_back(msg);
  }
  std::vector<std::string> Take() {
    std::lock_guard<std::mutex> l(mu_);
    auto out = std::move(errors_);
    errors_.clear();
    return out;
  }
  bool empty() {
    std::lock_guard<std::mutex> l(mu_);
    return errors_.empty();
  }

 private:
  std::mutex mu_;
  std::vector<std::string> errors_;
};

// One node's kernel state; implemented per op in custom_ops.cc.
class NodeKernel {
 public:
  virtual ~NodeKernel() = default;
  // Output layouts from input layouts; returns "" or an error message.
  virtual std::string OutputLayouts(size_t num_inputs, const LiteRtLayout* in, size_t num_outputs,
                                    LiteRtLayout* out) = 0;
  // Runs on host memory, on `pool`'s threads (null: the calling thread); returns "" or an error.
  virtual std::string Run(const std::vector<void*>& in, const std::vector<size_t>& in_bytes,
                          const std::vector<LiteRtRankedTensorType>& in_types,
                          const std::vector<void*>& out, const std::vector<size_t>& out_bytes,
                          keras_csp::ThreadPool* pool) = 0;
  virtual std::string Describe() const { return ""; }
};

struct CustomOpStat {
  std::string op;
  int node = -1;
  std::string detail;
  uint64_t calls = 0;
  double total_ms = 0.0;
};

// All nodes of one custom op name within one compiled model (the user_data of its kernel).
class CustomOpRegistration {
 public:
  // pool: the model's threads for the fused ops (owned by the runner; may be null).
  CustomOpRegistration(std::string name, std::shared_ptr<const LiteRtLib> lib, ErrorSink* errors,
                       Numerics numerics = Numerics::kXnnpack, keras_csp::ThreadPool* pool = nullptr);
  const std::string& name() const { return name_; }
  const LiteRtCustomOpKernel* kernel() const { return &kernel_; }
  std::vector<CustomOpStat> Stats();
  void ResetStats();

 private:
  static LiteRtStatus InitCb(void* user_data, const void* data, size_t size);
  static LiteRtStatus LayoutsCb(void* user_data, size_t num_inputs, const LiteRtLayout* in,
                                size_t num_outputs, LiteRtLayout* out);
  static LiteRtStatus RunCb(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs,
                            size_t num_outputs, LiteRtTensorBuffer* outputs);
  static LiteRtStatus DestroyCb(void* user_data);

  LiteRtStatus Fail(const std::string& msg);
  NodeKernel* FindNode(int node, std::string* err);

  std::string name_;
  std::shared_ptr<const LiteRtLib> lib_;
  ErrorSink* errors_;
  Numerics numerics_;
  keras_csp::ThreadPool* pool_ = nullptr;
  LiteRtCustomOpKernel kernel_{};
  std::mutex mu_;
  struct NodeEntry {
    std::unique_ptr<NodeKernel> kernel;
    CustomOpStat stat;
  };
  std::map<int, NodeEntry> nodes_;
};

// "[1,56,56,64]".
std::string LayoutStr(const LiteRtLayout& l);

// Names of the custom ops this runtime implements.
std::vector<std::string> CustomOpNames();

// Builds the NodeKernel for op `name` from its flexbuffer custom options. On error returns
// nullptr and sets *error. Exposed for tests (option validation without a model).
std::unique_ptr<NodeKernel> CreateNodeKernel(const std::string& name, const uint8_t* options,
                                             size_t size, int* node, std::string* error,
                                             Numerics numerics = Numerics::kXnnpack);

}  // namespace keras_csp::runtime
