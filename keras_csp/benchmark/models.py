"""Model-level latency benchmarks: builtin (LiteRT + XNNPACK) vs fused (our custom ops), CSP vs plain.

Every variant runs in this process through the same runtime (`keras_csp.runtime.Model`), and the
timed invocations are interleaved round-robin (run 1 of every variant, then run 2, ...; each round
in a new random order), so a slowdown of the machine hits every variant alike and the ratios of
one run are comparable. With `isolated` rounds, each variant instead runs alone in its own process
(one model, its thread pools alone on the cores, as in an app), the processes alternating in a new
random order every round: models loaded side by side in one process keep idle worker threads
that the interleaved runs pay for, unevenly (measured on a 2-core Zen 4 at 2 threads: the runtime's
fused CSPDenseNet-121 7 % slower than the same file in the stock interpreter when interleaved, the
same speed alone).
A separate, untimed profiling pass gives the per-op breakdown.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from .xnnpack_isa import cap_xnnpack_isa, xnnpack_isa_cap


@dataclass
class Variant:
    label: str            # e.g. "cspdensenet121 builtin"
    path: str
    model: str            # source model (file stem or zoo name)
    fused: bool
    kind: str = ""        # "builtin" | "fused" (our runtime) | "stock+delegate" (stock Interpreter)
    latencies_ms: list = field(default_factory=list)
    ops: list = field(default_factory=list)         # per-op breakdown (profiling pass)
    fused_ops: list = field(default_factory=list)   # time inside our custom ops
    error: str = ""

    def stats(self):
        if not self.latencies_ms:
            return {}
        a = np.asarray(self.latencies_ms)
        return {"min_ms": float(a.min()), "median_ms": float(np.median(a)),
                "p90_ms": float(np.percentile(a, 90)), "mean_ms": float(a.mean()), "runs": int(a.size)}


def machine_info():
    """Machine, CPU features and library versions, for the report."""
    from .. import _kernels
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu": cpu_name(), "cpu_features": {k: v for k, v in _kernels.cpu_features().items() if v},
            "cores": os.cpu_count(), "keras_csp": __version__}
    from ..amx import amx_denied
    # --deny-amx: XNNPACK and our kernels ran without AMX tiles (always given, as in bench-kernels' JSON)
    info["amx_denied"] = amx_denied()
    info["xnnpack_isa_cap"] = xnnpack_isa_cap()  # --xnnpack-isa (every variant then ran in the stock interpreter)
    from ..kernels import resolve_variant
    try:  # the fused ops' int8 kernels in this process (KERAS_CSP_KERNEL_VARIANT may pick another)
        info["kernel_variant"] = resolve_variant()
    except Exception as e:  # noqa: BLE001 - a bad override is reported here and fails the fused models
        info["kernel_variant"] = f"error: {e}"
    for module in ("numpy", "tensorflow", "ai_edge_litert"):
        try:
            info[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing library is reported, not fatal
            info[module] = None
    return info


def cpu_name():
    """The CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _random_inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    inputs = []
    for d in model.input_details():
        dtype = np.dtype(d.dtype)
        if dtype.kind == "f":
            inputs.append(rng.uniform(0, 1, size=d.shape).astype(dtype))
        else:
            info = np.iinfo(dtype)
            inputs.append(rng.integers(info.min, info.max + 1, size=d.shape, dtype=dtype))
    return inputs


def _op_breakdown(path, threads, register_custom_ops):
    """Per-op time of one profiled invocation on the bench's inputs, summed by op name (untimed pass)."""
    from ..runtime import Model
    try:
        m = Model(path, threads, enable_profiling=True, register_custom_ops=register_custom_ops)
        inputs = _random_inputs(m)
        m.run(*inputs)
        m.run(*inputs)
        events = m.profile()
    except Exception as e:  # noqa: BLE001 - profiling is best effort; the timing does not depend on it
        return [{"op": "unavailable", "error": str(e)}]
    if not events:  # LiteRT 2.3's compiled-model profiler hands out no events
        return [{"op": "unavailable", "error": "LiteRT returned no profiler events; per-pattern times: "
                 "`keras-csp run MODEL --breakdown`, time inside fused ops: fused_ops"}]
    totals = {}
    for e in events:
        tag = str(e.get("tag", "?"))
        totals.setdefault(tag, [0.0, 0])
        totals[tag][0] += e.get("elapsed_us", 0) / 1000.0
        totals[tag][1] += 1
    return sorted(({"op": k, "ms": round(v[0], 4), "count": v[1]} for k, v in totals.items()),
                  key=lambda r: -r["ms"])


def fuse_to(path, out_dir, tune=True, threads=1):
    """Fused copy of `path` in out_dir (keras_csp.tflite.fuse verifies it bit-exactly). `tune`
    keeps only the fused ops that beat the builtin ops on this CPU at `threads` (fuse --tune)."""
    from ..tflite import fuse
    suffix = f"_fused_tuned{threads}t.tflite" if tune else "_fused.tflite"
    dst = os.path.join(out_dir, os.path.basename(path).replace(".tflite", suffix))
    report = fuse(path, dst, tune=tune, tune_threads=threads)
    return dst, report


def _stock_only():
    """With XNNPACK's ISA capped (--xnnpack-isa) every variant runs in the stock interpreter: the cap
    reaches the ai-edge-litert Interpreter's XNNPACK, not the one inside keras_csp.runtime's LiteRT."""
    return xnnpack_isa_cap() is not None


def check_tuning_allowed(fused, tune):
    """ValueError when `fuse --tune` would run under an XNNPACK ISA cap (bench_files, bench_zoo and the
    CLI, before any work): tuning times the builtin ops in keras_csp.runtime, which the cap does not reach."""
    if _stock_only() and fused and tune:
        raise ValueError("--xnnpack-isa needs --no-tune: fuse --tune times the builtin ops in keras-csp's runtime, "
                         "whose XNNPACK the cap does not reach (capped, every variant runs in the stock interpreter)")


def _open_variant(kind, path, threads):
    from ..litert_delegate import StockModel
    from ..runtime import Model
    return StockModel(path, threads) if kind == "stock+delegate" or _stock_only() else Model(path, threads)


def time_alone(kind, path, threads, runs, warmup, xnnpack_isa=""):
    """One variant alone in this process: `warmup` untimed and `runs` timed invocations (ms) on the
    bench's inputs, and the time inside our fused ops (`bench --isolated` runs this per process);
    xnnpack_isa: cap XNNPACK's ISA first (the parent's --xnnpack-isa)."""
    if xnnpack_isa:
        cap_xnnpack_isa(xnnpack_isa)
    threads, runs, warmup = int(threads), int(runs), int(warmup)
    m = _open_variant(kind, path, threads)
    m.set_inputs(*_random_inputs(m))
    m.benchmark(runs=1, warmup=warmup)
    m.custom_op_stats(reset=True)
    latencies = m.benchmark(runs=runs, warmup=0)
    return {"latencies_ms": [float(t) for t in latencies], "fused_ops": m.custom_op_stats()}


_TIME_ALONE = "import json, sys; from keras_csp.benchmark.models import time_alone; " \
              "print('KCSP_RESULT ' + json.dumps(time_alone(*sys.argv[1:])))"


def _time_in_process(v, threads, runs, warmup):
    import json
    import subprocess
    import sys
    cap = xnnpack_isa_cap()
    r = subprocess.run([sys.executable, "-c", _TIME_ALONE, v.kind, v.path, str(threads), str(runs), str(warmup),
                        cap["level"] if cap else ""], capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("KCSP_RESULT ")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"{v.label}: benchmark process failed (exit {r.returncode}): {r.stderr.strip()[-600:]}")
    return json.loads(lines[-1][len("KCSP_RESULT "):])


def bench_files(paths, fused=False, threads=1, runs=50, warmup=5, profile_ops=True, progress=None,
                work_dir=None, tune=True, isolated=0):
    """Benchmark .tflite files, builtin and (with `fused`) fused, interleaved in this process, or
    with `isolated` > 0 each variant alone in `isolated` processes of `runs` runs (the processes
    alternating in random order). Returns a report dict."""
    if isolated < 0:
        raise ValueError(f"isolated must be >= 0, got {isolated}")
    check_tuning_allowed(fused, tune)
    work_dir = work_dir or tempfile.mkdtemp(prefix="kcsp_bench_")
    variants, fuse_reports = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        variants.append(Variant(f"{stem} builtin", path, stem, False, "builtin"))
        if fused:
            try:
                fused_path, report = fuse_to(path, work_dir, tune=tune, threads=threads)
                fuse_reports[stem] = _summary(report)
                if not _stock_only():  # capped: keras_csp.runtime's own XNNPACK would run the unfused ops
                    variants.append(Variant(f"{stem} fused", fused_path, stem, True, "fused"))
                # the same fused file in the stock ai_edge_litert Interpreter + keras_csp.delegate()
                variants.append(Variant(f"{stem} stock+delegate", fused_path, stem, True, "stock+delegate"))
            except Exception as e:  # noqa: BLE001 - reported per model, the rest still runs
                variants.append(Variant(f"{stem} fused", "", stem, True, "fused", error=f"fuse failed: {e}"))

    if isolated:
        _time_isolated(variants, threads, runs, warmup, isolated, progress)
    else:
        _time_interleaved(variants, threads, runs, warmup, progress)
    if profile_ops and not _stock_only():
        for v in variants:
            if not v.error and v.kind != "stock+delegate":  # the stock interpreter's profiler is not wired up here
                v.ops = _op_breakdown(v.path, threads, True)
    return _report(variants, fuse_reports, threads, runs, warmup, isolated)


def _time_interleaved(variants, threads, runs, warmup, progress):
    models, inputs = {}, {}
    for v in variants:
        if v.error:
            continue
        try:
            models[v.label] = _open_variant(v.kind, v.path, threads)
        except Exception as e:  # noqa: BLE001
            v.error = str(e)
            continue
        if v.model not in inputs:
            inputs[v.model] = _random_inputs(models[v.label])
        models[v.label].set_inputs(*inputs[v.model])
    live = [v for v in variants if v.label in models]
    for v in live:
        models[v.label].benchmark(runs=1, warmup=warmup)
        models[v.label].custom_op_stats(reset=True)
    # A new order every round: a variant that always ran right after the same other one (its
    # threads winding down, its data in the caches) was measured up to ~8 % slow at 2 threads.
    rng = np.random.default_rng(0)
    for _ in range(runs):
        for i in rng.permutation(len(live)):
            v = live[i]
            v.latencies_ms.extend(models[v.label].benchmark(runs=1, warmup=0))
        if progress:
            progress.update(1)
    for v in live:
        v.fused_ops = models[v.label].custom_op_stats()


def _time_isolated(variants, threads, runs, warmup, rounds, progress):
    live = [v for v in variants if not v.error]
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for i in rng.permutation(len(live)):
            v = live[i]
            if v.error:  # its process failed in an earlier round
                continue
            try:
                res = _time_in_process(v, threads, runs, warmup)
            except RuntimeError as e:
                v.error = str(e)
                continue
            v.latencies_ms.extend(res["latencies_ms"])
            v.fused_ops = res["fused_ops"]
        if progress:
            progress.update(1)


def _summary(report):
    if isinstance(report, dict):
        return {k: report[k] for k in report if k in ("fused", "fused_ops", "left", "skipped", "summary", "ops", "tuning", "coverage")}
    return getattr(report, "__dict__", str(report))


def _report(variants, fuse_reports, threads, runs, warmup, isolated=0):
    by_label = {v.label: v for v in variants}
    rows = []
    for v in variants:
        row = {"label": v.label, "model": v.model, "path": v.path, "fused": v.fused, "kind": v.kind, **v.stats()}
        if v.error:
            row["error"] = v.error
        if v.fused and f"{v.model} builtin" in by_label:
            base = by_label[f"{v.model} builtin"].stats()
            if base and v.stats():
                row["speedup_vs_builtin"] = base["median_ms"] / v.stats()["median_ms"]
        if v.kind == "stock+delegate" and f"{v.model} fused" in by_label:
            ours = by_label[f"{v.model} fused"].stats()
            if ours and v.stats():  # < 1: the stock front door is slower than keras_csp.runtime.Model
                row["speedup_vs_runtime_fused"] = ours["median_ms"] / v.stats()["median_ms"]
        row["ops"] = v.ops
        row["fused_ops"] = v.fused_ops
        rows.append(row)
    return {"machine": machine_info(), "threads": threads, "runs": runs, "warmup": warmup,
            "interleaved": not isolated, "isolated_rounds": isolated,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": rows, "fuse_reports": fuse_reports}


def add_pair_ratios(report, pairs):
    """speedup of each CSP model over its plain twin, per path (median latencies)."""
    stats = {r["label"]: r for r in report["results"] if "median_ms" in r}
    ratios = []
    for csp, plain in pairs:
        for path in ("builtin", "fused"):
            a, b = stats.get(f"{csp} {path}"), stats.get(f"{plain} {path}")
            if a and b:
                ratios.append({"csp": csp, "plain": plain, "path": path,
                               "speedup": b["median_ms"] / a["median_ms"]})
    report["csp_vs_plain"] = ratios
    return report


# --- the zoo benchmark ----------------------------------------------------------------------------

ZOO_PAIRS = [("cspdensenet121", "densenet121"), ("cspresnet50", "resnet50"), ("cspresnext50", "resnext50"),
             ("cspdarknet53", "darknet53"), ("csppeleenet", "peleenet"), ("cspmobilenetv2", "mobilenetv2")]


def export_ptq_int8(name, path, input_size=224, samples=8, seed=0):
    """Zoo model `name` (untrained weights), batch 1, int8 PTQ on random uniform [0, 1) images.

    Random calibration data is fine for speed measurements, not for accuracy.
    """
    from ..models import create_model
    from ..quantize import convert_int8
    model = create_model(name, input_shape=(input_size, input_size, 3))
    x_calib = np.random.default_rng(seed).uniform(size=(samples, input_size, input_size, 3)).astype("float32")
    with open(path, "wb") as f:
        f.write(convert_int8(model, x_calib, num_calib=samples, batch_size=1))
    return path


def bench_zoo(pairs=None, input_size=224, threads=1, runs=20, warmup=3, cache_dir=None, fused=True,
              profile_ops=True, tune=True, isolated=0):
    """Build, quantize (PTQ) and benchmark CSP models against their plain twins."""
    check_tuning_allowed(fused, tune)  # before the exports, not minutes later in bench_files
    from tqdm import tqdm

    from ..profile import profile
    pairs = pairs or ZOO_PAIRS
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "keras_csp_zoo")
    os.makedirs(cache_dir, exist_ok=True)
    names = [n for pair in pairs for n in pair]
    paths, flops, stem = [], {}, {}
    for name in tqdm(names, desc="build + quantize", unit="model"):
        p = profile(name, input_size)
        flops[name] = {"params": p.params, "gflops": p.flops / 1e9, "max_layer_gflops": p.max_layer_flops / 1e9}
        # the cached file's name carries the layout (params, MACs): a zoo model whose config changed
        # is exported again instead of benchmarking a stale file
        key = f"{name}_{input_size}_{p.params}_{p.macs}_int8"
        stem[key] = name
        path = os.path.join(cache_dir, f"{key}.tflite")
        if not os.path.exists(path):
            export_ptq_int8(name, path, input_size)
        paths.append(path)
    desc = f"benchmark ({'one model per process' if isolated else 'interleaved'})"
    with tqdm(total=isolated or runs, desc=desc, unit="round") as bar:
        report = bench_files(paths, fused=fused, threads=threads, runs=runs, warmup=warmup, progress=bar,
                             profile_ops=profile_ops, work_dir=cache_dir, tune=tune, isolated=isolated)
    for row in report["results"]:
        row["model"] = stem.get(row["model"], row["model"])
        row["label"] = f"{row['model']} {row['kind']}"
        row.update(flops.get(row["model"], {}))
    report["input_size"] = input_size
    return add_pair_ratios(report, pairs)


def plot_report(report, path):
    """Bar plot of median latency (p90 as error bar) per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if "median_ms" in r]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows)), 4))
    med = [r["median_ms"] for r in rows]
    err = [r["p90_ms"] - r["median_ms"] for r in rows]
    colors = ["tab:orange" if r["fused"] else "tab:blue" for r in rows]
    ax.bar(range(len(rows)), med, yerr=[np.zeros(len(rows)), err], color=colors, capsize=3)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["label"] for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("latency (ms), median, bar to p90")
    ax.set_title(f"int8 latency, {report['threads']} thread(s), {report['machine']['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_table(report):
    lines = [f"{'variant':34s} {'median ms':>10s} {'p90 ms':>9s} {'min ms':>9s} {'vs builtin':>11s}"]
    for r in report["results"]:
        if "error" in r and "median_ms" not in r:
            lines.append(f"{r['label']:34s} error: {r['error']}")
            continue
        sp = r.get("speedup_vs_builtin")
        vs = r.get("speedup_vs_runtime_fused")
        lines.append(f"{r['label']:34s} {r['median_ms']:>10.3f} {r['p90_ms']:>9.3f} {r['min_ms']:>9.3f} "
                     f"{(f'{sp:.3f}x' if sp else '-'):>11s}" + (f"  ({vs:.3f}x of the runtime's fused)" if vs else ""))
    for c in report.get("csp_vs_plain", []):
        lines.append(f"{c['csp']} vs {c['plain']} ({c['path']}): {c['speedup']:.3f}x")
    return "\n".join(lines)
