"""keras-csp as a delegate for the stock LiteRT interpreter.

A fused `.tflite` holds CUSTOM ops (`CspPartialConv`, `CspDenseBlock`, ...) that a stock
interpreter cannot resolve. `delegate()` loads `libkeras_csp_delegate.so` (built by
`pip install`) through LiteRT's own `load_delegate`; the delegate claims those nodes and runs them
on the same kernels as `keras_csp.runtime.Model`:

    from ai_edge_litert.interpreter import Interpreter
    import keras_csp
    it = Interpreter(model_path="m_fused.tflite", experimental_delegates=[keras_csp.delegate()])

Numerics: `"auto"` matches the kernels that run the rest of the graph. The stock interpreter
applies its default XNNPACK delegate after ours (measured with ai-edge-litert 2.3, see
`tests/test_delegate.py`), so fused ops round as XNNPACK does; with
`experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES` they round as
TFLite's builtin kernels. The BUILTIN_REF resolver cannot be detected: pass `numerics="reference"`.
"""
from __future__ import annotations

import ctypes
import json
import os
import time

import numpy as np

__all__ = ["delegate", "library_path", "delegate_report", "DelegateError", "StockModel"]

_LIBRARY = "libkeras_csp_delegate.so"
NUMERICS = ("auto", "xnnpack", "builtin", "reference")


class DelegateError(ValueError):
    """The delegate could not be loaded (library missing, bad options, untested runtime)."""


def library_path() -> str:
    """Path of the delegate library installed beside this package."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), _LIBRARY)
    if not os.path.exists(path):
        raise DelegateError(f"{path} is missing: reinstall keras-csp (pip install -e .) to build it")
    return path


def delegate(numerics: str = "auto", num_threads: int | None = None, *,
             allow_untested_version: bool = False):
    """Loads the keras-csp delegate for `ai_edge_litert.interpreter.Interpreter`.

    numerics: "auto" (match the kernels around the fused ops), "xnnpack", "builtin" or
        "reference" (pass this with the BUILTIN_REF op resolver).
    num_threads: threads of the fused ops; None follows the interpreter's `num_threads`.
    allow_untested_version: run under an ai-edge-litert outside the tested 2.3.x range. The
        delegate reads the interpreter's internal structs, so other versions are refused by default.
    """
    from ai_edge_litert import interpreter as litert_interpreter

    from . import runtime

    if numerics not in NUMERICS:
        raise DelegateError(f"numerics must be one of {', '.join(NUMERICS)}, got {numerics!r}")
    if num_threads is not None and (not isinstance(num_threads, int) or isinstance(num_threads, bool)
                                    or not 1 <= num_threads <= 256):
        raise DelegateError(f"num_threads must be an int in [1, 256] or None, got {num_threads!r}")
    options = {"litert_version": runtime.litert_version(), "numerics": numerics,
               "num_threads": num_threads or 0,
               "allow_untested_version": "true" if allow_untested_version else "false"}
    try:
        return litert_interpreter.load_delegate(library_path(), options)
    except ValueError as e:
        raise DelegateError(str(e)) from None


def delegate_report(d) -> dict:
    """What the delegate did: the numerics in use, its threads, and per claimed node the
    calls and total milliseconds (since the delegate was last applied to an interpreter)."""
    lib = ctypes.CDLL(library_path())
    fn = lib.keras_csp_delegate_report
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    fn.restype = ctypes.c_size_t
    ptr = d._get_native_delegate_pointer()
    n = fn(ptr, None, 0)
    buf = ctypes.create_string_buffer(n)
    fn(ptr, buf, n)
    return json.loads(buf.value.decode("utf-8"))


_RESOLVERS = ("auto", "builtin_without_default_delegates", "builtin_ref")


class StockModel:
    """A `.tflite` in the stock `ai_edge_litert` Interpreter with the keras-csp delegate: the part of
    `keras_csp.runtime.Model`'s interface that `keras-csp run --stock` and `bench` use.

    op_resolver: "auto" (the stock default: builtin ops + XNNPACK), "builtin_without_default_delegates"
    (TFLite's builtin kernels) or "builtin_ref" (reference kernels; numerics "auto" then rounds as
    "builtin", pass numerics="reference").
    """

    def __init__(self, path, num_threads: int = 1, numerics: str = "auto", op_resolver: str = "auto"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from .runtime import TensorDetails

        if op_resolver not in _RESOLVERS:
            raise DelegateError(f"op_resolver must be one of {', '.join(_RESOLVERS)}, got {op_resolver!r}")
        self.delegate = delegate(numerics=numerics)
        self._it = Interpreter(model_path=str(path), num_threads=num_threads,
                               experimental_delegates=[self.delegate],
                               experimental_op_resolver_type=getattr(OpResolverType, op_resolver.upper()))
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()
        self._out = self._it.get_output_details()
        self._inputs = [TensorDetails(d["name"], tuple(int(s) for s in d["shape"]), d["dtype"],
                                      float(d["quantization"][0]), int(d["quantization"][1]),
                                      "per_tensor" if d["quantization"][0] else "none") for d in self._in]
        self._stats_base = {}
        self.last_run_ms = 0.0

    def input_details(self):
        return list(self._inputs)

    def set_inputs(self, *inputs):
        if len(inputs) != len(self._in):
            raise ValueError(f"expected {len(self._in)} inputs, got {len(inputs)}")
        for d, x in zip(self._in, inputs):
            self._it.set_tensor(d["index"], np.ascontiguousarray(x, dtype=d["dtype"]).reshape(d["shape"]))

    def invoke(self):
        t0 = time.perf_counter()
        self._it.invoke()
        self.last_run_ms = (time.perf_counter() - t0) * 1e3

    def outputs(self):
        return [self._it.get_tensor(d["index"]).copy() for d in self._out]

    def run(self, *inputs):
        self.set_inputs(*inputs)
        self.invoke()
        return self.outputs()

    def benchmark(self, runs: int = 20, warmup: int = 3, inputs=None):
        if inputs is not None:
            self.set_inputs(*inputs)
        for _ in range(warmup):
            self._it.invoke()
        lat = []
        for _ in range(runs):
            self.invoke()
            lat.append(self.last_run_ms)
        return lat

    def report(self) -> dict:
        return delegate_report(self.delegate)

    def custom_op_stats(self, reset: bool = False):
        """Per claimed node, as Model.custom_op_stats: op, node, detail, calls, total_ms."""
        rows = []
        for n in self.report()["nodes"]:
            calls0, ms0 = self._stats_base.get(n["node_index"], (0, 0.0))
            rows.append({"op": n["op"], "node": n["node_index"], "detail": n["detail"],
                         "calls": n["calls"] - calls0, "total_ms": n["total_ms"] - ms0})
            if reset:
                self._stats_base[n["node_index"]] = (n["calls"], n["total_ms"])
        return rows
