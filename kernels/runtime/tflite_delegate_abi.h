// Our own minimal declarations of the TensorFlow Lite delegate ABI (the structs of TFLite's
// common.h that a delegate touches), as used by the interpreters of ai-edge-litert 2.3 (Python
// `ai_edge_litert.interpreter.Interpreter`) and of the LiteRT 2.3 Maven artifact (Android
// `org.tensorflow.lite.Interpreter`). No wheel or AAR ships these headers, so they are written
// from the public API documentation and every layout the delegate reads or hands across is pinned
// with static_asserts below. Only a prefix of TfLiteContext is declared: the delegate never
// allocates one, it only reads the fields up to `recommended_num_threads`.
//
// The interpreter that loads the delegate is not ours, so a layout change in a later TFLite would
// make these reads wrong. The delegate therefore refuses any runtime version outside the tested
// range (kTestedLiteRtMajor / kTestedLiteRtMinor in litert_lib.h) unless told `allow_untested_version`.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

typedef int TfLiteStatus;  // C enum: int-sized
enum : int { kTfLiteOk = 0, kTfLiteError = 1, kTfLiteDelegateError = 2 };

// Element type codes are TFLite's (the same values as LiteRtElementType).
typedef int TfLiteType;

typedef struct TfLiteIntArray {
  int size;
  int data[];  // `size` entries
} TfLiteIntArray;

typedef struct TfLiteQuantizationParams {
  float scale;
  int32_t zero_point;
} TfLiteQuantizationParams;

typedef struct TfLiteQuantization {
  int type;  // TfLiteQuantizationType
  void* params;
} TfLiteQuantization;

struct TfLiteDelegate;

typedef struct TfLiteTensor {
  TfLiteType type;
  void* data;  // a union of typed pointers in TFLite; we only use it untyped
  TfLiteIntArray* dims;
  TfLiteQuantizationParams params;
  int allocation_type;  // TfLiteAllocationType
  size_t bytes;
  const void* allocation;
  const char* name;
  struct TfLiteDelegate* delegate;
  int buffer_handle;
  bool data_is_stale;
  bool is_variable;
  TfLiteQuantization quantization;
  void* sparsity;
  const TfLiteIntArray* dims_signature;
} TfLiteTensor;

typedef struct TfLiteNode {
  TfLiteIntArray* inputs;
  TfLiteIntArray* outputs;
  TfLiteIntArray* intermediates;
  TfLiteIntArray* temporaries;
  void* user_data;
  void* builtin_data;
  const void* custom_initial_data;
  int custom_initial_data_size;
  struct TfLiteDelegate* delegate;
  bool might_have_side_effect;
} TfLiteNode;

struct TfLiteContext;

typedef struct TfLiteRegistration {
  void* (*init)(struct TfLiteContext* context, const char* buffer, size_t length);
  void (*free)(struct TfLiteContext* context, void* buffer);
  TfLiteStatus (*prepare)(struct TfLiteContext* context, TfLiteNode* node);
  TfLiteStatus (*invoke)(struct TfLiteContext* context, TfLiteNode* node);
  const char* (*profiling_string)(const struct TfLiteContext* context, const TfLiteNode* node);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;  // TfLiteOperator*
  void* (*async_kernel)(struct TfLiteContext* context, TfLiteNode* node);
  uint64_t inplace_operator;
} TfLiteRegistration;

// The node's builtin_data of a delegate kernel (passed to its init as `buffer`).
typedef struct TfLiteDelegateParams {
  struct TfLiteDelegate* delegate;
  TfLiteIntArray* nodes_to_replace;
  TfLiteIntArray* input_tensors;
  TfLiteIntArray* output_tensors;
} TfLiteDelegateParams;

// Prefix of TFLite's TfLiteContext: the runtime owns the struct; we only read these fields.
typedef struct TfLiteContext {
  size_t tensors_size;
  TfLiteStatus (*GetExecutionPlan)(struct TfLiteContext* context, TfLiteIntArray** execution_plan);
  TfLiteTensor* tensors;
  void* impl_;
  // Takes ownership of new_size (freed with free(): allocate it with malloc).
  TfLiteStatus (*ResizeTensor)(struct TfLiteContext*, TfLiteTensor* tensor, TfLiteIntArray* new_size);
  void (*ReportError)(struct TfLiteContext*, const char* msg, ...);
  TfLiteStatus (*AddTensors)(struct TfLiteContext*, int tensors_to_add, int* first_new_tensor_index);
  TfLiteStatus (*GetNodeAndRegistration)(struct TfLiteContext*, int node_index, TfLiteNode** node,
                                         TfLiteRegistration** registration);
  TfLiteStatus (*ReplaceNodeSubsetsWithDelegateKernels)(struct TfLiteContext*,
                                                        TfLiteRegistration registration,
                                                        const TfLiteIntArray* nodes_to_replace,
                                                        struct TfLiteDelegate* delegate);
  int recommended_num_threads;
} TfLiteContext;

typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext* context, struct TfLiteDelegate* delegate);
  TfLiteStatus (*CopyFromBufferHandle)(TfLiteContext*, struct TfLiteDelegate*, int, TfLiteTensor*);
  TfLiteStatus (*CopyToBufferHandle)(TfLiteContext*, struct TfLiteDelegate*, int, TfLiteTensor*);
  void (*FreeBufferHandle)(TfLiteContext*, struct TfLiteDelegate*, int*);
  int64_t flags;
  void* opaque_delegate_builder;  // must stay null: we use the classic Prepare
} TfLiteDelegate;

// The external-delegate plugin entry points that TFLite's `load_delegate` (Python) and
// external delegate loaders look up with dlsym.
typedef void (*TfLitePluginErrorHandler)(const char* message);

}  // extern "C"

// builtin_code of CUSTOM nodes (BuiltinOperator_CUSTOM in the schema).
constexpr int32_t kTfLiteBuiltinCustom = 32;

// ---- ABI layout pins (LP64: x86-64 Linux, aarch64 Linux/Android) ----
#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8
static_assert(sizeof(TfLiteIntArray) == 4, "TfLiteIntArray header");
static_assert(sizeof(TfLiteQuantizationParams) == 8, "TfLiteQuantizationParams size");
static_assert(sizeof(TfLiteQuantization) == 16, "TfLiteQuantization size");
static_assert(offsetof(TfLiteTensor, data) == 8, "TfLiteTensor.data");
static_assert(offsetof(TfLiteTensor, dims) == 16, "TfLiteTensor.dims");
static_assert(offsetof(TfLiteTensor, params) == 24, "TfLiteTensor.params");
static_assert(offsetof(TfLiteTensor, allocation_type) == 32, "TfLiteTensor.allocation_type");
static_assert(offsetof(TfLiteTensor, bytes) == 40, "TfLiteTensor.bytes");
static_assert(offsetof(TfLiteTensor, name) == 56, "TfLiteTensor.name");
static_assert(offsetof(TfLiteTensor, buffer_handle) == 72, "TfLiteTensor.buffer_handle");
static_assert(offsetof(TfLiteTensor, quantization) == 80, "TfLiteTensor.quantization");
static_assert(offsetof(TfLiteTensor, dims_signature) == 104, "TfLiteTensor.dims_signature");
static_assert(sizeof(TfLiteTensor) == 112, "TfLiteTensor size (context->tensors is an array)");
static_assert(offsetof(TfLiteNode, user_data) == 32, "TfLiteNode.user_data");
static_assert(offsetof(TfLiteNode, builtin_data) == 40, "TfLiteNode.builtin_data");
static_assert(offsetof(TfLiteNode, custom_initial_data) == 48, "TfLiteNode.custom_initial_data");
static_assert(offsetof(TfLiteNode, custom_initial_data_size) == 56, "custom_initial_data_size");
static_assert(offsetof(TfLiteNode, delegate) == 64, "TfLiteNode.delegate");
static_assert(sizeof(TfLiteNode) == 80, "TfLiteNode size");
static_assert(offsetof(TfLiteRegistration, builtin_code) == 40, "TfLiteRegistration.builtin_code");
static_assert(offsetof(TfLiteRegistration, custom_name) == 48, "TfLiteRegistration.custom_name");
static_assert(offsetof(TfLiteRegistration, version) == 56, "TfLiteRegistration.version");
static_assert(offsetof(TfLiteRegistration, inplace_operator) == 80, "inplace_operator");
static_assert(sizeof(TfLiteRegistration) == 88, "TfLiteRegistration size (passed by value)");
static_assert(sizeof(TfLiteDelegateParams) == 32, "TfLiteDelegateParams size");
static_assert(offsetof(TfLiteContext, tensors) == 16, "TfLiteContext.tensors");
static_assert(offsetof(TfLiteContext, ResizeTensor) == 32, "TfLiteContext.ResizeTensor");
static_assert(offsetof(TfLiteContext, ReportError) == 40, "TfLiteContext.ReportError");
static_assert(offsetof(TfLiteContext, GetNodeAndRegistration) == 56, "GetNodeAndRegistration");
static_assert(offsetof(TfLiteContext, ReplaceNodeSubsetsWithDelegateKernels) == 64,
              "ReplaceNodeSubsetsWithDelegateKernels");
static_assert(offsetof(TfLiteContext, recommended_num_threads) == 72, "recommended_num_threads");
static_assert(offsetof(TfLiteDelegate, flags) == 40, "TfLiteDelegate.flags");
static_assert(offsetof(TfLiteDelegate, opaque_delegate_builder) == 48, "opaque_delegate_builder");
static_assert(sizeof(TfLiteDelegate) == 56, "TfLiteDelegate size");
#else
#error "keras-csp delegate: only LP64 targets (x86-64, aarch64) are supported"
#endif
