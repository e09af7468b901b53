"""`keras-csp` command line.

Sub-commands live in the modules that implement them and are imported lazily, so
`keras-csp --help` does not pay for importing TensorFlow.
To add a command: write a `click.Command` in its module and add one line to COMMANDS.
"""
import importlib

import click

# command name -> "module:attribute" of a click.Command
COMMANDS = {
    "fuse": "keras_csp.fuse_cli:fuse_command",
    "run": "keras_csp.fuse_cli:run_command",
    "inspect-runtime": "keras_csp.fuse_cli:inspect_runtime_command",
    "profile": "keras_csp.profile_cli:profile_command",
    "compare": "keras_csp.profile_cli:compare_command",
    "list-models": "keras_csp.profile_cli:list_models_command",
    "bench": "keras_csp.bench_cli:bench_command",
    "bench-kernels": "keras_csp.bench_kernels_cli:bench_kernels_command",
    "efm-memory": "keras_csp.detection.cli:efm_memory_command",
    "detect-demo": "keras_csp.detection.cli:detect_demo_command",
    "train": "keras_csp.train_cli:train_command",
    "quantize": "keras_csp.train_cli:quantize_command",
    "inspect": "keras_csp.train_cli:inspect_command",
    "demo": "keras_csp.train_cli:demo_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="keras-csp")
def cli():
    """Cross Stage Partial networks: build -> train -> quantize -> fuse -> run -> benchmark."""


def main():
    cli()


if __name__ == "__main__":
    main()
