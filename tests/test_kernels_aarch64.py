"""The NEON kernels (i8mm, dotprod, plain NEON) pass the same C++ reference tests under qemu-aarch64.

Runs kernels/tools/test_aarch64.sh: cross-compiles the kernel library and its C++ tests with
g++-aarch64-linux-gnu and runs them under qemu with -cpu max (i8mm, dotprod and plain NEON vs the
scalar reference; dispatch picks i8mm), -cpu cortex-a76 (dotprod, no i8mm) and -cpu cortex-a53
(neither: the plain NEON variant); then the same tests built by clang (the NDK's compiler).
"""
import os
import subprocess
from pathlib import Path

from toolchain import require

SCRIPT = Path(__file__).resolve().parent.parent / "kernels" / "tools" / "test_aarch64.sh"


def test_neon_kernels_under_qemu(tmp_path):
    require("aarch64-g++", "qemu-aarch64", "cmake", "clang")
    env = dict(os.environ, BUILD_DIR=str(tmp_path / "build"), TRIALS="100", JOBS="2")
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "best_int8=neon_i8mm" in out             # -cpu max
    assert "best_int8=neon_dotprod" in out          # cortex-a76
    assert "best_int8=neon " in out                 # cortex-a53: the plain NEON fallback
    assert "neon_i8mm     int8:yes" in out and "neon_dotprod  int8:yes" in out
    assert out.count(" 0 failures") == 5            # 3 cores with gcc, 2 with clang


def test_llvm_mca_reports_the_arm_main_loops(tmp_path):
    """kernels/tools/mca_arm.py: the marked NEON main loops (dotprod, i8mm, mlal) through llvm-mca
    on the core models, MACs per cycle against each core's peak for the loop's instruction
    (measured by llvm-mca too)."""
    require("aarch64-g++", "llvm-mca")
    import json
    import sys
    out = tmp_path / "mca.json"
    proc = subprocess.run([sys.executable, str(SCRIPT.parent / "mca_arm.py"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    by_loop = {}
    for r in rows:
        by_loop.setdefault(r["loop"], []).append(r["cpu"])
        assert 0 < r["fraction_of_peak"] <= 1.05, r
    assert by_loop == {"neon_dotprod_6x16": ["cortex-a55", "cortex-a76", "cortex-a710", "neoverse-v1"],
                       "neon_i8mm_4x16": ["cortex-a710", "neoverse-v1"],
                       "neon_mlal_4x16": ["cortex-a53", "cortex-a55", "cortex-a76", "cortex-a710"]}
    counts = {r["loop"]: (r["instruction"], r["count"]) for r in rows}
    assert counts == {"neon_dotprod_6x16": ("sdot", 96), "neon_i8mm_4x16": ("smmla", 32),
                      "neon_mlal_4x16": ("smlal", 64)}
