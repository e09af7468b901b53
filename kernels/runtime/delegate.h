// keras-csp as a TFLite delegate: the second front door to the fused ops.
//
// A stock interpreter (Python `ai_edge_litert.interpreter.Interpreter`, Android
// `org.tensorflow.lite.Interpreter`) cannot resolve our CUSTOM ops. This delegate claims every
// `CspPartialConv` / `CspDenseBlock` / `CspBlock` / `KcspDepthwiseConv2D` / `KcspConv2D` / `KcspInvertedResidual` / `KcspAvgPool2D` / `KcspTestAffine`
// node and runs it with the same NodeKernel code as the runtime's custom ops
// (custom_ops.h: CreateNodeKernel + NodeKernel::Run). The rest of the graph stays with the
// interpreter's own kernels (XNNPACK or TFLite builtin).
//
// Numerics "auto" follows those kernels: when the delegate kernel is prepared (after the
// interpreter applied its default delegates), an XNNPACK delegate node in the execution plan
// means XNNPACK numerics, otherwise TFLite builtin numerics. The BUILTIN_REF resolver cannot be
// told apart from the builtin one: pass numerics "reference" there.
//
// Plugin options (strings, as `load_delegate(path, options)` passes them):
//   litert_version          version of the interpreter's runtime ("2.3.0"); required, checked
//                           against the tested range (the delegate reads the interpreter's structs)
//   allow_untested_version  "true" to run under another version anyway
//   numerics                auto | xnnpack | builtin | reference (default auto)
//   num_threads             threads of the fused ops; 0 or absent = the interpreter's num_threads
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tflite_delegate_abi.h"

namespace keras_csp::runtime {

struct DelegateOptions {
  std::string litert_version;
  bool allow_untested_version = false;
  std::string numerics = "auto";
  int num_threads = 0;  // 0: the interpreter's recommended_num_threads (1 if unset)
};

// Parses the plugin's string options. Returns "" or an error naming the bad option.
std::string ParseDelegateOptions(const std::vector<std::pair<std::string, std::string>>& kv,
                                 DelegateOptions* out);

// Creates a delegate (owned by the caller, freed with DestroyDelegate). nullptr + *error when the
// options or the runtime version are refused.
TfLiteDelegate* CreateDelegate(const DelegateOptions& options, std::string* error);
void DestroyDelegate(TfLiteDelegate* delegate);

// JSON: the options, the numerics in use, the claimed nodes with calls and total ms.
std::string DelegateReport(const TfLiteDelegate* delegate);

}  // namespace keras_csp::runtime

#define KCSP_EXPORT extern "C" __attribute__((visibility("default")))

// External-delegate plugin entry points (TFLite's `load_delegate` looks these up with dlsym).
// `n` is read as int: Python's load_delegate passes a ctypes c_int there, other loaders a size_t;
// the low 32 bits are the count either way.
KCSP_EXPORT TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, int n,
                                                         TfLitePluginErrorHandler report_error);
KCSP_EXPORT void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate);
// Copies DelegateReport(delegate) + NUL into buf (if capacity allows); returns its length + 1.
KCSP_EXPORT size_t keras_csp_delegate_report(const TfLiteDelegate* delegate, char* buf, size_t capacity);
