// keras-csp model runner over the LiteRT C API (plain C++17, no Python): loads a .tflite
// model, registers our custom ops, compiles it for the CPU (XNNPACK runs the builtin ops)
// and runs it on host buffers. Shared by the Python binding, the Android app and native
// command-line benchmarks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "custom_ops.h"
#include "litert_lib.h"

namespace keras_csp::runtime {

struct RunnerOptions {
  int num_threads = 1;
  bool register_custom_ops = true;   // false: run as plain LiteRT would (for tests/comparisons)
  bool enable_profiling = false;     // LiteRT's per-op profiler events
  std::string cpu_kernel_mode;       // "" (default: XNNPACK delegate), "builtin", "reference"
  // Rounding of our fused ops: "auto" matches cpu_kernel_mode (bit-identical to the builtin ops
  // they replace), or "xnnpack" / "builtin" / "reference" explicitly.
  std::string custom_op_numerics = "auto";
  std::string litert_version;        // version of the library; "" = read it next to the library
  bool allow_untested_version = false;
  // true: LiteRT's log output is captured, kept out of the terminal and attached to load /
  // compile errors; false: LiteRT prints it (verbose).
  bool capture_stderr = true;
};

struct TensorInfo {
  std::string name;
  int element_type = 0;              // LiteRtElementType (TfLiteType values)
  std::vector<int> shape;
  size_t bytes = 0;
  int quantization = 0;              // 0 none, 1 per-tensor, 2 per-channel
  float scale = 0.f;
  int64_t zero_point = 0;
  int quantized_dimension = 0;
  std::vector<float> scales;
  std::vector<int64_t> zero_points;
};

struct ProfileEvent {
  std::string tag;
  int event_type = 0;
  uint64_t start_us = 0;
  uint64_t elapsed_us = 0;
  uint64_t metadata1 = 0, metadata2 = 0;
  int source = 0;
};

const char* ElementTypeName(int element_type);

class Runner {
 public:
  // Returns nullptr and sets *error on any failure (library, version, file, model, compile).
  static std::unique_ptr<Runner> Create(const std::string& litert_library_path,
                                        const std::string& model_path,
                                        const RunnerOptions& options, std::string* error);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  const std::string& signature_key() const { return signature_key_; }
  Numerics custom_op_numerics() const { return numerics_; }
  const LiteRtLib& lib() const { return *lib_; }

  // Copies `data[i]` (exactly inputs()[i].bytes bytes) into input i.
  bool SetInput(size_t i, const void* data, size_t bytes, std::string* error);
  // One invocation on the current inputs; last_run_ms() = wall time of the LiteRT run call.
  bool Invoke(std::string* error);
  bool GetOutput(size_t i, void* dst, size_t bytes, std::string* error);
  double last_run_ms() const { return last_run_ms_; }
  // `warmup` untimed + `runs` timed invocations on the current inputs; latencies in ms.
  bool Benchmark(int runs, int warmup, std::vector<double>* latencies_ms, std::string* error);

  // Per-op events of the last Invoke (requires enable_profiling).
  std::vector<ProfileEvent> ProfileEvents(std::string* error);
  // Time spent inside our custom ops, per node, since creation / ResetCustomOpStats().
  std::vector<CustomOpStat> CustomOpStats();
  void ResetCustomOpStats();

 private:
  Runner() = default;
  bool Init(const std::string& model_path, const RunnerOptions& options, std::string* error);
  bool CheckCustomOpErrors(const char* stage, std::string* error);
  std::string CompiledModelErrors();

  std::shared_ptr<const LiteRtLib> lib_;
  RunnerOptions options_;
  LiteRtEnvironment env_ = nullptr;
  LiteRtModel model_ = nullptr;
  LiteRtOptions compile_options_ = nullptr;
  LiteRtCompiledModel compiled_ = nullptr;
  LiteRtProfiler profiler_ = nullptr;
  ErrorSink errors_;
  std::unique_ptr<ThreadPool> pool_;  // the fused ops' threads (num_threads in all)
  std::vector<std::unique_ptr<CustomOpRegistration>> registrations_;
  std::vector<LiteRtTensorBuffer> in_buffers_, out_buffers_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::string signature_key_;
  Numerics numerics_ = Numerics::kXnnpack;
  double last_run_ms_ = 0.0;
  int profile_first_event_ = 0;
};

}  // namespace keras_csp::runtime
