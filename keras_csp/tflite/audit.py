"""Graph audit of a .tflite file: ops, tensor dtypes, quantization parameters, requantize hot spots.

Parses the flatbuffer with the TFLite schema module shipped with ai-edge-litert (or TensorFlow), so it
needs no interpreter. `inspect_tflite(path_or_bytes)` returns a `TFLiteAudit`:

- `op_counts()`               {"CONV_2D": n, ...}
- `inner_quantize_ops()`      QUANTIZE / DEQUANTIZE ops that are not at the graph boundary (a boundary
                              op reads a graph input or writes a graph output: the float/uint8 <-> int8
                              I/O conversion). Each inner one is a requantize costing latency.
- `concat_scale_mismatches()` CONCATENATION ops whose inputs do not all share the output's scale and
                              zero point (the int8 kernel then rescales every input).
- `format()`                  a human-readable report (what `keras-csp inspect` prints).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

QUANT_OPS = ("QUANTIZE", "DEQUANTIZE")


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - older installs
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _enum_names(enum_cls):
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass
class TensorInfo:
    index: int
    name: str
    dtype: str
    shape: List[int]
    scale: List[float] = field(default_factory=list)
    zero_point: List[int] = field(default_factory=list)
    quantized_dimension: int = 0

    @property
    def per_channel(self):
        return len(self.scale) > 1

    def qparams(self):
        if not self.scale:
            return "-"
        if self.per_channel:
            return f"per-channel[{len(self.scale)}] axis={self.quantized_dimension} " \
                   f"scale {min(self.scale):.3g}..{max(self.scale):.3g}"
        return f"scale={self.scale[0]:.6g} zp={self.zero_point[0]}"

    def to_dict(self):
        return {"index": self.index, "name": self.name, "dtype": self.dtype, "shape": self.shape,
                "scale": self.scale, "zero_point": self.zero_point}


@dataclass
class OpInfo:
    index: int
    op: str
    inputs: List[int]
    outputs: List[int]


@dataclass
class TFLiteAudit:
    tensors: List[TensorInfo]
    ops: List[OpInfo]
    inputs: List[int]
    outputs: List[int]
    metadata_names: List[str]
    num_subgraphs: int = 1
    description: Optional[str] = None

    def op_counts(self) -> Dict[str, int]:
        counts = {}
        for op in self.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        return dict(sorted(counts.items()))

    def is_boundary(self, op: OpInfo):
        return any(i in self.inputs for i in op.inputs) or any(o in self.outputs for o in op.outputs)

    def inner_quantize_ops(self) -> List[OpInfo]:
        return [op for op in self.ops if op.op in QUANT_OPS and not self.is_boundary(op)]

    def boundary_quantize_ops(self) -> List[OpInfo]:
        return [op for op in self.ops if op.op in QUANT_OPS and self.is_boundary(op)]

    def concat_scale_mismatches(self, rtol=1e-6):
        """[(op, [input tensors whose (scale, zp) differ from the output's])] for CONCATENATION ops."""
        bad = []
        for op in self.ops:
            if op.op != "CONCATENATION":
                continue
            out = self.tensors[op.outputs[0]]
            if not out.scale:
                continue
            diff = [self.tensors[i] for i in op.inputs
                    if not self.tensors[i].scale
                    or not np.isclose(self.tensors[i].scale[0], out.scale[0], rtol=rtol, atol=0)
                    or self.tensors[i].zero_point[0] != out.zero_point[0]]
            if diff:
                bad.append((op, diff))
        return bad

    def io_types(self):
        return ([self.tensors[i].dtype for i in self.inputs], [self.tensors[i].dtype for i in self.outputs])

    def to_dict(self):
        return {
            "ops": self.op_counts(),
            "inputs": [self.tensors[i].to_dict() for i in self.inputs],
            "outputs": [self.tensors[i].to_dict() for i in self.outputs],
            "inner_quantize_ops": [{"index": o.index, "op": o.op,
                                    "input": self.tensors[o.inputs[0]].name} for o in self.inner_quantize_ops()],
            "concat_scale_mismatches": [{"index": op.index, "output": self.tensors[op.outputs[0]].name,
                                         "inputs": [t.name for t in ts]}
                                        for op, ts in self.concat_scale_mismatches()],
            "tensor_dtypes": self.dtype_counts(),
            "metadata": self.metadata_names,
        }

    def dtype_counts(self):
        counts = {}
        for t in self.tensors:
            counts[t.dtype] = counts.get(t.dtype, 0) + 1
        return dict(sorted(counts.items()))

    def format(self, verbose=False):
        lines = []
        ins, outs = self.io_types()
        lines.append(f"inputs: {', '.join(f'{self.tensors[i].name} {self.tensors[i].dtype} {self.tensors[i].shape} {self.tensors[i].qparams()}' for i in self.inputs)}")
        lines.append(f"outputs: {', '.join(f'{self.tensors[i].name} {self.tensors[i].dtype} {self.tensors[i].shape} {self.tensors[i].qparams()}' for i in self.outputs)}")
        lines.append(f"ops ({len(self.ops)}):")
        for name, n in self.op_counts().items():
            lines.append(f"  {name:28s} {n}")
        lines.append("tensor dtypes: " + ", ".join(f"{k} {v}" for k, v in self.dtype_counts().items()))
        if self.metadata_names:
            lines.append("metadata: " + ", ".join(self.metadata_names))
        if verbose:
            lines.append("graph:")
            for op in self.ops:
                i = ", ".join(f"{self.tensors[t].name}:{self.tensors[t].dtype}({self.tensors[t].qparams()})"
                              for t in op.inputs if t >= 0)
                o = ", ".join(f"{self.tensors[t].name}:{self.tensors[t].dtype}({self.tensors[t].qparams()})"
                              for t in op.outputs)
                lines.append(f"  #{op.index:<3d} {op.op:20s} {i} -> {o}")
        inner = self.inner_quantize_ops()
        lines.append(f"QUANTIZE/DEQUANTIZE inside the graph: {len(inner)}")
        for op in inner:
            t_in, t_out = self.tensors[op.inputs[0]], self.tensors[op.outputs[0]]
            lines.append(f"  !! #{op.index} {op.op} {t_in.name} ({t_in.dtype} {t_in.qparams()}) -> "
                         f"{t_out.dtype} {t_out.qparams()}")
        mism = self.concat_scale_mismatches()
        lines.append(f"CONCATENATION ops with input scales differing from the output: {len(mism)}")
        for op, ts in mism:
            out = self.tensors[op.outputs[0]]
            lines.append(f"  !! #{op.index} -> {out.name} ({out.qparams()}): "
                         + "; ".join(f"{t.name} ({t.qparams()})" for t in ts))
        return "\n".join(lines)


def _read_bytes(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    with open(model, "rb") as f:
        return f.read()


def inspect_tflite(model) -> TFLiteAudit:
    """Audit a .tflite given as a path or bytes. Raises ValueError for anything that is not a TFLite model."""
    buf = _read_bytes(model)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError(f"not a TFLite flatbuffer (missing the 'TFL3' identifier; {len(buf)} bytes)")
    schema = _schema()
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    try:
        m = schema.Model.GetRootAs(buf, 0)
        if m.SubgraphsLength() < 1:
            raise ValueError("the model has no subgraph")
        codes = []
        for i in range(m.OperatorCodesLength()):
            c = m.OperatorCodes(i)
            code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
            name = op_names.get(code, f"OP_{code}")
            if name == "CUSTOM":
                name = f"CUSTOM:{c.CustomCode().decode()}" if c.CustomCode() else "CUSTOM"
            codes.append(name)
        g = m.Subgraphs(0)
        tensors = []
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            q = t.Quantization()
            scale, zp, qdim = [], [], 0
            if q is not None and q.ScaleLength():
                scale = [float(s) for s in q.ScaleAsNumpy()]
                zp = [int(z) for z in q.ZeroPointAsNumpy()] if q.ZeroPointLength() else [0] * len(scale)
                qdim = q.QuantizedDimension()
            shape = [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []
            tensors.append(TensorInfo(i, t.Name().decode(errors="replace") if t.Name() else f"t{i}",
                                      type_names.get(t.Type(), str(t.Type())).lower(), shape, scale, zp, qdim))
        ops = []
        for i in range(g.OperatorsLength()):
            o = g.Operators(i)
            ins = [int(x) for x in o.InputsAsNumpy()] if o.InputsLength() else []
            outs = [int(x) for x in o.OutputsAsNumpy()] if o.OutputsLength() else []
            ops.append(OpInfo(i, codes[o.OpcodeIndex()], ins, outs))
        inputs = [int(x) for x in g.InputsAsNumpy()] if g.InputsLength() else []
        outputs = [int(x) for x in g.OutputsAsNumpy()] if g.OutputsLength() else []
        meta = [m.Metadata(i).Name().decode() for i in range(m.MetadataLength())]
        desc = m.Description().decode(errors="replace") if m.Description() else None
        return TFLiteAudit(tensors, ops, inputs, outputs, meta, m.SubgraphsLength(), desc)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - any flatbuffer decoding error means a malformed file
        raise ValueError(f"malformed TFLite flatbuffer: {type(e).__name__}: {e}") from None
