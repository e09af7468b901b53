"""Whole blocks that end in a channel concat (YOLO's C2f, ELAN, SPPF, any multi-input CSP concat),
planned as one `CspBlock` op.

Walking back from the concat's inputs, every tensor the block computes is produced by a *unit*:
a conv (with what `Matcher.conv_producing` fuses after it: LEAKY_RELU, a table chain such as SiLU,
a residual ADD), a stride-1 MAX_POOL_2D, or a *view* (a channel slice / split, read in place).
A tensor is internal when its unit keeps the spatial size and every consumer of the tensor is
inside the block; the walk stops at the block inputs. Internal tensors live in

* the concat's output: the concat inputs, and a tensor whose slices are concat inputs covering it
  in order (C2f's first 1x1 conv, split in two, writes both halves straight into place);
* scratch buffers otherwise (a bottleneck's inner conv), reused once their last reader ran.

A concat input nothing in the block produces (an outside tensor) is copied into place. The plan is a
list of steps (conv / max_pool / copy) over those buffers; the runtime checks it in Init.

Bound: a conv whose input comes from another concat and whose output is not placed in this one
(the previous block's transition conv before SPPF or ELAN) stays outside, so a block does not
swallow its neighbour's transition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .patterns import SLICE_OPS, ConvInfo, Matcher, Rejection, _act_range
from .schema import Padding

INPUT, OUTPUT, SCRATCH = 0, 1, 2
MAX_UNITS = 256  # tensors explored per concat


@dataclass
class BlockStep:
    op: str                      # "conv" | "max_pool" | "copy"
    src: tuple                   # (buffer kind, index, channel offset, channels)
    dst: tuple
    conv: ConvInfo | None = None
    residual: tuple | None = None
    pool: dict | None = None     # max pool options
    op_indices: list = field(default_factory=list)  # original ops this step replaces


@dataclass
class BlockMatch:
    concat: int
    output: int
    inputs: list                 # block input tensors (op inputs 0..k-1)
    steps: list
    scratch: list                # channels per scratch buffer
    out_channels: int
    removed_ops: list = field(default_factory=list)
    kind: str = "CspBlock"

    @property
    def convs(self):
        return [s.conv for s in self.steps if s.op == "conv"]


@dataclass
class _Unit:
    kind: str                    # "conv" | "pool" | "view"
    ops: list                    # op indices
    reads: list                  # tensors it reads (conv input + residual, pool input, view source)
    conv: ConvInfo | None = None
    pool: dict | None = None
    view: tuple | None = None    # (source, offset, channels)


class BlockPlanner:
    def __init__(self, mt: Matcher):
        self.mt = mt
        self.g = mt.g

    # ---- units ----
    def _pool_unit(self, t):
        mt = self.mt
        pi = mt.prod[t]
        op = mt.ops[pi]
        x = int(op.inputs[0])
        o = op.builtinOptions
        if not (mt.is_int8(x) and mt.is_int8(t) and mt.same_q(x, t)) or mt.g.shape(x) != mt.g.shape(t):
            return None
        fh, fw, sh, sw = (int(v or 1) for v in (o.filterHeight, o.filterWidth, o.strideH, o.strideW))
        same = o.padding == Padding.SAME
        if sh != 1 or sw != 1 or not (same or fh == fw == 1):
            return None
        rng = _act_range(int(o.fusedActivationFunction or 0), *mt.qparams(t))
        if rng is None:
            return None
        pool = {"filter_h": fh, "filter_w": fw, "stride_h": 1, "stride_w": 1, "padding": 1 if same else 0,
                "act_min": int(rng[0]), "act_max": int(rng[1])}
        return _Unit("pool", [pi], [x], pool=pool)

    def unit(self, t):
        """How the block would compute tensor t, or None (t is then a block input)."""
        mt = self.mt
        pi = mt.prod.get(t)
        if pi is None or not mt.is_int8(t):
            return None
        kind = mt.type(pi)
        if kind == "MAX_POOL_2D":
            return self._pool_unit(t)
        if kind in SLICE_OPS:
            sl = mt.channel_slice(t)
            if sl is None or not mt.same_q(sl[0], t):
                return None
            return _Unit("view", [sl[3]], [sl[0]], view=sl[:3])
        info = mt.conv_producing(t, [], allow_add=True)
        if info is None:
            return None
        p = info.params
        if p["stride_h"] != 1 or p["stride_w"] != 1 or (p["padding"] == 0 and (p["kernel_h"], p["kernel_w"]) != (1, 1)):
            return None
        ops = [info.op_index] + info.post_ops
        reads = [info.input] + ([info.residual] if info.residual >= 0 else [])
        return _Unit("conv", ops, reads, conv=info)

    # ---- planning ----
    def plan(self, ci):
        """BlockMatch for concat op ci, or a reason string."""
        mt, g = self.mt, self.g
        out = int(mt.ops[ci].outputs[0])
        ins = [int(v) for v in mt.ops[ci].inputs]
        units = {}
        stack = list(dict.fromkeys(ins))
        while stack and len(units) < MAX_UNITS:
            t = stack.pop()
            if t in units:
                continue
            u = self.unit(t)  # units keep the spatial size: every internal tensor has the concat's
            if u is None:
                continue
            units[t] = u
            stack.extend(r for r in u.reads if r not in units)
        if self._has_cycle(units):  # a malformed graph: _resolve and the step order would not end
            return "the block's tensors read each other in a cycle (malformed graph)"
        concat_fed = set(ins)
        placed_hint = concat_fed | {u.view[0] for t, u in units.items() if u.kind == "view" and t in concat_fed}
        # the previous block's transition conv stays outside (see the module docstring)
        for t, u in list(units.items()):
            if u.kind == "conv" and t not in placed_hint and \
                    mt.type_of(self._resolve(u.conv.input, units)[0]) == "CONCATENATION":
                del units[t]
        self._prune(units, ci)
        if not any(u.kind in ("conv", "pool") for u in units.values()):
            return "no conv or max pool of the block feeds the concat in place"
        return self._build(ci, out, ins, units)

    @staticmethod
    def _has_cycle(units):
        """Whether some unit reads (through other units) its own tensor."""
        state = {}  # tensor -> 1 on the DFS path, 2 done
        for root in units:
            if state.get(root):
                continue
            stack = [(root, iter(units[root].reads))]
            state[root] = 1
            while stack:
                t, it = stack[-1]
                r = next((r for r in it if r in units and state.get(r) != 2), None)
                if r is None:
                    state[t] = 2
                    stack.pop()
                elif state.get(r) == 1:
                    return True
                else:
                    state[r] = 1
                    stack.append((r, iter(units[r].reads)))
        return False

    @staticmethod
    def _resolve(t, units):
        """(tensor, channel offset) that view t reads: through slices of slices to the sliced tensor."""
        offset = 0
        while t in units and units[t].kind == "view":
            t, o, _ = units[t].view
            offset += o
        return t, offset

    def _prune(self, units, ci):
        """Drops units whose tensor is used outside the block, until nothing changes."""
        mt = self.mt
        while True:
            inside = {ci}
            for u in units.values():
                inside.update(u.ops)
            # a split stays in the graph when any of its outputs does: it then reads its source there
            for t, u in units.items():
                if u.kind == "view":
                    if any(int(o) not in units and mt.cons.get(int(o)) for o in mt.ops[u.ops[0]].outputs):
                        inside.discard(u.ops[0])
            drop = [t for t in units
                    if t in mt.outputs or any(c not in inside for c in mt.cons.get(t, []))]
            if not drop:
                return
            for t in drop:
                del units[t]

    def _build(self, ci, out, ins, units):
        mt, g = self.mt, self.g
        C = g.shape(out)[3]
        # ---- where each internal tensor lives ----
        place = {}  # tensor -> (OUTPUT, 0, offset) or scratch symbol
        offsets, off = [], 0
        for t in ins:
            offsets.append(off)
            off += g.shape(t)[3]
        for t, o in zip(ins, offsets):
            if t in units and units[t].kind != "view" and t not in place:
                place[t] = (OUTPUT, 0, o)
        # a tensor whose slices are concat inputs covering all its channels is written in place
        by_src = {}
        for t, o in zip(ins, offsets):
            u = units.get(t)
            if u is not None and u.kind == "view" and u.view[0] in units and units[u.view[0]].kind != "view":
                by_src.setdefault(u.view[0], []).append((u.view[1], u.view[2], o))
        for v, parts in by_src.items():
            bases = {o - s for s, _, o in parts}
            covered = sorted((s, s + c) for s, c, _ in parts)
            whole = all(a[1] == b[0] for a, b in zip(covered, covered[1:])) and covered[0][0] == 0 and \
                covered[-1][1] == g.shape(v)[3]
            if v not in place and len(bases) == 1 and whole and mt.same_q(v, out) and min(bases) >= 0:
                place[v] = (OUTPUT, 0, bases.pop())
        # ---- steps in graph order, then scratch buffers by liveness ----
        order = sorted((max(u.ops), t) for t, u in units.items() if u.kind != "view")
        inputs = []

        def where(t):
            """(kind, index/symbol, offset) of tensor t's values as the block reads them."""
            t, extra = self._resolve(t, units)
            if t in units:
                if t in place:
                    k, i, o = place[t]
                    return (k, i, o + extra)
                return (SCRATCH, t, extra)
            if t not in inputs:
                inputs.append(t)
            return (INPUT, inputs.index(t), extra)

        steps = []
        for _, t in order:
            u = units[t]
            dst = place.get(t, (SCRATCH, t, 0))
            c_out = g.shape(t)[3]
            if u.kind == "conv":
                src = where(u.conv.input) + (u.conv.params["in_channels"],)
                res = where(u.conv.residual) + (c_out,) if u.conv.residual >= 0 else None
                steps.append(BlockStep("conv", src, dst + (c_out,), conv=u.conv, residual=res, op_indices=u.ops))
            else:
                steps.append(BlockStep("max_pool", where(u.reads[0]) + (c_out,), dst + (c_out,), pool=u.pool,
                                       op_indices=u.ops))
        # concat inputs not written in place: copied (outside tensors, views of scratch, repeats)
        done = set()
        for t, o in zip(ins, offsets):
            src = where(t)
            in_place = src[0] == OUTPUT and src[2] == o and t not in done
            done.add(t)
            if in_place:
                continue
            copy = BlockStep("copy", src + (g.shape(t)[3],), (OUTPUT, 0, o, g.shape(t)[3]))
            # right after the step that writes its source (scratch buffers are reused)
            at = max((k for k, s in enumerate(steps) if s.dst[:2] == src[:2] and src[0] != INPUT), default=-1)
            steps.insert(at + 1, copy)
        scratch = self._allocate(steps)
        removed = [ci] + [i for t, u in units.items() for i in u.ops]
        return BlockMatch(concat=ci, output=out, inputs=inputs, steps=steps, scratch=scratch, out_channels=C,
                          removed_ops=removed)

    def _allocate(self, steps):
        """Maps scratch symbols (tensors) to reused buffers; returns the channels of each buffer."""
        last_read = {}
        for k, s in enumerate(steps):
            for slot in (s.src, s.residual):
                if slot is not None and slot[0] == SCRATCH:
                    last_read[slot[1]] = k
        buffers, owner, assigned = [], [], {}
        for k, s in enumerate(steps):
            if s.dst[0] == SCRATCH and s.dst[1] not in assigned:
                t = s.dst[1]
                c = self.g.shape(t)[3]
                free = [b for b in range(len(buffers))
                        if buffers[b] >= c and last_read.get(owner[b], -1) < k]
                if free:
                    b = min(free, key=lambda b: buffers[b])
                    owner[b] = t
                else:
                    buffers.append(c)
                    owner.append(t)
                    b = len(buffers) - 1
                assigned[t] = b
        for s in steps:
            for name in ("src", "dst", "residual"):
                slot = getattr(s, name)
                if slot is not None and slot[0] == SCRATCH:
                    setattr(s, name, (SCRATCH, assigned[slot[1]], slot[2], slot[3]))
        return buffers


def find_blocks(mt: Matcher, exclude_ops: set, rejections: list):
    """CspBlock matches for the concats not in `exclude_ops`; rejections for those that cannot be."""
    planner = BlockPlanner(mt)
    matches = []
    for i in range(len(mt.ops)):
        if i in exclude_ops or mt.type(i) != "CONCATENATION":
            continue
        out = int(mt.ops[i].outputs[0])
        why = []
        if not mt.concat_ok(i, why):
            rejections.append(Rejection(i, "CONCATENATION", mt.g.tensor_name(out), why[-1]))
            continue
        r = planner.plan(i)
        if isinstance(r, str):
            rejections.append(Rejection(i, "CONCATENATION", mt.g.tensor_name(out), r))
        else:
            matches.append(r)
    return matches
