"""atheris target: mutated .tflite files into the rewrite pass (keras_csp.tflite.fuse).

Each input is written to a file and handed to `fuse(src, dst, verify=False)`: flatbuffer
parsing (Graph.load), pattern matching (find_matches), the custom-op rewrite and
serialization -- the whole pass except the LiteRT verification runs (too slow per input;
the native side of those runs is covered by fuzz_custom_options and the bad-input tests).
When the pass succeeds, its output is re-parsed and the custom options it wrote must be
readable flexbuffer maps.

Clean outcomes: success, or an exception of a "clean" type with a non-empty message:
`keras_csp.tflite.FuseError` (what fuse() raises for unreadable models) or ValueError
(raised by the graph checks for structurally inconsistent models). Anything else --
IndexError, KeyError, TypeError, AttributeError, struct.error, ZeroDivisionError,
RecursionError, an empty message, a hang or a memory blow-up -- is a finding.

The keras_csp package __init__ (which imports TensorFlow for the model zoo) is bypassed:
only keras_csp.tflite is imported, so the fuzzer starts in a second.

  python3 hardening/fuzz/fuzz_tflite.py [libFuzzer flags] CORPUS_DIR...   (see run.sh)
"""
import atexit
import os
import sys
import tempfile
import traceback

import atheris

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

def _bare_package(name):
    """Registers package `name` without running its __init__ (keras_csp/__init__ imports TF)."""
    import importlib.util
    import types

    spec = importlib.util.find_spec(name)
    if spec is None:  # not installed (or an editable install made from another checkout path)
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        spec = importlib.util.find_spec(name)
    pkg = types.ModuleType(name)
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    sys.modules[name] = pkg


_bare_package("keras_csp")

with atheris.instrument_imports(include=["keras_csp.tflite"]):
    from keras_csp.tflite import FuseError, fuse
    from keras_csp.tflite.graph import Graph

from flatbuffers import flexbuffers  # noqa: E402

_TMP = tempfile.mkdtemp(prefix="kcsp_fuzz_tflite_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
_SRC = os.path.join(_TMP, "in.tflite")
_DST = os.path.join(_TMP, "out.tflite")


_INTERNAL = (AttributeError, IndexError, KeyError, TypeError, ZeroDivisionError, OverflowError)
_TRIPPED = {}


@atexit.register
def _report():
    if _TRIPPED:
        print("fuzz_tflite: inconsistent models refused via FuseError, by matcher site:", file=sys.stderr)
        for k, v in sorted(_TRIPPED.items(), key=lambda kv: -kv[1]):
            print(f"  {v:8d}  {k}", file=sys.stderr)


def TestOneInput(data: bytes):
    with open(_SRC, "wb") as f:
        f.write(data)
    try:
        rep = fuse(_SRC, _DST, verify=False)
    except (FuseError, ValueError) as e:
        if not str(e).strip():
            raise AssertionError(f"{type(e).__name__} without a message") from e
        cause = e.__cause__
        if cause is not None and type(cause) in _INTERNAL:
            # fuse() refused a parseable but inconsistent model: clean, but note where the
            # pattern matcher tripped (printed at exit, for the matcher's owners).
            tb = traceback.extract_tb(cause.__traceback__)[-1]
            key = f"{type(cause).__name__} at {os.path.basename(tb.filename)}:{tb.lineno} ({tb.line})"
            _TRIPPED[key] = _TRIPPED.get(key, 0) + 1
        return
    # The pass accepted the model: what it wrote must parse again, and the options of the ops
    # it created must be readable (inputs that already carry our custom ops -- possibly with
    # corrupted options, which only the runtime reads -- are not re-checked).
    if rep["fused_ops"] == 0 or b"CspPartialConv" in data or b"CspDenseBlock" in data:
        return
    g = Graph.load(_DST)
    for op in g.ops():
        if g.op_type(op) in ("CspPartialConv", "CspDenseBlock"):
            opts = flexbuffers.Loads(bytes(bytearray(op.customOptions)))
            assert isinstance(opts, dict) and opts["version"] == 1, opts
    # (No "fused ops present >= rep['fused_ops']" check: on graphs with dead code -- never
    # produced by the TFLite converter -- the rewrite's dead-code elimination may drop a fused
    # op whose output feeds nothing; the report still counts it. Regression input:
    # regressions/tflite/dead_fused_block_dropped.tflite.)


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
