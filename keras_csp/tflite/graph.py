"""Read / modify / write .tflite models with the flatbuffers object API.

`Graph` wraps a `ModelT` and its main subgraph with the small set of helpers the rewrite pass
needs: producers/consumers of tensors, constant buffers as numpy arrays, adding tensors,
buffers and operator codes, and serialization.
"""
from __future__ import annotations

import copy
import os

import flatbuffers
import numpy as np

from .schema import BuiltinOperator, TensorType, op_name, schema

_NP = {
    TensorType.FLOAT32: np.float32, TensorType.INT32: np.int32, TensorType.UINT8: np.uint8,
    TensorType.INT8: np.int8, TensorType.INT64: np.int64, TensorType.INT16: np.int16,
    TensorType.BOOL: np.bool_, TensorType.FLOAT16: np.float16,
}
_TT = {np.dtype(v): k for k, v in _NP.items()}


def np_dtype(tensor_type: int):
    try:
        return _NP[tensor_type]
    except KeyError:
        raise ValueError(f"unsupported tensor type {tensor_type}") from None


BUFFER_ALIGNMENT = 64


class _AlignedBuffer:
    """Packs a BufferT with its data vector aligned to BUFFER_ALIGNMENT bytes."""

    def __init__(self, buf):
        self.buf = buf

    def Pack(self, builder):
        b = self.buf
        data = None
        if b.data is not None and len(b.data):
            payload = np.asarray(b.data, np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head: builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, b.offset or 0)
        schema.BufferAddSize(builder, b.size or 0)
        return schema.BufferEnd(builder)


class Graph:
    def __init__(self, model):
        self.model = model
        if not model.subgraphs:
            raise ValueError("model has no subgraphs")
        self.sg = model.subgraphs[0]
        if model.buffers is None:
            model.buffers = []
        if model.operatorCodes is None:
            model.operatorCodes = []

    # ---- io ----
    @classmethod
    def load(cls, path_or_bytes) -> "Graph":
        if isinstance(path_or_bytes, (bytes, bytearray)):
            data = bytes(path_or_bytes)
        else:
            with open(os.fspath(path_or_bytes), "rb") as f:
                data = f.read()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("not a TFLite flatbuffer (missing 'TFL3' identifier)")
        m = schema.Model.GetRootAsModel(data, 0)
        g = cls(schema.ModelT.InitFromObj(m))
        g.validate()
        return g

    _NO_INPUT_OPS = {"VAR_HANDLE", "CALL_ONCE", "CUSTOM"}
    _ZP_RANGE = {TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255), TensorType.INT16: (-32768, 32767)}

    def to_bytes(self) -> bytes:
        """Serializes the model. Every constant buffer is 64-byte aligned in the file: LiteRT
        hands constant inputs of custom ops to the kernel as host tensor buffers, which it
        requires to be 64-byte aligned (LITERT_HOST_MEMORY_BUFFER_ALIGNMENT)."""
        saved = self.model.buffers
        self.model.buffers = [_AlignedBuffer(b) for b in saved]
        try:
            b = flatbuffers.Builder(1024)
            b.Finish(self.model.Pack(b), file_identifier=b"TFL3")
            return bytes(b.Output())
        finally:
            self.model.buffers = saved

    def save(self, path):
        with open(os.fspath(path), "wb") as f:
            f.write(self.to_bytes())

    # ---- structural validation ----
    _ELEM_SIZE = {TensorType.FLOAT32: 4, TensorType.INT32: 4, TensorType.UINT8: 1, TensorType.INT8: 1,
                  TensorType.INT64: 8, TensorType.INT16: 2, TensorType.BOOL: 1, TensorType.FLOAT16: 2}

    _NO_INPUT_OPS = {"VAR_HANDLE", "CALL_ONCE", "CUSTOM"}
    _ZP_RANGE = {TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255), TensorType.INT16: (-32768, 32767)}

    def _check_strings(self):
        """Every string outside the tensors (subgraph, signature and metadata names, the
        description): the Python reader silently truncates a string whose length field points past
        the end of the file, LiteRT reads past the buffer instead. Such a string runs into the
        binary data that follows it, so it contains a NUL byte; valid names never do."""
        m = self.model
        named = [("model description", m.description)]
        named += [(f"subgraph {i} name", sg.name) for i, sg in enumerate(m.subgraphs or [])]
        named += [(f"metadata {i} name", md.name) for i, md in enumerate(m.metadata or [])]
        for i, sd in enumerate(m.signatureDefs or []):
            named.append((f"signature {i} key", sd.signatureKey))
            for kind in ("inputs", "outputs"):
                named += [(f"signature {i} {kind}[{j}] name", tm.name)
                          for j, tm in enumerate(getattr(sd, kind) or [])]
        for what, value in named:
            if isinstance(value, bytes) and b"\x00" in value:
                raise ValueError(f"{what}: corrupt string (embedded NUL)")

    def validate(self):
        """Raises ValueError if indices / sizes in the model are inconsistent. LiteRT 2.3's
        loader does not verify files and can crash on such models, so the runtime checks
        files with this first."""
        m = self.model
        nbuf = len(m.buffers or [])
        nops = len(m.operatorCodes or [])
        max_code = max(v for k, v in vars(BuiltinOperator).items() if not k.startswith("_"))
        for i, oc in enumerate(m.operatorCodes or []):
            cc = oc.customCode
            if isinstance(cc, bytes) and b"\x00" in cc:
                raise ValueError(f"operator code {i}: corrupt custom code (embedded NUL)")
            code = self.code_of(oc)
            if code < 0 or code > max_code:
                raise ValueError(f"operator code {i} has unknown builtin code {code}")
        self._check_strings()
        nsg = len(m.subgraphs or [])
        for si, sg in enumerate(m.subgraphs or []):
            tensors = sg.tensors or []
            nt = len(tensors)
            for ti, t in enumerate(tensors):
                shape = [] if t.shape is None else [int(v) for v in t.shape]
                if len(shape) > 8 or any(d < -1 for d in shape):
                    raise ValueError(f"subgraph {si} tensor {ti}: invalid shape {shape}")
                name = t.name if isinstance(t.name, bytes) else (t.name or "").encode()
                if b"\x00" in name:
                    raise ValueError(f"subgraph {si} tensor {ti}: corrupt name (embedded NUL)")
                q = t.quantization
                if q is not None and q.scale is not None and len(q.scale):
                    sc = np.asarray(q.scale, np.float64)
                    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
                    if not np.all(np.isfinite(sc)) or np.any(sc < 0):
                        raise ValueError(f"subgraph {si} tensor {ti}: invalid quantization scales")
                    if len(zp) not in (0, len(sc)):
                        raise ValueError(f"subgraph {si} tensor {ti}: {len(zp)} zero points for {len(sc)} scales")
                    lo, hi = self._ZP_RANGE.get(t.type, (-(1 << 31), (1 << 31) - 1))
                    if len(zp) and (zp.min() < lo or zp.max() > hi):
                        raise ValueError(f"subgraph {si} tensor {ti}: zero point out of range for its type")
                    qd = int(q.quantizedDimension or 0)
                    if len(sc) > 1 and not 0 <= qd < max(len(shape), 1):
                        raise ValueError(f"subgraph {si} tensor {ti}: quantized dimension {qd} out of range")
                    if len(sc) > 1 and len(shape) and shape[qd] >= 0 and shape[qd] != len(sc):
                        raise ValueError(f"subgraph {si} tensor {ti}: {len(sc)} scales for dimension of size "
                                         f"{shape[qd]}")
                if t.buffer is not None and not 0 <= int(t.buffer) < max(nbuf, 1):
                    raise ValueError(f"subgraph {si} tensor {ti}: buffer index {t.buffer} out of range")
                if t.buffer is not None and int(t.buffer) < nbuf:
                    b = m.buffers[int(t.buffer)]
                    size = self._ELEM_SIZE.get(t.type)
                    n = len(b.data) if b.data is not None else 0
                    if n and size is not None and all(d >= 0 for d in shape):
                        want = int(np.prod(shape, dtype=np.int64)) * size if shape else size
                        if n != want:
                            raise ValueError(f"subgraph {si} tensor {ti}: constant data has {n} bytes, "
                                             f"shape {shape} needs {want}")
            def check(idx, what, allow_optional):
                for v in ([] if idx is None else idx):
                    v = int(v)
                    if not (-1 if allow_optional else 0) <= v < nt:
                        raise ValueError(f"subgraph {si}: {what} tensor index {v} out of range [0, {nt})")
            check(sg.inputs, "input", False)
            check(sg.outputs, "output", False)
            for oi, op in enumerate(sg.operators or []):
                if not 0 <= int(op.opcodeIndex or 0) < max(nops, 0) or nops == 0:
                    raise ValueError(f"subgraph {si} op {oi}: opcode index {op.opcodeIndex} out of range")
                if op.outputs is None or len(op.outputs) == 0:
                    raise ValueError(f"subgraph {si} op {oi}: no outputs")
                if (op.inputs is None or len(op.inputs) == 0) and self.op_type(op) not in self._NO_INPUT_OPS:
                    raise ValueError(f"subgraph {si} op {oi} ({self.op_type(op)}): no inputs")
                check(op.inputs, f"op {oi} input", True)
                check(op.outputs, f"op {oi} output", False)
                check(op.intermediates, f"op {oi} intermediate", False)
        for sd in m.signatureDefs or []:
            if not 0 <= int(sd.subgraphIndex or 0) < nsg:
                raise ValueError(f"signature subgraph index {sd.subgraphIndex} out of range")
            nt = len(m.subgraphs[int(sd.subgraphIndex or 0)].tensors or [])
            for tm in (sd.inputs or []) + (sd.outputs or []):
                if not 0 <= int(tm.tensorIndex) < nt:
                    raise ValueError(f"signature tensor index {tm.tensorIndex} out of range")
        return self

    # ---- ops ----
    def op_code(self, op) -> int:
        oc = self.model.operatorCodes[op.opcodeIndex]
        return max(int(oc.builtinCode or 0), int(oc.deprecatedBuiltinCode or 0))

    def op_type(self, op) -> str:
        code = self.op_code(op)
        if code == BuiltinOperator.CUSTOM:
            cc = self.model.operatorCodes[op.opcodeIndex].customCode
            return cc.decode("utf-8", "replace") if isinstance(cc, bytes) else str(cc)
        return op_name(code)

    def custom_opcode_index(self, custom_code: str, version: int = 1) -> int:
        for i, oc in enumerate(self.model.operatorCodes):
            cc = oc.customCode
            if isinstance(cc, bytes):
                cc = cc.decode("utf-8", "replace")
            if self.code_of(oc) == BuiltinOperator.CUSTOM and cc == custom_code:
                return i
        oc = schema.OperatorCodeT()
        oc.builtinCode = BuiltinOperator.CUSTOM
        oc.deprecatedBuiltinCode = BuiltinOperator.CUSTOM
        oc.customCode = custom_code
        oc.version = version
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    @staticmethod
    def code_of(oc) -> int:
        return max(int(oc.builtinCode or 0), int(oc.deprecatedBuiltinCode or 0))

    def ops(self):
        return list(self.sg.operators or [])

    def producers(self) -> dict:
        out = {}
        for i, op in enumerate(self.sg.operators or []):
            for t in op.outputs if op.outputs is not None else []:
                out[int(t)] = i
        return out

    def consumers(self) -> dict:
        out: dict[int, list[int]] = {}
        for i, op in enumerate(self.sg.operators or []):
            for t in op.inputs if op.inputs is not None else []:
                if t >= 0:
                    out.setdefault(int(t), []).append(i)
        return out

    def graph_outputs(self) -> set:
        return set(int(t) for t in (self.sg.outputs if self.sg.outputs is not None else []))

    # ---- tensors ----
    def tensor(self, i):
        return self.sg.tensors[i]

    def tensor_name(self, i) -> str:
        n = self.sg.tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def shape(self, i) -> list:
        s = self.sg.tensors[i].shape
        return [int(v) for v in (s if s is not None else [])]

    def quant(self, i):
        """(scales, zero_points, quantized_dimension) as numpy arrays, or None."""
        q = self.sg.tensors[i].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return None
        zp = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale), np.int64)
        return (np.asarray(q.scale, np.float32), np.asarray(zp, np.int64),
                int(q.quantizedDimension or 0))

    def constant(self, i):
        """Constant data of tensor i as a numpy array (None if not constant)."""
        t = self.sg.tensors[i]
        buf = self.model.buffers[t.buffer] if t.buffer is not None and t.buffer < len(self.model.buffers) else None
        if buf is None or buf.data is None or len(buf.data) == 0:
            return None
        arr = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), dtype=np_dtype(t.type))
        return arr.reshape(self.shape(i))

    def add_buffer(self, data: bytes | None) -> int:
        b = schema.BufferT()
        if data is not None:
            b.data = np.frombuffer(data, np.uint8).copy()
        self.model.buffers.append(b)
        return len(self.model.buffers) - 1

    def add_tensor(self, name: str, shape, dtype, data: np.ndarray | None = None,
                   scales=None, zero_points=None, quantized_dimension=0) -> int:
        t = schema.TensorT()
        t.name = name
        t.shape = np.asarray(shape, np.int32)
        t.type = _TT[np.dtype(dtype)]
        t.buffer = self.add_buffer(None if data is None else np.ascontiguousarray(data).astype(dtype).tobytes())
        if scales is not None:
            q = schema.QuantizationParametersT()
            q.scale = np.asarray(scales, np.float32)
            q.zeroPoint = np.asarray(zero_points if zero_points is not None else [0] * len(scales), np.int64)
            q.quantizedDimension = quantized_dimension
            t.quantization = q
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def remove_unused(self):
        """Drops tensors no op or graph IO references (buffers are left; they are cheap)."""
        used = set(int(t) for t in (self.sg.inputs if self.sg.inputs is not None else []))
        used |= self.graph_outputs()
        for op in self.sg.operators or []:
            used |= set(int(t) for t in (op.inputs if op.inputs is not None else []) if t >= 0)
            used |= set(int(t) for t in (op.outputs if op.outputs is not None else []))
        # also keep tensors referenced by signatures
        for sd in self.model.signatureDefs or []:
            for tm in (sd.inputs or []) + (sd.outputs or []):
                used.add(int(tm.tensorIndex))
        keep = sorted(used)
        remap = {old: new for new, old in enumerate(keep)}
        self.sg.tensors = [self.sg.tensors[i] for i in keep]

        def m(arr):
            return np.asarray([remap[int(t)] if t >= 0 else -1 for t in arr], np.int32)

        self.sg.inputs = m(self.sg.inputs if self.sg.inputs is not None else [])
        self.sg.outputs = m(self.sg.outputs if self.sg.outputs is not None else [])
        for op in self.sg.operators or []:
            op.inputs = m(op.inputs if op.inputs is not None else [])
            op.outputs = m(op.outputs if op.outputs is not None else [])
        for sd in self.model.signatureDefs or []:
            for tm in (sd.inputs or []) + (sd.outputs or []):
                tm.tensorIndex = remap[int(tm.tensorIndex)]

    def submodel(self, ops, inputs, outputs) -> "Graph":
        """A copy running only the ops `ops` (indices, kept in graph order) from tensors `inputs` to
        `outputs`: no signatures, unused tensors dropped."""
        sub = Graph(copy.deepcopy(self.model))
        sub.sg.operators = [sub.sg.operators[i] for i in sorted(ops)]
        sub.sg.inputs = np.asarray(inputs, np.int32)
        sub.sg.outputs = np.asarray(outputs, np.int32)
        sub.model.signatureDefs = []
        sub.remove_unused()
        return sub

    def op_counts(self) -> dict:
        out: dict[str, int] = {}
        for op in self.sg.operators or []:
            k = self.op_type(op)
            out[k] = out.get(k, 0) + 1
        return out
