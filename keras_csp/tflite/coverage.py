"""What `fuse` covered (`keras-csp fuse --explain`): every concat, fused or why not, and the fused
share of the model's MACs and of its copy traffic.

MACs: CONV_2D (grouped too), DEPTHWISE_CONV_2D and FULLY_CONNECTED, at the model's batch size.
Copies: bytes written per inference by CONCATENATION and the slicing ops (STRIDED_SLICE, SLICE,
SPLIT, SPLIT_V). A fused op still copies what it does not compute: a partial conv copies its skip
channels into the concat buffer, a dense block copies its input, a block the concat inputs it does not
compute; those bytes count as remaining.
"""
import numpy as np

from .blocks import OUTPUT, BlockMatch
from .patterns import DenseBlockMatch, PartialConvMatch
from .graph import np_dtype

COPY_OPS = ("CONCATENATION", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V")


def op_macs(g, op) -> int:
    kind = g.op_type(op)
    if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(op.inputs) < 2:
        return 0
    out, w = g.shape(int(op.outputs[0])), g.shape(int(op.inputs[1]))
    if len(w) < 2:
        return 0
    if kind == "CONV_2D":          # [cout, kh, kw, cin / groups]
        per_output = int(np.prod(w[1:]))
    elif kind == "DEPTHWISE_CONV_2D":  # [1, kh, kw, cout]
        per_output = w[1] * w[2] if len(w) == 4 else 0
    else:                          # [units, in]
        per_output = w[1]
    return int(np.prod(out)) * per_output


def tensor_bytes(g, t) -> int:
    return int(np.prod(g.shape(t))) * np.dtype(np_dtype(g.tensor(t).type)).itemsize


def _copy_bytes(g, ops) -> int:
    return sum(sum(tensor_bytes(g, int(t)) for t in op.outputs) for op in ops if g.op_type(op) in COPY_OPS)


def _copies_inside(g, m) -> int:
    """Bytes a fused op still copies (int8): the skip channels, or the dense block's input."""
    pixels = int(np.prod(g.shape(m.output)[:3]))
    if isinstance(m, PartialConvMatch):
        return 0 if m.skip_dw is not None else pixels * m.c_skip  # a skip depthwise writes in place
    if isinstance(m, DenseBlockMatch):
        return pixels * m.in_channels
    if isinstance(m, BlockMatch):  # the concat inputs it copies into place
        return pixels * sum(s.dst[3] for s in m.steps if s.op == "copy" and s.dst[0] == OUTPUT)
    return 0


def _concat_ops(m):
    if isinstance(m, (PartialConvMatch, BlockMatch)):
        return [m.concat]
    return list(m.concats) if isinstance(m, DenseBlockMatch) else []


def coverage(g, fused_graph, matches, rejections, fallbacks) -> dict:
    """Coverage of `matches` (the ones written to `fused_graph`) over the original graph `g`."""
    kept = {(fused_graph.op_type(op), fused_graph.tensor_name(int(op.outputs[0]))) for op in fused_graph.ops()}
    ops = g.ops()
    absorbed = {i for i, op in enumerate(ops) if (g.op_type(op), g.tensor_name(int(op.outputs[0]))) not in kept}
    by_concat = {i: m.kind for m in matches for i in _concat_ops(m)}
    reasons = {}
    for r in rejections:
        reasons.setdefault(r.op_index if r.op_index >= 0 else r.tensor, r.reason)
    for f in fallbacks:
        reasons.setdefault(f.get("output"), "fused op reverted by verification: " + str(f.get("reason")))
    concats = []
    for i, op in enumerate(ops):
        if g.op_type(op) != "CONCATENATION":
            continue
        name = g.tensor_name(int(op.outputs[0]))
        row = {"tensor": name, "inputs": len(op.inputs), "fused": i in absorbed, "by": by_concat.get(i)}
        if not row["fused"]:
            row["reason"] = reasons.get(i) or reasons.get(name) or "inside a block that was not fused"
        concats.append(row)
    total_macs = sum(op_macs(g, op) for op in ops)
    fused_macs = sum(op_macs(g, op) for i, op in enumerate(ops) if i in absorbed)
    before = _copy_bytes(g, ops)
    after = _copy_bytes(fused_graph, fused_graph.ops()) + sum(_copies_inside(g, m) for m in matches)
    return {
        "concats": concats,
        "concats_fused": sum(c["fused"] for c in concats),
        "macs": {"total": total_macs, "fused": fused_macs,
                 "fraction": round(fused_macs / total_macs, 4) if total_macs else 0.0},
        "copy_bytes": {"builtin": before, "fused": after,
                       "removed_fraction": round(1 - after / before, 4) if before else 0.0},
    }


def format_coverage(cov) -> list:
    """Lines for `keras-csp fuse --explain`."""
    lines = [f"{cov['concats_fused']} of {len(cov['concats'])} concat(s) fused:"]
    for c in cov["concats"]:
        what = f"fused ({c['by']})" if c["fused"] else f"left: {c['reason']}"
        lines.append(f"  {c['tensor']} [{c['inputs']} inputs]: {what}")
    m, cb = cov["macs"], cov["copy_bytes"]
    lines.append(f"MACs inside fused ops: {m['fused']:,} of {m['total']:,} ({100 * m['fraction']:.1f} %)")
    lines.append(f"copy traffic per inference (concat/slice bytes): builtin {cb['builtin']:,}, fused model "
                 f"{cb['fused']:,} ({100 * cb['removed_fraction']:.1f} % removed)")
    return lines
