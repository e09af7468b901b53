"""Pattern matching of CSP hot paths in int8 TFLite graphs.

Two CSP patterns, both ending in an int8 CONCATENATION along channels whose inputs and output
share one scale / zero point (so the concat is a pure copy and can be removed bit-exactly), and a
depthwise one:

* `PartialConvMatch` (-> CspPartialConv): concat of [skip, conv(src)] (either order) where
  `skip` is a channel slice (STRIDED_SLICE / SLICE / SPLIT / SPLIT_V) of some tensor X or a
  whole tensor, and the conv's input is a channel slice of some tensor Y (or Y itself). The
  classic CSP partial conv has X == Y; the CSP "fusion last" transition has Y = dense-block
  output. The skip may also be a DEPTHWISE_CONV_2D of such a slice (CSPMobileNet-v2's stage
  heads): the fused op then computes it straight into its part of the concat.
* `DenseBlockMatch` (-> CspDenseBlock): a chain x_{i+1} = concat(x_i, f_i(x_i)) where f_i is a
  chain of 1..16 stride-1 convs (e.g. 1x1 bottleneck -> 3x3), or several such branches
  (PeleeNet: concat(x_i, f_i(x_i), g_i(x_i))); x_0 optionally a channel slice.

* `DepthwiseMatch` (-> KcspDepthwiseConv2D): a DEPTHWISE_CONV_2D with depth multiplier > 1 on
  our kernels (the stock ones run those as per-group GEMMs); no concat involved.
* `InvertedResidualMatch` (-> KcspInvertedResidual): MobileNet-v2's block, [1x1 expand CONV_2D ->]
  DEPTHWISE_CONV_2D -> 1x1 project CONV_2D [-> ADD of the block input], in one op: no hand-over
  between our threads and LiteRT's inside the block (a candidate for `fuse --tune`).
* `AvgPoolMatch` (-> KcspAvgPool2D): an int8 AVERAGE_POOL_2D (DenseNet transitions): XNNPACK has
  no signed int8 average pool, so LiteRT runs it in TFLite's own kernels, slowly.
* `ConvMatch` (-> KcspConv2D): a stem CONV_2D (an RGB or grayscale input: at most 4 input
  channels, a kernel larger than 1x1), a grouped CONV_2D (run dense), or any other CONV_2D followed
  by an element-wise chain (SiLU, HARD_SWISH, LEAKY_RELU, ...: applied in place after the conv) on
  our kernels; no concat involved.

A conv inside a pattern may carry what follows it: a LEAKY_RELU, a residual ADD (partial convs), or
a chain of element-wise ops (TABLE_OPS, SiLU as x * LOGISTIC(x)) that `tables.py` turns into
256-entry tables.

Matchers return candidates or a `Rejection` with a human-readable reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .graph import Graph
from .schema import ActivationFunctionType, BuiltinOperator, Padding, TensorType

SLICE_OPS = {"STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V"}
# Element-wise int8 ops after a conv that fuse as a 256-entry table (with x * LOGISTIC(x): SiLU).
TABLE_OPS = {"LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "ELU", "LEAKY_RELU",
             "QUANTIZE"}  # QUANTIZE: int8 -> int8 requantization (e.g. TANH's fixed scale to the concat's)


def xnnpack_leaky_relu_params(input_scale: float, output_scale: float, alpha) -> dict:
    """XNNPACK's int8 LEAKY_RELU multipliers (qs8 vlrelu: 8.8 fixed point per sign,
    out = ((out_zp << 8) + 0x80 + (x - in_zp) * m) >> 8, m = lrintf(256 * scale) with float32
    scales), or {"post_xnn_unsupported": True} when XNNPACK would not take the op (its scale
    limits), so that TFLite's kernel -- and our fixed-point epilogue -- runs it even under
    XNNPACK. Verified bit-exact against LiteRT 2.3 on all 256 inputs (tests/test_fuse.py)."""
    f32 = np.float32
    pos = f32(f32(input_scale) / f32(output_scale))
    neg = f32(pos * f32(alpha))
    if not (2.0 ** -8 <= pos <= 2.0 ** 7 and -2.0 ** 7 <= neg <= 2.0 ** 7 and abs(neg) >= 2.0 ** -8):
        return {"post_xnn_unsupported": True}
    return {"post_xnn_positive_multiplier": int(np.rint(f32(256.0) * pos)),
            "post_xnn_negative_multiplier": int(np.rint(f32(256.0) * neg))}


def add_params(a_q, b_q, out_q, act_range, conv_input: int) -> dict:
    """Custom options of a fused int8 ADD (inputs a, b in the op's order; `conv_input`: which one
    the fused conv produces), for both kernel families, which round differently:
    * TFLite (builtin and reference kernels): inputs shifted left 20, scaled by multipliers of
      scale / (2 * max scale), summed, scaled to the output (add.cc Prepare, float32 products as there);
    * XNNPACK (qs8 vadd): acc = bias + a * a_mult + b * b_mult, out = acc >> shift, with
      multipliers from the float32 ratios a_scale / out_scale (lrintf(ratio * 2^shift)), the
      rounding folded into the bias. XNNPACK only takes ratios in [2^-10, 2^8): outside them
      TFLite's kernel runs the ADD even under XNNPACK ("xnn_unsupported")."""
    f32 = np.float32
    sa, sb, so = f32(a_q[0]), f32(b_q[0]), f32(out_q[0])
    twice = float(f32(2.0) * max(sa, sb))
    m1, s1 = _quantize_multiplier(float(sa) / twice)
    m2, s2 = _quantize_multiplier(float(sb) / twice)
    mo, s_o = _quantize_multiplier(twice / float(f32(1 << 20) * so))
    p = {"conv_input": int(conv_input), "a_zero_point": int(a_q[1]), "b_zero_point": int(b_q[1]),
         "output_zero_point": int(out_q[1]), "act_min": int(act_range[0]), "act_max": int(act_range[1]),
         "a_multiplier": int(m1), "a_shift": int(s1), "b_multiplier": int(m2), "b_shift": int(s2),
         "output_multiplier": int(mo), "output_shift": int(s_o)}
    ra, rb = f32(sa / so), f32(sb / so)
    if not all(f32(2.0 ** -10) <= r < f32(256.0) for r in (ra, rb)):
        p["xnn_unsupported"] = 1
        return p
    exponent = int((np.array(max(ra, rb), f32).view(np.uint32) >> 23)) - 127
    shift = 20 - exponent
    am, bm = (int(np.rint(f32(r) * f32(2.0 ** shift))) for r in (ra, rb))
    p.update({"xnn_a_multiplier": am, "xnn_b_multiplier": bm, "xnn_shift": shift,
              "xnn_bias": (1 << (shift - 1)) - am * int(a_q[1]) - bm * int(b_q[1])})
    return p


@dataclass
class Rejection:
    op_index: int
    op: str
    tensor: str
    reason: str


@dataclass
class ConvInfo:
    op_index: int
    input: int              # tensor the conv reads
    weights: int
    bias: int               # -1 if absent
    output: int             # tensor of the conv (or of its fused post op)
    params: dict            # custom-option fields of this conv
    post_ops: list = field(default_factory=list)  # fused element-wise ops after the conv (LEAKY_RELU,
                            # the residual ADD, or a chain run as a table), in graph order
    residual: int = -1      # the other input of a fused residual ADD
    post_input: int = -1    # a table chain's input: the conv's own output tensor
    table_ops: list = field(default_factory=list)  # the table chain's ops (post_ops without a residual ADD)
    table_output: int = -1  # the table chain's output tensor
    dense_weights: np.ndarray | None = None  # a grouped conv's block-diagonal dense weights (OHWI),
                            # written as a new weight tensor by the rewrite (grouped_conv_info)


@dataclass
class PartialConvMatch:
    concat: int             # op index
    output: int             # tensor
    skip_src: int
    skip_offset: int
    c_skip: int
    conv_src: int
    conv_offset: int
    conv: ConvInfo
    order: int              # 0: skip first, 1: conv first
    removed_ops: list = field(default_factory=list)
    kind: str = "CspPartialConv"
    skip_dw: ConvInfo | None = None  # the skip part is this DEPTHWISE_CONV_2D of skip_src (in place)


@dataclass
class DepthwiseMatch:
    output: int
    input: int
    dw: ConvInfo
    removed_ops: list = field(default_factory=list)
    kind: str = "KcspDepthwiseConv2D"

    @classmethod
    def of(cls, dw: ConvInfo):
        """The DEPTHWISE_CONV_2D of `dw` alone."""
        return cls(output=dw.output, input=dw.input, dw=dw, removed_ops=[dw.op_index])


@dataclass
class InvertedResidualMatch:
    output: int
    input: int
    dw: ConvInfo
    project: ConvInfo       # with the residual ADD (its `residual` is `input`) when the block has one
    expand: ConvInfo | None = None
    removed_ops: list = field(default_factory=list)
    kind: str = "KcspInvertedResidual"

    @property
    def convs(self):
        return [c for c in (self.expand, self.project) if c is not None]


@dataclass
class ConvMatch:
    output: int
    input: int
    conv: ConvInfo
    removed_ops: list = field(default_factory=list)
    kind: str = "KcspConv2D"
    role: str = "stem"  # "stem", "grouped" (run dense), "grouped_kernel", "activated" (with its element-wise
    # chain) or "plain" (any other conv alone: fuse --tune candidates)


@dataclass
class AvgPoolMatch:
    output: int
    input: int
    op_index: int
    params: dict
    removed_ops: list = field(default_factory=list)
    kind: str = "KcspAvgPool2D"


# Stem convs: XNNPACK's int8 conv kernels for x86 (AVX-512 VNNI, AVX2) and Arm i8mm pad every tap's
# input channels to 8, so a 3-channel 7x7 stem does 8/3 of its MACs; ours pad to 4 (VNNI, sdot) or 2
# (AVX2). CSPDenseNet-121's 7x7/2 3->64 stem on Zen 4: XNNPACK 1.75 ms, ours 1.02 ms (1 thread).
STEM_MAX_IN_CHANNELS = 4
# Grouped CONV_2D ops run as dense convs on our kernels (`groups` times the MACs). XNNPACK runs
# them as per-group GEMMs: CSPMobileNet-v2's stage-1 grouped 3x3 (112x112, 32 -> 16, 16 groups,
# 3.6M MACs) took 1.51 ms under XNNPACK on a Zen 4 core, about 2.4 GMAC/s.
MAX_DENSIFIED_GROUPS = 32


# Channels per group (in and out) of the grouped kernels (PackedGroupedConvInt8: 4 and 8 on every
# SIMD variant but plain NEON, 16 and 32 on AVX-512 VNNI; elsewhere one conv per group, which
# `fuse --tune` times like any candidate and keeps only where it wins).
GROUPED_KERNEL_CHANNELS = (4, 8, 16, 32)


def densify_pays(in_per_group: int, out_per_group: int, groups: int) -> bool:
    """Whether a grouped conv runs faster dense on our kernels than as XNNPACK's per-group GEMMs.
    Dense costs `groups` times the MACs; XNNPACK's tiles pad each group's taps to 8 input channels
    and its outputs to 16, so it wastes pad8(in/g) * pad16(out/g) / (in/g * out/g). Densify where
    that waste is at least the `groups` factor. Measured on Zen 4 (1 thread, 3x3 unless noted, our
    dense conv vs XNNPACK): waste / groups >= 1 -> 1.39-3.74x (2 -> 1 or 2, 4 -> 4 with 8 groups,
    a 1x1 with 2 per group); <= 0.5 -> 0.19-0.73x (4 -> 4 with 16 groups, 8 or 32 per group;
    ResNeXt-50's 32 groups of 4 at 56x56: 768 us under XNNPACK, 2043 dense)."""
    def pad(v, m):
        return -(-v // m) * m
    return pad(in_per_group, 8) * pad(out_per_group, 16) >= in_per_group * out_per_group * groups


def is_stem_conv(params) -> bool:
    """A stem conv's shape: at most STEM_MAX_IN_CHANNELS input channels, a kernel larger than 1x1."""
    return params["in_channels"] <= STEM_MAX_IN_CHANNELS and params["kernel_h"] * params["kernel_w"] > 1


@dataclass
class DenseBlockMatch:
    output: int
    x_src: int
    in_offset: int
    in_channels: int
    layers: list            # per layer: list of branches, each a list[ConvInfo] (conv chain)
    concats: list           # op indices
    removed_ops: list = field(default_factory=list)
    kind: str = "CspDenseBlock"


# ---------------------------------------------------------------------------------------
def _quantize_multiplier(d: float):
    """tflite::QuantizeMultiplier (double -> Q31 significand + shift)."""
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = int(math.floor(q * (1 << 31) + 0.5)) if q >= 0 else -int(math.floor(-q * (1 << 31) + 0.5))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def _act_range(act: int, scale: float, zp: int):
    """tflite::CalculateActivationRangeQuantized for int8."""
    qmin, qmax = -128, 127

    def q(f):
        v = np.float32(f) / np.float32(scale)
        r = math.floor(abs(float(v)) + 0.5) * (1 if v >= 0 else -1)  # TfLiteRound (half away)
        return zp + int(r)

    if act == ActivationFunctionType.NONE:
        return qmin, qmax
    if act == ActivationFunctionType.RELU:
        return max(qmin, q(0.0)), qmax
    if act == ActivationFunctionType.RELU6:
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == ActivationFunctionType.RELU_N1_TO_1:
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    return None


class Matcher:
    def __init__(self, g: Graph):
        self.g = g
        self.ops = g.ops()
        self.prod = g.producers()
        self.cons = g.consumers()
        self.outputs = g.graph_outputs()

    # ---- helpers ----
    def type(self, i):
        return self.g.op_type(self.ops[i])

    def is_int8(self, t):
        return self.g.tensor(t).type == TensorType.INT8

    def qparams(self, t):
        q = self.g.quant(t)
        if q is None or len(q[0]) != 1:
            return None
        return float(q[0][0]), int(q[1][0])

    def same_q(self, a, b):
        qa, qb = self.qparams(a), self.qparams(b)
        return qa is not None and qa == qb

    def type_of(self, t):
        """Type of the op producing tensor t (None for graph inputs and constants)."""
        pi = self.prod.get(t)
        return None if pi is None else self.type(pi)

    def single_use(self, t):
        return len(self.cons.get(t, [])) == 1 and t not in self.outputs

    def const_ints(self, t):
        c = self.g.constant(t)
        return None if c is None else [int(v) for v in np.asarray(c).reshape(-1)]

    def channel_slice(self, t):
        """If tensor t is a channel slice of a rank-4 tensor: (src, offset, size, op_index)."""
        pi = self.prod.get(t)
        if pi is None:
            return None
        op = self.ops[pi]
        kind = self.type(pi)
        if kind not in SLICE_OPS:
            return None
        ins = [int(v) for v in op.inputs]
        if kind == "STRIDED_SLICE":
            x = ins[0]
            shape = self.g.shape(x)
            b, e, s = (self.const_ints(i) for i in ins[1:4])
            o = op.builtinOptions
            if None in (b, e, s) or len(shape) != 4 or len(b) != 4 or o is None:
                return None
            if (o.ellipsisMask or 0) or (o.newAxisMask or 0) or (o.shrinkAxisMask or 0) or any(v != 1 for v in s):
                return None
            lo, hi = [], []
            for d in range(4):
                bd = 0 if (o.beginMask or 0) >> d & 1 else b[d]
                bd = bd + shape[d] if bd < 0 else bd
                if getattr(o, "offset", False):
                    ed = bd + e[d]
                else:
                    ed = shape[d] if (o.endMask or 0) >> d & 1 else e[d]
                    ed = ed + shape[d] if ed < 0 else ed
                lo.append(max(0, min(bd, shape[d])))
                hi.append(max(0, min(ed, shape[d])))
            if any(lo[d] != 0 or hi[d] != shape[d] for d in range(3)) or hi[3] <= lo[3]:
                return None
            return x, lo[3], hi[3] - lo[3], pi
        if kind == "SLICE":
            x = ins[0]
            shape = self.g.shape(x)
            b, sz = self.const_ints(ins[1]), self.const_ints(ins[2])
            if b is None or sz is None or len(shape) != 4 or len(b) != 4:
                return None
            sz = [shape[d] - b[d] if sz[d] == -1 else sz[d] for d in range(4)]
            if any(b[d] != 0 or sz[d] != shape[d] for d in range(3)) or sz[3] <= 0:
                return None
            return x, b[3], sz[3], pi
        if kind in ("SPLIT", "SPLIT_V"):
            if kind == "SPLIT":
                axis_t, x = ins[0], ins[1]
            else:
                x, axis_t = ins[0], ins[2]
            shape = self.g.shape(x)
            ax = self.const_ints(axis_t)
            if ax is None or len(shape) != 4 or ax[0] not in (3, -1):
                return None
            outs = [int(v) for v in op.outputs]
            sizes = [self.g.shape(o)[3] for o in outs]
            k = outs.index(t)
            return x, int(sum(sizes[:k])), sizes[k], pi
        return None

    def _filter_info(self, ci, why: list, what: str):
        """Checks shared by CONV_2D and DEPTHWISE_CONV_2D op ci: (x, W, w, b, y, params) with the
        requantization options, or None (+reason). W is the constant weight array."""
        op = self.ops[ci]
        ins = [int(v) for v in op.inputs]
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else -1
        y = int(op.outputs[0])
        o = op.builtinOptions
        if not (self.is_int8(x) and self.is_int8(y) and self.is_int8(w)):
            why.append(f"{what} is not int8")
            return None
        wq = self.g.quant(w)
        W = self.g.constant(w)
        if W is None or wq is None:
            why.append(f"{what} weights are not constant/quantized")
            return None
        if np.any(wq[1] != 0):
            why.append(f"{what} weights have non-zero zero points")
            return None
        if b >= 0 and (self.g.constant(b) is None or self.g.tensor(b).type != TensorType.INT32):
            why.append(f"{what} bias is not a constant int32 tensor")
            return None
        if (o.dilationHFactor or 1) != 1 or (o.dilationWFactor or 1) != 1:
            why.append(f"dilated {what}")
            return None
        xq, yq = self.qparams(x), self.qparams(y)
        if xq is None or yq is None or len(self.g.shape(x)) != 4 or W.ndim != 4:
            why.append(f"{what} activations are not per-tensor quantized rank-4 tensors")
            return None
        cout = int(W.shape[0] if what == "conv" else W.shape[3])
        wscales = np.asarray(wq[0], np.float32)
        if len(wscales) == 1:
            wscales = np.repeat(wscales, cout)
        if len(wscales) != cout:
            why.append("weight scales do not match output channels")
            return None
        act = int(o.fusedActivationFunction or 0)
        rng = _act_range(act, yq[0], yq[1])
        if rng is None:
            why.append(f"unsupported fused activation {act}")
            return None
        mults, shifts = [], []
        for c in range(cout):
            eff = float(np.float32(xq[0])) * float(wscales[c]) / float(np.float32(yq[0]))
            m, s = _quantize_multiplier(eff)
            mults.append(int(m))
            shifts.append(int(s))
        # XNNPACK's fp32 requantization scales (out = rint(f32(acc) * scale) + zp, float32
        # products as XNNPACK computes them): the runtime uses them under XNNPACK, the
        # multipliers/shifts under TFLite's kernels.
        fp32_scales = [float(np.float32(np.float32(xq[0]) * wscales[c]) / np.float32(yq[0]))
                       for c in range(cout)]
        params = {
            "requant_scales": fp32_scales,
            "kernel_h": int(W.shape[1]), "kernel_w": int(W.shape[2]),
            "stride_h": int(o.strideH or 1), "stride_w": int(o.strideW or 1),
            "padding": 1 if o.padding == Padding.SAME else 0,
            "out_channels": cout,
            "input_zero_point": int(xq[1]), "output_zero_point": int(yq[1]),
            "multipliers": mults, "shifts": shifts,
            "act_min": int(rng[0]), "act_max": int(rng[1]), "activation": int(act),
        }
        return x, W, w, b, y, params

    def conv_info(self, ci, why: list):
        """ConvInfo for CONV_2D op ci if our int8 kernel supports it, else None (+reason)."""
        r = self._filter_info(ci, why, "conv")
        if r is None:
            return None
        x, W, w, b, y, params = r
        if W.shape[3] != self.g.shape(x)[3]:
            why.append("grouped conv")
            return None
        params["in_channels"] = int(W.shape[3])
        return ConvInfo(op_index=ci, input=x, weights=w, bias=b, output=y, params=params)

    def grouped_conv_info(self, ci, why: list, grouped_kernel: bool = False):
        """ConvInfo for a grouped CONV_2D op ci (weights [cout, kh, kw, cin / groups]) as the dense conv
        with block-diagonal weights: the zeros add exact zeros to every accumulator, so the dense
        conv gives the same int32 sums and the same bytes, at `groups` times the MACs. Where that
        does not pay (densify_pays) and `grouped_kernel` (fuse --tune), groups of GROUPED_KERNEL_CHANNELS
        channels in and out run on the grouped kernel instead (params["groups"]; a group's inputs
        broadcast to its outputs' lanes where the variant has a grouped kernel for that size, one conv
        per group elsewhere)."""
        r = self._filter_info(ci, why, "conv")
        if r is None:
            return None
        x, W, w, b, y, params = r
        cin, per_group = int(self.g.shape(x)[3]), int(W.shape[3])
        cout = int(W.shape[0])
        if per_group >= cin or cin % per_group or cout % (cin // per_group):
            why.append("not a grouped conv with whole groups")
            return None
        groups = cin // per_group
        # TFLite's builtin CONV_2D runs a grouped conv on its reference kernel: ties away from zero
        # (its optimized convs round them up), under the builtin kernel set too
        params["builtin_rounding"] = "away"
        if groups > MAX_DENSIFIED_GROUPS:
            why.append(f"grouped conv with {groups} groups (densified only up to {MAX_DENSIFIED_GROUPS})")
            return None
        out_per_group = cout // groups
        if not densify_pays(per_group, out_per_group, groups):
            if grouped_kernel and per_group == out_per_group and per_group in GROUPED_KERNEL_CHANNELS:
                params.update({"in_channels": cin, "groups": groups})
                return ConvInfo(op_index=ci, input=x, weights=w, bias=b, output=y, params=params)
            why.append(f"grouped conv, {groups} groups of {per_group} -> {out_per_group} channels: XNNPACK's "
                       f"per-group kernels beat a dense conv with {groups}x the MACs")
            return None
        dense = np.zeros((cout, W.shape[1], W.shape[2], cin), np.int8)
        for o in range(cout):
            gi = o // out_per_group
            dense[o, :, :, gi * per_group:(gi + 1) * per_group] = W[o]
        params["in_channels"] = cin
        return ConvInfo(op_index=ci, input=x, weights=w, bias=b, output=y, params=params, dense_weights=dense)

    def depthwise_info(self, di, why: list):
        """ConvInfo for DEPTHWISE_CONV_2D op di (weights [1, kh, kw, cin * multiplier]), else None."""
        r = self._filter_info(di, why, "depthwise conv")
        if r is None:
            return None
        x, W, w, b, y, params = r
        cin = self.g.shape(x)[3]
        mult = int(self.ops[di].builtinOptions.depthMultiplier or 1)
        if W.shape[0] != 1 or cin * mult != W.shape[3] or not 1 <= mult <= 64:
            why.append("depthwise weights do not match input channels x depth multiplier")
            return None
        head = W.shape[3] - W.shape[3] % 8
        if head % mult:
            # TFLite's builtin DEPTHWISE_CONV_2D rounds the last out_channels % 8 channels apart; the
            # runtime runs them as a second op, which must start at an input channel's first output
            why.append(f"depth multiplier {mult} with {W.shape[3]} output channels: TFLite's builtin kernel "
                       f"rounds the last {W.shape[3] % 8} apart, within an input channel's outputs")
            return None
        params.update({"in_channels": int(cin), "depth_multiplier": mult})
        return ConvInfo(op_index=di, input=x, weights=w, bias=b, output=y, params=params)

    def residual_add(self, pi, t, why: list):
        """ConvInfo for t = ADD(r, CONV_2D(...)) (either order; the conv output used only by the ADD):
        an inverted residual's projection plus its shortcut, as CSPMobileNet-v2's block paths end."""
        op = self.ops[pi]
        ins = [int(v) for v in op.inputs]
        if len(ins) != 2 or not all(self.is_int8(v) for v in ins + [t]):
            why.append("residual ADD is not a two-input int8 op")
            return None
        shape = self.g.shape(t)
        if any(self.g.shape(v) != shape for v in ins):
            why.append("residual ADD broadcasts")
            return None
        info, conv_pos = None, None
        for k in (1, 0):  # a conv, or a conv with its element-wise chain (YOLO: ADD(r, SiLU(conv)))
            if not self.single_use(ins[k]) or ins[1 - k] == ins[k] or self.prod.get(ins[k]) is None:
                continue
            if self.type_of(ins[k]) == "CONV_2D":
                info = self.conv_info(self.prod[ins[k]], why)
            elif self.type_of(ins[k]) != "ADD":
                info = self.conv_producing(ins[k], [])
            if info is not None:
                conv_pos = k
                break
        if info is None:
            why.append("no CONV_2D input")
            return None
        q = [self.qparams(v) for v in ins + [t]]
        act = int(op.builtinOptions.fusedActivationFunction or 0) if op.builtinOptions is not None else 0
        rng = _act_range(act, q[2][0], q[2][1]) if None not in q else None
        if rng is None:
            why.append("residual ADD is not per-tensor quantized or has an unsupported activation")
            return None
        info.params["add"] = add_params(q[0], q[1], q[2], rng, conv_input=conv_pos)
        info.residual, info.output, info.post_ops = ins[1 - conv_pos], t, info.post_ops + [pi]
        return info

    def conv_producing(self, t, why: list, allow_add=False):  # noqa: C901 (one branch per producer kind)
        """ConvInfo for tensor t = CONV_2D(...) or LEAKY_RELU(CONV_2D(...)) (conv output used
        only by the leaky relu), or with `allow_add` ADD(r, CONV_2D(...)), else None."""
        pi = self.prod.get(t)
        if pi is None:
            why.append("no CONV_2D input")
            return None
        if allow_add and self.type(pi) == "ADD":
            return self.residual_add(pi, t, why)
        if self.type(pi) == "LEAKY_RELU":
            op = self.ops[pi]
            ct = int(op.inputs[0])
            ci = self.prod.get(ct)
            if ci is None or self.type(ci) != "CONV_2D" or not self.single_use(ct):
                why.append("no CONV_2D input")
                return None
            info = self.conv_info(ci, why)
            if info is None:
                return None
            iq, oq = self.qparams(ct), self.qparams(t)
            if iq is None or oq is None or not self.is_int8(t):
                why.append("leaky relu is not per-tensor int8")
                return None
            alpha = np.float32(op.builtinOptions.alpha if op.builtinOptions is not None else 0.2)
            # tflite leaky_relu Prepare: float32 products, then QuantizeMultiplier(double)
            m_a, s_a = _quantize_multiplier(float(np.float32(np.float32(iq[0]) * alpha) / np.float32(oq[0])))
            m_i, s_i = _quantize_multiplier(float(np.float32(iq[0]) / np.float32(oq[0])))
            info.params.update({
                "post": "leaky_relu", "post_alpha": float(alpha),
                "post_input_zero_point": int(iq[1]), "post_output_zero_point": int(oq[1]),
                "post_mult_identity": int(m_i), "post_shift_identity": int(s_i),
                "post_mult_alpha": int(m_a), "post_shift_alpha": int(s_a),
            })
            info.params.update(xnnpack_leaky_relu_params(iq[0], oq[0], alpha))
            info.output = t
            info.post_ops = [pi]
            return info
        if self.type(pi) in TABLE_OPS or self.type(pi) == "MUL":
            chain = self.unary_chain(t)
            if chain is None:
                why.append(f"{self.type(pi)} after something other than a single-use CONV_2D")
                return None
            ci, ops, t0 = chain
            info = self.conv_info(ci, why)
            if info is None:
                return None
            # the chain is a function of one int8 value: fuse() fills in its 256-entry tables
            info.params["post"] = "table"
            info.output, info.post_ops, info.post_input = t, ops, t0
            info.table_ops, info.table_output = list(ops), t
            return info
        if self.type(pi) != "CONV_2D":
            why.append("no CONV_2D input")
            return None
        return self.conv_info(pi, why)

    def unary_chain(self, t):
        """(conv op, chain ops, conv output) for t = f(CONV_2D(...)), f 1..4 element-wise int8 steps:
        a TABLE_OPS op, or x * LOGISTIC(x) (SiLU, as the converter writes it), each step the only
        consumer of its input; else None."""
        ops = []
        for _ in range(4):
            pi = self.prod.get(t)
            if pi is None or not self.is_int8(t) or self.qparams(t) is None:
                return None
            op, kind = self.ops[pi], self.type(pi)
            if kind == "MUL":
                a, b = (int(v) for v in op.inputs)
                for x, sg in ((a, b), (b, a)):
                    li = self.prod.get(sg)
                    if (li is not None and self.type(li) == "LOGISTIC" and int(self.ops[li].inputs[0]) == x
                            and self.cons.get(sg, []) == [pi] and sorted(self.cons.get(x, [])) == sorted([li, pi])
                            and not {x, sg} & self.outputs):
                        ops[:0], t = [li, pi], x
                        break
                else:
                    return None
            elif kind in TABLE_OPS:
                if not self.single_use(int(op.inputs[0])):
                    return None
                ops[:0], t = [pi], int(op.inputs[0])
            else:
                return None
            if self.type_of(t) == "CONV_2D" and self.is_int8(t) and self.qparams(t) is not None:
                return self.prod[t], ops, t
        return None

    def concat_ok(self, ci, why: list):
        op = self.ops[ci]
        o = op.builtinOptions
        out = int(op.outputs[0])
        shape = self.g.shape(out)
        if len(shape) != 4:
            why.append("concat output is not rank 4")
            return False
        if (o.axis if o.axis is not None else 0) not in (3, -1):
            why.append(f"concat axis {o.axis} is not the channel axis")
            return False
        if int(o.fusedActivationFunction or 0) != 0:
            why.append("concat has a fused activation")
            return False
        ins = [int(v) for v in op.inputs]
        if not all(self.is_int8(t) for t in ins + [out]):
            why.append("concat is not int8")
            return False
        if not all(self.same_q(t, out) for t in ins):
            why.append("concat inputs and output have different scales/zero points (it requantizes)")
            return False
        return True

    # ---- dense blocks ----
    def _chain_to(self, t, a):
        """Conv chain (1..16 stride-1 convs) from tensor a to tensor t, or None."""
        chain = []
        while len(chain) < 16:
            if not self.single_use(t):
                return None
            why = []
            info = self.conv_producing(t, why)
            if info is None:
                return None
            p = info.params
            if p["stride_h"] != 1 or p["stride_w"] != 1 or (
                    p["padding"] == 0 and (p["kernel_h"] != 1 or p["kernel_w"] != 1)):
                return None
            chain.insert(0, info)
            if info.input == a:
                return chain
            t = info.input
        return None

    def dense_layer(self, ci):
        """concat ci = concat(a, branch_1(a), ..., branch_k(a)) -> (a, [chain, ...]) or None
        (k = 1: DenseNet layer; k = 2: PeleeNet two-way dense layer)."""
        op = self.ops[ci]
        ins = [int(v) for v in op.inputs]
        if len(ins) < 2 or len(ins) > 9:
            return None
        a, bs = ins[0], ins[1:]
        branches = []
        for b in bs:
            chain = self._chain_to(b, a)
            if chain is None:
                return None
            branches.append(chain)
        return a, branches

    def find_dense_blocks(self, why: list):
        layers = {}
        for i in range(len(self.ops)):
            if self.type(i) != "CONCATENATION":
                continue
            w = []
            if not self.concat_ok(i, w):
                continue
            dl = self.dense_layer(i)
            if dl is not None:
                layers[i] = dl
        # link layers: output of concat i is input `a` of layer j
        by_input = {}
        for ci, (a, _branches) in layers.items():
            by_input.setdefault(a, []).append(ci)
        matches = []
        used = set()
        for ci in sorted(layers):
            if ci in used:
                continue
            a, _ = layers[ci]
            # start of a block: `a` is not itself the output of a linked dense layer
            pa = self.prod.get(a)
            if pa in layers and self._links(pa, ci):
                continue
            block = [ci]
            while True:
                out = int(self.ops[block[-1]].outputs[0])
                nxt = [cj for cj in by_input.get(out, []) if self._links(block[-1], cj)]
                if len(nxt) != 1:
                    break
                block.append(nxt[0])
            used.update(block)
            first_a = layers[block[0]][0]
            sl = self.channel_slice(first_a)
            if sl is not None:
                x_src, off, c0, _ = sl
            else:
                x_src, off, c0 = first_a, 0, self.g.shape(first_a)[3]
            out = int(self.ops[block[-1]].outputs[0])
            removed = list(block)
            for cj in block:
                for chain in layers[cj][1]:
                    removed += [c.op_index for c in chain]
                    removed += [o for c in chain for o in c.post_ops]
            matches.append(DenseBlockMatch(
                output=out, x_src=x_src, in_offset=off, in_channels=c0,
                layers=[layers[cj][1] for cj in block], concats=block, removed_ops=removed))
        return matches

    def _links(self, ci, cj):
        """Layer cj consumes layer ci's output only inside the block (its next concat and the
        first conv of its chain)."""
        out = int(self.ops[ci].outputs[0])
        if out in self.outputs:
            return False
        a, branches = self.layers_cache(cj)
        if a != out:
            return False
        users = set(self.cons.get(out, []))
        return users == {cj} | {chain[0].op_index for chain in branches}

    def layers_cache(self, cj):
        if not hasattr(self, "_lc"):
            self._lc = {}
        if cj not in self._lc:
            self._lc[cj] = self.dense_layer(cj)
        return self._lc[cj]

    # ---- partial convs ----
    def find_partial_convs(self, exclude_ops: set, rejections: list):
        matches = []
        for i in range(len(self.ops)):
            if i in exclude_ops or self.type(i) != "CONCATENATION":
                continue
            op = self.ops[i]
            out = int(op.outputs[0])
            why = []
            rej = lambda r: rejections.append(Rejection(i, "CONCATENATION", self.g.tensor_name(out), r))
            ins = [int(v) for v in op.inputs]
            if len(ins) != 2:
                continue  # a wider concat is planned as a whole block (blocks.py)
            if not self.concat_ok(i, why):
                rej(why[-1])
                continue
            m = None
            reasons = []
            for order in (0, 1):
                skip_t, conv_t = (ins[0], ins[1]) if order == 0 else (ins[1], ins[0])
                if not self.single_use(conv_t):
                    reasons.append("the conv output has other consumers")
                    continue
                w = []
                info = self.conv_producing(conv_t, w, allow_add=True)
                if info is None:
                    reasons.append(w[-1])
                    continue
                ci = info.op_index
                sl = self.channel_slice(info.input)
                if sl is not None:
                    conv_src, conv_off, _, _ = sl
                else:
                    conv_src, conv_off = info.input, 0
                skip_dw, dw_why = None, []
                if self.type_of(skip_t) == "DEPTHWISE_CONV_2D" and self.single_use(skip_t):
                    # MobileNet-v2 CSP heads: the skip part is a depthwise conv, computed into its slice
                    skip_dw = self.depthwise_info(self.prod[skip_t], dw_why)
                skip_in = skip_dw.input if skip_dw is not None else skip_t
                sk = self.channel_slice(skip_in)
                if sk is not None:
                    skip_src, skip_off, c_in, _ = sk
                else:
                    skip_src, skip_off, c_in = skip_in, 0, self.g.shape(skip_in)[3]
                c_skip = self.g.shape(skip_t)[3] if skip_dw is not None else c_in
                copied_q_ok = skip_dw is not None or self.same_q(skip_src, out)
                if skip_dw is not None and (not self.same_q(skip_t, out) or
                                            self.qparams(skip_src) != self.qparams(skip_in)):
                    copied_q_ok = False
                if not copied_q_ok or not self.is_int8(skip_src) or not self.is_int8(conv_src):
                    reasons.append("slice source has a different quantization")
                    continue
                if self.qparams(conv_src) != self.qparams(info.input):
                    reasons.append("conv input slice changes quantization")
                    continue
                ys, ss = self.g.shape(conv_t), self.g.shape(skip_t)
                if ys[:3] != ss[:3]:
                    reasons.append("conv changes the spatial size")
                    continue
                removed = [ci, i] + info.post_ops
                removed += [skip_dw.op_index] if skip_dw is not None else []
                for t in (skip_in, info.input):
                    s2 = self.channel_slice(t)
                    if s2 is not None:
                        removed.append(s2[3])  # removed later only if dead
                m = PartialConvMatch(concat=i, output=out, skip_src=skip_src, skip_offset=skip_off,
                                     c_skip=c_skip, conv_src=conv_src, conv_offset=conv_off,
                                     conv=info, order=order, removed_ops=removed, skip_dw=skip_dw)
                break
            if m is None:
                rej("; ".join(sorted(set(reasons))) or "not a CSP pattern")
            else:
                matches.append(m)
        return matches

    def find_depthwise(self, exclude_ops, rejections, any_multiplier=False):
        """DEPTHWISE_CONV_2D ops with a depth multiplier > 1, run on our kernels: XNNPACK and
        TFLite's optimized kernels are fast for multiplier 1, but run larger multipliers as many tiny
        per-group GEMMs (CSPMobileNet-v2's x2 depthwise convs: about 8x slower than a multiplier-1
        depthwise conv with the same outputs). any_multiplier: multiplier 1 too (fuse --tune, which
        keeps them only where our kernel wins on this CPU: AVX-512 VNNI sums four taps per vpdpbusd)."""
        return self.single_op_matches(
            "DEPTHWISE_CONV_2D", exclude_ops, rejections,
            lambda op: any_multiplier or int(op.builtinOptions.depthMultiplier or 1) > 1, self.depthwise_info,
            lambda i, info: DepthwiseMatch.of(info))

    def pointwise_info(self, ci):
        """ConvInfo for CONV_2D op ci when it is a 1x1 / stride 1 conv on our kernels, else None."""
        info = self.conv_info(ci, []) if self.type(ci) == "CONV_2D" else None
        if info is None:
            return None
        p = info.params
        return info if (p["kernel_h"], p["kernel_w"], p["stride_h"], p["stride_w"]) == (1, 1, 1, 1) else None

    def inverted_residual(self, di):
        """InvertedResidualMatch around DEPTHWISE_CONV_2D op di: its input a single-use 1x1 conv's output
        (the expand conv; else the block starts at the depthwise conv), its output read only by a 1x1
        conv (the projection), whose output, read only by an ADD with the block input, takes that ADD
        along. None when there is no projection."""
        dw = self.depthwise_info(di, [])
        if dw is None or not self.single_use(dw.output):
            return None
        pi = self.cons[dw.output][0]
        project = self.pointwise_info(pi)
        if project is None or project.input != dw.output:
            return None
        expand, x = None, dw.input
        ei = self.prod.get(dw.input)
        if ei is not None and self.single_use(dw.input):
            expand = self.pointwise_info(ei)
            x = expand.input if expand is not None else x
        removed = ([expand.op_index] if expand else []) + [di, pi]
        if self.single_use(project.output) and self.type(self.cons[project.output][0]) == "ADD":
            ai = self.cons[project.output][0]
            with_add = self.residual_add(ai, int(self.ops[ai].outputs[0]), [])
            if with_add is not None and with_add.op_index == pi and with_add.residual == x:
                project = with_add
                removed.append(ai)
        return InvertedResidualMatch(output=project.output, input=x, dw=dw, project=project, expand=expand,
                                     removed_ops=removed)

    def find_inverted_residuals(self, exclude_ops):
        """InvertedResidualMatch per DEPTHWISE_CONV_2D whose block shares no op with exclude_ops."""
        matches = []
        for di in range(len(self.ops)):
            if di in exclude_ops or self.type(di) != "DEPTHWISE_CONV_2D":
                continue
            m = self.inverted_residual(di)
            if m is not None and not set(m.removed_ops) & exclude_ops:
                matches.append(m)
        return matches

    def single_op_matches(self, op_type, exclude_ops, rejections, wanted, info_of, match_of):
        """One match per `op_type` op not in exclude_ops for which wanted(op): match_of(i, info) when
        info_of(i, why) gives an info, else a Rejection with the last reason."""
        matches = []
        for i in range(len(self.ops)):
            if i in exclude_ops or self.type(i) != op_type or not wanted(self.ops[i]):
                continue
            why = []
            info = info_of(i, why)
            if info is None:
                rejections.append(Rejection(i, op_type, self.g.tensor_name(int(self.ops[i].outputs[0])), why[-1]))
                continue
            matches.append(match_of(i, info))
        return matches


def _find_stem_convs(mt, exclude_ops):
    """Stem CONV_2D ops (at most STEM_MAX_IN_CHANNELS input channels, kernel larger than 1x1) no
    other match took, without ops after them: run alone on our kernels."""
    matches = []
    for i in range(len(mt.ops)):
        if i in exclude_ops or mt.type(i) != "CONV_2D":
            continue
        why = []
        info = mt.conv_info(i, why)
        if info is None:
            continue  # reported as "not part of a fusable CSP pattern" by fuse()
        p = info.params
        if not is_stem_conv(p):
            continue
        matches.append(ConvMatch(output=info.output, input=info.input, conv=info, removed_ops=[i]))
    return matches


def _find_plain_convs(mt, exclude_ops):
    """fuse --tune: every other dense CONV_2D (a plain conv: no element-wise chain after it, not a
    stem) is a candidate to run alone as a KcspConv2D; the tuner keeps the ones our kernels run
    faster than the builtin conv on this CPU at the model's thread count. On AVX2 that takes in
    ResNet-style bottlenecks, whose 3x3 stride-1 convs run as Winograd F(2x2, 3x3) there (2.9-3.1x
    XNNPACK's on Zen 3, `bench-kernels`), and whose 1x1s run 1.4-1.5x."""
    matches = []
    for i in range(len(mt.ops)):
        if i in exclude_ops or mt.type(i) != "CONV_2D":
            continue
        info = mt.conv_info(i, [])
        if info is None or is_stem_conv(info.params):
            continue  # grouped (their own matches) or unsupported: reported by fuse(); stems matched already
        matches.append(ConvMatch(output=info.output, input=info.input, conv=info, removed_ops=[i], role="plain"))
    return matches


def _find_activated_convs(mt, exclude_ops):
    """CONV_2D ops followed by an element-wise chain (SiLU as x * LOGISTIC(x), HARD_SWISH, LEAKY_RELU,
    ... 1-4 steps) that no other match took: one KcspConv2D each, the chain run in place by the
    vector post-op kernels. The stock kernels run the chain as separate passes (LOGISTIC, then MUL),
    and every builtin op between two fused ops hands the CPU from our threads to LiteRT's and back
    (YOLO backbones: the down-sampling convs and C2f / C3 transitions between the blocks). The
    longest chain per conv."""
    best = {}
    for i in range(len(mt.ops)):
        if mt.type(i) not in TABLE_OPS and mt.type(i) != "MUL":
            continue
        info = mt.conv_producing(int(mt.ops[i].outputs[0]), [])
        if info is None or not info.post_ops or info.op_index in exclude_ops or set(info.post_ops) & exclude_ops:
            continue
        if info.op_index not in best or len(info.post_ops) > len(best[info.op_index].post_ops):
            best[info.op_index] = info
    return [ConvMatch(output=c.output, input=c.input, conv=c, removed_ops=[c.op_index] + list(c.post_ops),
                      role="activated") for _, c in sorted(best.items())]


def _find_grouped_convs(mt, exclude_ops, rejections, grouped_kernel=False):
    """Grouped CONV_2D ops (weights with fewer input channels than the input) no other match took:
    one `KcspConv2D` each, densified or (grouped_kernel: fuse --tune) on the grouped kernel
    (`Matcher.grouped_conv_info`)."""
    def grouped(op):  # weights with fewer input channels than the (rank-4) input
        if op.inputs is None or len(op.inputs) < 2:
            return False
        W, xs = mt.g.constant(int(op.inputs[1])), mt.g.shape(int(op.inputs[0]))
        return W is not None and W.ndim == 4 and len(xs) == 4 and W.shape[3] != xs[3]

    return mt.single_op_matches(
        "CONV_2D", exclude_ops, rejections, grouped, lambda i, why: mt.grouped_conv_info(i, why, grouped_kernel),
        lambda i, info: ConvMatch(output=info.output, input=info.input, conv=info, removed_ops=[i],
                                  role="grouped_kernel" if "groups" in info.params else "grouped"))


def _find_avg_pools(mt, rejections):
    """int8 AVERAGE_POOL_2D ops (input and output with one quantization, as TFLite requires)."""
    matches = []
    for i in range(len(mt.ops)):
        if mt.type(i) != "AVERAGE_POOL_2D":
            continue
        op = mt.ops[i]
        x, y = int(op.inputs[0]), int(op.outputs[0])
        o = op.builtinOptions
        fh, fw, sh, sw = int(o.filterHeight or 1), int(o.filterWidth or 1), int(o.strideH or 1), int(o.strideW or 1)
        rng, reason = None, None
        if not (mt.is_int8(x) and mt.is_int8(y)) or len(mt.g.shape(x)) != 4:
            reason = "average pool is not an int8 NHWC tensor"
        elif not mt.same_q(x, y):
            reason = "average pool changes quantization"
        elif (rng := _act_range(int(o.fusedActivationFunction or 0), *mt.qparams(y))) is None:
            reason = "unsupported fused activation"
        elif not (1 <= fh <= 64 and 1 <= fw <= 64 and 1 <= sh <= 64 and 1 <= sw <= 64):
            reason = "pool window out of range"
        if reason is not None:
            rejections.append(Rejection(i, "AVERAGE_POOL_2D", mt.g.tensor_name(y), reason))
            continue
        params = {"filter_h": fh, "filter_w": fw, "stride_h": sh, "stride_w": sw,
                  "padding": 1 if o.padding == Padding.SAME else 0, "act_min": int(rng[0]), "act_max": int(rng[1]),
                  "channels": int(mt.g.shape(x)[3])}
        matches.append(AvgPoolMatch(output=y, input=x, op_index=i, params=params, removed_ops=[i]))
    return matches


def find_matches(g: Graph, tune_candidates: bool = False):
    """All fusable patterns (dense blocks, partial convs, blocks, depthwise convs, stem convs,
    average pools) + rejections. tune_candidates (fuse --tune): multiplier-1 depthwise convs
    are candidates too (Matcher.find_depthwise), and so are whole inverted residuals around any
    depthwise conv (Matcher.find_inverted_residuals), grouped convs on the grouped kernel
    (Matcher.grouped_conv_info) and every other conv alone (_find_plain_convs)."""
    mt = Matcher(g)
    rejections: list[Rejection] = []
    dense = mt.find_dense_blocks(rejections)
    taken = set()
    for d in dense:
        taken.update(d.concats)
    partial_why: list[Rejection] = []
    partial = mt.find_partial_convs(taken, partial_why)
    # a 2-input concat that a whole block computes with no copy at all (YOLOv5's C3: the bottleneck
    # chain and cv2 both write in place) is a block, not a partial conv copying the chain's output
    from .blocks import BlockPlanner, find_blocks

    planner = BlockPlanner(mt)
    whole = [planner.plan(m.concat) for m in partial]
    whole = [b for b in whole if not isinstance(b, str) and all(st.op != "copy" for st in b.steps)]
    partial = [m for m in partial if m.concat not in {b.concat for b in whole}]
    taken.update(m.concat for m in partial)
    taken.update(b.concat for b in whole)
    # every other concat: a whole block planned as one op (C2f, ELAN, SPPF, ...); a 2-input concat
    # neither takes keeps the partial conv's reason, a wider one the block planner's
    block_why: list[Rejection] = []
    blocks = whole + find_blocks(mt, taken, block_why)
    planned = {b.concat for b in blocks}
    two = {r.op_index for r in partial_why if len(mt.ops[r.op_index].inputs) == 2}
    rejections += [r for r in partial_why if r.op_index in two and r.op_index not in planned]
    rejections += [r for r in block_why if r.op_index not in two]
    in_patterns = ({m.skip_dw.op_index for m in partial if m.skip_dw is not None}
                   | {i for m in dense + partial + blocks for i in m.removed_ops})
    # fuse --tune: whole inverted residuals first, so their depthwise convs do not run alone
    inverted = mt.find_inverted_residuals(in_patterns) if tune_candidates else []
    in_patterns |= {i for m in inverted for i in m.removed_ops}
    depthwise = mt.find_depthwise(in_patterns, rejections, tune_candidates)
    pattern_convs = ([m.conv for m in partial] + [c for d in dense for layer in d.layers for ch in layer for c in ch]
                     + [c for b in blocks for c in b.convs])
    taken_ops = {i for m in dense + partial + blocks + inverted for i in m.removed_ops} | {c.op_index for c in pattern_convs}
    activated = _find_activated_convs(mt, taken_ops)
    taken_ops |= {i for m in activated for i in m.removed_ops}
    stems = _find_stem_convs(mt, taken_ops)
    grouped = _find_grouped_convs(mt, taken_ops, rejections, grouped_kernel=tune_candidates)
    taken_ops |= {i for m in stems + grouped for i in m.removed_ops}
    plain = _find_plain_convs(mt, taken_ops) if tune_candidates else []
    pools = _find_avg_pools(mt, rejections)
    from .tables import attach_tables  # runs the interpreter: only where a table chain matched
    attach_tables(g, pattern_convs + [m.conv for m in activated])
    return dense + partial + blocks + inverted + depthwise + activated + stems + grouped + plain + pools, rejections, mt
