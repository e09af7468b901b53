#include "litert_lib.h"

#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>

namespace keras_csp::runtime {
namespace {

void* Resolve(void* handle, const char* name) {
#if defined(__GLIBC__)
  // Pin the ABI version the declarations were written for.
  if (void* p = dlvsym(handle, name, "VERS_1.0")) return p;
#endif
  return dlsym(handle, name);
}

std::string ReadVersionNextTo(const std::string& library_path) {
  auto slash = library_path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : library_path.substr(0, slash);
  std::ifstream f(dir + "/__init__.py");
  if (!f) return "";
  std::string line;
  std::regex re("^__version__\\s*=\\s*[\"']([^\"']+)[\"']");
  while (std::getline(f, line)) {
    std::smatch m;
    if (std::regex_search(line, m, re)) return m[1];
  }
  return "";
}

}  // namespace

bool ParseLiteRtVersion(const std::string& version, int* major, int* minor) {
  return std::sscanf(version.c_str(), "%d.%d", major, minor) == 2;
}

bool IsTestedLiteRtVersion(const std::string& version) {
  int major = -1, minor = -1;
  return ParseLiteRtVersion(version, &major, &minor) && major == kTestedLiteRtMajor &&
         minor == kTestedLiteRtMinor;
}

size_t ElementSize(int t) {
  switch (t) {
    case kLiteRtElementTypeFloat32: case kLiteRtElementTypeInt32: return 4;
    case kLiteRtElementTypeUInt8: case kLiteRtElementTypeInt8: case kLiteRtElementTypeBool: return 1;
    case kLiteRtElementTypeInt64: case kLiteRtElementTypeFloat64: return 8;
    case kLiteRtElementTypeInt16: case kLiteRtElementTypeFloat16: return 2;
    default: return 0;
  }
}

std::string StatusString(LiteRtStatus s) {
  static const std::map<int, const char*> names = {
      {kLiteRtStatusOk, "kLiteRtStatusOk"},
      {kLiteRtStatusErrorInvalidArgument, "kLiteRtStatusErrorInvalidArgument"},
      {kLiteRtStatusErrorMemoryAllocationFailure, "kLiteRtStatusErrorMemoryAllocationFailure"},
      {kLiteRtStatusErrorRuntimeFailure, "kLiteRtStatusErrorRuntimeFailure"},
      {kLiteRtStatusErrorMissingInputTensor, "kLiteRtStatusErrorMissingInputTensor"},
      {kLiteRtStatusErrorUnsupported, "kLiteRtStatusErrorUnsupported"},
      {kLiteRtStatusErrorNotFound, "kLiteRtStatusErrorNotFound"},
      {kLiteRtStatusErrorWrongVersion, "kLiteRtStatusErrorWrongVersion"},
      {kLiteRtStatusErrorUnknown, "kLiteRtStatusErrorUnknown"},
      {kLiteRtStatusErrorFileIO, "kLiteRtStatusErrorFileIO"},
      {kLiteRtStatusErrorInvalidFlatbuffer, "kLiteRtStatusErrorInvalidFlatbuffer"},
      {kLiteRtStatusErrorDynamicLoading, "kLiteRtStatusErrorDynamicLoading"},
      {kLiteRtStatusErrorCompilation, "kLiteRtStatusErrorCompilation"},
      {kLiteRtStatusErrorIndexOOB, "kLiteRtStatusErrorIndexOOB"},
      {kLiteRtStatusErrorUnsupportedRuntimeVersion, "kLiteRtStatusErrorUnsupportedRuntimeVersion"},
  };
  auto it = names.find(s);
  std::ostringstream os;
  os << (it == names.end() ? "LiteRtStatus" : it->second) << " (" << s << ")";
  return os.str();
}

std::shared_ptr<const LiteRtLib> LoadLiteRt(const std::string& library_path,
                                            const std::string& version_in,
                                            bool allow_untested_version, std::string* error) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<LiteRtLib>> cache;
  std::lock_guard<std::mutex> lock(mu);

  std::string version = version_in.empty() ? ReadVersionNextTo(library_path) : version_in;
  if (version.empty()) {
    *error = "cannot determine the LiteRT version of '" + library_path +
             "' (no version given and no __init__.py with __version__ next to it)";
    return nullptr;
  }
  if (!IsTestedLiteRtVersion(version) && !allow_untested_version) {
    std::ostringstream os;
    os << "unsupported LiteRT version " << version << " at '" << library_path
       << "': keras-csp's runtime is tested with ai-edge-litert " << kTestedLiteRtMajor << "."
       << kTestedLiteRtMinor << ".x only (the LiteRT C API changes between releases); "
       << "install ai-edge-litert==" << kTestedLiteRtMajor << "." << kTestedLiteRtMinor
       << ".0 or pass allow_untested_version=true at your own risk";
    *error = os.str();
    return nullptr;
  }

  auto key = library_path + "@" + version;
  if (auto it = cache.find(key); it != cache.end()) return it->second;

  {
    std::ifstream probe(library_path, std::ios::binary);
    if (!probe) {
      *error = "LiteRT library not found: '" + library_path + "'";
      return nullptr;
    }
  }
  void* handle = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = dlerror();
    *error = "dlopen('" + library_path + "') failed: " + (e ? e : "unknown error");
    return nullptr;
  }
  auto lib = std::make_shared<LiteRtLib>();
  lib->handle = handle;
  lib->path = library_path;
  lib->version = version;

  std::string missing;
#define KCSP_RESOLVE(field, symbol)                                                    \
  do {                                                                                 \
    lib->field = reinterpret_cast<decltype(lib->field)>(Resolve(handle, #symbol));     \
    if (!lib->field) missing += std::string(missing.empty() ? "" : ", ") + #symbol;    \
  } while (0)
  KCSP_RESOLVE(CreateEnvironment, LiteRtCreateEnvironment);
  KCSP_RESOLVE(DestroyEnvironment, LiteRtDestroyEnvironment);
  KCSP_RESOLVE(CreateModelFromFile, LiteRtCreateModelFromFile);
  KCSP_RESOLVE(CreateModelFromBuffer, LiteRtCreateModelFromBuffer);
  KCSP_RESOLVE(DestroyModel, LiteRtDestroyModel);
  KCSP_RESOLVE(GetNumModelSignatures, LiteRtGetNumModelSignatures);
  KCSP_RESOLVE(GetModelSignature, LiteRtGetModelSignature);
  KCSP_RESOLVE(GetSignatureKey, LiteRtGetSignatureKey);
  KCSP_RESOLVE(GetNumSignatureInputs, LiteRtGetNumSignatureInputs);
  KCSP_RESOLVE(GetNumSignatureOutputs, LiteRtGetNumSignatureOutputs);
  KCSP_RESOLVE(GetSignatureInputName, LiteRtGetSignatureInputName);
  KCSP_RESOLVE(GetSignatureOutputName, LiteRtGetSignatureOutputName);
  KCSP_RESOLVE(GetSignatureInputTensorByIndex, LiteRtGetSignatureInputTensorByIndex);
  KCSP_RESOLVE(GetSignatureOutputTensorByIndex, LiteRtGetSignatureOutputTensorByIndex);
  KCSP_RESOLVE(GetTensorName, LiteRtGetTensorName);
  KCSP_RESOLVE(GetTensorTypeId, LiteRtGetTensorTypeId);
  KCSP_RESOLVE(GetRankedTensorType, LiteRtGetRankedTensorType);
  KCSP_RESOLVE(GetQuantizationTypeId, LiteRtGetQuantizationTypeId);
  KCSP_RESOLVE(GetPerTensorQuantization, LiteRtGetPerTensorQuantization);
  KCSP_RESOLVE(GetPerChannelQuantization, LiteRtGetPerChannelQuantization);
  KCSP_RESOLVE(CreateOptions, LiteRtCreateOptions);
  KCSP_RESOLVE(DestroyOptions, LiteRtDestroyOptions);
  KCSP_RESOLVE(SetOptionsHardwareAccelerators, LiteRtSetOptionsHardwareAccelerators);
  KCSP_RESOLVE(CreateOpaqueOptions, LiteRtCreateOpaqueOptions);
  KCSP_RESOLVE(DestroyOpaqueOptions, LiteRtDestroyOpaqueOptions);
  KCSP_RESOLVE(AddOpaqueOptions, LiteRtAddOpaqueOptions);
  KCSP_RESOLVE(AddCustomOpKernelOption, LiteRtAddCustomOpKernelOption);
  KCSP_RESOLVE(CreateCompiledModel, LiteRtCreateCompiledModel);
  KCSP_RESOLVE(DestroyCompiledModel, LiteRtDestroyCompiledModel);
  KCSP_RESOLVE(RunCompiledModel, LiteRtRunCompiledModel);
  KCSP_RESOLVE(GetCompiledModelOutputTensorLayouts, LiteRtGetCompiledModelOutputTensorLayouts);
  KCSP_RESOLVE(CompiledModelGetErrorMessages, LiteRtCompiledModelGetErrorMessages);
  KCSP_RESOLVE(CompiledModelClearErrors, LiteRtCompiledModelClearErrors);
  KCSP_RESOLVE(CompiledModelGetProfiler, LiteRtCompiledModelGetProfiler);
  KCSP_RESOLVE(CreateManagedTensorBuffer, LiteRtCreateManagedTensorBuffer);
  KCSP_RESOLVE(DestroyTensorBuffer, LiteRtDestroyTensorBuffer);
  KCSP_RESOLVE(LockTensorBuffer, LiteRtLockTensorBuffer);
  KCSP_RESOLVE(UnlockTensorBuffer, LiteRtUnlockTensorBuffer);
  KCSP_RESOLVE(GetTensorBufferTensorType, LiteRtGetTensorBufferTensorType);
  KCSP_RESOLVE(GetTensorBufferSize, LiteRtGetTensorBufferSize);
  KCSP_RESOLVE(GetTensorBufferHostMemory, LiteRtGetTensorBufferHostMemory);
  KCSP_RESOLVE(StartProfiler, LiteRtStartProfiler);
  KCSP_RESOLVE(StopProfiler, LiteRtStopProfiler);
  KCSP_RESOLVE(ResetProfiler, LiteRtResetProfiler);
  KCSP_RESOLVE(GetNumProfilerEvents, LiteRtGetNumProfilerEvents);
  KCSP_RESOLVE(GetProfilerEvents, LiteRtGetProfilerEvents);
#undef KCSP_RESOLVE
  if (!missing.empty()) {
    *error = "'" + library_path + "' (LiteRT " + version +
             ") lacks C API symbols the keras-csp runtime needs: " + missing;
    // Keep the handle open: unloading LiteRT with live thread pools is unsafe.
    return nullptr;
  }
  cache[key] = lib;
  return lib;
}

}  // namespace keras_csp::runtime
