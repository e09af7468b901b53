// pybind11 bindings for the keras_csp native kernels: `keras_csp._kernels`.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "keras_csp/cpu_features.h"

namespace py = pybind11;

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "keras-csp native kernels";
  m.attr("__version__") = "0.1.0";
  m.def("compiled_arch", &keras_csp::compiled_arch);
  m.def("cpu_features", []() {
    const auto& f = keras_csp::cpu_features();
    py::dict d;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["avx512f"] = f.avx512f;
    d["avx512bw"] = f.avx512bw;
    d["avx512vnni"] = f.avx512vnni;
    d["neon"] = f.neon;
    d["neon_dotprod"] = f.neon_dotprod;
    return d;
  }, "CPU features detected at run time.");
}
