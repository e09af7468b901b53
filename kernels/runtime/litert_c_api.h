// Our own minimal declarations of the LiteRT C API exported by the ai-edge-litert wheel's
// libLiteRt.so (ELF symbol version VERS_1.0). No LiteRT headers ship with the wheel, so we
// declare only what the runner uses, written from the public API documentation of the
// tested release range (see kTestedLiteRtMin / kTestedLiteRtMaxExcl in litert_lib.h), and pin
// every struct layout the runner passes across the ABI with static_asserts.
//
// Functions are never called directly: litert_lib.cc resolves each symbol with dlsym from a
// library loaded by path, so nothing here needs to link against libLiteRt.so.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// ---- status codes (subset; the numeric values are part of the ABI) ----
typedef int LiteRtStatus;
enum : int {
  kLiteRtStatusOk = 0,
  kLiteRtStatusErrorInvalidArgument = 1,
  kLiteRtStatusErrorMemoryAllocationFailure = 2,
  kLiteRtStatusErrorRuntimeFailure = 3,
  kLiteRtStatusErrorMissingInputTensor = 4,
  kLiteRtStatusErrorUnsupported = 5,
  kLiteRtStatusErrorNotFound = 6,
  kLiteRtStatusErrorTimeoutExpired = 7,
  kLiteRtStatusErrorWrongVersion = 8,
  kLiteRtStatusErrorUnknown = 9,
  kLiteRtStatusErrorAlreadyExists = 10,
  kLiteRtStatusCancelled = 100,
  kLiteRtStatusErrorFileIO = 500,
  kLiteRtStatusErrorInvalidFlatbuffer = 501,
  kLiteRtStatusErrorDynamicLoading = 502,
  kLiteRtStatusErrorSerialization = 503,
  kLiteRtStatusErrorCompilation = 504,
  kLiteRtStatusErrorIndexOOB = 1000,
  kLiteRtStatusErrorInvalidIrType = 1001,
  kLiteRtStatusErrorInvalidGraphInvariant = 1002,
  kLiteRtStatusErrorGraphModification = 1003,
  kLiteRtStatusErrorUnsupportedRuntimeVersion = 4000,
};

// ---- opaque handles ----
typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtSignatureT* LiteRtSignature;
typedef struct LiteRtSubgraphT* LiteRtSubgraph;
typedef struct LiteRtTensorT* LiteRtTensor;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtProfilerT* LiteRtProfiler;
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;

enum : int { kLiteRtHwAcceleratorCpu = 1 << 0 };

// ---- element types (values mirror TfLiteType) ----
typedef int LiteRtElementType;  // C enum: int-sized
enum : int {
  kLiteRtElementTypeNone = 0,
  kLiteRtElementTypeFloat32 = 1,
  kLiteRtElementTypeInt32 = 2,
  kLiteRtElementTypeUInt8 = 3,
  kLiteRtElementTypeInt64 = 4,
  kLiteRtElementTypeBool = 6,
  kLiteRtElementTypeInt16 = 7,
  kLiteRtElementTypeInt8 = 9,
  kLiteRtElementTypeFloat16 = 10,
  kLiteRtElementTypeFloat64 = 11,
};

// ---- layouts and tensor types ----
#define KCSP_LITERT_TENSOR_MAX_RANK 8
typedef struct {
  unsigned int rank : 7;
  unsigned int has_strides : 1;
  int32_t dimensions[KCSP_LITERT_TENSOR_MAX_RANK];
  uint32_t strides[KCSP_LITERT_TENSOR_MAX_RANK];
} LiteRtLayout;

typedef struct {
  LiteRtElementType element_type;
  LiteRtLayout layout;
} LiteRtRankedTensorType;

typedef int LiteRtTensorTypeId;
enum : int { kLiteRtRankedTensorType = 0, kLiteRtUnrankedTensorType = 1 };

typedef int LiteRtQuantizationTypeId;
enum : int {
  kLiteRtQuantizationNone = 0,
  kLiteRtQuantizationPerTensor = 1,
  kLiteRtQuantizationPerChannel = 2,
  kLiteRtQuantizationBlockWise = 3,
};

typedef struct {
  float scale;
  int64_t zero_point;
} LiteRtQuantizationPerTensor;

typedef struct {
  int32_t quantized_dimension;
  uint64_t num_channels;
  float* scales;
  int64_t* zero_points;
} LiteRtQuantizationPerChannel;

// ---- tensor buffers ----
typedef int LiteRtTensorBufferType;
enum : int { kLiteRtTensorBufferTypeHostMemory = 1 };
typedef int LiteRtTensorBufferLockMode;
enum : int {
  kLiteRtTensorBufferLockModeRead = 0,
  kLiteRtTensorBufferLockModeWrite = 1,
  kLiteRtTensorBufferLockModeReadWrite = 2,
};

// ---- custom op kernels (LiteRtAddCustomOpKernelOption) ----
typedef struct {
  LiteRtStatus (*Init)(void* user_data, const void* init_data, size_t init_data_size);
  LiteRtStatus (*GetOutputLayouts)(void* user_data, size_t num_inputs,
                                   const LiteRtLayout* input_layouts, size_t num_outputs,
                                   LiteRtLayout* output_layouts);
  LiteRtStatus (*Run)(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs,
                      size_t num_outputs, LiteRtTensorBuffer* outputs);
  LiteRtStatus (*Destroy)(void* user_data);
} LiteRtCustomOpKernel;

// ---- profiler events ----
typedef int LiteRtProfilerEventType;
enum : int {
  kLiteRtProfilerEventDefault = 1,
  kLiteRtProfilerEventOperatorInvoke = 1 << 1,
  kLiteRtProfilerEventDelegateOperatorInvoke = 1 << 2,
  kLiteRtProfilerEventDelegateProfiledOperatorInvoke = 1 << 3,
};
typedef struct {
  size_t total_allocated_bytes;
  size_t in_use_allocated_bytes;
  size_t private_footprint_bytes;
} LiteRtMemoryUsage;
typedef int ProfiledEventSource;
typedef struct {
  const char* tag;
  LiteRtProfilerEventType event_type;
  uint64_t start_timestamp_us;
  uint64_t elapsed_time_us;
  LiteRtMemoryUsage begin_mem_usage;
  LiteRtMemoryUsage end_mem_usage;
  uint64_t event_metadata1;
  uint64_t event_metadata2;
  ProfiledEventSource event_source;
} ProfiledEventData;

// ---- environment options (we pass none, but the pointer type is in the signature) ----
typedef struct LiteRtEnvOptionOpaque LiteRtEnvOption;

}  // extern "C"

// ---- ABI layout pins (LP64: x86-64 Linux, aarch64 Linux/Android) ----
#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8
static_assert(sizeof(int) == 4, "LiteRT C enums are int-sized");
static_assert(sizeof(LiteRtLayout) == 68, "LiteRtLayout size");
static_assert(offsetof(LiteRtLayout, dimensions) == 4, "LiteRtLayout.dimensions offset");
static_assert(offsetof(LiteRtLayout, strides) == 36, "LiteRtLayout.strides offset");
static_assert(sizeof(LiteRtRankedTensorType) == 72, "LiteRtRankedTensorType size");
static_assert(offsetof(LiteRtRankedTensorType, layout) == 4, "LiteRtRankedTensorType.layout");
static_assert(sizeof(LiteRtQuantizationPerTensor) == 16, "LiteRtQuantizationPerTensor size");
static_assert(offsetof(LiteRtQuantizationPerTensor, zero_point) == 8, "per-tensor zero_point");
static_assert(sizeof(LiteRtQuantizationPerChannel) == 32, "LiteRtQuantizationPerChannel size");
static_assert(offsetof(LiteRtQuantizationPerChannel, num_channels) == 8, "num_channels");
static_assert(offsetof(LiteRtQuantizationPerChannel, scales) == 16, "scales");
static_assert(offsetof(LiteRtQuantizationPerChannel, zero_points) == 24, "zero_points");
static_assert(sizeof(LiteRtCustomOpKernel) == 4 * sizeof(void*), "LiteRtCustomOpKernel size");
static_assert(offsetof(LiteRtCustomOpKernel, Run) == 2 * sizeof(void*), "Run slot");
static_assert(sizeof(LiteRtMemoryUsage) == 24, "LiteRtMemoryUsage size");
static_assert(offsetof(ProfiledEventData, event_type) == 8, "ProfiledEventData.event_type");
static_assert(offsetof(ProfiledEventData, start_timestamp_us) == 16, "start_timestamp_us");
static_assert(offsetof(ProfiledEventData, elapsed_time_us) == 24, "elapsed_time_us");
static_assert(offsetof(ProfiledEventData, begin_mem_usage) == 32, "begin_mem_usage");
static_assert(offsetof(ProfiledEventData, event_metadata1) == 80, "event_metadata1");
static_assert(offsetof(ProfiledEventData, event_source) == 96, "event_source");
static_assert(sizeof(ProfiledEventData) == 104, "ProfiledEventData size");
#else
#error "keras-csp runtime: only LP64 targets (x86-64, aarch64) are supported"
#endif

// ---- function pointer types of every symbol the runner resolves ----
namespace keras_csp::runtime::capi {
using CreateEnvironment = LiteRtStatus (*)(int, const LiteRtEnvOption*, LiteRtEnvironment*);
using DestroyEnvironment = void (*)(LiteRtEnvironment);
using CreateModelFromFile = LiteRtStatus (*)(LiteRtEnvironment, const char*, LiteRtModel*);
using CreateModelFromBuffer = LiteRtStatus (*)(LiteRtEnvironment, const void*, size_t,
                                               LiteRtModel*);
using DestroyModel = void (*)(LiteRtModel);
using GetNumModelSignatures = LiteRtStatus (*)(LiteRtModel, LiteRtParamIndex*);
using GetModelSignature = LiteRtStatus (*)(LiteRtModel, LiteRtParamIndex, LiteRtSignature*);
using GetSignatureKey = LiteRtStatus (*)(LiteRtSignature, const char**);
using GetNumSignatureIO = LiteRtStatus (*)(LiteRtSignature, LiteRtParamIndex*);
using GetSignatureIOName = LiteRtStatus (*)(LiteRtSignature, LiteRtParamIndex, const char**);
using GetSignatureIOTensorByIndex = LiteRtStatus (*)(LiteRtSignature, LiteRtParamIndex,
                                                     LiteRtTensor*);
using GetTensorName = LiteRtStatus (*)(LiteRtTensor, const char**);
using GetTensorTypeId = LiteRtStatus (*)(LiteRtTensor, LiteRtTensorTypeId*);
using GetRankedTensorType = LiteRtStatus (*)(LiteRtTensor, LiteRtRankedTensorType*);
using GetQuantizationTypeId = LiteRtStatus (*)(LiteRtTensor, LiteRtQuantizationTypeId*);
using GetPerTensorQuantization = LiteRtStatus (*)(LiteRtTensor, LiteRtQuantizationPerTensor*);
using GetPerChannelQuantization = LiteRtStatus (*)(LiteRtTensor, LiteRtQuantizationPerChannel*);
using CreateOptions = LiteRtStatus (*)(LiteRtOptions*);
using DestroyOptions = void (*)(LiteRtOptions);
using SetOptionsHardwareAccelerators = LiteRtStatus (*)(LiteRtOptions, LiteRtHwAcceleratorSet);
using CreateOpaqueOptions = LiteRtStatus (*)(const char*, void*, void (*)(void*),
                                             LiteRtOpaqueOptions*);
using DestroyOpaqueOptions = void (*)(LiteRtOpaqueOptions);
using AddOpaqueOptions = LiteRtStatus (*)(LiteRtOptions, LiteRtOpaqueOptions);
using AddCustomOpKernelOption = LiteRtStatus (*)(LiteRtOptions, const char*, int,
                                                 const LiteRtCustomOpKernel*, void*);
using CreateCompiledModel = LiteRtStatus (*)(LiteRtEnvironment, LiteRtModel, LiteRtOptions,
                                             LiteRtCompiledModel*);
using DestroyCompiledModel = void (*)(LiteRtCompiledModel);
using RunCompiledModel = LiteRtStatus (*)(LiteRtCompiledModel, LiteRtParamIndex, size_t,
                                          LiteRtTensorBuffer*, size_t, LiteRtTensorBuffer*);
using GetCompiledModelOutputTensorLayouts = LiteRtStatus (*)(LiteRtCompiledModel,
                                                             LiteRtParamIndex, size_t,
                                                             LiteRtLayout*, bool);
using CompiledModelGetErrorMessages = LiteRtStatus (*)(LiteRtCompiledModel, char**);
using CompiledModelClearErrors = LiteRtStatus (*)(LiteRtCompiledModel);
using CompiledModelGetProfiler = LiteRtStatus (*)(LiteRtCompiledModel, LiteRtProfiler*);
using CreateManagedTensorBuffer = LiteRtStatus (*)(LiteRtEnvironment, LiteRtTensorBufferType,
                                                   const LiteRtRankedTensorType*, size_t,
                                                   LiteRtTensorBuffer*);
using DestroyTensorBuffer = void (*)(LiteRtTensorBuffer);
using LockTensorBuffer = LiteRtStatus (*)(LiteRtTensorBuffer, void**, LiteRtTensorBufferLockMode);
using UnlockTensorBuffer = LiteRtStatus (*)(LiteRtTensorBuffer);
using GetTensorBufferTensorType = LiteRtStatus (*)(LiteRtTensorBuffer, LiteRtRankedTensorType*);
using GetTensorBufferSize = LiteRtStatus (*)(LiteRtTensorBuffer, size_t*);
using GetTensorBufferHostMemory = LiteRtStatus (*)(LiteRtTensorBuffer, void**);
using ProfilerVoid = LiteRtStatus (*)(LiteRtProfiler);
using GetNumProfilerEvents = LiteRtStatus (*)(LiteRtProfiler, int*);
using GetProfilerEvents = LiteRtStatus (*)(LiteRtProfiler, int, ProfiledEventData*);
}  // namespace keras_csp::runtime::capi
