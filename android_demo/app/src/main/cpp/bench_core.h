// keras-csp on-device benchmark core: the same code behind the Android app (JNI) and the native
// command-line benchmark (bench_main.cc). It drives the shared runner core (kernels/runtime),
// which loads a .tflite through the LiteRT C API with our custom ops registered.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runner.h"

namespace keras_csp::bench {

struct BenchConfig {
  std::string litert_library;      // path (or soname on Android) of libLiteRt.so
  std::string model_path;
  // LiteRT release of that library ("2.3.0"). Empty: read from the wheel's __init__.py next to it
  // (desktop); the Android app passes the version of its LiteRT Maven dependency.
  std::string litert_version;
  int num_threads = 1;
  int runs = 20;
  int warmup = 3;
  bool custom_ops = true;          // register our fused ops (needed for fused models)
  uint32_t seed = 1;               // deterministic pseudo-random inputs
  bool allow_untested_version = false;
  // LiteRT CPU kernels for the builtin ops: "" = XNNPACK (the default, what apps get),
  // "builtin" = TFLite's optimized builtin kernels, "reference" = TFLite reference kernels.
  // XNNPACK's int8 requantization differs by an LSB between its x86 and ARM kernels, so
  // cross-platform bit-exactness checks use "builtin".
  std::string cpu_kernel_mode;
  // Rounding of the fused ops: "auto" matches cpu_kernel_mode (bit-identical to the unfused
  // model), or "xnnpack" / "builtin" / "reference".
  std::string custom_op_numerics = "auto";
  bool capture_stderr = true;       // attach LiteRT's log to errors (false: let it print)
};

struct BenchResult {
  std::string model_path;
  bool custom_ops = true;
  int num_threads = 1;
  std::string cpu_kernel_mode;
  std::string custom_op_numerics;  // resolved: "xnnpack", "builtin" or "reference"
  std::vector<double> latencies_ms;
  double min_ms = 0, median_ms = 0, p90_ms = 0, mean_ms = 0;
  std::vector<runtime::TensorInfo> inputs, outputs;
  std::vector<std::vector<uint8_t>> output_data;   // outputs of the first (untimed) run
  std::vector<runtime::CustomOpStat> custom_op_stats;
};

// Fills every input with the same deterministic bytes on every platform (a 32-bit LCG per
// input), runs once to capture outputs, then `warmup` + `runs` timed invocations.
bool RunBenchmark(const BenchConfig& config, BenchResult* result, std::string* error);

// Order statistics of a latency list (nearest-rank percentile).
double Percentile(std::vector<double> values, double q);

// One JSON object: model, threads, custom_ops, latency stats, tensors, fused-op time.
std::string ToJson(const BenchResult& result);

// Deterministic input bytes (exposed for tests).
void FillDeterministic(uint32_t seed, std::vector<uint8_t>* bytes);

}  // namespace keras_csp::bench
