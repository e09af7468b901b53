"""The NEON dotprod kernels pass the same C++ reference tests under qemu-aarch64.

Runs kernels/tools/test_aarch64.sh: cross-compiles the kernel library and its C++ tests with
g++-aarch64-linux-gnu and runs them under qemu with -cpu max (dotprod variant vs the scalar
reference) and -cpu cortex-a53 (no dotprod: run-time dispatch must fall back to scalar).
"""
import os
import subprocess
from pathlib import Path

from toolchain import require

SCRIPT = Path(__file__).resolve().parent.parent / "kernels" / "tools" / "test_aarch64.sh"


def test_neon_kernels_under_qemu(tmp_path):
    require("aarch64-g++", "qemu-aarch64", "cmake")
    env = dict(os.environ, BUILD_DIR=str(tmp_path / "build"), TRIALS="100", JOBS="2")
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "neon_dotprod  int8:yes" in out          # -cpu max: the dotprod variant ran
    assert "neon_dotprod  int8:no" in out           # cortex-a53: it was not selected
    assert out.count(" 0 failures") == 2


def test_llvm_mca_reports_the_dotprod_main_loop(tmp_path):
    """kernels/tools/mca_arm.py: the marked NEON dotprod main loop through llvm-mca on four core
    models, MACs per cycle against each core's sdot peak (measured by llvm-mca too)."""
    require("aarch64-g++", "llvm-mca")
    import json
    import sys
    out = tmp_path / "mca.json"
    proc = subprocess.run([sys.executable, str(SCRIPT.parent / "mca_arm.py"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["cpu"] for r in rows] == ["cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1"]
    for r in rows:
        assert r["sdot"] == 64 and 0 < r["fraction_of_peak"] <= 1.05, r
