"""`keras-csp profile`, `keras-csp compare` and `keras-csp list-models`."""

import click

from . import write_json


@click.command("list-models")
@click.option("--csp-only", is_flag=True, help="Only CSP models (those with a plain twin).")
def list_models_command(csp_only):
    """List the model zoo."""
    from ..models import list_models, plain_twin_of
    for name in list_models(csp_only=csp_only):
        twin = plain_twin_of(name)
        click.echo(f"{name}" + (f"  (plain twin: {twin})" if twin else ""))


@click.command("profile")
@click.argument("names", nargs=-1, required=True)
@click.option("--input-size", default=224, show_default=True, help="Square input side.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the profile(s) as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write the per-layer BFLOPs bottleneck figure (PNG), models side by side.")
@click.option("--layers/--no-layers", "show_layers", default=False, help="Print the per-layer table.")
def profile_command(names, input_size, json_path, plot_path, show_layers):
    """Params, MACs, FLOPs, activation memory and max-per-layer FLOPs of zoo model(s) NAME."""
    from ..profile import plot_bottleneck, profile
    profiles = [profile(name, input_size) for name in names]
    for p in profiles:
        if show_layers:
            for layer in p.layers:
                click.echo(f"  {layer.name:45s} {layer.type:22s} {str(layer.output_shape):22s} "
                           f"{layer.params:>10d} {layer.macs:>14d}")
        click.echo(f"{p.model}: input {input_size}x{input_size}, params {p.params:,}, MACs {p.macs:,}, "
                   f"GFLOPs {p.flops / 1e9:.3f}, max layer GFLOPs {p.max_layer_flops / 1e9:.4f}, "
                   f"activations {p.activation_bytes / 2**20:.1f} MiB (float32)")
    if json_path:
        data = [p.to_dict() for p in profiles]
        write_json(json_path, data[0] if len(data) == 1 else data, indent=1, announce=True)
    if plot_path:
        plot_bottleneck(profiles, plot_path)
        click.echo(f"wrote {plot_path}")


@click.command("compare")
@click.argument("names", nargs=-1)
@click.option("--input-size", type=int, help="Square input side [default: 224, 32 for *_tiny models].")
@click.option("--all-pairs", is_flag=True, help="Compare every CSP model with its plain twin.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
def compare_command(names, input_size, all_pairs, json_path):
    """Table of params, GFLOPs and max-layer GFLOPs; FLOP ratios are against the last model of each group.

    With one name, a CSP model is compared with its plain twin.
    """
    from ..models import list_models, plain_twin_of
    from ..profile import compare
    if all_pairs:
        groups = [[n, plain_twin_of(n)] for n in list_models(csp_only=True)]
    elif len(names) == 1 and plain_twin_of(names[0]):
        groups = [[names[0], plain_twin_of(names[0])]]
    elif names:
        groups = [list(names)]
    else:
        raise click.UsageError("give model names or --all-pairs")
    header = f"{'model':20s} {'params':>12s} {'GFLOPs':>9s} {'max layer GFLOPs':>17s} {'FLOPs ratio':>12s}"
    click.echo(header)
    click.echo("-" * len(header))
    rows_out = []
    for group in groups:
        size = input_size or (32 if all("tiny" in n for n in group) else 224)
        rows, _ = compare(group, size)
        for r in rows:
            click.echo(f"{r['model']:20s} {r['params']:>12,d} {r['gflops']:>9.4f} {r['max_layer_gflops']:>17.4f} "
                       f"{r['flops_ratio']:>12.3f}")
        rows_out.append(rows)
    write_json(json_path, {"groups": rows_out}, indent=1)
