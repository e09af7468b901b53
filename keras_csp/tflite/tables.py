"""256-entry tables for the element-wise int8 op chains fused after a conv (SiLU as x * LOGISTIC(x),
HARD_SWISH, TANH, ...): the chain's own ops run on every int8 value under each kernel set a fused
op must match (XNNPACK, TFLite's optimized builtin and its reference kernels), so each table is
exact by construction whatever those kernels compute. `fuse` still verifies every fused op.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph

MAX_CHAIN_ELEMENTS = 1 << 26  # a larger conv output is a corrupt shape, not a model to run

# custom-option suffix -> interpreter resolver (keras_csp.kernels.run_tflite)
KERNEL_SETS = (("xnnpack", "xnnpack"), ("builtin", "builtin"), ("reference", "ref"))


def chain_tables(g: Graph, ops, t_in: int, t_out: int) -> dict:
    """{"post_table_<set>": [256 int8 values, indexed by input + 128]} for the ops `ops` of `g`
    that map tensor t_in to t_out."""
    from keras_csp.kernels import run_tflite

    data = g.submodel(ops, [t_in], [t_out]).to_bytes()
    shape = [int(d) for d in g.shape(t_in)]
    size = int(np.prod(shape, dtype=np.int64))
    if not shape or min(shape) < 1 or size > MAX_CHAIN_ELEMENTS:
        raise ValueError(f"element-wise chain input of shape {shape} cannot be tabulated")
    values = np.arange(-128, 128, dtype=np.int16).astype(np.int8)
    tables = {}
    for name, resolver in KERNEL_SETS:
        table = np.zeros(256, np.int64)
        for off in range(0, 256, size):  # every int8 value at least once
            x = np.resize(np.roll(values, -off), size)
            try:
                y = run_tflite(data, x.reshape(shape), resolver=resolver)
            except RuntimeError as e:  # the original model could not run these ops either
                raise ValueError(f"element-wise chain after a conv does not run under {name}: {e}") from None
            table[x.astype(np.int64) + 128] = y.reshape(-1)
        tables[f"post_table_{name}"] = [int(v) for v in table]
    return tables


def attach_tables(g: Graph, convs) -> None:
    """Fills in the tables of every ConvInfo in `convs` whose post op is a table chain."""
    for c in convs:
        if c.params.get("post") == "table" and "post_table_xnnpack" not in c.params:
            c.params.update(chain_tables(g, c.table_ops, c.post_input, c.table_output))
