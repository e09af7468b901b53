"""`keras-csp fuse` (rewrite CSP patterns into custom ops) and `keras-csp run` (run / time a
.tflite on keras-csp's LiteRT runtime, optionally against another model)."""

import click

from . import deny_amx_option, write_json


def _pattern_timing(r):
    """One fusable pattern: its builtin ops alone vs our fused op alone (keras_csp.tflite.bench.time_patterns)."""
    return (f"{r['op']:15s} {r['detail']:40s} builtin {r['builtin_ms']:9.3f} ms  fused "
            f"{r['fused_ms']:9.3f} ms  {r['speedup']:.2f}x")


@click.command("fuse")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON fusion report here.")
@click.option("--samples", default=8, show_default=True, help="Random representative inputs for verification.")
@click.option("--against", type=click.Choice(["all", "tflite", "xnnpack"]), default="all", show_default=True,
              help="Which whole-model runs must be bit-exact before DST is written: all = under XNNPACK (LiteRT's "
                   "default) and TFLite's builtin kernels; tflite = only TFLite's builtin kernels (XNNPACK "
                   "differences reported). 'xnnpack' is an alias of 'all'. Each fused op alone is always "
                   "checked against all three kernel sets.")
@click.option("--no-verify", is_flag=True, help="Skip the bit-exactness check (not recommended).")
@click.option("--tune", is_flag=True, help="Never slower: time each candidate fused op against the builtin ops "
                                          "it replaces on this CPU and keep only the ones that win.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256),
              help="With --tune: the thread count the model will run at.")
@click.option("--explain", is_flag=True, help="List every concat (fused, or why not) and the fused share of the "
                                             "model's MACs and of its concat/slice copy traffic.")
@deny_amx_option
def fuse_command(src, dst, report, samples, against, no_verify, tune, threads, explain):
    """Fuse CSP partial convs and dense blocks of int8 SRC into custom ops, write DST."""
    from keras_csp.tflite import FuseError, fuse

    ag = {"tflite": ("tflite",), "xnnpack": ("tflite", "xnnpack"), "all": ("tflite", "xnnpack")}[against]
    try:
        rep = fuse(src, dst, report=report, samples=samples, verify=not no_verify, against=ag, tune=tune,
                   tune_threads=threads)
    except FuseError as e:
        raise click.ClickException(str(e))
    click.echo(f"fused {rep['fused_ops']} op(s): " + ", ".join(
        f"{k}={v}" for k, v in sorted(rep["ops_after"].items()) if k.startswith(("Csp", "Kcsp"))))
    if "tuning" in rep:
        t = rep["tuning"]
        click.echo(f"--tune ({t['threads']} thread(s)): kept {t['kept']} of {t['candidates']} candidate(s)")
        for r in t["ops"]:
            why = (" (slower alone, kept: the model with every op fused was faster)" if r.get("kept_by_model_check")
                   else " (by the whole-model check)" if r.get("dropped_by_model_check") else "")
            click.echo(f"  {_pattern_timing(r)}  {'kept' if r['kept'] else 'left as builtins'}{why}")
        for st in t["whole_model"]:
            click.echo(f"  whole model, {st['fused_ops']} fused op(s){' (every candidate)' if st.get('every_candidate') else ''}: "
                       f"{st['speedup']:.3f}x the builtin model")
    click.echo(f"ops before: {rep['ops_before']}")
    click.echo(f"ops after:  {rep['ops_after']}")
    if rep["fallbacks"]:
        click.echo(f"{len(rep['fallbacks'])} fused op(s) reverted by verification:")
        for f in rep["fallbacks"]:
            click.echo(f"  {f['op']} -> {f['output']}: {f['reason']}")
    left = [x for x in rep["left"] if x["op"] == "CONCATENATION"]
    if explain:
        from keras_csp.tflite.coverage import format_coverage
        for line in format_coverage(rep["coverage"]):
            click.echo(line)
    elif left:
        click.echo(f"{len(left)} concat(s) left as builtins:")
        for x in left:
            click.echo(f"  {x['tensor']}: {x['reason']}")
    v = rep["verification"]
    if v.get("samples"):
        ex = v["model_outputs_bit_exact"]
        click.echo(f"verified on {v['samples']} inputs: each fused op bit-exact vs XNNPACK and TFLite's int8 "
                   f"kernels; model outputs bit-exact under TFLite kernels: {ex['tflite_builtin']}, "
                   f"under XNNPACK: {ex['xnnpack']}")
    click.echo(f"wrote {dst}" + (f" and {report}" if report else ""))


@click.command("run")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--compare", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Second model (e.g. the unfused one) timed in the same run.")
@click.option("--runs", default=20, show_default=True)
@click.option("--warmup", default=3, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--breakdown", is_flag=True,
              help="MODEL is unfused: time each fusable pattern alone, builtin ops vs our fused op.")
@click.option("--dataset", type=click.Choice(["digits"]), default=None,
              help="With --compare: accuracy of both models on the dataset's test split and how many "
                   "outputs are bit-identical (XNNPACK, TFLite builtin and reference kernels for the builtin ops).")
@click.option("--stock", is_flag=True,
              help="Run in the stock ai_edge_litert Interpreter with keras_csp.delegate() instead of keras-csp's runtime.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None)
@deny_amx_option
def run_command(model, compare, runs, warmup, threads, breakdown, dataset, stock, json_out):
    """Time MODEL (and --compare) on keras-csp's LiteRT runtime with its custom ops (--stock: in the
    stock LiteRT Interpreter with the keras-csp delegate)."""
    from keras_csp.tflite.bench import accuracy_compare, compare_models, pattern_breakdown

    if stock and breakdown:
        raise click.UsageError("--breakdown times patterns in keras-csp's runtime; drop --stock")
    if dataset:
        if not compare:
            raise click.UsageError("--dataset needs --compare BUILTIN_MODEL")
        from keras_csp.data import load_dataset

        from keras_csp.tflite.graph import Graph

        g = Graph.load(compare)  # the images at the model's input size (digits: any size)
        ds = load_dataset(dataset, size=int(g.tensor(int(g.sg.inputs[0])).shape[1]))
        res = accuracy_compare(compare, model, ds.x_test, ds.y_test, num_threads=threads, stock=stock)
        for k in [k for k in ("xnnpack", "tflite_builtin", "tflite_reference") if k in res]:
            r = res[k]
            click.echo(f"{k:15s} accuracy builtin {r['builtin_accuracy']:.4f} fused {r['fused_accuracy']:.4f}; "
                       f"bit-identical outputs {r['bit_identical_outputs']}/{res['examples']}")
        from keras_csp.benchmark.models import machine_info

        res.update(fused_model=str(model), builtin_model=str(compare), dataset=dataset, threads=threads,
                   machine=machine_info())
        write_json(json_out, res, indent=2)
        return

    if breakdown:
        rows = pattern_breakdown(model, runs=runs, warmup=warmup, num_threads=threads)
        tb, tf = sum(r["builtin_ms"] for r in rows), sum(r["fused_ms"] for r in rows)
        for r in rows:
            click.echo(_pattern_timing(r))
        if rows:
            click.echo(f"{'total':56s} builtin {tb:9.3f} ms  fused {tf:9.3f} ms  {tb / tf:.2f}x")
        from keras_csp.benchmark.models import machine_info

        write_json(json_out, {"model": str(model), "threads": threads, "runs": runs, "machine": machine_info(),
                              "patterns": rows, "builtin_ms": tb, "fused_ms": tf,
                              "speedup": tb / tf if rows else None}, indent=2)
        return

    from keras_csp.litert_delegate import DelegateError

    try:
        res = compare_models([model] + ([compare] if compare else []), runs=runs, warmup=warmup,
                             num_threads=threads, stock=stock)
    except (DelegateError, RuntimeError, ValueError) as e:
        raise click.ClickException(str(e).strip())
    if stock:
        click.echo(f"interpreter: {res['interpreter']}")
    for r in res["models"]:
        click.echo(f"{r['path']}: median {r['median_ms']:.3f} ms (min {r['min_ms']:.3f}) over {runs} runs; "
                   f"fused ops {r['custom_op_ms']:.3f} ms")
    if compare:
        click.echo(f"speedup of {compare} -> {model}: {res['speedup']:.3f}x; outputs equal: {res['outputs_equal']}")
    write_json(json_out, res, indent=2)


@click.command("inspect-runtime")
def inspect_runtime_command():
    """Show the LiteRT library, its version and the custom ops keras-csp's runtime registers."""
    from keras_csp import runtime as rt

    lib = rt.litert_library_path()
    click.echo(f"libLiteRt.so: {lib}")
    v = rt.litert_version()
    from keras_csp import _runtime

    ok = _runtime.is_tested_litert_version(v)
    click.echo(f"ai-edge-litert: {v} ({'tested' if ok else 'UNTESTED: the runtime will refuse it'})")
    try:
        _runtime.load_litert(lib, v)
        click.echo("C API symbols: all resolved")
    except RuntimeError as e:
        click.echo(f"C API: {e}")
    click.echo("custom ops: " + ", ".join(rt.custom_op_names()))
    try:
        from keras_csp import kernels as K

        click.echo(f"kernel variant: {K.best_variant()} (cpu: {K.cpu_features()})")
    except Exception as e:  # pragma: no cover
        click.echo(f"kernels: unavailable ({e})")
