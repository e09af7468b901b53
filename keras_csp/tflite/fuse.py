"""`fuse(src, dst)`: rewrite CSP hot paths of an int8 .tflite into keras-csp custom ops.

Each match (see patterns.py) becomes ONE `CUSTOM` op whose flexbuffer custom options carry the
channel split, stride, padding, activation range, zero points and the per-channel fixed-point
multipliers/shifts (TFLite's own requantization parameters). Weights and biases stay what they
were: constant input tensors of the custom op (the original OHWI int8 weights and int32 biases,
so the file does not grow and tools still see them; only a grouped conv's weights are written
anew, densified to block-diagonal OHWI, `groups` times their size), 64-byte aligned in the file because LiteRT
hands constant custom-op inputs to the kernel as host buffers that must be aligned. The kernel
prepacks them once, on its first run. The last input of every fused op is a tiny constant
int8 "node key" tensor of shape [node + 1] that identifies the node to our kernel callbacks
(LiteRT's custom-op API gives them no node handle).

Inputs:  CspPartialConv: skip_src, conv_src, weights, bias, key
         CspDenseBlock:  x, (weights, bias) per conv, key
         CspBlock:       block inputs, (weights, bias) per conv step, key
         KcspDepthwiseConv2D, KcspConv2D: x, weights, bias, key
         KcspInvertedResidual: x, [expand weights, bias], depthwise weights, bias, project weights, bias, key
         KcspAvgPool2D:  x, key

Numerics. A fused op must give the same bits as the builtin ops it replaces, and those round
differently depending on which CPU kernels run them: XNNPACK (LiteRT's default) requantizes
convs in float32 -- out = rint(float(acc) * f32(in_s * w_s[c] / out_s)) + zp -- and has its own
8.8 fixed-point LEAKY_RELU; TFLite's optimized builtin convs use the fixed-point multiplier with
ties rounded up; TFLite's reference kernels round ties away from zero. The options carry the
parameters of all of them and keras_csp.runtime picks the ones matching its CPU kernel mode
(`custom_op_numerics="auto"`), so a fused model is bit-identical to the original under each.

Before writing, the rewritten model is verified on representative inputs:
  1. every fused op ALONE must be bit-identical to the builtin SLICE/CONV_2D/CONCATENATION
     (/LEAKY_RELU) ops it replaces, run by the ai-edge-litert interpreter with TFLite's
     reference kernels, its optimized builtin kernels and XNNPACK, on the activations it sees
     inside the model plus random full-range inputs;
  2. the whole rewritten model vs the original in our runtime (keras_csp.runtime), with the
     default XNNPACK CPU path and with TFLite's builtin kernels.
Fused ops failing (1), or differing inside the model in (2) while the model outputs differ, are
reverted to the builtin ops (per-op fallback) and the check repeats; if the model outputs still
differ, nothing is written (FuseVerificationError). against=("tflite",) only reports (2) for
XNNPACK instead of enforcing it.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile

import numpy as np
from flatbuffers import flexbuffers

from .blocks import BlockMatch
from .coverage import coverage
from .graph import Graph
from .patterns import (AvgPoolMatch, ConvMatch, DenseBlockMatch, DepthwiseMatch, InvertedResidualMatch,
                       PartialConvMatch, Rejection,
                       find_matches, is_stem_conv)
from .schema import schema

OPTIONS_VERSION = 1


class FuseError(RuntimeError):
    pass


class FuseVerificationError(FuseError):
    pass


def _growth(m) -> int:
    return sum(ch[-1].params["out_channels"] for layer in m.layers for ch in layer)


def _dense_convs(m):
    return [c for layer in m.layers for ch in layer for c in ch]


def _conv_options(c):
    return {k: v for k, v in c.params.items()}


def _options(m, node: int) -> dict:
    if isinstance(m, PartialConvMatch):
        o = _conv_options(m.conv)
        o.update({
            "version": OPTIONS_VERSION, "node": node, "c_skip": m.c_skip,
            "skip_offset": m.skip_offset, "conv_offset": m.conv_offset, "order": m.order,
        })
        if m.skip_dw is not None:
            o["skip_dw"] = _conv_options(m.skip_dw)
        return o
    if isinstance(m, AvgPoolMatch):
        return dict(m.params, version=OPTIONS_VERSION, node=node)
    if isinstance(m, (DepthwiseMatch, ConvMatch)):
        o = _conv_options(m.dw if isinstance(m, DepthwiseMatch) else m.conv)
        o.update({"version": OPTIONS_VERSION, "node": node})
        return o
    if isinstance(m, InvertedResidualMatch):
        o = {"version": OPTIONS_VERSION, "node": node, "depthwise": _conv_options(m.dw),
             "project": _conv_options(m.project)}
        if m.expand is not None:
            o["expand"] = _conv_options(m.expand)
        return o
    if isinstance(m, BlockMatch):
        return {"version": OPTIONS_VERSION, "node": node, "inputs": len(m.inputs), "out_channels": m.out_channels,
                "scratch": list(m.scratch), "steps": [_block_step_options(st) for st in m.steps]}
    o = {
        "version": OPTIONS_VERSION, "node": node, "in_channels": m.in_channels,
        "in_offset": m.in_offset,
        # per layer: its branches, each a conv chain (the runtime also reads a bare chain)
        "layers": [[[_conv_options(c) for c in chain] for chain in layer] for layer in m.layers],
    }
    o["out_channels"] = m.in_channels + _growth(m)
    return o


def _block_step_options(st) -> dict:
    o = {"op": st.op, "src": list(st.src), "dst": list(st.dst)}
    if st.op == "conv":
        o.update(_conv_options(st.conv))
        if st.residual is not None:
            o["residual"] = list(st.residual)
    elif st.op == "max_pool":
        o.update(st.pool)
    return o


def _bias_tensor(g: Graph, conv, name):
    if conv.bias >= 0:
        return conv.bias
    cout = conv.params["out_channels"]
    return g.add_tensor(name + "/kcsp_zero_bias", [cout], np.int32, data=np.zeros(cout, np.int32))


def _weights_tensor(g: Graph, conv, name):
    """The conv's weight tensor; a grouped conv's densified weights as a new tensor with the same
    per-output-channel scales."""
    if conv.dense_weights is None:
        return conv.weights
    scales, zps, _ = g.quant(conv.weights)
    return g.add_tensor(name + "/kcsp_dense_weights", list(conv.dense_weights.shape), np.int8,
                        data=conv.dense_weights, scales=scales, zero_points=zps, quantized_dimension=0)


def _conv_text(p) -> str:
    return f"{p['kernel_h']}x{p['kernel_w']}/s{p['stride_h']} {p['in_channels']}->{p['out_channels']}"


def _describe(g: Graph, m) -> dict:
    if isinstance(m, PartialConvMatch):
        d = {
            "op": "CspPartialConv", "output": g.tensor_name(m.output),
            "replaces": sorted(g.op_type(g.ops()[i]) for i in m.removed_ops),
            "c_skip": m.c_skip, "order": "skip_first" if m.order == 0 else "conv_first",
            "conv": _conv_text(m.conv.params) + (" +residual add" if m.conv.residual >= 0 else ""),
            "conv_outputs": [g.tensor_name(m.conv.output)],
        }
        if m.skip_dw is not None:
            d["skip_depthwise"] = _conv_text(m.skip_dw.params) + f" x{m.skip_dw.params['depth_multiplier']}"
            d["conv_outputs"].append(g.tensor_name(m.skip_dw.output))
        return d
    if isinstance(m, DepthwiseMatch):
        return {"op": "KcspDepthwiseConv2D", "output": g.tensor_name(m.output), "replaces": ["DEPTHWISE_CONV_2D"],
                "depthwise": _conv_text(m.dw.params) + f" x{m.dw.params['depth_multiplier']}",
                "conv_outputs": [g.tensor_name(m.output)]}
    if isinstance(m, InvertedResidualMatch):
        return {"op": m.kind, "output": g.tensor_name(m.output),
                "replaces": sorted(g.op_type(g.ops()[i]) for i in m.removed_ops),
                "expand": _conv_text(m.expand.params) if m.expand is not None else None,
                "depthwise": _conv_text(m.dw.params) + f" x{m.dw.params['depth_multiplier']}",
                "project": _conv_text(m.project.params) + (" +residual add" if m.project.residual >= 0 else ""),
                "conv_outputs": [g.tensor_name(c.output) for c in m.convs]}
    if isinstance(m, AvgPoolMatch):
        p = m.params
        return {"op": "KcspAvgPool2D", "output": g.tensor_name(m.output), "replaces": ["AVERAGE_POOL_2D"],
                "pool": f"{p['filter_h']}x{p['filter_w']}/s{p['stride_h']} x{p['channels']}", "conv_outputs": []}
    if isinstance(m, ConvMatch):
        p = m.conv.params
        kind = {"stem": " (stem)", "grouped": " (grouped, run dense)",
                "grouped_kernel": f" (grouped, {p.get('groups')} groups)",
                "activated": " (stem, with its element-wise chain)" if is_stem_conv(p) else " (with its element-wise chain)",
                "plain": " (alone)"}
        return {"op": "KcspConv2D", "output": g.tensor_name(m.output),
                "replaces": sorted(g.op_type(g.ops()[i]) for i in m.removed_ops),
                "conv": _conv_text(p) + kind[m.role], "conv_outputs": [g.tensor_name(m.output)]}
    if isinstance(m, BlockMatch):
        return {"op": "CspBlock", "output": g.tensor_name(m.output),
                "replaces": sorted(g.op_type(g.ops()[i]) for i in m.removed_ops),
                "concat_inputs": len(g.ops()[m.concat].inputs), "inputs": len(m.inputs),
                "steps": [s.op + (" " + _conv_text(s.conv.params) if s.op == "conv" else "") for s in m.steps],
                "scratch_channels": list(m.scratch),
                "conv_outputs": [g.tensor_name(c.output) for c in m.convs]}
    return {
        "op": "CspDenseBlock", "output": g.tensor_name(m.output),
        "replaces": sorted(g.op_type(g.ops()[i]) for i in m.removed_ops),
        "layers": len(m.layers), "convs_per_layer": [sum(len(ch) for ch in layer) for layer in m.layers],
        "branches_per_layer": max(len(layer) for layer in m.layers),
        "in_channels": m.in_channels,
        "out_channels": m.in_channels + _growth(m),
        "conv_outputs": [g.tensor_name(c.output) for c in _dense_convs(m)],
    }


def rewrite(g0: Graph, matches, keep_dead_tensors=False) -> Graph:
    """Returns a new Graph with each match replaced by one custom op (tensor indices of the
    original graph are preserved unless keep_dead_tensors is False)."""
    g = Graph(copy.deepcopy(g0.model))
    ops = g.ops()
    remove = set()
    insert_at = {}
    for node, m in enumerate(matches):
        key = g.add_tensor(f"kcsp_node_key_{node}", [node + 1], np.int8, data=np.zeros(node + 1, np.int8))
        op = schema.OperatorT()
        if isinstance(m, PartialConvMatch):
            op.opcodeIndex = g.custom_opcode_index("CspPartialConv")
            b = _bias_tensor(g, m.conv, f"kcsp_{node}")
            ins = [m.skip_src, m.conv_src, m.conv.weights, b]
            if m.skip_dw is not None:
                ins += [m.skip_dw.weights, _bias_tensor(g, m.skip_dw, f"kcsp_{node}_dw")]
            if m.conv.residual >= 0:
                ins.append(m.conv.residual)
            op.inputs = np.asarray(ins + [key], np.int32)  # the node key is always the last input
            last = m.concat
            hard = [m.conv.op_index, m.concat] + m.conv.post_ops
            hard += [m.skip_dw.op_index] if m.skip_dw is not None else []
        elif isinstance(m, AvgPoolMatch):
            op.opcodeIndex = g.custom_opcode_index(m.kind)
            op.inputs = np.asarray([m.input, key], np.int32)
            last = m.op_index
            hard = [m.op_index]
        elif isinstance(m, (DepthwiseMatch, ConvMatch)):
            op.opcodeIndex = g.custom_opcode_index(m.kind)
            c = m.dw if isinstance(m, DepthwiseMatch) else m.conv
            op.inputs = np.asarray([m.input, _weights_tensor(g, c, f"kcsp_{node}"), _bias_tensor(g, c, f"kcsp_{node}"), key],
                                   np.int32)
            last = c.op_index
            hard = list(m.removed_ops)  # the conv, and a KcspConv2D's element-wise chain
        elif isinstance(m, InvertedResidualMatch):
            op.opcodeIndex = g.custom_opcode_index(m.kind)
            ins = [m.input]
            for k, c in enumerate([m.expand, m.dw, m.project]):
                if c is not None:
                    ins += [c.weights, _bias_tensor(g, c, f"kcsp_{node}_{k}")]
            op.inputs = np.asarray(ins + [key], np.int32)
            last = max(m.removed_ops)
            hard = list(m.removed_ops)
        elif isinstance(m, BlockMatch):
            op.opcodeIndex = g.custom_opcode_index("CspBlock")
            ins = list(m.inputs)
            for k, c in enumerate(m.convs):
                ins += [c.weights, _bias_tensor(g, c, f"kcsp_{node}_{k}")]
            op.inputs = np.asarray(ins + [key], np.int32)
            last = m.concat
            hard = [m.concat] + [i for st in m.steps for i in st.op_indices]  # slices go with dead-code removal
        else:
            op.opcodeIndex = g.custom_opcode_index("CspDenseBlock")
            ins = [m.x_src]
            for c in _dense_convs(m):
                ins += [c.weights, _bias_tensor(g, c, f"kcsp_{node}")]
            op.inputs = np.asarray(ins + [key], np.int32)
            last = m.concats[-1]
            hard = list(m.removed_ops)
        op.outputs = np.asarray([m.output], np.int32)
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(_options(m, node))), np.uint8).copy()
        op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        op.builtinOptionsType = 0
        op.builtinOptions = None
        insert_at[last] = op
        remove.update(hard)
    new_ops = []
    for i, op in enumerate(ops):
        if i in insert_at:
            new_ops.append(insert_at[i])
        elif i not in remove:
            new_ops.append(op)
    g.sg.operators = new_ops
    # dead-code elimination (e.g. slice ops whose outputs are now unused)
    while True:
        cons = g.consumers()
        outs = g.graph_outputs()
        dead = [i for i, op in enumerate(g.sg.operators)
                if all(int(t) not in cons and int(t) not in outs for t in op.outputs)]
        if not dead:
            break
        g.sg.operators = [op for i, op in enumerate(g.sg.operators) if i not in set(dead)]
    if not keep_dead_tensors:
        g.remove_unused()
    return g


def _with_outputs(g0: Graph, extra):
    """(copy of g0 whose subgraph also outputs `extra` tensors, position of each `extra` tensor among
    its outputs). No signatures, so the runtime returns subgraph outputs in order. A tensor already
    among the outputs is not listed twice (LiteRT's results for a repeated output tensor are
    unreliable)."""
    g = Graph(copy.deepcopy(g0.model))
    outs = [int(t) for t in g.sg.outputs]
    outs += [t for t in dict.fromkeys(int(t) for t in extra) if t not in outs]
    g.sg.outputs = np.asarray(outs, np.int32)
    g.model.signatureDefs = []
    return g, [outs.index(int(t)) for t in extra]


def _diff_stats(r, o):
    d = np.abs(r.astype(np.int64) - o.astype(np.int64))
    return int(np.count_nonzero(d)), int(d.max()) if d.size else 0


def _activation_inputs(m):
    if isinstance(m, PartialConvMatch):
        return list(dict.fromkeys([m.skip_src, m.conv_src] + ([m.conv.residual] if m.conv.residual >= 0 else [])))
    if isinstance(m, (DepthwiseMatch, ConvMatch, AvgPoolMatch, InvertedResidualMatch)):
        return [m.input]
    if isinstance(m, BlockMatch):
        return list(m.inputs)
    return [m.x_src]


def _pattern_submodel(g: Graph, m) -> Graph:
    """The builtin ops of match m alone: inputs = its activation inputs, output = m.output."""
    ins = set(_activation_inputs(m))
    prod = g.producers()
    ops = g.ops()
    opset, stack = set(), [m.output]
    while stack:
        t = stack.pop()
        if t in ins or t < 0:
            continue
        pi = prod.get(t)
        if pi is None or pi in opset:
            continue
        opset.add(pi)
        stack.extend(int(v) for v in ops[pi].inputs)
    return g.submodel(opset, _activation_inputs(m), [m.output])


# Interpreter resolver, runtime CPU kernel mode and custom-op numerics of each kernel set a
# fused op must match.
_KERNEL_SETS = {"reference": ("ref", "reference", "reference"), "builtin": ("builtin", "builtin", "auto"),
                "xnnpack": ("xnnpack", "", "auto")}
_KERNEL_SET_NAMES = {"reference": "TFLite's reference int8 kernels",
                     "builtin": "TFLite's optimized builtin int8 kernels",
                     "xnnpack": "XNNPACK"}


def _run_interp(it, xs):
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def _verify_ops_alone(g: Graph, matches, inputs, tmp):
    """Each fused op alone vs the builtin ops it replaces, under each kernel set (interpreter
    with those kernels vs our runtime with the matching numerics), on the activations it sees
    in the model (+ random full-range inputs). Returns {match index: reason} for mismatches."""
    from keras_csp.kernels import make_interpreter
    from keras_csp.runtime import Model

    probes = []
    for m in matches:
        probes += _activation_inputs(m)
    probes = list(dict.fromkeys(probes))
    probe_path = os.path.join(tmp, "probe.tflite")
    probe_g, pos = _with_outputs(g, probes)
    probe_g.save(probe_path)
    captured = [{t: outs[k] for t, k in zip(probes, pos)} for outs in _run_all(probe_path, inputs)]
    rng = np.random.default_rng(123)
    bad = {}
    for i, m in enumerate(matches):
        sub = _pattern_submodel(g, m)
        sub_ms, _, _ = find_matches(sub, tune_candidates=True)  # the sub-model holds one match
        if len(sub_ms) != 1 or type(sub_ms[0]) is not type(m):
            bad[i] = "pattern could not be isolated for verification"
            continue
        fz_path = os.path.join(tmp, f"sub{i}_fused.tflite")
        rewrite(sub, sub_ms).save(fz_path)
        samples = [[c[t] for t in _activation_inputs(m)] for c in captured]
        samples += [[rng.integers(-128, 128, size=c[t].shape).astype(np.int8) for t in _activation_inputs(m)]
                    for c in captured[:2]]
        sub_bytes = sub.to_bytes()
        for kset, (resolver, mode, numerics) in _KERNEL_SETS.items():
            it = make_interpreter(sub_bytes, resolver)
            fm = Model(fz_path, cpu_kernel_mode=mode, custom_op_numerics=numerics)
            nd, mx = 0, 0
            for xs in samples:
                (r,) = _run_interp(it, xs)
                (o,) = fm.run(*xs)
                a, b = _diff_stats(r, o)
                nd, mx = nd + a, max(mx, b)
            if nd:
                bad[i] = (f"differs from {_KERNEL_SET_NAMES[kset]} in {nd} elements (max |diff| {mx}) "
                          f"over {len(samples)} inputs")
                break
    return bad


def _verify(g: Graph, matches, inputs, dst, against=("tflite", "xnnpack")):
    """Per-op fallback verification (see module docstring). Returns (kept matches, fallbacks,
    verification summary)."""
    fallbacks = []
    summary = {"enabled": True, "samples": len(inputs)}
    n_out = len(g.sg.outputs)
    with tempfile.TemporaryDirectory() as tmp:
        bad = _verify_ops_alone(g, matches, inputs, tmp)
        for i in sorted(bad):
            d = _describe(g, matches[i])
            d["reason"] = bad[i]
            fallbacks.append(d)
        active = [i for i in range(len(matches)) if i not in bad]
        summary["fused_ops_alone"] = (
            f"{len(active)} fused op(s) bit-exact vs the ops they replace under XNNPACK, TFLite's "
            f"builtin and TFLite's reference int8 kernels (each op alone, on its in-model "
            f"activations + random inputs)")
        ref_path = os.path.join(tmp, "ref.tflite")
        ref_g, ref_pos = _with_outputs(g, [m.output for m in matches])
        ref_g.save(ref_path)
        ref = {mode: _run_all(ref_path, inputs, mode) for mode in ("", "builtin")}
        for _attempt in range(len(matches) + 1):
            cur = [matches[i] for i in active]
            fz_path = os.path.join(tmp, "fused.tflite")
            fused_g, got_pos = _with_outputs(rewrite(g, cur, keep_dead_tensors=True), [m.output for m in cur])
            fused_g.save(fz_path)
            equal, op_diffs = {}, {}
            for mode in ("", "builtin"):
                got = _run_all(fz_path, inputs, mode)
                equal[mode] = all(np.array_equal(r[k], o[k]) for r, o in zip(ref[mode], got) for k in range(n_out))
                od = {}
                for r, o in zip(ref[mode], got):
                    for j, i in enumerate(active):
                        nd, mx = _diff_stats(r[ref_pos[i]], o[got_pos[j]])
                        if nd:
                            e = od.setdefault(i, [0, 0])
                            e[0] += nd
                            e[1] = max(e[1], mx)
                op_diffs[mode] = od
            enforced = [mode for mode in ("", "builtin") if mode == "builtin" or "xnnpack" in against]
            culprits = {i: (mode, v) for mode in enforced if not equal[mode] for i, v in op_diffs[mode].items()}
            if culprits:
                for i, (mode, (nd, mx)) in sorted(culprits.items()):
                    d = _describe(g, matches[i])
                    kset = "xnnpack" if mode == "" else "builtin"
                    d["reason"] = (f"model outputs differ under {_KERNEL_SET_NAMES[kset]}; this op's output "
                                   f"differs inside the model in {nd} elements (max |diff| {mx})")
                    fallbacks.append(d)
                active = [i for i in active if i not in culprits]
                continue
            break
        summary["model_outputs_bit_exact"] = {"xnnpack": equal[""], "tflite_builtin": equal["builtin"]}
        summary["fused_ops_differing_in_model"] = {
            {"": "xnnpack", "builtin": "tflite_builtin"}[mode]: [
                {"output": g.tensor_name(matches[i].output), "elements": v[0], "max_abs": v[1]}
                for i, v in sorted(od.items())]
            for mode, od in op_diffs.items()}
    ex = summary["model_outputs_bit_exact"]
    if not ex["tflite_builtin"] or ("xnnpack" in against and not ex["xnnpack"]):
        which = "XNNPACK" if not ex["xnnpack"] else "TFLite's builtin kernels"
        raise FuseVerificationError(f"fused model outputs are not bit-exact under {which}; refusing to write {dst}")
    return [matches[i] for i in active], fallbacks, summary


def representative_inputs(model, samples: int = 8, seed: int = 0):
    """Random inputs covering the full range of each input's dtype (+ one all-zero-point)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(samples):
        xs = []
        for d in model.input_details():
            dt = np.dtype(d.dtype)
            if dt.kind in "iu":
                info = np.iinfo(dt)
                if k == 0:
                    a = np.full(d.shape, d.zero_point if d.quantization != "none" else 0, dt)
                else:
                    a = rng.integers(info.min, int(info.max) + 1, size=d.shape).astype(dt)
            else:
                a = rng.standard_normal(d.shape).astype(dt)
            xs.append(a)
        out.append(xs)
    return out


def _run_all(path, inputs, cpu_kernel_mode="", num_threads=1):
    from keras_csp.runtime import Model

    m = Model(path, num_threads=num_threads, cpu_kernel_mode=cpu_kernel_mode)
    return [m.run(*xs) for xs in inputs]


def _tune(g: Graph, matches, threads, min_speedup, runs, seed):
    """Keeps the matches whose fused op beats the builtin ops it replaces on this CPU."""
    from .bench import time_patterns

    rows = time_patterns(g, matches, runs=runs, num_threads=threads, seed=seed)
    kept, slower = [], []
    for m, r in zip(matches, rows):
        r["kept"] = r["speedup"] >= min_speedup
        if r["kept"]:
            kept.append(m)
        else:
            slower.append(Rejection(-1, r["op"], r["output"],
                                    f"fused op {r['speedup']:.2f}x the builtin ops at {threads} thread(s) on this CPU: "
                                    f"kept as builtins (fuse --tune)"))
    return kept, rows, slower


def _tune_whole_model(g: Graph, src: str, candidates, kept, rows, threads, min_speedup, runs, seed, every_set=None):
    """The per-op timings do not see everything the model sees: at several threads our pool and
    XNNPACK's hand the cores back and forth between ops, which an op timed alone does not pay.
    So the model with the kept ops is timed against the builtin model (interleaved, same process);
    while it is slower than `min_speedup`, the kept op with the smallest per-op margin goes back to
    builtins. Each op returned to the builtins adds two such hand-overs, so where some candidates lost
    alone, the model with every candidate fused is timed too, and kept when it is the faster one (a
    YOLO backbone at 2 threads on Zen 4: every op fused 1.06x the builtin model, per-op winners alone
    0.80x). `every_set`: that every-candidate model's ops, where candidates overlap (an inverted
    residual and its lone depthwise conv; default: the candidates). Returns the ops left, the steps
    taken, the rejections and whether every candidate stays."""
    import tempfile

    from .bench import compare_models

    by_match = {id(m): r for m, r in zip(candidates, rows)}
    steps, dropped = [], []
    with tempfile.TemporaryDirectory(prefix="kcsp_tune_") as d:
        def timed(ms):
            path = os.path.join(d, f"candidate_{len(steps)}.tflite")
            with open(path, "wb") as f:
                f.write(rewrite(g, ms).to_bytes())
            res = compare_models([path, src], runs=max(runs, 10), num_threads=threads, seed=seed, rounds=3)
            fused_ms, builtin_ms = res["models"][0]["median_ms"], res["models"][1]["median_ms"]
            steps.append({"fused_ops": len(ms), "fused_ms": fused_ms, "builtin_ms": builtin_ms,
                          "speedup": builtin_ms / fused_ms})
            return builtin_ms / fused_ms

        every_set = candidates if every_set is None else every_set
        kept_ids = {id(m) for m in kept}
        every = timed(every_set) if any(id(m) not in kept_ids for m in every_set) else None
        if every is not None:
            steps[-1]["every_candidate"] = True
        speedup = None
        while kept:
            speedup = timed(kept)
            if speedup >= min_speedup:
                break
            worst = min(kept, key=lambda m: by_match[id(m)]["speedup"])
            r = by_match[id(worst)]
            r["kept"] = False
            r["dropped_by_model_check"] = True
            dropped.append(Rejection(-1, r["op"], r["output"],
                                     f"fused op {r['speedup']:.2f}x alone, but the model with it ran "
                                     f"{speedup:.2f}x the builtin model at {threads} thread(s): "
                                     f"kept as builtins (fuse --tune, whole-model check)"))
            kept = [m for m in kept if m is not worst]
            speedup = None
    if every is not None and every >= min_speedup and (speedup is None or every > speedup):
        every_ids = {id(m) for m in every_set}
        for m in candidates:
            r = by_match[id(m)]
            if id(m) not in every_ids:  # a lone depthwise conv whose block runs whole instead
                r["kept"] = False
            elif not r["kept"]:
                r["kept"], r["kept_by_model_check"] = True, True
            r.pop("dropped_by_model_check", None)
        return list(every_set), steps, [], True
    return kept, steps, dropped, False


def fuse(src, dst, report=None, inputs=None, samples: int = 8, verify: bool = True,
         seed: int = 0, against=("tflite", "xnnpack"), tune: bool = False, tune_threads: int = 1,
         tune_min_speedup: float = 1.0, tune_runs: int = 10) -> dict:
    """Rewrites `src` (.tflite) into `dst` with CSP patterns fused into custom ops.

    Args:
      report: optional path of a JSON report to write.
      inputs: representative inputs (list of lists of arrays, one list per sample); default:
        `samples` random full-range inputs.
      verify: run original and fused models and require bit-identical outputs (default).
      against: which whole-model runs must be bit-exact: "tflite" = under TFLite's builtin
        kernels (always enforced when verifying), "xnnpack" = under the default XNNPACK CPU path
        (default: enforced; with ("tflite",) only reported). Every fused op alone is always
        checked against XNNPACK, TFLite's builtin and its reference kernels.
      tune: never slower. Time every candidate fused op against the builtin ops it replaces, on
        this CPU at `tune_threads` threads, and keep only those at least `tune_min_speedup` times
        faster; then time the model with the kept ops against the builtin model and, while it is
        slower than that, return the op with the smallest margin to builtins. The report's
        "tuning" lists every op's ratio and the whole-model steps.
    Returns the report dict.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    try:
        g = Graph.load(src)
    except FileNotFoundError:
        raise FuseError(f"model file not found: {src!r}") from None
    except Exception as e:
        raise FuseError(f"cannot read {src!r} as a .tflite model: {e}") from None
    try:
        matches, rejections, mt = find_matches(g, tune_candidates=tune)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, ZeroDivisionError,
            OverflowError) as e:
        # A model that parses but is internally inconsistent (e.g. shapes that contradict the
        # ops, found by hardening/fuzz/fuzz_tflite.py): refuse it cleanly.
        raise FuseError(f"cannot analyze {src!r}: inconsistent model "
                        f"({type(e).__name__}: {e})") from e
    before = g.op_counts()
    tuning = None
    model_check = None
    if tune and matches:
        candidates = every_set = matches
        matches, tuning, slower = _tune(g, candidates, tune_threads, tune_min_speedup, tune_runs, seed)
        # An inverted residual that lost as a whole: its depthwise conv alone may still win (a CPU whose
        # stock 1x1 convs beat ours, e.g. XNNPACK on AMX tiles, while its depthwise ones do not).
        kept_ids = {id(m) for m in matches}
        lone = [DepthwiseMatch.of(m.dw) for m in candidates
                if isinstance(m, InvertedResidualMatch) and id(m) not in kept_ids]
        if lone:
            kept_lone, rows_lone, slower_lone = _tune(g, lone, tune_threads, tune_min_speedup, tune_runs, seed)
            matches, tuning, slower = matches + kept_lone, tuning + rows_lone, slower + slower_lone
            candidates = candidates + lone
        matches, model_check, dropped, every = _tune_whole_model(g, src, candidates, matches, tuning, tune_threads,
                                                                 tune_min_speedup, tune_runs, seed, every_set)
        rejections = list(rejections) + ([] if every else slower + dropped)
    fallbacks = []
    verified = {"enabled": verify, "samples": 0,
                "note": "nothing to fuse" if not matches else "verification disabled"}
    if verify and matches:
        from keras_csp.runtime import Model

        if inputs is None:
            inputs = representative_inputs(Model(src), samples=samples, seed=seed)
        against = tuple(against)
        bad = set(against) - {"tflite", "xnnpack"}
        if bad:
            raise ValueError(f"against must contain 'tflite' and/or 'xnnpack', got {sorted(bad)}")
        matches, fallbacks, verified = _verify(g, matches, inputs, dst, against)
        verified["against"] = list(against)
    try:
        out = rewrite(g, matches)
        data = out.to_bytes()
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, OverflowError) as e:
        raise FuseError(f"cannot rewrite {src!r}: inconsistent model ({type(e).__name__}: {e})") from e
    with open(dst, "wb") as f:
        f.write(data)
    left = [{"op": r.op, "tensor": r.tensor, "reason": r.reason} for r in rejections]
    fused_convs = set()
    for m in matches:
        if isinstance(m, PartialConvMatch):
            fused_convs.add(m.conv.op_index)
        elif isinstance(m, DenseBlockMatch):
            fused_convs.update(c.op_index for c in _dense_convs(m))
        elif isinstance(m, (BlockMatch, InvertedResidualMatch)):
            fused_convs.update(c.op_index for c in m.convs)
        elif isinstance(m, ConvMatch):
            fused_convs.add(m.conv.op_index)
    for i, op in enumerate(g.ops()):
        if g.op_type(op) == "CONV_2D" and i not in fused_convs:
            name = g.tensor_name(int(op.outputs[0]))
            fb = [f for f in fallbacks if name in f.get("conv_outputs", [])]
            left.append({"op": "CONV_2D", "tensor": name,
                         "reason": ("fused op reverted: " + fb[0]["reason"]) if fb
                         else "not part of a fusable CSP pattern"})
    rep = {
        "src": src, "dst": dst,
        "fused_ops": len(matches),
        "fused": [_describe(g, m) for m in matches],
        "left": left,
        "fallbacks": fallbacks,
        "ops_before": before, "ops_after": out.op_counts(),
        "verification": verified,
        "weights": "constant int8 OHWI / int32 bias input tensors (64-byte aligned)",
    }
    rep["coverage"] = coverage(g, out, matches, rejections, fallbacks)
    if tuning is not None:
        rep["tuning"] = {"threads": tune_threads, "min_speedup": tune_min_speedup, "ops": tuning,
                         "kept": sum(t["kept"] for t in tuning), "candidates": len(tuning),
                         "whole_model": model_check or []}
    if report:
        with open(os.fspath(report), "w") as f:
            json.dump(rep, f, indent=2)
    return rep
