"""`keras-csp bench-kernels`: fused int8 CSP kernels vs XNNPACK split+conv+concat (code in bench/)."""
import importlib.util
import json
from pathlib import Path

import click


def _load_bench_module():
    """bench/bench_kernels.py lives next to the package in the source tree (editable install)."""
    path = Path(__file__).resolve().parent.parent / "bench" / "bench_kernels.py"
    if not path.is_file():
        raise click.ClickException(f"{path} not found: bench-kernels needs the keras-csp source tree "
                                   "(pip install -e .)")
    spec = importlib.util.spec_from_file_location("keras_csp_bench_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@click.command("bench-kernels")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--quick", is_flag=True, help="A small subset of the shapes (a few seconds).")
@click.option("--variant", default="auto", show_default=True,
              type=click.Choice(["auto", "scalar", "avx2", "avx512vnni", "neon_dotprod"]),
              help="Kernel variant for our side.")
@click.option("--budget", type=float, default=None,
              help="Seconds of interleaved repetitions per shape (default 0.4, --quick 0.15).")
def bench_kernels_command(json_path, quick, variant, budget):
    """Time our fused int8 ops against XNNPACK (LiteRT, 1 thread) on CSPDenseNet-121 / DenseNet-121 /
    CSPResNet-50 stage shapes, and our MAC rate against the measured int8 peak of this core."""
    bench = _load_bench_module()
    try:
        result = bench.run(quick=quick, variant=variant, budget_s=budget,
                           progress=lambda r: click.echo(
                               f"  {r['shape']:70s} ours {r['ours_ms']:8.3f} ms  xnnpack {r['xnnpack_ms']:8.3f} ms"
                               f"  {r['speedup']:.2f}x", err=True))
    except RuntimeError as e:  # e.g. variant not available on this CPU
        raise click.ClickException(str(e))
    click.echo(bench.format_table(result))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
        click.echo(f"wrote {json_path}")
