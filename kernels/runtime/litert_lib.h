// Loads libLiteRt.so by path with dlopen, checks its version against the tested range and
// resolves the C API symbols the runner needs. Plain C++17 + POSIX (no Python).
#pragma once

#include <memory>
#include <string>

#include "litert_c_api.h"

namespace keras_csp::runtime {

// Tested LiteRT releases: [2.3.0, 2.4.0). The 2.x C API changed signatures relative to 1.x
// (e.g. LiteRtCreateModelFromFile takes the environment), so other versions are refused.
constexpr int kTestedLiteRtMajor = 2;
constexpr int kTestedLiteRtMinor = 3;

struct LiteRtLib {
  void* handle = nullptr;
  std::string path;
  std::string version;  // "2.3.0"

  capi::CreateEnvironment CreateEnvironment = nullptr;
  capi::DestroyEnvironment DestroyEnvironment = nullptr;
  capi::CreateModelFromFile CreateModelFromFile = nullptr;
  capi::CreateModelFromBuffer CreateModelFromBuffer = nullptr;
  capi::DestroyModel DestroyModel = nullptr;
  capi::GetNumModelSignatures GetNumModelSignatures = nullptr;
  capi::GetModelSignature GetModelSignature = nullptr;
  capi::GetSignatureKey GetSignatureKey = nullptr;
  capi::GetNumSignatureIO GetNumSignatureInputs = nullptr;
  capi::GetNumSignatureIO GetNumSignatureOutputs = nullptr;
  capi::GetSignatureIOName GetSignatureInputName = nullptr;
  capi::GetSignatureIOName GetSignatureOutputName = nullptr;
  capi::GetSignatureIOTensorByIndex GetSignatureInputTensorByIndex = nullptr;
  capi::GetSignatureIOTensorByIndex GetSignatureOutputTensorByIndex = nullptr;
  capi::GetTensorName GetTensorName = nullptr;
  capi::GetTensorTypeId GetTensorTypeId = nullptr;
  capi::GetRankedTensorType GetRankedTensorType = nullptr;
  capi::GetQuantizationTypeId GetQuantizationTypeId = nullptr;
  capi::GetPerTensorQuantization GetPerTensorQuantization = nullptr;
  capi::GetPerChannelQuantization GetPerChannelQuantization = nullptr;
  capi::CreateOptions CreateOptions = nullptr;
  capi::DestroyOptions DestroyOptions = nullptr;
  capi::SetOptionsHardwareAccelerators SetOptionsHardwareAccelerators = nullptr;
  capi::CreateOpaqueOptions CreateOpaqueOptions = nullptr;
  capi::DestroyOpaqueOptions DestroyOpaqueOptions = nullptr;
  capi::AddOpaqueOptions AddOpaqueOptions = nullptr;
  capi::AddCustomOpKernelOption AddCustomOpKernelOption = nullptr;
  capi::CreateCompiledModel CreateCompiledModel = nullptr;
  capi::DestroyCompiledModel DestroyCompiledModel = nullptr;
  capi::RunCompiledModel RunCompiledModel = nullptr;
  capi::GetCompiledModelOutputTensorLayouts GetCompiledModelOutputTensorLayouts = nullptr;
  capi::CompiledModelGetErrorMessages CompiledModelGetErrorMessages = nullptr;
  capi::CompiledModelClearErrors CompiledModelClearErrors = nullptr;
  capi::CompiledModelGetProfiler CompiledModelGetProfiler = nullptr;
  capi::CreateManagedTensorBuffer CreateManagedTensorBuffer = nullptr;
  capi::DestroyTensorBuffer DestroyTensorBuffer = nullptr;
  capi::LockTensorBuffer LockTensorBuffer = nullptr;
  capi::UnlockTensorBuffer UnlockTensorBuffer = nullptr;
  capi::GetTensorBufferTensorType GetTensorBufferTensorType = nullptr;
  capi::GetTensorBufferSize GetTensorBufferSize = nullptr;
  capi::GetTensorBufferHostMemory GetTensorBufferHostMemory = nullptr;
  capi::ProfilerVoid StartProfiler = nullptr;
  capi::ProfilerVoid StopProfiler = nullptr;
  capi::ProfilerVoid ResetProfiler = nullptr;
  capi::GetNumProfilerEvents GetNumProfilerEvents = nullptr;
  capi::GetProfilerEvents GetProfilerEvents = nullptr;
};

// Opens `library_path` (e.g. <site-packages>/ai_edge_litert/libLiteRt.so).
// `version` is the LiteRT release of that library ("2.3.0"); if empty it is read from the
// `__version__ = "..."` line of the __init__.py next to the library (the wheel layout).
// Fails (returns nullptr, sets *error) on a missing file, a version outside the tested range
// (unless allow_untested_version), or a missing symbol. Libraries stay loaded for the life
// of the process (one instance per path).
std::shared_ptr<const LiteRtLib> LoadLiteRt(const std::string& library_path,
                                            const std::string& version,
                                            bool allow_untested_version, std::string* error);

// "kLiteRtStatusErrorInvalidArgument (1)" etc.
std::string StatusString(LiteRtStatus status);

// Parses "2.3.0" / "2.3.0rc1" -> true if within the tested range.
bool IsTestedLiteRtVersion(const std::string& version);
// "2.3.0" -> 2, 3; false when the string does not start with "<int>.<int>".
bool ParseLiteRtVersion(const std::string& version, int* major, int* minor);
// Bytes per element of a LiteRtElementType (the same codes as TfLiteType); 0 for unsupported types.
size_t ElementSize(int element_type);

}  // namespace keras_csp::runtime
