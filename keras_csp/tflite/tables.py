"""256-entry tables for the element-wise int8 op chains fused after a conv (SiLU as x * LOGISTIC(x),
HARD_SWISH, TANH, ...): the chain's own ops run on every int8 value under each kernel set a fused
op must match (XNNPACK, TFLite's optimized builtin and its reference kernels), so each table is
exact by construction whatever those kernels compute. `fuse` still verifies every fused op.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph

# custom-option suffix -> interpreter resolver (keras_csp.kernels.run_tflite)
KERNEL_SETS = (("xnnpack", "xnnpack"), ("builtin", "builtin"), ("reference", "ref"))


def chain_tables(g: Graph, ops, t_in: int, t_out: int) -> dict:
    """{"post_table_<set>": [256 int8 values, indexed by input + 128]} for the ops `ops` of `g`
    that map tensor t_in to t_out. The chain is element-wise, so it runs on a [1, 1, 1, 256] copy of
    its tensors holding every int8 value once, whatever the conv output's size."""
    from keras_csp.kernels import run_tflite

    shape = [int(d) for d in g.shape(t_in)]
    if not shape or min(shape) < 1:
        raise ValueError(f"element-wise chain input of shape {shape} cannot be tabulated")
    sub = g.submodel(ops, [t_in], [t_out])
    small = [1] * (len(shape) - 1) + [256]
    for t in sub.sg.tensors:
        if t.shape is None or [int(d) for d in t.shape] != shape:  # element-wise: one shape throughout
            name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else t.name
            raise ValueError(f"element-wise chain tensor {name!r} has shape "
                             f"{None if t.shape is None else [int(d) for d in t.shape]}, its input {shape}")
        t.shape = np.asarray(small, np.int32)
        t.shapeSignature = None
    data = sub.to_bytes()
    x = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(small)
    tables = {}
    for name, resolver in KERNEL_SETS:
        try:
            y = run_tflite(data, x, resolver=resolver)
        except (RuntimeError, ValueError) as e:  # the original model could not run these ops either
            raise ValueError(f"element-wise chain after a conv does not run under {name}: {e}") from None
        tables[f"post_table_{name}"] = [int(v) for v in np.asarray(y).reshape(-1)]
        if len(tables[f"post_table_{name}"]) != 256:
            raise ValueError("element-wise chain changes its tensor's size")
    return tables


def attach_tables(g: Graph, convs) -> None:
    """Fills in the tables of every ConvInfo in `convs` whose post op is a table chain."""
    for c in convs:
        if c.params.get("post") == "table" and "post_table_xnnpack" not in c.params:
            c.params.update(chain_tables(g, c.table_ops, c.post_input, c.table_output))
