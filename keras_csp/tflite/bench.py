"""Same-run timing of .tflite models on keras-csp's runtime (fused vs builtin)."""
from __future__ import annotations

import statistics

import numpy as np


def compare_models(paths, runs=20, warmup=3, num_threads=1, seed=0, rounds=3, stock=False):
    """Times each model on the same random input, interleaving `rounds` rounds of `runs`
    invocations per model so drift affects all models alike. Returns per-model medians,
    time inside our fused ops, and (for 2 models) the speedup of the first over the second.
    `stock`: run them in the stock ai_edge_litert Interpreter with keras_csp.delegate()."""
    from keras_csp.litert_delegate import StockModel
    from keras_csp.runtime import Model
    from .fuse import representative_inputs

    models = [(StockModel if stock else Model)(p, num_threads=num_threads) for p in paths]
    x = representative_inputs(models[0], samples=2, seed=seed)[1]
    outs = [m.run(*x) for m in models]
    lat = [[] for _ in models]
    for m in models:
        m.benchmark(runs=1, warmup=warmup)
    for _ in range(rounds):
        for k, m in enumerate(models):
            m.custom_op_stats(reset=True)
            lat[k] += m.benchmark(runs=runs, warmup=1)
    res = {"models": [], "num_threads": num_threads, "runs": runs * rounds,
           "interpreter": "stock ai_edge_litert + keras_csp.delegate()" if stock else "keras_csp.runtime.Model"}
    for k, (p, m) in enumerate(zip(paths, models)):
        st = m.custom_op_stats()
        calls = max([s["calls"] for s in st] + [1])
        res["models"].append({
            "path": str(p), "median_ms": statistics.median(lat[k]), "min_ms": min(lat[k]),
            "mean_ms": statistics.fmean(lat[k]),
            "custom_op_ms": sum(s["total_ms"] for s in st) / calls,
            "custom_ops": [{"op": s["op"], "node": s["node"], "detail": s["detail"],
                            "ms": s["total_ms"] / max(s["calls"], 1)} for s in st],
        })
    if len(models) == 2:
        res["speedup"] = res["models"][1]["median_ms"] / res["models"][0]["median_ms"]
        res["outputs_equal"] = all(np.array_equal(a, b) for a, b in zip(outs[0], outs[1]))
    return res


def time_patterns(g, matches, runs=10, warmup=2, num_threads=1, seed=0):
    """For each match of graph `g`: the median time of its builtin ops alone (slices + convs +
    concats on LiteRT/XNNPACK) and of our fused op alone, same process, `num_threads` threads.
    The sub-models are the ones the rewrite pass verifies op by op."""
    import os
    import tempfile

    from keras_csp.runtime import Model
    from .fuse import _describe, _pattern_submodel, rewrite
    from .patterns import find_matches

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(matches):
            sub = _pattern_submodel(g, m)
            a = os.path.join(tmp, f"b{i}.tflite")
            b = os.path.join(tmp, f"f{i}.tflite")
            sub.save(a)
            sm, _, _ = find_matches(sub, tune_candidates=True)  # the pattern alone
            rewrite(sub, sm).save(b)
            ma, mb = Model(a, num_threads=num_threads), Model(b, num_threads=num_threads)
            rng = np.random.default_rng(seed)
            xs = [rng.integers(-128, 128, size=d.shape).astype(np.int8) for d in ma.input_details()]
            # interleaved rounds, so a slowdown of the machine hits both alike
            ta, tb = [], []
            for _ in range(3):
                ta += ma.benchmark(runs, warmup, inputs=xs)
                tb += mb.benchmark(runs, warmup, inputs=xs)
            ta, tb = statistics.median(ta), statistics.median(tb)
            d = _describe(g, m)
            rows.append({"op": d["op"], "output": d["output"], "replaces": d["replaces"],
                         "detail": mb.custom_op_stats()[0]["detail"], "threads": num_threads,
                         "builtin_ms": ta, "fused_ms": tb, "speedup": ta / tb})
    return rows


def pattern_breakdown(src, runs=10, warmup=2, num_threads=1, seed=0):
    """Per fused op of `src` (an UNFUSED int8 model): builtin ops alone vs our fused op alone."""
    from .graph import Graph
    from .patterns import find_matches

    g = Graph.load(src)
    matches, _, _ = find_matches(g)
    return time_patterns(g, matches, runs=runs, warmup=warmup, num_threads=num_threads, seed=seed)


def accuracy_compare(builtin_path, fused_path, x, y, num_threads=1, stock=False):
    """Runs the builtin and fused models on float images x (quantized with the input params)
    in our runtime -- XNNPACK, TFLite's builtin and TFLite's reference kernels for the builtin
    ops (the fused ops round to match each) -- and reports accuracies and how many samples give
    bit-identical outputs. `stock`: both in the stock ai_edge_litert Interpreter (the fused one
    with keras_csp.delegate()), with its default resolver (XNNPACK) and without default delegates
    (builtin kernels). Not with the BUILTIN_REF resolver: LiteRT 2.3's reference int8 SOFTMAX aborts
    the process (the plain models alone; the delegate's "reference" numerics are tested on a model
    without SOFTMAX in tests/test_delegate.py)."""
    from keras_csp.litert_delegate import StockModel
    from keras_csp.runtime import Model

    def pair(mode):
        if not stock:
            return (Model(builtin_path, num_threads=num_threads, cpu_kernel_mode=mode),
                    Model(fused_path, num_threads=num_threads, cpu_kernel_mode=mode))
        resolver = {"": "auto", "builtin": "builtin_without_default_delegates"}[mode]
        return (StockModel(builtin_path, num_threads, op_resolver=resolver),
                StockModel(fused_path, num_threads, op_resolver=resolver))

    res = {"examples": int(len(x)), "interpreter": "stock+delegate" if stock else "keras_csp.runtime"}
    modes = [("", "xnnpack"), ("builtin", "tflite_builtin"), ("reference", "tflite_reference")]
    if stock:
        modes = modes[:2]
    for mode, name in modes:
        mb, mf = pair(mode)
        d = mb.input_details()[0]
        same, acc_b, acc_f = 0, 0, 0
        for xi, yi in zip(x, y):
            a = np.asarray(xi, np.float32)[None]
            if np.dtype(d.dtype).kind in "iu":
                info = np.iinfo(d.dtype)
                a = np.clip(np.round(a / d.scale + d.zero_point), info.min, info.max).astype(d.dtype)
            ob, of = mb.run(a)[0], mf.run(a)[0]
            same += int(np.array_equal(ob, of))
            acc_b += int(np.argmax(ob) == yi)
            acc_f += int(np.argmax(of) == yi)
        res[name] = {"builtin_accuracy": acc_b / len(x), "fused_accuracy": acc_f / len(x),
                     "bit_identical_outputs": same}
    return res
