"""The TFLite flatbuffer schema (generated Python object API).

Loaded from the ai-edge-litert wheel (no TensorFlow import needed), falling back to
TensorFlow's copy.
"""
import importlib

_CANDIDATES = (
    "ai_edge_litert.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
)


def _load():
    errors = []
    for name in _CANDIDATES:
        try:
            return importlib.import_module(name)
        except Exception as e:  # pragma: no cover - depends on installed wheels
            errors.append(f"{name}: {e}")
    raise ImportError("no TFLite schema module found (install ai-edge-litert): " + "; ".join(errors))


schema = _load()
BuiltinOperator = schema.BuiltinOperator
BuiltinOptions = schema.BuiltinOptions
TensorType = schema.TensorType
Padding = schema.Padding
ActivationFunctionType = schema.ActivationFunctionType

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}


def op_name(code: int) -> str:
    return _OP_NAMES.get(code, f"OP_{code}")


def type_name(t: int) -> str:
    return _TYPE_NAMES.get(t, f"TYPE_{t}")
