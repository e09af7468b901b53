"""Run `.tflite` models on LiteRT with keras-csp's fused custom ops.

`Model(path)` loads the LiteRT C API from the installed `ai-edge-litert` wheel
(`ai_edge_litert/libLiteRt.so`, tested with 2.3.x), registers our custom ops (`CspPartialConv`,
`CspDenseBlock`, `CspBlock`, `KcspDepthwiseConv2D`, `KcspConv2D`, `KcspInvertedResidual`, `KcspAvgPool2D`,
plus the `KcspTestAffine` test op), and runs the model on the CPU: builtin ops
go to XNNPACK as usual, fused ops to our kernels. It runs unfused models too, so fused vs
builtin comparisons use the same runtime.

    m = Model("model_fused.tflite", num_threads=1)
    (logits,) = m.run(x)                 # numpy in, numpy out
    m.last_run_ms                        # wall time of the last LiteRT invocation
    m.benchmark(runs=50, warmup=5)       # list of latencies (ms)
    m.custom_op_stats()                  # time spent in each fused node
    Model(p, enable_profiling=True).profile()   # LiteRT per-op events of the last run

The native core (kernels/runtime/, plain C++17) is shared with the Android app and native
benchmarks; this module is a thin numpy layer over its pybind11 binding `keras_csp._runtime`.

Notes (LiteRT 2.3.0, the tested release):
* A fused model run WITHOUT our custom ops (stock ai-edge-litert interpreter, or
  `Model(path, register_custom_ops=False)`) fails with LiteRT's own message
  "Encountered unresolved custom op: CspPartialConv. See instructions:
  https://www.tensorflow.org/lite/guide/ops_custom  Node number N (CspPartialConv) failed to
  prepare." -- we force tensor allocation at load time, so `Model()` raises ModelLoadError with
  that text instead of failing at the first run.
* LiteRT ignores the statuses returned by custom-op callbacks; our callbacks record errors
  (malformed / inconsistent custom options, shape mismatches) and the runner raises them after
  loading or running, so bad options surface as ModelLoadError, never as a crash.
* Constant inputs of custom ops must be 64-byte aligned in the file (LiteRT checks host buffer
  alignment); `keras_csp.tflite.graph.Graph.save` aligns every buffer.
* The LiteRT profiler (`enable_profiling=True`) is plumbed through, but LiteRT 2.3.0 returns no
  profiler from LiteRtCompiledModelGetProfiler, so `profile()` raises; per-op timing comes from
  `custom_op_stats()` (time inside each fused node) and `keras-csp run --breakdown` (each fused
  pattern alone, builtin vs fused).
* Tested with ai-edge-litert 2.3.x only: other versions raise LiteRtVersionError unless
  `allow_untested_version=True`.
* The fused ops run on this CPU's best int8 kernels; the environment variable
  KERAS_CSP_KERNEL_VARIANT (e.g. `avx2`, read once per process) picks another one the CPU has,
  to try the kernels of a weaker CPU (`keras_csp.kernels.resolve_variant()` says which runs).
* Time a model alone in its process (`keras-csp bench --isolated N`): other models loaded beside
  it keep idle thread pools that slowed its fused ops by up to ~7 % at 2 threads.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import numpy as np

from . import quiet

__all__ = [
    "Model", "TensorDetails", "RuntimeError_", "LiteRtVersionError", "ModelLoadError",
    "InputError", "litert_library_path", "litert_version", "custom_op_names",
]


class RuntimeError_(RuntimeError):
    """Base class of keras-csp runtime errors."""


class LiteRtVersionError(RuntimeError_):
    """The installed LiteRT is outside the tested version range."""


class ModelLoadError(RuntimeError_):
    """The model file is missing or malformed, or LiteRT cannot compile it."""


class InputError(RuntimeError_, ValueError):
    """Wrong number, shape or dtype of inputs."""


_DTYPES = {
    "float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int8": np.int8,
    "bool": np.bool_, "int64": np.int64, "float64": np.float64, "int16": np.int16,
    "float16": np.float16,
}


@dataclass(frozen=True)
class TensorDetails:
    name: str
    shape: tuple
    dtype: type
    scale: float = 0.0               # per-tensor quantization (0.0 if not quantized)
    zero_point: int = 0
    quantization: str = "none"       # "none" | "per_tensor" | "per_channel"
    scales: tuple = field(default_factory=tuple)
    zero_points: tuple = field(default_factory=tuple)
    quantized_dimension: int = 0

    def as_dict(self):
        return {
            "name": self.name, "shape": list(self.shape), "dtype": np.dtype(self.dtype).name,
            "quantization": self.quantization, "scale": self.scale,
            "zero_point": self.zero_point, "scales": list(self.scales),
            "zero_points": list(self.zero_points),
            "quantized_dimension": self.quantized_dimension,
        }


def _native():
    try:
        from keras_csp import _runtime
    except ImportError as e:  # pragma: no cover - build problem
        raise RuntimeError_(
            "keras_csp._runtime is not built; run `pip install -e . --no-build-isolation`"
        ) from e
    return _runtime


def litert_library_path() -> str:
    """Path of libLiteRt.so inside the installed ai-edge-litert wheel."""
    env = os.environ.get("KERAS_CSP_LITERT_LIBRARY")
    if env:
        return env
    try:
        import ai_edge_litert
    except ImportError as e:
        raise RuntimeError_("ai-edge-litert is not installed (pip install ai-edge-litert==2.3.0)") from e
    return os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so")


def litert_version() -> str:
    """Version of the installed ai-edge-litert wheel ("" if unknown)."""
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # pragma: no cover
        try:
            import ai_edge_litert

            return getattr(ai_edge_litert, "__version__", "")
        except ImportError:
            return ""


def custom_op_names() -> list[str]:
    return list(_native().custom_op_names())


def _classify(msg: str) -> type:
    if "unsupported LiteRT version" in msg or "cannot determine the LiteRT version" in msg:
        return LiteRtVersionError
    return ModelLoadError


def _check_flatbuffer(path: str):
    """LiteRT 2.3's LiteRtCreateModelFromFile does not verify the flatbuffer: a corrupt file can
    crash the process (segfault / bus error inside libLiteRt.so, see hardening/README.md).
    Parse it with the bounds-checked Python reader and check its indices first."""
    from .tflite.graph import Graph

    try:
        Graph.load(path).validate()
    except Exception as e:  # any parse failure means: do not hand this file to LiteRT
        raise ModelLoadError(
            f"could not load model {path!r}: not a well-formed .tflite flatbuffer "
            f"({type(e).__name__}: {e}); refused before LiteRT, whose loader does not verify "
            "files") from None


class Model:
    """A .tflite model compiled by LiteRT for the CPU, with keras-csp custom ops registered.

    Args:
      path: .tflite file.
      num_threads: CPU threads for LiteRT/XNNPACK and for our fused ops (a persistent pool per
        model; the fused ops give the same bits at every thread count).
      register_custom_ops: False runs the model as plain LiteRT would (a model that contains
        our custom ops then fails with LiteRT's own "unresolved custom op" error).
      enable_profiling: collect LiteRT's per-op profiler events (see `profile()`).
      cpu_kernel_mode: "" (XNNPACK delegate, default), "builtin" or "reference" (TFLite kernels).
      custom_op_numerics: how our fused ops round. "auto" (default) matches cpu_kernel_mode, so a
        fused model gives the same bits as the unfused one: "xnnpack" (fp32 requantization,
        XNNPACK's LEAKY_RELU) for the default mode, "builtin" (TFLite's optimized kernels: fixed
        point, ties up) for "builtin" and also for "reference" (LiteRT 2.3's reference mode
        still runs CONV_2D with the optimized rounding), or explicitly "reference" (TFLite's
        reference kernels as in the interpreter's BUILTIN_REF resolver: ties away from zero).
      litert_library / litert_version: override the library path / its version.
      allow_untested_version: run on a LiteRT outside the tested range anyway.
      verify_file: parse + structurally check the file in Python before LiteRT loads it
        (LiteRT's loader crashes on some corrupt files instead of returning an error).
      verbose: let LiteRT print its INFO / WARNING log (accelerator registry, delegates). By
        default (None: `keras-csp --verbose` / KERAS_CSP_VERBOSE) the log is captured and only
        attached to load and compile errors.
    """

    def __init__(self, path, num_threads: int = 1, *, register_custom_ops: bool = True,
                 enable_profiling: bool = False, cpu_kernel_mode: str = "",
                 custom_op_numerics: str = "auto",
                 litert_library: str | None = None, litert_version: str | None = None,
                 allow_untested_version: bool = False, verify_file: bool = True,
                 verbose: bool | None = None):
        path = os.fspath(path)
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
        if not os.path.isfile(path):
            raise ModelLoadError(f"model file not found: {path!r}")
        if verify_file:
            _check_flatbuffer(path)
        lib = litert_library or litert_library_path()
        version = litert_version if litert_version is not None else globals()["litert_version"]()
        self.path = path
        self.num_threads = num_threads
        try:
            self._r = _native().Runner(
                lib, path, num_threads=num_threads, register_custom_ops=register_custom_ops,
                enable_profiling=enable_profiling, cpu_kernel_mode=cpu_kernel_mode,
                litert_version=version, allow_untested_version=allow_untested_version,
                custom_op_numerics=custom_op_numerics,
                capture_stderr=not (quiet.is_verbose() if verbose is None else verbose),
            )
        except RuntimeError as e:
            raise _classify(str(e))(str(e)) from None
        self._lock = threading.RLock()  # run() = set inputs + invoke + read outputs, atomically
        self._inputs = [self._details(d) for d in self._r.inputs()]
        self._outputs = [self._details(d) for d in self._r.outputs()]

    @staticmethod
    def _details(d) -> TensorDetails:
        q = {0: "none", 1: "per_tensor", 2: "per_channel"}.get(d["quantization"], "none")
        return TensorDetails(
            name=d["name"], shape=tuple(d["shape"]), dtype=_DTYPES.get(d["dtype"], np.uint8),
            scale=float(d["scale"]), zero_point=int(d["zero_point"]), quantization=q,
            scales=tuple(d["scales"]), zero_points=tuple(int(z) for z in d["zero_points"]),
            quantized_dimension=int(d["quantized_dimension"]),
        )

    # ---- introspection ----
    def input_details(self) -> list[TensorDetails]:
        return list(self._inputs)

    def output_details(self) -> list[TensorDetails]:
        return list(self._outputs)

    @property
    def litert_version(self) -> str:
        return self._r.litert_version

    @property
    def custom_op_numerics(self) -> str:
        """The rounding our fused ops use here: "xnnpack", "builtin" or "reference"."""
        return self._r.custom_op_numerics

    @property
    def last_run_ms(self) -> float:
        """Wall time (ms) of the last LiteRT invocation (excludes input/output copies)."""
        return self._r.last_run_ms

    # ---- running ----
    def set_inputs(self, *inputs):
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            by_name = inputs[0]
            missing = [d.name for d in self._inputs if d.name not in by_name]
            if missing:
                raise InputError(f"missing inputs {missing}; model inputs are "
                                 f"{[d.name for d in self._inputs]}")
            inputs = tuple(by_name[d.name] for d in self._inputs)
        if len(inputs) != len(self._inputs):
            raise InputError(f"model has {len(self._inputs)} input(s) "
                             f"{[d.name for d in self._inputs]}, got {len(inputs)}")
        for i, (x, d) in enumerate(zip(inputs, self._inputs)):
            a = np.asarray(x)
            if a.dtype != np.dtype(d.dtype):
                raise InputError(f"input {i} ({d.name!r}) must be {np.dtype(d.dtype).name}, "
                                 f"got {a.dtype.name}")
            if tuple(a.shape) != tuple(d.shape):
                raise InputError(f"input {i} ({d.name!r}) must have shape {tuple(d.shape)}, "
                                 f"got {tuple(a.shape)}")
            try:
                self._r.set_input(i, np.ascontiguousarray(a))
            except RuntimeError as e:
                raise InputError(str(e)) from None

    def invoke(self):
        try:
            self._r.invoke()
        except RuntimeError as e:
            raise RuntimeError_(str(e)) from None

    def outputs(self) -> list[np.ndarray]:
        outs = []
        for i, d in enumerate(self._outputs):
            a = np.empty(d.shape, dtype=d.dtype)
            self._r.get_output_into(i, a)
            outs.append(a)
        return outs

    def run(self, *inputs) -> list[np.ndarray]:
        """Runs one inference: positional numpy arrays (or one dict name -> array)."""
        with self._lock:
            self.set_inputs(*inputs)
            self.invoke()
            return self.outputs()

    __call__ = run

    def benchmark(self, runs: int = 20, warmup: int = 3, inputs=None) -> list[float]:
        """Latencies (ms) of `runs` invocations after `warmup` untimed ones.

        Uses `inputs` if given, else the current inputs (zeros if never set)."""
        with self._lock:
            if inputs is not None:
                self.set_inputs(*inputs)
            try:
                return list(self._r.benchmark(int(runs), int(warmup)))
            except RuntimeError as e:
                raise RuntimeError_(str(e)) from None

    # ---- per-op timing ----
    def profile(self) -> list[dict]:
        """LiteRT profiler events of the last invocation (needs enable_profiling=True)."""
        try:
            return list(self._r.profile_events())
        except RuntimeError as e:
            raise RuntimeError_(str(e)) from None

    def custom_op_stats(self, reset: bool = False) -> list[dict]:
        """Per fused node: op, node id, description, calls, total_ms inside our kernel."""
        s = list(self._r.custom_op_stats())
        if reset:
            self._r.reset_custom_op_stats()
        return s

    def __repr__(self):
        return (f"Model({self.path!r}, num_threads={self.num_threads}, "
                f"inputs={[(d.name, d.shape) for d in self._inputs]})")
