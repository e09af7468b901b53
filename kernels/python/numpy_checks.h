// numpy argument checks shared by the pybind11 modules (`_kernels`, `_runtime`): dtype, rank,
// C-contiguity and writability, written once so both modules reject bad arrays with the same
// clear Python exceptions (TypeError for a wrong dtype, ValueError for the rest).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace keras_csp::python {

namespace py = pybind11;

template <typename T>
const char* DtypeName();
template <>
inline const char* DtypeName<int8_t>() { return "int8"; }
template <>
inline const char* DtypeName<float>() { return "float32"; }
template <>
inline const char* DtypeName<int32_t>() { return "int32"; }

// dtype, rank (ndim < 0: any), C-contiguity, writability. Sizes are the C++ layer's to check.
template <typename T>
void CheckArray(const py::array& a, const char* name, int ndim, bool writable) {
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + " must have dtype " + DtypeName<T>() + ", got " +
                         std::string(py::str(a.dtype())));
  if (ndim >= 0 && a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                          std::to_string(a.ndim()) + "-D");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable");
}

// The same contiguity rule for any buffer-protocol object (bytes, numpy arrays, memoryviews).
inline void CheckContiguous(const py::buffer_info& info, const char* name) {
  py::ssize_t expect = info.itemsize;
  for (py::ssize_t d = info.ndim - 1; d >= 0; --d) {
    if (info.shape[d] > 1 && info.strides[d] != expect)
      throw py::value_error(std::string(name) + " must be C-contiguous");
    expect *= info.shape[d];
  }
}

inline size_t BufferBytes(const py::buffer_info& info) {
  return static_cast<size_t>(info.size) * static_cast<size_t>(info.itemsize);
}

template <typename T>
const T* CPtr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* MPtr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

struct Dims {
  int n, h, w, c;
  bool operator==(const Dims& o) const { return n == o.n && h == o.h && w == o.w && c == o.c; }
};

// NHWC dimensions of a 4-D array (rank checked by CheckArray first).
inline Dims DimsOf(const py::array& a) {
  for (int i = 0; i < 4; ++i)
    if (a.shape(i) > (1 << 24)) throw py::value_error("dimension too large");
  return {static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), static_cast<int>(a.shape(2)),
          static_cast<int>(a.shape(3))};
}

// `out` argument of an op: None allocates an NHWC array of `want`; an array must match it.
template <typename T>
py::array OutputArray(const py::object& out_obj, const Dims& want) {
  if (out_obj.is_none())
    return py::array_t<T>(std::vector<py::ssize_t>{want.n, want.h, want.w, want.c});
  py::array out = out_obj.cast<py::array>();
  CheckArray<T>(out, "out", 4, true);
  if (!(DimsOf(out) == want)) throw py::value_error("out has the wrong shape");
  return out;
}

}  // namespace keras_csp::python
