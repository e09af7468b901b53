"""The package works when installed as a package: `pip install .` (not editable) into a fresh virtual
environment, run from outside the source tree, without tflite-support, then
train -> quantize -> fuse -> run and bench-kernels through the installed `keras-csp` script.

The venv sees the machine's site-packages (TensorFlow and the other requirements: no download);
keras-csp itself is built from this checkout into the venv, and tflite-support is hidden, as for a
user who never ran scripts/install.sh.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(cmd, cwd, env, timeout=900):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("venv")
    venv_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv_dir)], check=True)
    py = str(venv_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_CSP_VERBOSE")}
    # A user without tflite-support: an importable stand-in that raises ImportError, ahead of site-packages.
    hide = root / "hide"
    (hide / "tensorflow_lite_support").mkdir(parents=True)
    (hide / "tensorflow_lite_support" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    build = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", ROOT],
                           cwd=str(root), env=env, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    env = dict(env, PYTHONPATH=str(hide), PATH=f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return {"py": py, "bin": str(venv_dir / "bin" / "keras-csp"), "env": env, "work": root}


def test_installed_package_runs_the_pipeline_without_the_source_tree(venv):
    work, env, cli = str(venv["work"]), venv["env"], venv["bin"]
    where = _run([venv["py"], "-c", "import keras_csp, keras_csp._kernels as k; print(keras_csp.__file__); "
                  "print(k.__file__)"], work, env)
    assert ROOT not in where and "venv" in where, where  # the installed copy, not this checkout
    _run([cli, "train", "--model", "cspdensenet_tiny", "--epochs", "1", "--limit-train", "128",
          "--batch-size", "32", "--out", "float"], work, env)
    out = _run([cli, "quantize", "float/model.keras", "--qat-epochs", "1", "--no-ptq", "--out", "int8.tflite"],
               work, env)
    assert "metadata skipped: tflite-support is not installed" in out, out
    assert os.path.getsize(os.path.join(work, "int8.tflite")) > 0
    out = _run([cli, "fuse", "int8.tflite", "fused.tflite"], work, env)
    assert "fused" in out
    out = _run([cli, "run", "fused.tflite", "--compare", "int8.tflite", "--runs", "2", "--warmup", "1"], work, env)
    assert "ms" in out
    out = _run([cli, "bench-kernels", "--quick", "--budget", "0.01"], work, env)
    assert "geomean speedup" in out
