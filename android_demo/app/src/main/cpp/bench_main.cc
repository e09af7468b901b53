// kcsp_bench: native command-line benchmark of a .tflite model on LiteRT with keras-csp's fused ops.
//
//   kcsp_bench --litert /path/to/libLiteRt.so [--litert-version 2.3.0] --model m.tflite [--runs 20] [--warmup 3]
//              [--threads 1] [--no-custom-ops] [--seed 1] [--output out.bin] [--allow-untested-version]
//              [--kernel-mode xnnpack|builtin|reference]
//              [--numerics auto|xnnpack|builtin|reference] [--verbose]
//
// Prints one JSON object on stdout. --output writes the raw bytes of every output of the first run
// (concatenated), so runs on different machines (x86 vs aarch64 under qemu) can be compared exactly.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_core.h"

namespace {

int Usage(const char* msg) {
  std::fprintf(stderr, "kcsp_bench: %s\nusage: kcsp_bench --litert LIB [--litert-version X.Y.Z] --model MODEL [--runs N] [--warmup N] "
               "[--threads N] [--no-custom-ops] [--seed N] [--output FILE] [--allow-untested-version] "
               "[--kernel-mode xnnpack|builtin|reference] [--numerics auto|xnnpack|builtin|reference] "
               "[--verbose]\n", msg);
  return 2;
}

bool ParseInt(const char* s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  keras_csp::bench::BenchConfig config;
  std::string output_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    int n = 0;
    if (a == "--litert" && (v = value())) config.litert_library = v;
    else if (a == "--model" && (v = value())) config.model_path = v;
    else if (a == "--litert-version" && (v = value())) config.litert_version = v;
    else if (a == "--output" && (v = value())) output_path = v;
    else if (a == "--kernel-mode" && (v = value())) {
      std::string mode = v;
      if (mode != "xnnpack" && mode != "builtin" && mode != "reference") return Usage("bad --kernel-mode");
      config.cpu_kernel_mode = mode == "xnnpack" ? "" : mode;
    } else if (a == "--numerics" && (v = value())) {
      std::string n = v;
      if (n != "auto" && n != "xnnpack" && n != "builtin" && n != "reference")
        return Usage("bad --numerics");
      config.custom_op_numerics = n;
    } else if (a == "--verbose") config.capture_stderr = false;
    else if ((a == "--runs" || a == "--warmup" || a == "--threads" || a == "--seed") && (v = value())) {
      if (!ParseInt(v, &n)) return Usage(("bad value for " + a).c_str());
      if (a == "--runs") config.runs = n;
      else if (a == "--warmup") config.warmup = n;
      else if (a == "--threads") config.num_threads = n;
      else config.seed = static_cast<uint32_t>(n);
    } else if (a == "--no-custom-ops") config.custom_ops = false;
    else if (a == "--allow-untested-version") config.allow_untested_version = true;
    else return Usage(("unknown or incomplete argument " + a).c_str());
  }
  if (config.litert_library.empty() || config.model_path.empty()) return Usage("--litert and --model are required");

  keras_csp::bench::BenchResult result;
  std::string error;
  if (!keras_csp::bench::RunBenchmark(config, &result, &error)) {
    std::fprintf(stderr, "kcsp_bench: %s\n", error.c_str());
    return 1;
  }
  if (!output_path.empty()) {
    FILE* f = std::fopen(output_path.c_str(), "wb");
    if (!f) { std::fprintf(stderr, "kcsp_bench: cannot write %s\n", output_path.c_str()); return 1; }
    for (const auto& out : result.output_data) std::fwrite(out.data(), 1, out.size(), f);
    std::fclose(f);
  }
  std::printf("%s\n", keras_csp::bench::ToJson(result).c_str());
  return 0;
}
