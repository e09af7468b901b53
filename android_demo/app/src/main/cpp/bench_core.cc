#include "bench_core.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "keras_csp/conv.h"

namespace keras_csp::bench {

void FillDeterministic(uint32_t seed, std::vector<uint8_t>* bytes) {
  uint32_t state = seed * 2654435761u + 12345u;
  for (auto& b : *bytes) {
    state = state * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(state >> 24);
  }
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
  rank = std::min(std::max<size_t>(rank, 1), values.size());
  return values[rank - 1];
}

namespace {

// Float inputs get values in [0, 1) instead of raw bytes (raw bytes may form NaN/Inf).
void FillInput(const runtime::TensorInfo& info, uint32_t seed, std::vector<uint8_t>* bytes) {
  bytes->assign(info.bytes, 0);
  FillDeterministic(seed, bytes);
  if (info.element_type == 1 /* float32 */) {
    auto* f = reinterpret_cast<float*>(bytes->data());
    for (size_t i = 0; i < info.bytes / 4; ++i) f[i] = (*bytes)[i * 4] / 256.0f;
  }
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

void TensorsJson(std::ostringstream& o, const std::vector<runtime::TensorInfo>& tensors) {
  o << "[";
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    o << (i ? "," : "") << "{\"name\":\"" << Escape(t.name) << "\",\"dtype\":\""
      << runtime::ElementTypeName(t.element_type) << "\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d) o << (d ? "," : "") << t.shape[d];
    o << "],\"scale\":" << t.scale << ",\"zero_point\":" << t.zero_point << "}";
  }
  o << "]";
}

}  // namespace

bool RunBenchmark(const BenchConfig& config, BenchResult* result, std::string* error) {
  if (config.runs < 1 || config.warmup < 0 || config.num_threads < 1) {
    *error = "runs must be >= 1, warmup >= 0 and num_threads >= 1";
    return false;
  }
  runtime::RunnerOptions options;
  options.num_threads = config.num_threads;
  options.register_custom_ops = config.custom_ops;
  options.allow_untested_version = config.allow_untested_version;
  options.cpu_kernel_mode = config.cpu_kernel_mode;
  options.custom_op_numerics = config.custom_op_numerics;
  options.litert_version = config.litert_version;
  options.capture_stderr = config.capture_stderr;
  auto runner = runtime::Runner::Create(config.litert_library, config.model_path, options, error);
  if (!runner) return false;

  *result = BenchResult();
  result->model_path = config.model_path;
  result->custom_ops = config.custom_ops;
  result->num_threads = config.num_threads;
  result->cpu_kernel_mode = config.cpu_kernel_mode;
  result->custom_op_numerics = runtime::NumericsName(runner->custom_op_numerics());
  result->inputs = runner->inputs();
  result->outputs = runner->outputs();
  for (size_t i = 0; i < result->inputs.size(); ++i) {
    std::vector<uint8_t> bytes;
    FillInput(result->inputs[i], config.seed + static_cast<uint32_t>(i), &bytes);
    if (!runner->SetInput(i, bytes.data(), bytes.size(), error)) return false;
  }
  if (!runner->Invoke(error)) return false;
  for (size_t i = 0; i < result->outputs.size(); ++i) {
    result->output_data.emplace_back(result->outputs[i].bytes);
    if (!runner->GetOutput(i, result->output_data.back().data(), result->output_data.back().size(), error))
      return false;
  }
  runner->ResetCustomOpStats();
  if (!runner->Benchmark(config.runs, config.warmup, &result->latencies_ms, error)) return false;
  result->custom_op_stats = runner->CustomOpStats();
  const auto& l = result->latencies_ms;
  result->min_ms = *std::min_element(l.begin(), l.end());
  result->median_ms = Percentile(l, 0.5);
  result->p90_ms = Percentile(l, 0.9);
  result->mean_ms = std::accumulate(l.begin(), l.end(), 0.0) / l.size();
  return true;
}

std::string ToJson(const BenchResult& r) {
  std::ostringstream o;
  o.precision(6);
  o << "{\"model\":\"" << Escape(r.model_path) << "\",\"custom_ops\":" << (r.custom_ops ? "true" : "false")
    << ",\"kernel_mode\":\"" << Escape(r.cpu_kernel_mode.empty() ? "xnnpack" : r.cpu_kernel_mode) << "\""
    << ",\"custom_op_numerics\":\"" << Escape(r.custom_op_numerics) << "\""
    // the fused ops' int8 kernels on this CPU (run-time dispatch)
    << ",\"int8_variant\":\"" << VariantName(BestVariant(false)) << "\""
    << ",\"threads\":" << r.num_threads << ",\"runs\":" << r.latencies_ms.size() << ",\"min_ms\":" << r.min_ms
    << ",\"median_ms\":" << r.median_ms << ",\"p90_ms\":" << r.p90_ms << ",\"mean_ms\":" << r.mean_ms
    << ",\"inputs\":";
  TensorsJson(o, r.inputs);
  o << ",\"outputs\":";
  TensorsJson(o, r.outputs);
  o << ",\"fused_ops\":[";
  for (size_t i = 0; i < r.custom_op_stats.size(); ++i) {
    const auto& s = r.custom_op_stats[i];
    o << (i ? "," : "") << "{\"op\":\"" << Escape(s.op) << "\",\"node\":" << s.node << ",\"calls\":" << s.calls
      << ",\"total_ms\":" << s.total_ms << "}";
  }
  o << "]}";
  return o.str();
}

}  // namespace keras_csp::bench
