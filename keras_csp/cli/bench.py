"""`keras-csp bench` (same-run latency of .tflite models, builtin vs fused, or of the CSP zoo vs plain twins)
and `keras-csp bench-kernels` (fused int8 kernels vs XNNPACK split+conv+concat on stage shapes)."""

import click

from . import deny_amx_option, write_json, xnnpack_isa_option


@click.command("bench")
@click.argument("models", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--fused", is_flag=True, help="Also fuse each model (keras-csp fuse --tune) and time the fused file.")
@click.option("--no-tune", is_flag=True, help="Fuse every CSP pattern, also those slower than the builtin ops here.")
@click.option("--zoo", is_flag=True, help="Build, PTQ-quantize and time the CSP zoo models against their plain twins.")
@click.option("--pairs", help="With --zoo: comma-separated CSP model names (default: all six ImageNet pairs).")
@click.option("--input-size", default=224, show_default=True, help="With --zoo: square input side.")
@click.option("--threads", default=1, show_default=True)
@click.option("--runs", default=30, show_default=True,
              help="Timed runs per variant (interleaved), or per process with --isolated.")
@click.option("--isolated", default=0, show_default=True, type=click.IntRange(0, 1000), metavar="ROUNDS",
              help="Time each variant alone in its own process, ROUNDS processes per variant in alternating "
                   "order (0: all variants interleaved in this process).")
@click.option("--warmup", default=3, show_default=True)
@click.option("--no-profile", is_flag=True, help="Skip the per-op profiling pass.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the full report as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a latency bar plot (PNG).")
@deny_amx_option
@xnnpack_isa_option
def bench_command(models, fused, no_tune, zoo, pairs, input_size, threads, runs, warmup, isolated, no_profile,
                  json_path, plot_path):
    """Time MODELS (.tflite) through LiteRT/XNNPACK and, with --fused, through keras-csp's fused ops."""
    from ..benchmark import ZOO_PAIRS, bench_files, bench_zoo, format_table, plot_report
    from ..models import plain_twin_of
    if threads < 1 or runs < 1 or warmup < 0:
        raise click.BadParameter("--threads and --runs must be >= 1, --warmup >= 0")
    from ..benchmark.models import check_tuning_allowed
    try:
        check_tuning_allowed(fused or zoo, not no_tune)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if zoo:
        chosen = ZOO_PAIRS
        if pairs:
            chosen = []
            for name in pairs.split(","):
                twin = plain_twin_of(name.strip())
                if not twin:
                    raise click.BadParameter(f"{name} is not a CSP model with a plain twin", param_hint="--pairs")
                chosen.append((name.strip(), twin))
        report = bench_zoo(chosen, input_size=input_size, threads=threads, runs=runs, warmup=warmup,
                           profile_ops=not no_profile, tune=not no_tune, isolated=isolated)
    elif models:
        report = bench_files(list(models), fused=fused, threads=threads, runs=runs, warmup=warmup,
                             profile_ops=not no_profile, tune=not no_tune, isolated=isolated)
    else:
        raise click.UsageError("give .tflite files or --zoo")
    click.echo(format_table(report))
    m = report["machine"]
    features = sorted(k for k, v in m["cpu_features"].items() if v is True)
    click.echo(f"machine: {m['cpu']} ({m['machine']}), features {features}"
               f"{' (AMX denied)' if m.get('amx_denied') else ''}"
               f"{' (XNNPACK held to ' + m['xnnpack_isa_cap']['level'] + ')' if m.get('xnnpack_isa_cap') else ''}"
               f", LiteRT {m['ai_edge_litert']}, threads {threads}, " +
               (f"{isolated} processes per variant of {runs} runs" if isolated else f"runs {runs} interleaved"))
    write_json(json_path, report, indent=1, announce=True, default=str)
    if plot_path:
        plot_report(report, plot_path)
        click.echo(f"wrote {plot_path}")


@click.command("bench-kernels")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--quick", is_flag=True, help="A small subset of the shapes (a few seconds).")
@click.option("--variant", default="auto", show_default=True,
              type=click.Choice(["auto", "scalar", "avx2", "avxvnni", "avx512vnni", "amx", "neon_dotprod", "neon_i8mm", "neon", "sme"]),
              help="Kernel variant for our side.")
@click.option("--budget", type=float, default=None,
              help="Seconds of interleaved repetitions per shape (default 0.4, --quick 0.15).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Threads for our fused ops and for XNNPACK alike.")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Passes over the whole shape table, --budget seconds per shape each; a shape's figures are "
                   "the minima over its passes (spread over the run: one slow phase of a shared machine does "
                   "not make them).")
@click.option("--burst", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Calls in a row per side and round; with more than 1 the first of each is not timed "
                   "(on several threads it wakes workers the other side's run let fall asleep).")
@click.option("--shapes", "shape_set", default="csp", show_default=True, type=click.Choice(["csp", "yolo", "mobile", "resnext"]),
              help="csp: CSPDenseNet-121 / DenseNet-121 / CSPResNet-50 stage shapes; yolo: the YOLOv8-n "
                   "backbone's convs at 320x320; mobile: the 3x3 depthwise convs of MobileNet-v2 and "
                   "CSPMobileNet-v2 at 224x224; resnext: ResNeXt-50's grouped 3x3 convs.")
@click.option("--k-sweep", is_flag=True,
              help="Instead: time convs over a range of K (input channels) and fit time = a + b K; the slope's "
                   "MAC rate is the microkernel's main loop apart from its epilogue, given against the peak of "
                   "the variant's instruction.")
@deny_amx_option
@xnnpack_isa_option
def bench_kernels_command(json_path, quick, variant, budget, threads, rounds, burst, shape_set, k_sweep):
    """Time our fused int8 ops against XNNPACK (LiteRT, same thread count) on CSPDenseNet-121 / DenseNet-121 /
    CSPResNet-50 stage shapes (or YOLOv8-n's, --shapes yolo; depthwise convs, --shapes mobile; grouped convs,
    --shapes resnext), and our MAC rate against the measured int8
    peak of this core."""
    from ..benchmark import kernels as bench
    if k_sweep:
        if rounds != 1:
            raise click.UsageError("--rounds makes passes over the shape tables; --k-sweep has its own repetitions")
        from ..benchmark import ksweep
        try:
            result = ksweep.run(variant=variant, threads=threads, quick=quick,
                                progress=lambda r: click.echo(f"  {r['config']}: slope {r['slope_gmacs']} GMAC/s",
                                                              err=True))
        except RuntimeError as e:
            raise click.ClickException(str(e))
        click.echo(ksweep.format_table(result))
        write_json(json_path, result, indent=2, announce=True)
        return
    try:
        result = bench.run(quick=quick, variant=variant, budget_s=budget, threads=threads, burst=burst,
                           shapes=shape_set, rounds=rounds,
                           progress=lambda r: click.echo(
                               f"  {r['shape']:70s} ours {r['ours_ms']:8.3f} ms  xnnpack {r['xnnpack_ms']:8.3f} ms"
                               f"  {r['speedup']:.2f}x", err=True))
    except RuntimeError as e:  # e.g. variant not available on this CPU
        raise click.ClickException(str(e))
    click.echo(bench.format_table(result))
    write_json(json_path, result, indent=2, announce=True)
