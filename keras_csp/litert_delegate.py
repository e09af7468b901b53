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

__all__ = ["delegate", "library_path", "delegate_report", "DelegateError"]

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
