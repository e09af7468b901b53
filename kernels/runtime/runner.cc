#include "runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace keras_csp::runtime {
namespace {

// Redirects fd 2 into a temporary file while alive, so LiteRT's own log lines can be attached
// to the error we raise (and are still echoed to the real stderr afterwards).
class StderrCapture {
 public:
  explicit StderrCapture(bool enable) {
    if (!enable) return;
    std::fflush(stderr);
    tmp_ = std::tmpfile();
    if (!tmp_) return;
    saved_ = dup(2);
    if (saved_ < 0 || dup2(fileno(tmp_), 2) < 0) {
      if (saved_ >= 0) close(saved_);
      saved_ = -1;
      std::fclose(tmp_);
      tmp_ = nullptr;
    }
  }
  std::string Finish() {
    if (!tmp_) return "";
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::string text;
    std::rewind(tmp_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), tmp_)) > 0) text.append(buf, n);
    std::fclose(tmp_);
    tmp_ = nullptr;
    return text;  // not echoed: LiteRT's INFO logs stay out of the user's terminal
  }
  ~StderrCapture() { Finish(); }

 private:
  FILE* tmp_ = nullptr;
  int saved_ = -1;
};

// Trims and keeps printable ASCII only (LiteRT may log raw model bytes; errors must be
// valid UTF-8 for Python).
std::string Trim(const std::string& in) {
  std::string s;
  for (unsigned char c : in) s += (c == '\n' || c == '\t' || (c >= 32 && c < 127)) ? char(c) : '?';
  size_t b = s.find_first_not_of(" \n\r\t"), e = s.find_last_not_of(" \n\r\t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

void DeleteCString(void* p) { delete[] static_cast<char*>(p); }

char* NewCString(const std::string& s) {
  char* p = new char[s.size() + 1];
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

}  // namespace

const char* ElementTypeName(int t) {
  switch (t) {
    case kLiteRtElementTypeFloat32: return "float32";
    case kLiteRtElementTypeInt32: return "int32";
    case kLiteRtElementTypeUInt8: return "uint8";
    case kLiteRtElementTypeInt8: return "int8";
    case kLiteRtElementTypeBool: return "bool";
    case kLiteRtElementTypeInt64: return "int64";
    case kLiteRtElementTypeFloat64: return "float64";
    case kLiteRtElementTypeInt16: return "int16";
    case kLiteRtElementTypeFloat16: return "float16";
    default: return "unsupported";
  }
}

std::unique_ptr<Runner> Runner::Create(const std::string& litert_library_path,
                                       const std::string& model_path,
                                       const RunnerOptions& options, std::string* error) {
  auto lib = LoadLiteRt(litert_library_path, options.litert_version,
                        options.allow_untested_version, error);
  if (!lib) return nullptr;
  std::unique_ptr<Runner> r(new Runner());
  r->lib_ = lib;
  r->options_ = options;
  if (!r->Init(model_path, options, error)) return nullptr;
  return r;
}

Runner::~Runner() {
  if (!lib_) return;
  StderrCapture quiet(options_.capture_stderr);  // LiteRT logs accelerator teardown
  for (auto b : in_buffers_) lib_->DestroyTensorBuffer(b);
  for (auto b : out_buffers_) lib_->DestroyTensorBuffer(b);
  if (compiled_) lib_->DestroyCompiledModel(compiled_);
  if (compile_options_) lib_->DestroyOptions(compile_options_);
  if (model_) lib_->DestroyModel(model_);
  if (env_) lib_->DestroyEnvironment(env_);
  registrations_.clear();  // after the compiled model: its nodes call Destroy on them
  pool_.reset();
}

std::string Runner::CompiledModelErrors() {
  if (!compiled_) return "";
  char* msgs = nullptr;
  if (lib_->CompiledModelGetErrorMessages(compiled_, &msgs) != kLiteRtStatusOk || !msgs) return "";
  std::string s = msgs;
  std::free(msgs);
  lib_->CompiledModelClearErrors(compiled_);
  return Trim(s);
}

bool Runner::CheckCustomOpErrors(const char* stage, std::string* error) {
  auto errs = errors_.Take();
  if (errs.empty()) return true;
  std::ostringstream os;
  os << "keras-csp custom op error during " << stage << ": ";
  for (size_t i = 0; i < errs.size(); ++i) os << (i ? "; " : "") << errs[i];
  *error = os.str();
  return false;
}

bool Runner::Init(const std::string& model_path, const RunnerOptions& opt, std::string* error) {
  const LiteRtLib& L = *lib_;
  if (opt.num_threads < 1 || opt.num_threads > 256) {
    *error = "num_threads must be in [1, 256], got " + std::to_string(opt.num_threads);
    return false;
  }
  {
    struct stat st;
    if (stat(model_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      *error = "model file not found: '" + model_path + "'";
      return false;
    }
    if (access(model_path.c_str(), R_OK) != 0) {
      *error = "model file not readable: '" + model_path + "'";
      return false;
    }
  }
  LiteRtStatus s;
  {
    // LiteRT logs accelerator registration (GPU / NPU / CPU) at INFO and WARNING level. Its C API
    // (libLiteRt.so 2.3) exports no logger-severity call, so the log is captured here instead.
    StderrCapture cap(opt.capture_stderr);
    s = L.CreateEnvironment(0, nullptr, &env_);
    std::string log = Trim(cap.Finish());
    if (s != kLiteRtStatusOk) {
      *error = "LiteRtCreateEnvironment failed: " + StatusString(s) + (log.empty() ? "" : ". LiteRT says: " + log);
      return false;
    }
  }
  {
    StderrCapture cap(opt.capture_stderr);
    s = L.CreateModelFromFile(env_, model_path.c_str(), &model_);
    std::string log = Trim(cap.Finish());
    if (s != kLiteRtStatusOk || !model_) {
      *error = "LiteRT could not load model '" + model_path + "' (" + StatusString(s) +
               "): not a valid .tflite flatbuffer?" + (log.empty() ? "" : " LiteRT says: " + log);
      model_ = nullptr;
      return false;
    }
  }

  // Signature 0 defines the input/output order of RunCompiledModel.
  LiteRtParamIndex nsig = 0;
  LiteRtSignature sig = nullptr;
  if (L.GetNumModelSignatures(model_, &nsig) != kLiteRtStatusOk || nsig < 1 ||
      L.GetModelSignature(model_, 0, &sig) != kLiteRtStatusOk) {
    *error = "model has no signature / subgraph to run";
    return false;
  }
  const char* key = nullptr;
  if (L.GetSignatureKey(sig, &key) == kLiteRtStatusOk && key) signature_key_ = key;

  auto describe = [&](LiteRtTensor t, const char* sig_name, TensorInfo* info) -> bool {
    const char* name = nullptr;
    info->name = sig_name ? sig_name : "";
    if (info->name.empty() && L.GetTensorName(t, &name) == kLiteRtStatusOk && name)
      info->name = name;
    LiteRtTensorTypeId tid;
    if (L.GetTensorTypeId(t, &tid) != kLiteRtStatusOk || tid != kLiteRtRankedTensorType) {
      *error = "tensor '" + info->name + "' is unranked; only static shapes are supported";
      return false;
    }
    LiteRtRankedTensorType rt;
    if (L.GetRankedTensorType(t, &rt) != kLiteRtStatusOk) {
      *error = "cannot read type of tensor '" + info->name + "'";
      return false;
    }
    info->element_type = rt.element_type;
    size_t n = 1;
    for (unsigned i = 0; i < rt.layout.rank; ++i) {
      int d = rt.layout.dimensions[i];
      // LiteRT reports the shape signature: a dynamic (batch) dimension runs with its
      // default size 1, as the flatbuffer's static shape says.
      if (d < 0) d = 1;
      info->shape.push_back(d);
      n *= static_cast<size_t>(d);
    }
    size_t es = ElementSize(rt.element_type);
    if (es == 0) {
      *error = "tensor '" + info->name + "' has unsupported element type " +
               std::to_string(rt.element_type);
      return false;
    }
    info->bytes = n * es;
    LiteRtQuantizationTypeId q = kLiteRtQuantizationNone;
    if (L.GetQuantizationTypeId(t, &q) == kLiteRtStatusOk) {
      if (q == kLiteRtQuantizationPerTensor) {
        LiteRtQuantizationPerTensor pt;
        if (L.GetPerTensorQuantization(t, &pt) == kLiteRtStatusOk) {
          info->quantization = 1;
          info->scale = pt.scale;
          info->zero_point = pt.zero_point;
        }
      } else if (q == kLiteRtQuantizationPerChannel) {
        LiteRtQuantizationPerChannel pc;
        if (L.GetPerChannelQuantization(t, &pc) == kLiteRtStatusOk) {
          info->quantization = 2;
          info->quantized_dimension = pc.quantized_dimension;
          info->scales.assign(pc.scales, pc.scales + pc.num_channels);
          info->zero_points.assign(pc.zero_points, pc.zero_points + pc.num_channels);
        }
      }
    }
    return true;
  };

  LiteRtParamIndex nin = 0, nout = 0;
  L.GetNumSignatureInputs(sig, &nin);
  L.GetNumSignatureOutputs(sig, &nout);
  for (LiteRtParamIndex i = 0; i < nin; ++i) {
    const char* nm = nullptr;
    LiteRtTensor t = nullptr;
    L.GetSignatureInputName(sig, i, &nm);
    if (L.GetSignatureInputTensorByIndex(sig, i, &t) != kLiteRtStatusOk) {
      *error = "cannot read signature input " + std::to_string(i);
      return false;
    }
    TensorInfo info;
    if (!describe(t, nm, &info)) return false;
    inputs_.push_back(std::move(info));
  }
  for (LiteRtParamIndex i = 0; i < nout; ++i) {
    const char* nm = nullptr;
    LiteRtTensor t = nullptr;
    L.GetSignatureOutputName(sig, i, &nm);
    if (L.GetSignatureOutputTensorByIndex(sig, i, &t) != kLiteRtStatusOk) {
      *error = "cannot read signature output " + std::to_string(i);
      return false;
    }
    TensorInfo info;
    if (!describe(t, nm, &info)) return false;
    outputs_.push_back(std::move(info));
  }

  // Compilation options: CPU (XNNPACK for builtins), threads, profiling, our custom ops.
  s = L.CreateOptions(&compile_options_);
  if (s != kLiteRtStatusOk) {
    *error = "LiteRtCreateOptions failed: " + StatusString(s);
    return false;
  }
  L.SetOptionsHardwareAccelerators(compile_options_, kLiteRtHwAcceleratorCpu);
  {
    std::string toml = "num_threads = " + std::to_string(opt.num_threads) + "\n";
    if (!opt.cpu_kernel_mode.empty()) {
      if (opt.cpu_kernel_mode != "delegate" && opt.cpu_kernel_mode != "builtin" &&
          opt.cpu_kernel_mode != "reference") {
        *error = "cpu_kernel_mode must be '', 'delegate', 'builtin' or 'reference'";
        return false;
      }
      toml += "kernel_mode = \"" + opt.cpu_kernel_mode + "\"\n";
    }
    LiteRtOpaqueOptions cpu = nullptr;
    char* payload = NewCString(toml);
    s = L.CreateOpaqueOptions("xnnpack", payload, &DeleteCString, &cpu);
    if (s != kLiteRtStatusOk) {
      delete[] payload;
      *error = "creating CPU options failed: " + StatusString(s);
      return false;
    }
    s = L.AddOpaqueOptions(compile_options_, cpu);
    if (s != kLiteRtStatusOk) {
      L.DestroyOpaqueOptions(cpu);
      *error = "adding CPU options failed: " + StatusString(s);
      return false;
    }
  }
  {
    // Buffer error reporter: TFLite's messages (e.g. "Encountered unresolved custom op") are
    // kept for LiteRtCompiledModelGetErrorMessages and attached to our errors.
    LiteRtOpaqueOptions rt = nullptr;
    std::string toml = "error_reporter_mode = 2\n";
    if (opt.enable_profiling) toml += "enable_profiling = true\n";
    char* payload = NewCString(toml);
    s = L.CreateOpaqueOptions("runtime_options_string", payload, &DeleteCString, &rt);
    if (s != kLiteRtStatusOk) {
      delete[] payload;
      *error = "creating runtime options failed: " + StatusString(s);
      return false;
    }
    if (L.AddOpaqueOptions(compile_options_, rt) != kLiteRtStatusOk) {
      L.DestroyOpaqueOptions(rt);
      *error = "adding runtime options failed";
      return false;
    }
  }
  if (!ResolveNumerics(opt.custom_op_numerics, opt.cpu_kernel_mode, &numerics_)) {
    *error = "custom_op_numerics must be 'auto', 'xnnpack', 'builtin' or 'reference', got '" +
             opt.custom_op_numerics + "'";
    return false;
  }
  if (opt.register_custom_ops) {
    // The fused ops run on the model's thread count, as LiteRT's own kernels do.
    pool_ = std::make_unique<ThreadPool>(opt.num_threads);
    for (const auto& name : CustomOpNames()) {
      auto reg = std::make_unique<CustomOpRegistration>(name, lib_, &errors_, numerics_, pool_.get());
      s = L.AddCustomOpKernelOption(compile_options_, name.c_str(), /*version=*/1, reg->kernel(),
                                    reg.get());
      if (s != kLiteRtStatusOk) {
        *error = "LiteRtAddCustomOpKernelOption(" + name + ") failed: " + StatusString(s);
        return false;
      }
      registrations_.push_back(std::move(reg));
    }
  }

  {
    StderrCapture cap(opt.capture_stderr);
    s = L.CreateCompiledModel(env_, model_, compile_options_, &compiled_);
    std::string log = Trim(cap.Finish());
    std::string custom;
    bool custom_ok = CheckCustomOpErrors("model compilation", &custom);
    if (s != kLiteRtStatusOk || !compiled_) {
      compiled_ = nullptr;
      *error = "LiteRT failed to compile model '" + model_path + "' (" + StatusString(s) + ")";
      if (!custom_ok) *error += ". " + custom;
      if (!log.empty()) *error += ". LiteRT says: " + log;
      return false;
    }
    if (!custom_ok) {
      *error = custom;
      return false;
    }
  }
  {
    // LiteRT allocates (and runs every node's Prepare, e.g. resolves custom ops and calls
    // GetOutputLayouts) lazily on the first run; do it now so load errors surface here.
    StderrCapture cap(opt.capture_stderr);
    std::vector<LiteRtLayout> layouts(outputs_.size());
    s = L.GetCompiledModelOutputTensorLayouts(compiled_, 0, layouts.size(), layouts.data(), true);
    std::string log = Trim(cap.Finish());
    std::string custom;
    bool custom_ok = CheckCustomOpErrors("tensor allocation", &custom);
    if (s != kLiteRtStatusOk || !custom_ok) {
      *error = "LiteRT failed to prepare model '" + model_path + "'";
      if (s != kLiteRtStatusOk) *error += " (" + StatusString(s) + ")";
      if (!custom_ok) *error += ". " + custom;
      std::string msgs = CompiledModelErrors();
      if (!msgs.empty()) *error += ". " + msgs;
      if (!log.empty()) *error += ". LiteRT says: " + log;
      return false;
    }
    for (size_t i = 0; i < layouts.size(); ++i) {
      std::vector<int> shape(layouts[i].dimensions, layouts[i].dimensions + layouts[i].rank);
      if (shape != outputs_[i].shape) {
        std::string a, b;
        for (int d : shape) a += std::to_string(d) + ",";
        for (int d : outputs_[i].shape) b += std::to_string(d) + ",";
        *error = "output '" + outputs_[i].name + "' is computed as [" + a + "] but the model declares [" + b + "]";
        return false;
      }
    }
  }

  auto make_buffer = [&](const TensorInfo& info, LiteRtTensorBuffer* out) -> bool {
    LiteRtRankedTensorType rt;
    std::memset(&rt, 0, sizeof(rt));
    rt.element_type = info.element_type;
    rt.layout.rank = static_cast<unsigned>(info.shape.size());
    for (size_t i = 0; i < info.shape.size(); ++i) rt.layout.dimensions[i] = info.shape[i];
    LiteRtStatus st = L.CreateManagedTensorBuffer(env_, kLiteRtTensorBufferTypeHostMemory, &rt,
                                                  std::max<size_t>(info.bytes, 1), out);
    if (st != kLiteRtStatusOk) {
      *error = "cannot allocate buffer for tensor '" + info.name + "': " + StatusString(st);
      return false;
    }
    return true;
  };
  for (auto& info : inputs_) {
    LiteRtTensorBuffer b = nullptr;
    if (!make_buffer(info, &b)) return false;
    in_buffers_.push_back(b);
  }
  for (auto& info : outputs_) {
    LiteRtTensorBuffer b = nullptr;
    if (!make_buffer(info, &b)) return false;
    out_buffers_.push_back(b);
  }
  if (opt.enable_profiling) {
    // Note: LiteRT 2.3.0 may return OK with a null profiler (no per-op events); ProfileEvents()
    // then reports that profiling is unavailable.
    if (L.CompiledModelGetProfiler(compiled_, &profiler_) != kLiteRtStatusOk) profiler_ = nullptr;
    if (profiler_) L.StartProfiler(profiler_);
    if (profiler_) L.ResetProfiler(profiler_);
  }
  return true;
}

bool Runner::SetInput(size_t i, const void* data, size_t bytes, std::string* error) {
  if (i >= inputs_.size()) {
    *error = "input index " + std::to_string(i) + " out of range (model has " +
             std::to_string(inputs_.size()) + " inputs)";
    return false;
  }
  if (bytes != inputs_[i].bytes) {
    *error = "input " + std::to_string(i) + " ('" + inputs_[i].name + "') needs " +
             std::to_string(inputs_[i].bytes) + " bytes, got " + std::to_string(bytes);
    return false;
  }
  void* dst = nullptr;
  LiteRtStatus s = lib_->LockTensorBuffer(in_buffers_[i], &dst, kLiteRtTensorBufferLockModeWrite);
  if (s != kLiteRtStatusOk || !dst) {
    *error = "cannot lock input buffer: " + StatusString(s);
    return false;
  }
  std::memcpy(dst, data, bytes);
  lib_->UnlockTensorBuffer(in_buffers_[i]);
  return true;
}

bool Runner::Invoke(std::string* error) {
  if (profiler_) {
    int n = 0;
    lib_->GetNumProfilerEvents(profiler_, &n);
    if (n > 100000) {
      lib_->ResetProfiler(profiler_);
      n = 0;
    }
    profile_first_event_ = n;
  }
  if (pool_) pool_->Wake();  // the first fused op's second thread is awake by the time it starts
  auto t0 = std::chrono::steady_clock::now();
  LiteRtStatus s = lib_->RunCompiledModel(compiled_, 0, in_buffers_.size(), in_buffers_.data(),
                                          out_buffers_.size(), out_buffers_.data());
  auto t1 = std::chrono::steady_clock::now();
  last_run_ms_ = std::chrono::duration<double, std::milli>(t1 - t0).count();
  std::string custom;
  bool custom_ok = CheckCustomOpErrors("inference", &custom);
  if (s != kLiteRtStatusOk) {
    *error = "LiteRT inference failed (" + StatusString(s) + ")";
    std::string msgs = CompiledModelErrors();
    if (!msgs.empty()) *error += ": " + msgs;
    if (!custom_ok) *error += ". " + custom;
    return false;
  }
  if (!custom_ok) {
    *error = custom;
    return false;
  }
  return true;
}

bool Runner::GetOutput(size_t i, void* dst, size_t bytes, std::string* error) {
  if (i >= outputs_.size()) {
    *error = "output index out of range";
    return false;
  }
  if (bytes != outputs_[i].bytes) {
    *error = "output " + std::to_string(i) + " has " + std::to_string(outputs_[i].bytes) +
             " bytes, destination has " + std::to_string(bytes);
    return false;
  }
  void* src = nullptr;
  LiteRtStatus s = lib_->LockTensorBuffer(out_buffers_[i], &src, kLiteRtTensorBufferLockModeRead);
  if (s != kLiteRtStatusOk || !src) {
    *error = "cannot lock output buffer: " + StatusString(s);
    return false;
  }
  std::memcpy(dst, src, bytes);
  lib_->UnlockTensorBuffer(out_buffers_[i]);
  return true;
}

bool Runner::Benchmark(int runs, int warmup, std::vector<double>* lat, std::string* error) {
  if (runs < 1 || warmup < 0) {
    *error = "runs must be >= 1 and warmup >= 0";
    return false;
  }
  for (int i = 0; i < warmup; ++i)
    if (!Invoke(error)) return false;
  lat->clear();
  for (int i = 0; i < runs; ++i) {
    if (!Invoke(error)) return false;
    lat->push_back(last_run_ms_);
  }
  return true;
}

std::vector<ProfileEvent> Runner::ProfileEvents(std::string* error) {
  std::vector<ProfileEvent> out;
  if (!profiler_) {
    *error = options_.enable_profiling
                 ? "LiteRT did not provide a profiler for this compiled model (LiteRT 2.3.0 "
                   "returns none); use custom_op_stats() and per-invoke timings instead"
                 : "profiling is not enabled (create the model with enable_profiling=true)";
    return out;
  }
  int n = 0;
  if (lib_->GetNumProfilerEvents(profiler_, &n) != kLiteRtStatusOk || n <= 0) return out;
  std::vector<ProfiledEventData> ev(n);
  if (lib_->GetProfilerEvents(profiler_, n, ev.data()) != kLiteRtStatusOk) {
    *error = "LiteRtGetProfilerEvents failed";
    return out;
  }
  for (size_t i = static_cast<size_t>(std::max(0, profile_first_event_)); i < ev.size(); ++i) {
    const auto& e = ev[i];
    ProfileEvent p;
    p.tag = e.tag ? e.tag : "";
    p.event_type = e.event_type;
    p.start_us = e.start_timestamp_us;
    p.elapsed_us = e.elapsed_time_us;
    p.metadata1 = e.event_metadata1;
    p.metadata2 = e.event_metadata2;
    p.source = e.event_source;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<CustomOpStat> Runner::CustomOpStats() {
  std::vector<CustomOpStat> out;
  for (auto& r : registrations_) {
    auto s = r->Stats();
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

void Runner::ResetCustomOpStats() {
  for (auto& r : registrations_) r->ResetStats();
}

}  // namespace keras_csp::runtime
