"""`keras-csp` command line: one module per command group (train, fuse, profile, bench, detection).

Sub-commands are imported lazily, so `keras-csp --help` does not pay for importing TensorFlow.
To add a command: write a `click.Command` in its group's module and add one line to COMMANDS.
Commands are quiet by default (`keras_csp.quiet`); `keras-csp --verbose CMD` shows the libraries' logs.
"""
import importlib
import json
import sys

import click

from .. import quiet

# command name -> "module:attribute" of a click.Command
COMMANDS = {
    "fuse": "keras_csp.cli.fuse:fuse_command",
    "run": "keras_csp.cli.fuse:run_command",
    "inspect-runtime": "keras_csp.cli.fuse:inspect_runtime_command",
    "profile": "keras_csp.cli.profile:profile_command",
    "compare": "keras_csp.cli.profile:compare_command",
    "list-models": "keras_csp.cli.profile:list_models_command",
    "bench": "keras_csp.cli.bench:bench_command",
    "bench-kernels": "keras_csp.cli.bench:bench_kernels_command",
    "efm-memory": "keras_csp.cli.detection:efm_memory_command",
    "detect-demo": "keras_csp.cli.detection:detect_demo_command",
    "train": "keras_csp.cli.train:train_command",
    "quantize": "keras_csp.cli.train:quantize_command",
    "inspect": "keras_csp.cli.train:inspect_command",
    "demo": "keras_csp.cli.train:demo_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx):
        """Bad input (ValueError) and keras-csp's own errors reach the user as one line, not a
        traceback; --verbose keeps the traceback."""
        from ..legacy import LegacySubprocessError
        from ..runtime import RuntimeError_
        from ..tflite.fuse import FuseError
        try:
            return super().invoke(ctx)
        except (ValueError, OSError, RuntimeError_, FuseError, LegacySubprocessError) as e:
            if quiet.is_verbose():
                raise
            raise click.ClickException(f"{type(e).__name__}: {e}") from e


@click.group(cls=LazyGroup)
@click.version_option(package_name="keras-csp")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's, the converter's and LiteRT's logs.")
def cli(verbose):
    """Cross Stage Partial networks: build -> train -> quantize -> fuse -> run -> benchmark."""
    if verbose:
        quiet.set_verbose(True)


def write_json(path, obj, indent=2, announce=False, default=None):
    """The `--json PATH` option of every command: write `obj` when a path was given."""
    if not path:
        return
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, default=default)
    if announce:
        click.echo(f"wrote {path}")


def _deny_amx(ctx, param, value):
    if not value:
        return
    from ..amx import deny_amx
    try:
        deny_amx()
    except (RuntimeError, OSError) as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from e


# `--deny-amx` of the commands that run int8 kernels: handled while the options are parsed, before
# the command runs anything (Linux cannot take AMX tile state back once granted).
deny_amx_option = click.option(
    "--deny-amx", is_flag=True, is_eager=True, expose_value=False, callback=_deny_amx,
    help="Refuse AMX tiles to this process (Linux x86-64; seccomp): XNNPACK and keras-csp then run their "
         "AVX-512 VNNI kernels, as on a CPU without AMX. Recorded in the JSON's machine facts.")


def _xnnpack_isa(ctx, param, value):
    if not value:
        return
    from ..benchmark.xnnpack_isa import cap_xnnpack_isa
    try:
        cap_xnnpack_isa(value)
    except (RuntimeError, OSError) as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from e


# `--xnnpack-isa` of bench and bench-kernels: applied while the options are parsed, before XNNPACK creates
# any int8 operator (their kernels are chosen then, once per process).
xnnpack_isa_option = click.option(
    "--xnnpack-isa", type=click.Choice(["avx2", "avxvnni", "avx512vnni"]), is_eager=True, expose_value=False,
    callback=_xnnpack_isa,
    help="Hold XNNPACK to the kernels of a CPU with at most these x86 extensions (avxvnni: an Intel client "
         "CPU without AVX-512; avx2: a Zen 3 or Skylake client), on this core. Linux x86-64, the ai-edge-litert "
         "wheel's interpreter. Recorded in the JSON.")


def _verbose_requested(args):
    """--verbose among the group's options, i.e. before the command name."""
    for a in args:
        if not a.startswith("-"):
            return False
        if a == "--verbose":
            return True
    return False


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    quiet.set_verbose(quiet.is_verbose() or _verbose_requested(args))
    quiet.silence_python_logs()
    if quiet.is_verbose():
        return cli.main(args, prog_name="keras-csp")
    with quiet.native_logs_to_file():
        return cli.main(args, prog_name="keras-csp")


if __name__ == "__main__":
    main()
