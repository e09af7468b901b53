"""Fused int8 / float32 CSP convolution kernels (thin wrapper over the C++ `keras_csp._kernels`).

The kernels compute a bit-exact int8 CONV_2D (per-channel symmetric weights, int32 bias, fused
ReLU/ReLU6 clamp, 1x1/3x3, stride 1/2, SAME/VALID, NHWC) with the requantization of TFLite's
reference or optimized kernels (fixed point) or of XNNPACK (float32), see ``Int8Quant.rounding``,
and write it straight into its place in a concatenated buffer:

* :meth:`Int8Conv.csp_partial` -- ``concat(x[..., :c_skip], conv(x[..., c_skip:]))`` (or the
  conv part first, ``order="skip_last"``), no split/concat tensors;
* :meth:`Int8Conv.dense_append` -- a dense-block layer reading a channel slice of the block buffer
  in place and writing its output at a channel offset of the same buffer (zero concat copies).

Every op exists for each kernel ``variant``: ``"scalar"`` (reference), ``"avx2"``,
``"avxvnni"`` (256-bit VEX VNNI), ``"avx512vnni"``, ``"amx"`` (AMX-INT8 tiles), ``"neon_dotprod"``, ``"neon_i8mm"``, ``"neon"``, ``"sme"`` and ``"auto"`` (best for this
CPU, chosen at run time).

The second half of this module builds the equivalent single-op TFLite graphs (SLICE + CONV_2D +
CONCATENATION) used as the bit-exact reference in the tests and as the XNNPACK baseline in
``keras_csp/benchmark/kernels.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import _kernels

VARIANTS = ("auto", "scalar", "avx2", "avxvnni", "avx512vnni", "amx", "neon_dotprod", "neon_i8mm", "neon", "sme")
ACTIVATIONS = ("none", "relu", "relu6")
ORDERS = ("skip_first", "skip_last")
ROUNDINGS = ("away_from_zero", "half_up", "fp32")

__all__ = [
    "VARIANTS", "Int8Quant", "Int8Conv", "Int8Depthwise", "Int8GroupedConv", "Float32Conv", "available_variants", "cpu_features",
    "best_variant", "resolve_variant", "quantize_multiplier", "conv2d_int8", "csp_partial_conv_int8",
    "dense_append_int8", "conv2d_f32", "csp_partial_conv_f32", "dense_append_f32",
    "build_tflite_model", "run_tflite",
]


def cpu_features() -> dict:
    """CPU features detected at run time by the native library."""
    return dict(_kernels.cpu_features())


def best_variant(float32: bool = False) -> str:
    """The best kernel variant on this CPU: what ``variant="auto"`` resolves to unless the
    KERAS_CSP_KERNEL_VARIANT environment variable (read once per process) names another."""
    return _kernels.best_variant(float32)


def resolve_variant(variant: str = "auto") -> str:
    """The int8 variant that `variant` runs as in this process; "auto": `best_variant()`, or the one
    KERAS_CSP_KERNEL_VARIANT names. A variant unusable here raises, as packing any conv would."""
    # 64 input channels: "auto" on amx runs 1x1 convs of up to 24 on the AVX-512 VNNI kernels
    return Int8Conv(np.ones((1, 1, 1, 64), np.int8), None, Int8Quant(1.0, 0, [1.0], 1.0, 0), variant=variant).variant


def available_variants(float32: bool = False) -> list[str]:
    """Concrete variants that can run on this CPU (``"scalar"`` always)."""
    return [v for v in VARIANTS[1:] if _kernels.variant_available(v, float32)]


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: (int32 multiplier, shift)."""
    return _kernels.quantize_multiplier(float(real_multiplier))


def _check_variant(variant: str) -> str:
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


def _check_strides(strides) -> tuple[int, int]:
    if isinstance(strides, (int, np.integer)):
        strides = (int(strides), int(strides))
    if (not isinstance(strides, (tuple, list)) or len(strides) != 2
            or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in strides)):
        raise ValueError(f"strides must be a positive int or a pair of positive ints, got {strides!r}")
    return int(strides[0]), int(strides[1])


def _check_padding(padding: str) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    return padding.lower()


def _check_array(a, name: str, dtype, ndim: Optional[int] = None) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype.name}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    return order


@dataclass(frozen=True)
class Int8Quant:
    """Quantization of one int8 conv, as stored in a TFLite model."""

    input_scale: float
    input_zero_point: int
    filter_scales: Sequence[float]
    output_scale: float
    output_zero_point: int
    activation: str = "none"
    # "away_from_zero": TFLite reference kernels (default, BUILTIN_REF);
    # "half_up": TFLite's optimized builtin kernels (ruy), i.e. the default interpreter without delegate;
    # "fp32": XNNPACK's float requantization (LiteRT's default CPU path), see requant_scales().
    rounding: str = "away_from_zero"
    filter_scales_array: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        fs = np.asarray(self.filter_scales, dtype=np.float32).reshape(-1)
        object.__setattr__(self, "filter_scales_array", fs)
        for name in ("input_scale", "output_scale"):
            v = getattr(self, name)
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {v}")
        if not np.all(np.isfinite(fs)) or np.any(fs < 0):
            raise ValueError("filter_scales must be finite and >= 0")
        for name in ("input_zero_point", "output_zero_point"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not -128 <= v <= 127:
                raise ValueError(f"{name} must be an int in [-128, 127], got {v!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")

    def multipliers(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (multiplier, shift) exactly as TFLite computes them."""
        return _kernels.make_quant_params(float(self.input_scale), int(self.input_zero_point),
                                          self.filter_scales_array, float(self.output_scale),
                                          int(self.output_zero_point))

    def requant_scales(self) -> np.ndarray:
        """Per-channel float32 scales of XNNPACK's fp32 requantization, computed as XNNPACK does
        (float32 products: input_scale * filter_scale / output_scale)."""
        f32 = np.float32
        return ((f32(self.input_scale) * self.filter_scales_array) / f32(self.output_scale)).astype(f32)

    def activation_range(self) -> tuple[int, int]:
        return _kernels.int8_activation_range(self.activation, float(self.output_scale),
                                              int(self.output_zero_point))


def _check_threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 256:
        raise ValueError(f"threads must be an int in [1, 256], got {threads!r}")
    return int(threads)


def _check_bias_and_quant(bias, quant, out_channels: int):
    """The bias (int32 [out_channels] or None, made contiguous) after checking it and `quant` against
    the weights' output channels."""
    if bias is not None:
        _check_array(bias, "bias", np.int32, 1)
        if bias.shape[0] != out_channels:
            raise ValueError(f"bias has {bias.shape[0]} entries, weights have {out_channels} output channels")
        bias = np.ascontiguousarray(bias)
    if not isinstance(quant, Int8Quant):
        raise TypeError("quant must be an Int8Quant")
    if quant.filter_scales_array.shape[0] != out_channels:
        raise ValueError(f"quant has {quant.filter_scales_array.shape[0]} filter scales, weights "
                         f"have {out_channels} output channels")
    return bias


def _requant_args(quant: Int8Quant, variant: str) -> tuple:
    """The packed-op constructors' trailing arguments: zero points, TFLite's multipliers and shifts,
    the activation range, the variant, the rounding and (fp32) XNNPACK's scales."""
    mult, shift = quant.multipliers()
    act_min, act_max = quant.activation_range()
    return (int(quant.input_zero_point), int(quant.output_zero_point), mult, shift, act_min, act_max,
            _check_variant(variant), quant.rounding, quant.requant_scales() if quant.rounding == "fp32" else None)


class _PackedInt8:
    """What the int8 ops report of their packed weights (``self._p``)."""

    @property
    def variant(self) -> str:
        """The kernel that runs (for a depthwise conv: avx512vnni, avxvnni, avx2, neon_dotprod, neon or scalar)."""
        return self._p.variant

    @property
    def geometry(self) -> dict:
        return self._p.geometry


class Int8Conv(_PackedInt8):
    """An int8 conv with weights prepacked once (for one kernel variant).

    weights: int8 OHWI ``[out_channels, kh, kw, in_channels]``; bias: int32 ``[out_channels]`` or None.
    """

    def __init__(self, weights: np.ndarray, bias: Optional[np.ndarray], quant: Int8Quant, *,
                 strides=1, padding: str = "same", variant: str = "auto", threads: int = 1):
        _check_array(weights, "weights", np.int8, 4)
        self.threads = _check_threads(threads)
        bias = _check_bias_and_quant(bias, quant, weights.shape[0])
        sh, sw = _check_strides(strides)
        self.quant = quant
        self._p = _kernels.PackedConvInt8(np.ascontiguousarray(weights), bias, sh, sw, _check_padding(padding),
                                          *_requant_args(quant, variant))

    def algorithm(self, out_pixels: int) -> str:
        """How this conv runs on an image of `out_pixels` output pixels (per batch image):
        ``"winograd"`` (AVX2 and plain NEON 3x3 stride-1 convs, Winograd F(2x2, 3x3) in exact integers,
        the same bits)
        or ``"direct"``."""
        return "winograd" if self._p.runs_winograd(out_pixels) else "direct"

    def __call__(self, x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Plain conv of a dense NHWC int8 tensor."""
        return self._p.conv2d(_check_array(x, "x", np.int8, 4), out, self.threads)

    def conv_slices(self, x: np.ndarray, in_offset: int, out: np.ndarray, out_offset: int) -> None:
        """Conv reading channels ``[in_offset, +in_channels)`` of x, writing ``[out_offset, +out_channels)`` of out."""
        self._p.conv2d_slices(_check_array(x, "x", np.int8, 4), int(in_offset),
                              _check_array(out, "out", np.int8, 4), int(out_offset), self.threads)

    def csp_partial(self, x: np.ndarray, c_skip: int, order: str = "skip_first",
                    out: Optional[np.ndarray] = None) -> np.ndarray:
        """``concat(x[..., :c_skip], conv(x[..., c_skip:]))`` (``order="skip_last"``: conv part first)."""
        return self._p.csp_partial(_check_array(x, "x", np.int8, 4), int(c_skip), out, _check_order(order),
                                   self.threads)

    def dense_append(self, block: np.ndarray, in_offset: int, out_offset: int) -> np.ndarray:
        """In place: ``block[..., out_offset:+out_channels] = conv(block[..., in_offset:+in_channels])``."""
        self._p.dense_append(_check_array(block, "block", np.int8, 4), int(in_offset), int(out_offset),
                             self.threads)
        return block


class Int8Depthwise(_PackedInt8):
    """An int8 depthwise conv (TFLite's DEPTHWISE_CONV_2D) with weights prepacked once.

    weights: int8 ``[1, kh, kw, in_channels * depth_multiplier]`` (TFLite's layout); output channel
    ``c * depth_multiplier + j`` reads input channel ``c``. bias: int32 ``[out_channels]`` or None.
    """

    def __init__(self, weights: np.ndarray, bias: Optional[np.ndarray], quant: Int8Quant, *,
                 depth_multiplier: int = 1, strides=1, padding: str = "same", variant: str = "auto",
                 threads: int = 1):
        _check_array(weights, "weights", np.int8, 4)
        if weights.shape[0] != 1:
            raise ValueError(f"depthwise weights must be [1, kh, kw, out_channels], got {weights.shape}")
        oc = weights.shape[3]
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, np.integer)) \
                or depth_multiplier < 1 or oc % depth_multiplier:
            raise ValueError(f"depth_multiplier must be a positive int dividing out_channels ({oc}), "
                             f"got {depth_multiplier!r}")
        self.threads = _check_threads(threads)
        bias = _check_bias_and_quant(bias, quant, oc)
        sh, sw = _check_strides(strides)
        self.quant = quant
        self._p = _kernels.PackedDepthwiseInt8(np.ascontiguousarray(weights), bias, int(depth_multiplier), sh, sw,
                                               _check_padding(padding), *_requant_args(quant, variant))

    def __call__(self, x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Depthwise conv of a dense NHWC int8 tensor."""
        return self._p.depthwise(_check_array(x, "x", np.int8, 4), out, self.threads)


class Int8GroupedConv(_PackedInt8):
    """An int8 grouped conv (TFLite's CONV_2D whose filter has in_channels / groups inputs, as
    ResNeXt's 3x3 convs) with weights prepacked once.

    weights: int8 OHWI ``[out_channels, kh, kw, in_channels / groups]``; output channel ``o`` reads
    the input channels of group ``o // (out_channels / groups)``. bias: int32 ``[out_channels]`` or None.
    Groups of 4 or 8 channels in and out run a grouped kernel (every SIMD variant but plain NEON), groups
    of 16 or 32 too on AVX-512 VNNI and AVX2; others run one of the variant's convs per group (``per_group``).
    """

    def __init__(self, weights: np.ndarray, bias: Optional[np.ndarray], quant: Int8Quant, *, groups: int,
                 strides=1, padding: str = "same", variant: str = "auto", threads: int = 1):
        _check_array(weights, "weights", np.int8, 4)
        oc = weights.shape[0]
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1 or oc % groups:
            raise ValueError(f"groups must be a positive int dividing out_channels ({oc}), got {groups!r}")
        self.threads = _check_threads(threads)
        bias = _check_bias_and_quant(bias, quant, oc)
        sh, sw = _check_strides(strides)
        self.quant = quant
        self._p = _kernels.PackedGroupedConvInt8(np.ascontiguousarray(weights), bias, int(groups), sh, sw,
                                                 _check_padding(padding), *_requant_args(quant, variant))

    @property
    def groups(self) -> int:
        return self._p.groups

    @property
    def per_group(self) -> bool:
        """True where no grouped kernel fits (this variant and group size: see the class docstring)."""
        return self._p.per_group

    def __call__(self, x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Grouped conv of a dense NHWC int8 tensor."""
        return self._p.conv2d(_check_array(x, "x", np.int8, 4), out, self.threads)


class Float32Conv:
    """float32 twin of :class:`Int8Conv` (clamp range ``act_min``/``act_max`` or ``activation``)."""

    def __init__(self, weights: np.ndarray, bias: Optional[np.ndarray], *, strides=1,
                 padding: str = "same", activation: str = "none", variant: str = "auto", threads: int = 1):
        _check_array(weights, "weights", np.float32, 4)
        self.threads = _check_threads(threads)
        if bias is not None:
            _check_array(bias, "bias", np.float32, 1)
            if bias.shape[0] != weights.shape[0]:
                raise ValueError("bias must have out_channels entries")
            bias = np.ascontiguousarray(bias)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        lo, hi = {"none": (-np.finfo(np.float32).max, np.finfo(np.float32).max),
                  "relu": (0.0, np.finfo(np.float32).max), "relu6": (0.0, 6.0)}[activation]
        sh, sw = _check_strides(strides)
        self._p = _kernels.PackedConvF32(np.ascontiguousarray(weights), bias, sh, sw,
                                         _check_padding(padding), float(lo), float(hi),
                                         _check_variant(variant))

    @property
    def variant(self) -> str:
        return self._p.variant

    def __call__(self, x, out=None):
        return self._p.conv2d(_check_array(x, "x", np.float32, 4), out, self.threads)

    def conv_slices(self, x, in_offset, out, out_offset):
        self._p.conv2d_slices(_check_array(x, "x", np.float32, 4), int(in_offset),
                              _check_array(out, "out", np.float32, 4), int(out_offset), self.threads)

    def csp_partial(self, x, c_skip, order="skip_first", out=None):
        return self._p.csp_partial(_check_array(x, "x", np.float32, 4), int(c_skip), out, _check_order(order),
                                   self.threads)

    def dense_append(self, block, in_offset, out_offset):
        self._p.dense_append(_check_array(block, "block", np.float32, 4), int(in_offset), int(out_offset),
                             self.threads)
        return block


# ---- functional shortcuts -------------------------------------------------------------------

def conv2d_int8(x, weights, bias, quant: Int8Quant, *, strides=1, padding="same", variant="auto"):
    return Int8Conv(weights, bias, quant, strides=strides, padding=padding, variant=variant)(x)


def csp_partial_conv_int8(x, c_skip, weights, bias, quant: Int8Quant, *, order="skip_first",
                          strides=1, padding="same", variant="auto"):
    return Int8Conv(weights, bias, quant, strides=strides, padding=padding,
                    variant=variant).csp_partial(x, c_skip, order)


def dense_append_int8(block, in_offset, out_offset, weights, bias, quant: Int8Quant, *,
                      padding="same", variant="auto"):
    return Int8Conv(weights, bias, quant, padding=padding, variant=variant).dense_append(
        block, in_offset, out_offset)


def conv2d_f32(x, weights, bias, *, strides=1, padding="same", activation="none", variant="auto"):
    return Float32Conv(weights, bias, strides=strides, padding=padding, activation=activation,
                       variant=variant)(x)


def csp_partial_conv_f32(x, c_skip, weights, bias, *, order="skip_first", strides=1, padding="same",
                         activation="none", variant="auto"):
    return Float32Conv(weights, bias, strides=strides, padding=padding, activation=activation,
                       variant=variant).csp_partial(x, c_skip, order)


def dense_append_f32(block, in_offset, out_offset, weights, bias, *, padding="same",
                     activation="none", variant="auto"):
    return Float32Conv(weights, bias, padding=padding, activation=activation,
                       variant=variant).dense_append(block, in_offset, out_offset)


# ---- single-op TFLite reference graphs ------------------------------------------------------

def build_tflite_model(kind: str, x_shape: Sequence[int], weights: np.ndarray, bias: np.ndarray,
                       quant: Int8Quant, *, c_skip: int = 0, order: str = "skip_first", strides=1,
                       padding: str = "same", block_channels: int = 0, depth_multiplier: int = 1) -> bytes:
    """Int8 .tflite flatbuffer built directly (full control of scales / zero points).

    kind="conv":  x -> CONV_2D -> y  (output quantization from ``quant``; weights with in_channels / groups
                  input channels make it a grouped conv)
    kind="csp":   x -> SLICE[:c_skip], SLICE[c_skip:] -> CONV_2D -> CONCATENATION (order)
    kind="dense": x -> CONV_2D -> CONCATENATION(x, y)
    kind="append": inputs (block [n,h,w,block_channels], x) -> CONCATENATION(block, CONV_2D(x));
                   ``block`` uses the conv's output quantization (a dense-block layer).
    kind="depthwise": x -> DEPTHWISE_CONV_2D (``depth_multiplier``) -> y; weights [1, kh, kw, out_channels].
    For "csp"/"dense" the conv output must use the input's scale/zero point (TFLite int8
    CONCATENATION requires equal quantization), so ``quant.output_*`` must equal ``quant.input_*``.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    if kind not in ("conv", "csp", "dense", "append", "depthwise"):
        raise ValueError(f"kind must be conv, csp, dense, append or depthwise, got {kind!r}")
    n, h, w, c = (int(v) for v in x_shape)
    if kind == "depthwise":  # [1, kh, kw, out_channels]: as a conv's OHWI, out_channels / multiplier inputs each
        _, kh, kw, oc = weights.shape
        cin = oc // depth_multiplier if depth_multiplier >= 1 and oc % depth_multiplier == 0 else -1
    else:
        oc, kh, kw, cin = weights.shape
    sh, sw = _check_strides(strides)
    padding = _check_padding(padding)
    if kind in ("csp", "dense") and (quant.output_scale != quant.input_scale
                           or quant.output_zero_point != quant.input_zero_point):
        raise ValueError("csp/dense graphs need conv output quantization == input quantization")
    if kind == "csp" and cin != c - c_skip:
        raise ValueError("csp: weights in_channels must be channels - c_skip")
    if kind != "csp" and cin != c and not (kind == "conv" and c % cin == 0):
        raise ValueError("weights in_channels must equal the input channels (or divide them: a grouped conv)")
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1

    buffers = [S.BufferT()]

    def add_buffer(arr=None):
        b = S.BufferT()
        if arr is not None:
            b.data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), dtype=np.uint8)
        buffers.append(b)
        return len(buffers) - 1

    tensors = []

    def add_tensor(name, shape, ttype, scale=None, zp=None, data=None, qdim=0):
        t = S.TensorT()
        t.name = name
        t.shape = list(int(s) for s in shape)
        t.type = ttype
        t.buffer = add_buffer(data)
        if scale is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            q.zeroPoint = [int(z) for z in np.atleast_1d(zp)]
            q.quantizedDimension = qdim
            t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    codes, ops = [], []

    def opcode(code):
        for i, oc_ in enumerate(codes):
            if oc_.builtinCode == code:
                return i
        c_ = S.OperatorCodeT()
        c_.builtinCode = code
        c_.deprecatedBuiltinCode = min(code, 127)
        c_.version = 1
        codes.append(c_)
        return len(codes) - 1

    def add_op(code, inputs, outputs, opt_type=0, opt=None):
        o = S.OperatorT()
        o.opcodeIndex = opcode(code)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if opt is not None:
            o.builtinOptionsType = opt_type
            o.builtinOptions = opt
        ops.append(o)

    I8, I32 = S.TensorType.INT8, S.TensorType.INT32
    xs, xz = quant.input_scale, quant.input_zero_point
    fs = quant.filter_scales_array
    inputs = []
    if kind == "append":
        blk = add_tensor("block", (n, h, w, block_channels), I8, quant.output_scale, quant.output_zero_point)
        inputs.append(blk)
    x = add_tensor("x", (n, h, w, c), I8, xs, xz)
    inputs.append(x)

    def slice_(begin_c, size_c, name):
        b_ = add_tensor(name + "/begin", (4,), I32, data=np.array([0, 0, 0, begin_c], np.int32))
        s_ = add_tensor(name + "/size", (4,), I32, data=np.array([-1, -1, -1, size_c], np.int32))
        out = add_tensor(name, (n, h, w, size_c), I8, xs, xz)
        add_op(S.BuiltinOperator.SLICE, [x, b_, s_], [out], S.BuiltinOptions.SliceOptions, S.SliceOptionsT())
        return out

    conv_in = x
    if kind == "csp" and c_skip > 0:
        skip = slice_(0, c_skip, "skip")
        conv_in = slice_(c_skip, c - c_skip, "part")
    wt = add_tensor("w", weights.shape, I8, fs, np.zeros(oc, np.int64), data=weights.astype(np.int8),
                    qdim=3 if kind == "depthwise" else 0)
    bias_scales = (np.float64(np.float32(xs)) * fs.astype(np.float64)).astype(np.float32)
    bt = add_tensor("b", (oc,), I32, bias_scales, np.zeros(oc, np.int64),
                    data=(np.zeros(oc, np.int32) if bias is None else bias.astype(np.int32)))
    y = add_tensor("y", (n, oh, ow, oc), I8, quant.output_scale, quant.output_zero_point)
    copt = S.Conv2DOptionsT()
    copt.padding = S.Padding.SAME if padding == "same" else S.Padding.VALID
    copt.strideH, copt.strideW = sh, sw
    copt.dilationHFactor = copt.dilationWFactor = 1
    copt.fusedActivationFunction = {"none": S.ActivationFunctionType.NONE,
                                    "relu": S.ActivationFunctionType.RELU,
                                    "relu6": S.ActivationFunctionType.RELU6}[quant.activation]
    if kind == "depthwise":
        dopt = S.DepthwiseConv2DOptionsT()
        dopt.padding, dopt.strideH, dopt.strideW = copt.padding, sh, sw
        dopt.depthMultiplier = depth_multiplier
        dopt.dilationHFactor = dopt.dilationWFactor = 1
        dopt.fusedActivationFunction = copt.fusedActivationFunction
        add_op(S.BuiltinOperator.DEPTHWISE_CONV_2D, [conv_in, wt, bt], [y], S.BuiltinOptions.DepthwiseConv2DOptions,
               dopt)
    else:
        add_op(S.BuiltinOperator.CONV_2D, [conv_in, wt, bt], [y], S.BuiltinOptions.Conv2DOptions, copt)
    out = y
    parts = None
    if kind == "csp" and c_skip > 0:
        parts = [skip, y] if order == "skip_first" else [y, skip]
        out_c = c_skip + oc
    elif kind == "dense":
        parts, out_c = [x, y], c + oc
    elif kind == "append":
        parts, out_c = [blk, y], block_channels + oc
    if parts is not None:
        out = add_tensor("out", (n, oh, ow, out_c), I8, quant.output_scale, quant.output_zero_point)
        copt2 = S.ConcatenationOptionsT()
        copt2.axis = 3
        add_op(S.BuiltinOperator.CONCATENATION, parts, [out], S.BuiltinOptions.ConcatenationOptions, copt2)

    sg = S.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = tensors, ops, inputs, [out], "main"
    model = S.ModelT()
    model.version = 3
    model.operatorCodes, model.subgraphs, model.buffers = codes, [sg], buffers
    model.description = f"keras-csp kernels reference: {kind}"
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def make_interpreter(model: bytes, resolver: str = "ref", num_threads: int = 1):
    """LiteRT interpreter: resolver "ref" (reference kernels), "builtin" (optimized builtin kernels,
    no delegate) or "xnnpack" (default XNNPACK delegate)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kinds = {"ref": OpResolverType.BUILTIN_REF,
             "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "xnnpack": OpResolverType.AUTO}
    if resolver not in kinds:
        raise ValueError(f"resolver must be one of {sorted(kinds)}")
    it = Interpreter(model_content=model, num_threads=num_threads,
                     experimental_op_resolver_type=kinds[resolver])
    it.allocate_tensors()
    return it


def run_tflite(model: bytes, *inputs: np.ndarray, resolver: str = "ref") -> np.ndarray:
    """Runs a single-subgraph model on `inputs` (in the model's input order)."""
    it = make_interpreter(model, resolver)
    details = it.get_input_details()
    if len(details) != len(inputs):
        raise ValueError(f"model has {len(details)} inputs, got {len(inputs)}")
    for d, x in zip(details, inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])
