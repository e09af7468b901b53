"""Same-run timing of .tflite models on keras-csp's runtime (fused vs builtin)."""
from __future__ import annotations

import statistics

import numpy as np


def compare_models(paths, runs=20, warmup=3, num_threads=1, seed=0, rounds=3):
    """Times each model on the same random input, interleaving `rounds` rounds of `runs`
    invocations per model so drift affects all models alike. Returns per-model medians,
    time inside our fused ops, and (for 2 models) the speedup of the first over the second."""
    from keras_csp.runtime import Model
    from .fuse import representative_inputs

    models = [Model(p, num_threads=num_threads) for p in paths]
    x = representative_inputs(models[0], samples=2, seed=seed)[1]
    outs = [m.run(*x) for m in models]
    lat = [[] for _ in models]
    for m in models:
        m.benchmark(runs=1, warmup=warmup)
    for _ in range(rounds):
        for k, m in enumerate(models):
            m.custom_op_stats(reset=True)
            lat[k] += m.benchmark(runs=runs, warmup=1)
    res = {"models": [], "num_threads": num_threads, "runs": runs * rounds}
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
