// pybind11 bindings of the keras-csp LiteRT runner: `keras_csp._runtime`.
// Thin layer: all logic is in kernels/runtime/ (plain C++). Errors -> RuntimeError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <mutex>
#include <stdexcept>

#include "custom_ops.h"
#include "numpy_checks.h"
#include "litert_lib.h"
#include "runner.h"

namespace py = pybind11;
using keras_csp::python::BufferBytes;
using keras_csp::python::CheckContiguous;
using keras_csp::runtime::Runner;
using keras_csp::runtime::RunnerOptions;
using keras_csp::runtime::TensorInfo;

namespace {

// Names come from the model file and need not be valid UTF-8: decode with U+FFFD replacements
// instead of raising UnicodeDecodeError out of Model().
py::str Utf8(const std::string& s) {
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
}

py::dict InfoDict(const TensorInfo& t) {
  py::dict d;
  d["name"] = Utf8(t.name);
  d["element_type"] = t.element_type;
  d["dtype"] = keras_csp::runtime::ElementTypeName(t.element_type);
  d["shape"] = t.shape;
  d["bytes"] = t.bytes;
  d["quantization"] = t.quantization;
  d["scale"] = t.scale;
  d["zero_point"] = t.zero_point;
  d["quantized_dimension"] = t.quantized_dimension;
  d["scales"] = t.scales;
  d["zero_points"] = t.zero_points;
  return d;
}

class PyRunner {
 public:
  PyRunner(const std::string& lib_path, const std::string& model_path, int num_threads,
           bool register_custom_ops, bool enable_profiling, const std::string& cpu_kernel_mode,
           const std::string& litert_version, bool allow_untested_version, bool capture_stderr,
           const std::string& custom_op_numerics) {
    RunnerOptions o;
    o.custom_op_numerics = custom_op_numerics;
    o.num_threads = num_threads;
    o.register_custom_ops = register_custom_ops;
    o.enable_profiling = enable_profiling;
    o.cpu_kernel_mode = cpu_kernel_mode;
    o.litert_version = litert_version;
    o.allow_untested_version = allow_untested_version;
    o.capture_stderr = capture_stderr;
    std::string err;
    {
      py::gil_scoped_release release;
      runner_ = Runner::Create(lib_path, model_path, o, &err);
    }
    if (!runner_) throw std::runtime_error(err);
  }

  std::string Numerics() const { return NumericsName(runner_->custom_op_numerics()); }

  py::list Inputs() const {
    py::list l;
    for (auto& t : runner_->inputs()) l.append(InfoDict(t));
    return l;
  }
  py::list Outputs() const {
    py::list l;
    for (auto& t : runner_->outputs()) l.append(InfoDict(t));
    return l;
  }

  void SetInput(size_t i, py::buffer b) {
    py::buffer_info info = b.request();
    CheckContiguous(info, "input buffer");
    Locked([&](std::string* err) { return runner_->SetInput(i, info.ptr, BufferBytes(info), err); });
  }

  void Invoke() {
    Locked([&](std::string* err) { return runner_->Invoke(err); });
  }

  void GetOutputInto(size_t i, py::buffer b) {
    py::buffer_info info = b.request(/*writable=*/true);
    Locked([&](std::string* err) { return runner_->GetOutput(i, info.ptr, BufferBytes(info), err); });
  }

  std::vector<double> Benchmark(int runs, int warmup) {
    std::vector<double> lat;
    Locked([&](std::string* err) { return runner_->Benchmark(runs, warmup, &lat, err); });
    return lat;
  }

  py::list ProfileEvents() {
    std::string err;
    auto ev = runner_->ProfileEvents(&err);
    if (!err.empty()) throw std::runtime_error(err);
    py::list l;
    for (auto& e : ev) {
      py::dict d;
      d["tag"] = Utf8(e.tag);
      d["event_type"] = e.event_type;
      d["start_us"] = e.start_us;
      d["elapsed_us"] = e.elapsed_us;
      d["metadata1"] = e.metadata1;
      d["metadata2"] = e.metadata2;
      d["source"] = e.source;
      l.append(d);
    }
    return l;
  }

  py::list CustomOpStats() {
    py::list l;
    for (auto& s : runner_->CustomOpStats()) {
      py::dict d;
      d["op"] = s.op;
      d["node"] = s.node;
      d["detail"] = s.detail;
      d["calls"] = s.calls;
      d["total_ms"] = s.total_ms;
      l.append(d);
    }
    return l;
  }

  void ResetCustomOpStats() { runner_->ResetCustomOpStats(); }
  double LastRunMs() const { return runner_->last_run_ms(); }
  std::string SignatureKey() const { return runner_->signature_key(); }
  std::string LiteRtVersion() const { return runner_->lib().version; }

 private:
  // Runs `call` (a runner method returning false + an error) without the GIL, one call at a time.
  template <typename Call>
  void Locked(Call call) {
    std::string err;
    bool ok;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);
      ok = call(&err);
    }
    if (!ok) throw std::runtime_error(err);
  }

  std::unique_ptr<Runner> runner_;
  std::mutex mu_;  // one LiteRT compiled model: serialize calls from Python threads
};

}  // namespace

PYBIND11_MODULE(_runtime, m) {
  m.doc() = "keras-csp LiteRT runner (C++ core in kernels/runtime/)";
  m.attr("TESTED_LITERT_MAJOR") = keras_csp::runtime::kTestedLiteRtMajor;
  m.attr("TESTED_LITERT_MINOR") = keras_csp::runtime::kTestedLiteRtMinor;
  m.def("is_tested_litert_version", &keras_csp::runtime::IsTestedLiteRtVersion);
  m.def("custom_op_names", &keras_csp::runtime::CustomOpNames);
  m.def(
      "load_litert",
      [](const std::string& path, const std::string& version, bool allow_untested) {
        std::string err;
        auto lib = keras_csp::runtime::LoadLiteRt(path, version, allow_untested, &err);
        if (!lib) throw std::runtime_error(err);
        return lib->version;
      },
      py::arg("path"), py::arg("version") = "", py::arg("allow_untested_version") = false,
      "Loads and checks libLiteRt.so; returns its version or raises RuntimeError.");
  m.def(
      "check_custom_options",
      [](const std::string& op, py::bytes options, const std::string& numerics) {
        std::string s = options;
        int node = -1;
        std::string err;
        keras_csp::runtime::Numerics n;
        if (!keras_csp::runtime::ResolveNumerics(numerics, "", &n))
          throw py::value_error("numerics must be 'xnnpack', 'builtin' or 'reference'");
        auto k = keras_csp::runtime::CreateNodeKernel(
            op, reinterpret_cast<const uint8_t*>(s.data()), s.size(), &node, &err, n);
        if (!k) throw std::runtime_error(op + ": invalid custom options: " + err);
        return py::make_tuple(node, k->Describe());
      },
      py::arg("op"), py::arg("options"), py::arg("numerics") = "xnnpack",
      "Validates custom options as the op's Init would (for the given numerics); returns "
      "(node, description).");

  py::class_<PyRunner>(m, "Runner")
      .def(py::init<const std::string&, const std::string&, int, bool, bool, const std::string&,
                    const std::string&, bool, bool, const std::string&>(),
           py::arg("litert_library"), py::arg("model_path"), py::arg("num_threads") = 1,
           py::arg("register_custom_ops") = true, py::arg("enable_profiling") = false,
           py::arg("cpu_kernel_mode") = "", py::arg("litert_version") = "",
           py::arg("allow_untested_version") = false, py::arg("capture_stderr") = true,
           py::arg("custom_op_numerics") = "auto")
      .def("inputs", &PyRunner::Inputs)
      .def("outputs", &PyRunner::Outputs)
      .def("set_input", &PyRunner::SetInput)
      .def("invoke", &PyRunner::Invoke)
      .def("get_output_into", &PyRunner::GetOutputInto)
      .def("benchmark", &PyRunner::Benchmark, py::arg("runs"), py::arg("warmup") = 1)
      .def("profile_events", &PyRunner::ProfileEvents)
      .def("custom_op_stats", &PyRunner::CustomOpStats)
      .def("reset_custom_op_stats", &PyRunner::ResetCustomOpStats)
      .def_property_readonly("last_run_ms", &PyRunner::LastRunMs)
      .def_property_readonly("signature_key", &PyRunner::SignatureKey)
      .def_property_readonly("litert_version", &PyRunner::LiteRtVersion)
      .def_property_readonly("custom_op_numerics", &PyRunner::Numerics);
}
